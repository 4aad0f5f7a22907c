"""Acceptance tests of issue 3 (batch runs), end to end through the real command line.

Every run here is ``hpcacq run`` in a subprocess (one process, or ranks under the venv's
MPICH ``mpiexec``, oversubscribed on a 2-core machine) with the real velocity analysis,
and the HDF5 results are read back with plain h5py:

1. the same numbers, bit for bit, from 1x1, 1x2, 2x1, 2x2 and 4x1 (ranks x cores per rank);
2. a folder of real line scans mixed with broken files: the good ones OK, every bad one
   FAILED or SKIPPED with a message saying what is wrong, exit code 1, and
   ``hpcacq summary`` and ``/manifest`` say which and why;
3. SIGTERM, and SIGKILL of every process of the job, midway through a 2-rank run, then
   ``--resume``: the numbers of an uninterrupted run (tests/test_cancel.py does the
   SIGTERM part with a stand-in analysis through the driver, tests/test_results.py kills
   a writer script; neither goes through the CLI with the real analysis);
4. hostile names under MPI, through ``--resume`` and ``hpcacq summary``, with distinct
   groups for equal basenames (tests/test_cli.py runs one hostile name in one process,
   tests/test_inputs.py, test_results.py and test_slurm_render.py cover expansion, group
   names and sbatch quoting; tests/test_slurm_real.py runs a rendered script in a hostile
   folder).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from helpers.jobs import wait_for_ok_lines

pytestmark = [pytest.mark.mpi, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MPIEXEC = shutil.which("mpiexec", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
#: Attributes and manifest columns that legitimately differ between runs of the same job.
VOLATILE = {"rank", "host", "elapsed_s", "timings_json"}


# ----------------------------------------------------------------------------- running
def _env(cores_per_rank: int | None = None) -> dict:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           # more ranks than cores: MPICH allows it; Open MPI needs to be told
           "OMPI_MCA_rmaps_base_oversubscribe": "1", "PRTE_MCA_rmaps_default_mapping_policy": ":oversubscribe"}
    for name in ("PMI_SIZE", "PMI_RANK", "PMI_FD", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMIX_SIZE",
                 "MPI_LOCALNRANKS", "SLURM_CPUS_PER_TASK"):
        env.pop(name, None)
    if cores_per_rank is not None:
        env["SLURM_CPUS_PER_TASK"] = str(cores_per_rank)  # cores per rank, as `hpcacq bench` sets them
    return env


def _command(args, ranks: int | None) -> list[str]:
    args = [str(a) for a in args]
    if ranks is None:
        return [sys.executable, "-m", "hpcacq", *args]
    assert MPIEXEC, "mpiexec not found beside the Python or on PATH: pip install -e '.[mpi]'"
    return [MPIEXEC, "-n", str(ranks), sys.executable, "-m", "mpi4py", "-m", "hpcacq", *args]


def hpcacq(*args, ranks: int | None = None, cores_per_rank: int | None = None, prefix=(), timeout=240):
    """Run ``hpcacq ARGS`` (under ``mpiexec -n RANKS`` if given) and wait for it."""
    done = subprocess.run([*prefix, *_command(args, ranks)], env=_env(cores_per_rank), capture_output=True,
                          text=True, timeout=timeout)
    return done


def synth(folder: Path, *, n_files: int, n_lines: int, seed: int) -> list[str]:
    done = hpcacq("synth", folder, "--n-files", n_files, "--kind", "velocity", "--n-lines", n_lines,
                  "--seed", seed)
    assert done.returncode == 0, done.stderr
    return sorted(str(p) for p in folder.glob("*.tif"))


# ----------------------------------------------------------------------------- reading
def _values(dataset):
    if h5py.check_string_dtype(dataset.dtype):
        return dataset.asstr()[()]
    return dataset[()]


def stored(path) -> dict[str, dict[str, object]]:
    """Everything stored per input file, minus timings, host and rank.

    ``{file: {name: value}}`` with names ``manifest:<dataset>:<column>`` (one per manifest
    column), ``<object>@<attr>`` (every attribute of the file group and below) and
    ``<dataset path>`` (every result column).
    """
    out: dict[str, dict[str, object]] = {}
    with h5py.File(path, "r") as f:
        manifest = {name: _values(f["manifest"][name]) for name in f["manifest"]}
        for i, file in enumerate(manifest["file"]):
            entry = out.setdefault(str(file), {})
            for column, values in manifest.items():
                if column not in VOLATILE:
                    entry[f"manifest:{manifest['dataset'][i]}:{column}"] = values[i]
        for name in f["files"]:
            group = f["files"][name]
            entry = out.setdefault(str(group.attrs["path"]), {})

            def take(relative, obj, entry=entry):
                for key, value in obj.attrs.items():
                    if key not in VOLATILE and not key.startswith("timing_"):
                        entry[f"{relative}@{key}"] = value
                if isinstance(obj, h5py.Dataset):
                    entry[relative] = obj[()]

            take(".", group)
            group.visititems(take)
    return out


def compare(reference: dict, other: dict) -> tuple[float, int]:
    """Assert both results hold the same files, names and values, bit for bit.

    Returns (max abs difference over finite numbers, number of numeric values compared).
    """
    assert set(other) == set(reference), sorted(set(other) ^ set(reference))
    worst, n_values = 0.0, 0
    for file, values in reference.items():
        mine = other[file]
        assert set(mine) == set(values), (file, sorted(set(mine) ^ set(values)))
        for name, want in values.items():
            want, got = np.asarray(want), np.asarray(mine[name])
            assert (got.dtype, got.shape) == (want.dtype, want.shape), (file, name, got.dtype, want.dtype)
            if want.dtype.kind in "fiub":
                a, b = want.astype(float), got.astype(float)
                finite = np.isfinite(a) & np.isfinite(b)
                difference = float(np.max(np.abs(a[finite] - b[finite]), initial=0.0))
                worst, n_values = max(worst, difference), n_values + want.size
                assert got.tobytes() == want.tobytes(), f"{file} {name}: max abs difference {difference:g}"
            else:
                assert got.tolist() == want.tolist(), (file, name)
    return worst, n_values


def manifest_rows(path) -> list[dict]:
    with h5py.File(path, "r") as f:
        manifest = {name: _values(f["manifest"][name]) for name in f["manifest"]}
    n = len(manifest["file"])
    return [{column: values[i] for column, values in manifest.items()} for i in range(n)]


def velocity_columns(path) -> dict[str, dict[str, np.ndarray]]:
    """file -> velocity result columns, for every OK row (linked or consolidated file)."""
    out = {}
    with h5py.File(path, "r") as f:
        for row in manifest_rows(path):
            if row["outcome"] == "OK":
                group = f["files"][row["group"]][row["dataset"]]
                out[str(row["file"])] = {name: group[name][()] for name in group}
    return out


def assert_columns_equal(got: dict, want: dict) -> None:
    for file, columns in got.items():
        assert set(columns) == set(want[file]), file
        for name, values in columns.items():
            assert values.tobytes() == want[file][name].tobytes(), (file, name)


# ----------------------------------------------------------------- 1. ranks x threads
# (ranks, cores per rank, --threads): T cores per rank as `hpcacq bench` sets them
# (SLURM_CPUS_PER_TASK); 1x2 runs one file at a time on 2 threads (windows split into
# chunks), 2x2 two files at a time on 1 thread each.
N_LAYOUT_FILES = 8
LAYOUTS = {"1x1": (None, 1, 1), "1x2": (None, 2, 2), "2x1": (2, 1, 1), "2x2": (2, 2, None), "4x1": (4, 1, 1)}


def test_same_hdf5_numbers_from_one_two_and_four_ranks_with_one_or_two_threads(tmp_path):
    # 6400 lines = 1597 Radon windows = 4 chunks of windows, so 2 threads split a file;
    # ~0.15 s per file, so that rank 0 cannot finish alone before the other ranks start.
    inputs = synth(tmp_path / "corpus", n_files=N_LAYOUT_FILES, n_lines=6400, seed=7)
    results, used = {}, {}
    for name, (ranks, cores, threads) in LAYOUTS.items():
        out = tmp_path / f"out_{name}.h5"
        args = [tmp_path / "corpus", "-o", out, "--analysis", "velocity"]
        args += ["--threads", threads] if threads else []
        done = hpcacq("run", *args, ranks=ranks, cores_per_rank=cores)
        assert done.returncode == 0, f"{name}\n{done.stdout}\n{done.stderr}"
        n_ranks = ranks or 1
        files_at_once, per_file = (2, 1) if threads is None else (cores // threads, threads)
        plan = f"{N_LAYOUT_FILES} files on {n_ranks} rank(s), {files_at_once} file(s) at a time x {per_file} thread(s)"
        assert plan in done.stdout, done.stdout
        assert f"{N_LAYOUT_FILES} files: {N_LAYOUT_FILES} OK" in done.stdout
        with h5py.File(out, "r") as f:
            assert f.attrs["job_mpi_size"] == n_ranks and f.attrs["layout"] == "consolidated"
        rows = manifest_rows(out)
        assert len(rows) == N_LAYOUT_FILES and {r["outcome"] for r in rows} == {"OK"}
        used[name] = sorted({int(r["rank"]) for r in rows})
        if n_ranks > 1:
            assert len(used[name]) >= 2, (name, used[name])  # the work was really shared
        results[name] = stored(out)
    assert set(results["1x1"]) == set(inputs)
    columns = {"time_s", "theta_deg", "velocity_mm_s", "velocity_clean_mm_s", "separability", "flags",
               "background"}
    for file in inputs:  # every result column is among the compared values
        datasets = {name for name in results["1x1"][file] if "@" not in name and not name.startswith("manifest:")}
        assert datasets == {f"roi_0/radon_velocity_ch0/{column}" for column in columns}, datasets  # whole image: ROI 0
    for name in ("1x2", "2x1", "2x2", "4x1"):
        worst, n_values = compare(results["1x1"], results[name])
        print(f"\n1x1 vs {name} (ranks used {used[name]}): {len(inputs)} files, {n_values} numbers, "
              f"max abs difference {worst:g}")
        assert worst == 0.0


# ----------------------------------------------------------------- 2. good and bad files
#: Run the command with root's permission bypass removed (CAP_DAC_OVERRIDE and
#: CAP_DAC_READ_SEARCH dropped from the bounding set before exec), so that a chmod 000
#: file is unreadable to it as it is to any user, while it still owns its files.
DROP_DAC = (
    "import ctypes, os, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH; 24 = PR_CAPBSET_DROP\n"
    "    if libc.prctl(24, cap, 0, 0, 0) != 0:\n"
    "        sys.exit(f'cannot drop capability {cap}: {os.strerror(ctypes.get_errno())}')\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)


def _as_any_user() -> tuple[str, ...]:
    return (sys.executable, "-c", DROP_DAC) if os.geteuid() == 0 else ()


def _mixed_folder(realdata: Path, folder: Path) -> dict[str, tuple[str, list[str]]]:
    """Copies of two real line scans and broken files; name -> (outcome, words of its message)."""
    folder.mkdir()
    a89 = realdata / "a89"
    for stem in ("20250722_A89_0005", "20250722_A89_0006"):  # 30000 x 7 each, sidecars with ROIs 1 and 2
        for suffix in (".tif", ".txt", ".json"):
            shutil.copyfile(a89 / (stem + suffix), folder / (stem + suffix))
    good = (folder / "20250722_A89_0006.tif").read_bytes()
    sidecar = json.loads((a89 / "20250722_A89_0006.json").read_text())
    (folder / "truncated.tif").write_bytes(good[: len(good) // 2])  # cut in the pixels
    (folder / "stub.tif").write_bytes(good[:4])  # cut inside the 8-byte TIFF header
    (folder / "text.tif").write_text("these are notes, not an image\n")
    np.save(folder / "one_d.npy", np.arange(500, dtype=np.uint16))
    (folder / "empty.tif").write_bytes(b"")
    (folder / "no_units.tif").write_bytes(good)  # no .txt header, a sidecar with ROIs but no units
    (folder / "no_units.json").write_text(json.dumps({"rois": sidecar["rois"]}))
    for suffix in (".tif", ".txt"):
        shutil.copyfile(a89 / ("20250722_A89_0006" + suffix), folder / ("no_roi_2" + suffix))
    (folder / "no_roi_2.json").write_text(json.dumps({**sidecar, "rois": sidecar["rois"][:1]}))
    for suffix in (".tif", ".txt", ".json"):
        shutil.copyfile(a89 / ("20250722_A89_0006" + suffix), folder / ("locked" + suffix))
    (folder / "locked.tif").chmod(0)
    return {
        "20250722_A89_0005.tif": ("OK", []),
        "20250722_A89_0006.tif": ("OK", []),
        "truncated.tif": ("FAILED", ["InputError", "truncated", "re-export"]),
        "stub.tif": ("FAILED", ["InputError", "truncated", "re-export"]),
        "text.tif": ("FAILED", ["InputError", "not a readable TIFF"]),
        "one_d.npy": ("FAILED", ["InputError", "1 dimension", "(500,)", "expected 2-D"]),
        "empty.tif": ("FAILED", ["InputError", "empty", "0 bytes"]),
        "no_units.tif": ("FAILED", ["MissingUnitsError", "dx_um", "dt_s", "--dx-um", "--dt-s"]),
        "no_roi_2.tif": ("SKIPPED_MISSING_ROI", ["no ROI 2", "ROI ids [1]"]),
        "locked.tif": ("FAILED", ["InputError", "permission denied", "chmod"]),
    }


@pytest.mark.realdata
def test_real_and_broken_files_each_get_their_outcome_and_reason(realdata, tmp_path):
    folder = tmp_path / "mixed"
    expected = _mixed_folder(realdata, folder)
    out = tmp_path / "mixed.h5"
    done = hpcacq("run", folder, "-o", out, "--analysis", "velocity", "--roi", "existing", "--roi-id", 2,
                  "--threads", 1, prefix=_as_any_user())
    assert done.returncode == 1, f"{done.stdout}\n{done.stderr}"
    assert "10 files: 2 OK (0 from an earlier run), 7 failed, 1 skipped, 0 cancelled" in done.stdout, done.stdout
    assert "8 file(s) not OK:" in done.stdout

    rows = {os.path.basename(r["file"]): r for r in manifest_rows(out)}  # /manifest, plain h5py
    assert set(rows) == set(expected)
    summary = hpcacq("summary", out)
    assert summary.returncode == 1, summary.stderr
    assert "outcomes  FAILED 7, OK 2, SKIPPED_MISSING_ROI 1" in summary.stdout, summary.stdout
    with h5py.File(out, "r") as f:
        for name, (outcome, words) in expected.items():
            row = rows[name]
            assert row["outcome"] == outcome, (name, row["outcome"], row["message"])
            group = f["files"][row["group"]][row["dataset"]]
            assert (group.attrs["outcome"], group.attrs["message"]) == (outcome, row["message"])
            if outcome == "OK":
                # 7-pixel lines: the window-length check may call the file doubtful (docs/QUALITY.md)
                assert row["message"] == "ok" or row["message"].startswith("ok; doubtful: on 7-pixel lines the Radon velocity")
                assert row["n_rows"] == (30000 - 16) // 4 + 1
                assert group["velocity_mm_s"].shape == (row["n_rows"],)
                assert np.isfinite(group["velocity_clean_mm_s"][()]).mean() > 0.5  # real, noisy: ~88 %
                assert list(group.attrs["roi_bounds"]) == [0, 30000, 0, 7] and group.attrs["param_dx_um"] == 0.829
                assert f"{row['file']!r} ch0 roi 2: median velocity_clean_mm_s = " in summary.stdout
                continue
            assert row["n_rows"] == 0 and name in row["message"], row["message"]
            for word in words:
                assert word in row["message"], (name, word, row["message"])
            line = f"  {outcome} {row['file']!r}: {row['message']}"
            assert line in summary.stdout.splitlines(), (line, summary.stdout)
            assert f"{outcome} {row['file']!r}: {row['message']}" in done.stdout
    info = hpcacq("info", folder / "stub.tif")  # was an internal error (exit 4, struct.error traceback)
    assert info.returncode == 2 and "truncated" in info.stderr and "Traceback" not in info.stderr, info.stderr


# ----------------------------------------------------------------- 3. cancel and kill
N_CANCEL_FILES = 32  # 4200 lines each: ~0.1 s per file, 3 chunks of windows (a cancel can land inside)


@pytest.fixture(scope="module")
def cancel_corpus(tmp_path_factory):
    """32 synthetic files and the results of one uninterrupted single-process run."""
    folder = tmp_path_factory.mktemp("cancel")
    inputs = synth(folder / "corpus", n_files=N_CANCEL_FILES, n_lines=4200, seed=11)
    reference = folder / "reference.h5"
    done = hpcacq("run", folder / "corpus", "-o", reference, "--threads", 1)
    assert done.returncode == 0, done.stderr
    return folder / "corpus", inputs, stored(reference), velocity_columns(reference)


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants, parents first (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop(0)
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _kill_job(proc: subprocess.Popen) -> list[int]:
    """SIGKILL every process group of an mpiexec job: Hydra starts each rank in its own
    session, so killing mpiexec's group alone leaves the ranks running (and writing)."""
    tree = _process_tree(proc.pid)
    for pid in reversed(tree):  # ranks first, then the proxy, then mpiexec
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in tree) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in tree), "processes of the killed job are still running"
    return tree


def _start(args, ranks: int) -> subprocess.Popen:
    return subprocess.Popen(_command(args, ranks), env=_env(cores_per_rank=1), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _resume_and_check(corpus: Path, out: Path, n_before: int, reference: dict) -> str:
    done = hpcacq("run", corpus, "-o", out, "--resume", ranks=2, cores_per_rank=1)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert f"{N_CANCEL_FILES} files: {N_CANCEL_FILES} OK ({n_before} from an earlier run)" in done.stdout, done.stdout
    assert not os.path.exists(str(out) + ".parts")
    with h5py.File(out, "r") as f:
        assert f.attrs["layout"] == "consolidated"
    worst, n_values = compare(reference, stored(out))
    print(f"\nresumed after {n_before} files: {N_CANCEL_FILES} files, {n_values} numbers, "
          f"max abs difference to the uninterrupted run {worst:g}")
    return done.stdout


def test_sigterm_midway_keeps_finished_files_and_resume_equals_uninterrupted_run(cancel_corpus, tmp_path):
    corpus, inputs, reference, reference_columns = cancel_corpus
    out = tmp_path / "out.h5"
    proc = _start(["run", corpus, "-o", out, "--threads", 1], ranks=2)
    try:
        wait_for_ok_lines(proc, 8, timeout=120.0, marker="] OK ", on_timeout=lambda: _kill_job(proc))
        os.kill(proc.pid, signal.SIGTERM)  # to mpiexec, which forwards it to every rank (as srun does)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.returncode is None:
            _kill_job(proc)
    assert proc.returncode == 3, f"{rest}\n{err}"
    assert "cancelled (signal SIGTERM)" in rest and "--resume" in rest, rest

    with h5py.File(out, "r") as f:  # a valid, consolidated file
        assert f.attrs["layout"] == "consolidated"
    rows = manifest_rows(out)
    outcomes = [r["outcome"] for r in rows]
    assert sorted(str(r["file"]) for r in rows) == inputs  # every file has its row
    assert set(outcomes) <= {"OK", "CANCELLED"} and outcomes.count("OK") >= 8, outcomes
    assert "CANCELLED" in outcomes, "the job finished before the signal: make the corpus larger"
    finished = velocity_columns(out)
    assert len(finished) == outcomes.count("OK")
    assert_columns_equal(finished, reference_columns)  # kept results are final
    print(f"\nSIGTERM: {outcomes.count('OK')} OK, {outcomes.count('CANCELLED')} CANCELLED")
    _resume_and_check(corpus, out, outcomes.count("OK"), reference)


def test_sigkill_of_the_whole_job_midway_leaves_a_readable_file_that_resume_completes(cancel_corpus, tmp_path):
    corpus, inputs, reference, reference_columns = cancel_corpus
    out = tmp_path / "out.h5"
    proc = _start(["run", corpus, "-o", out, "--threads", 1], ranks=2)
    try:
        # the 16th file written made the first shard durable
        lines = wait_for_ok_lines(proc, 17, timeout=120.0, marker="] OK ", on_timeout=lambda: _kill_job(proc))
    finally:
        tree = _kill_job(proc)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL and len(tree) >= 4, (proc.returncode, tree)  # mpiexec, proxy, 2 ranks
    assert not any(line.startswith(f"{N_CANCEL_FILES} files:") for line in lines)  # killed midway

    with h5py.File(out, "r") as f:  # opens as it is: the linked root of the flushed shards
        assert f.attrs["layout"] == "linked"
    rows = manifest_rows(out)
    assert 16 <= len(rows) < N_CANCEL_FILES and {r["outcome"] for r in rows} == {"OK"}, len(rows)
    flushed = velocity_columns(out)  # through the external links into the shards
    assert len(flushed) == len(rows)
    assert_columns_equal(flushed, reference_columns)
    print(f"\nSIGKILL after {sum('] OK ' in line for line in lines)} files reported: {len(rows)} stored")
    _resume_and_check(corpus, out, len(rows), reference)


# ----------------------------------------------------------------- 4. hostile names
def test_hostile_names_survive_mpi_resume_summary_and_get_distinct_groups(tmp_path, weird_tmp_path):
    stage = tmp_path / "stage"
    synth(stage, n_files=6, n_lines=1200, seed=0)
    truth = {item["file"]: item["velocity_mm_s"] for item in json.loads((stage / "truth.json").read_text())["files"]}
    sources = {  # hostile copy -> synthetic source (velocities of different signs)
        weird_tmp_path / "in" / "a b;'c\" µ\nnl ✓.tif": "velocity_0000.tif",
        weird_tmp_path / "sub; rm -rf x" / "same.tif": "velocity_0001.tif",
        weird_tmp_path / "sub 'y' µ" / "same.tif": "velocity_0005.tif",
    }
    for target, source in sources.items():
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(stage / source, target)
        shutil.copyfile((stage / source).with_suffix(".txt"), target.with_suffix(".txt"))
    paths = [str(p) for p in sources]
    out = weird_tmp_path / "o u;t 'µ'.h5"
    args = [weird_tmp_path / "in", paths[1], paths[2], "-o", out, "--threads", 1]
    done = hpcacq("run", *args, ranks=2, cores_per_rank=1)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "3 files: 3 OK" in done.stdout

    rows = manifest_rows(out)
    assert sorted(str(r["file"]) for r in rows) == sorted(paths)
    assert len({r["group"] for r in rows}) == 3  # equal basenames, distinct groups
    with h5py.File(out, "r") as f:
        assert f.attrs["job_mpi_size"] == 2
        for row in rows:
            path = str(row["file"])
            digest = hashlib.sha1(path.encode("utf-8")).hexdigest()[:12]
            assert re.fullmatch(r"[A-Za-z0-9._+-]{1,40}-" + digest, row["group"]), row["group"]
            assert f["files"][row["group"]].attrs["path"] == path
            velocity = np.nanmedian(f["files"][row["group"]][row["dataset"]]["velocity_clean_mm_s"][()])
            want = truth[sources[Path(path)]]
            assert abs(velocity - want) <= 0.05 * abs(want), (path, velocity, want)  # its own data
    before = os.stat(out).st_mtime_ns

    resumed = hpcacq("run", *args, "--resume")
    assert resumed.returncode == 0, f"{resumed.stdout}\n{resumed.stderr}"
    assert "resume: 3 of 3 files already done" in resumed.stdout and "(3 from an earlier run)" in resumed.stdout
    assert os.stat(out).st_mtime_ns == before  # nothing new: the results file is left untouched

    summary = hpcacq("summary", out)
    assert summary.returncode == 0 and "outcomes  OK 3" in summary.stdout, summary.stdout
    for path in paths:
        assert f"  {path!r} ch0 roi 0: median velocity_clean_mm_s = " in summary.stdout
