"""Issue 11: nothing lost, nothing stale, never exit 4 (writer poisoning, resume, a hard environment).

Each test is marked with the issue item it covers (``# issue 11.N``).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np
import pytest

from hpcacq.bench.records import velocity_record
from hpcacq.results import ResultsWriter, iter_results, read_manifest

from helpers.cli import hpcacq

CORPUS = {"n_files": 6, "n_lines": 600, "seed": 11, "folder": "d"}  # the corpus fixture (conftest.py)

FAST = {"fsync": False}
ROOT = Path(__file__).resolve().parents[1]
MPIEXEC = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


def fresh_copy(corpus, tmp_path):
    target = tmp_path / "d"
    shutil.copytree(corpus, target)
    return target


def rows_by_file(path):
    out = {}
    for row in read_manifest(path):
        out.setdefault(row["file"], []).append(row)
    return out


# ----------------------------------------------------------------- 11.1 a record the writer cannot store
def _bad_records():
    good = velocity_record(0, n_rows=50)
    big_id = velocity_record(1, n_rows=50)
    big_id.records[0].roi_id = 2 ** 63  # the id kymflow's next ROI gets after 2**63 - 1
    huge_id = velocity_record(2, n_rows=50)
    huge_id.records[0].roi_id = 2 ** 70
    objects = velocity_record(3, n_rows=50)
    objects.records[0].result.columns["velocity_mm_s"] = np.array([object()] * 50, dtype=object)
    bad_param = velocity_record(4, n_rows=50)
    bad_param.records[0].params["window_lines"] = 2 ** 80
    return good, [big_id, huge_id, objects, bad_param]


def test_a_record_the_writer_cannot_store_is_a_failed_row_and_the_others_are_kept(tmp_path):  # issue 11.1
    good, bad = _bad_records()
    out = tmp_path / "out.h5"
    with ResultsWriter(out, mode="new", **FAST) as writer:
        for record in [bad[0], good, *bad[1:]]:
            writer.write_file(record)
    rows = rows_by_file(out)
    assert set(rows) == {r.file_path for r in [good, *bad]}
    assert [row["outcome"] for row in rows[good.file_path]] == ["OK"]
    for record in bad:
        (row,) = rows[record.file_path]
        assert row["outcome"] == "FAILED" and record.file_path in row["message"], row
        assert "cannot store" in row["message"]
    assert [info["file"] for info, _ in iter_results(out)] == [good.file_path]
    # resume works afterwards: the failed files are not "done", the good one is
    with ResultsWriter(out, mode="resume", **FAST) as writer:
        done = writer.done_fingerprints()
        assert good.file_path in done and not any(r.file_path in done for r in bad)


def test_sidecar_roi_id_at_int64_max_fails_that_file_only_and_resume_works(corpus, tmp_path, capsys):  # issue 11.1
    data = fresh_copy(corpus, tmp_path)
    tifs = sorted(data.glob("*.tif"))
    (data / (tifs[2].stem + ".json")).write_text(json.dumps(
        {"rois": [{"roi_id": 2 ** 63 - 1, "channel": 1, "data": {"x0": 0, "x1": 8, "y0": 0, "y1": 100}}]}))
    out = tmp_path / "out.h5"
    code, text, err = hpcacq(capsys, "run", data, "-o", out)
    assert code == 1, (text, err)
    rows = rows_by_file(out)
    assert len(rows) == 6
    failed = [f for f, r in rows.items() if r[0]["outcome"] != "OK"]
    assert len(failed) == 1 and failed[0].endswith(tifs[2].name)
    assert tifs[2].name in rows[failed[0]][0]["message"]
    code, text, _ = hpcacq(capsys, "run", data, "-o", out, "--resume")
    assert code == 1 and "5 from an earlier run" in text
    assert len(rows_by_file(out)) == 6


@pytest.mark.mpi
def test_sidecar_roi_id_at_int64_max_under_mpi_is_a_failed_row_not_an_abort(corpus, tmp_path):  # issue 11.1
    data = fresh_copy(corpus, tmp_path)
    tifs = sorted(data.glob("*.tif"))
    (data / (tifs[4].stem + ".json")).write_text(json.dumps(
        {"rois": [{"roi_id": 2 ** 63 - 1, "channel": 1, "data": {"x0": 0, "x1": 8, "y0": 0, "y1": 100}}]}))
    out = tmp_path / "out.h5"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-m", "hpcacq", "run", str(data), "-o", str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    assert "Abort" not in done.stdout + done.stderr and "BAD TERMINATION" not in done.stdout + done.stderr
    outcomes = {os.path.basename(f): rows[0]["outcome"] for f, rows in rows_by_file(out).items()}
    assert len(outcomes) == 6 and outcomes.pop(tifs[4].name) == "FAILED" and set(outcomes.values()) == {"OK"}


# ----------------------------------------------------------------- 11.3 / 11.4 / 11.5 what "already done" means
def _resumed(text):
    """(already done, total) from the driver's 'resume: N of M files already done' line."""
    line = next(line for line in text.splitlines() if line.startswith("resume:"))
    words = line.split()
    return int(words[1]), int(words[3])


def test_other_spellings_of_the_same_inputs_are_the_same_files(corpus, tmp_path, capsys, monkeypatch):  # issue 11.5
    fresh_copy(corpus, tmp_path)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "o.h5"
    assert hpcacq(capsys, "run", "d", "-o", out)[0] == 0
    for spelling in ("./d", str(tmp_path / "d"), "d/../d/", str(tmp_path / "d" / "*.tif")):
        code, text, _ = hpcacq(capsys, "run", spelling, "-o", out, "--resume")
        assert code == 0 and _resumed(text) == (6, 6), (spelling, text)
    rows = read_manifest(out)
    assert len(rows) == 6 and len({row["group"] for row in rows}) == 6
    assert all(os.path.isabs(row["file"]) for row in rows)
    with h5py.File(out, "r") as handle:
        assert len(handle["files"]) == 6


def _dx_by_file(out):
    return {info["file"]: result.params["dx_um"] for info, result in iter_results(out)}


def test_resume_after_dropping_a_unit_option_recomputes_with_the_header_units(corpus, tmp_path, capsys):  # issue 11.3
    data = fresh_copy(corpus, tmp_path)
    out = tmp_path / "A.h5"
    assert hpcacq(capsys, "run", data, "-o", out, "--dx-um", "0.5")[0] == 0
    assert set(_dx_by_file(out).values()) == {0.5}
    code, text, _ = hpcacq(capsys, "run", data, "-o", out, "--resume")
    assert code == 0 and _resumed(text) == (0, 6), text
    assert set(_dx_by_file(out).values()) == {0.284}  # the headers' value (write_corpus default)
    code, text, _ = hpcacq(capsys, "run", data, "-o", out, "--resume")
    assert _resumed(text) == (6, 6)
    code, text, _ = hpcacq(capsys, "run", data, "-o", out, "--resume", "--dx-um", "0.284")
    assert _resumed(text) == (0, 6), "units given now, read before: the answer may differ, recomputed"


def test_resume_after_changing_the_roi_mode_recomputes(corpus, tmp_path, capsys):  # issue 11.3
    data = fresh_copy(corpus, tmp_path)
    for tif in sorted(data.glob("*.tif")):
        (data / (tif.stem + ".json")).write_text(json.dumps(
            {"rois": [{"roi_id": 1, "channel": 1, "data": {"x0": 2, "x1": 30, "y0": 0, "y1": 400}}]}))
    out = tmp_path / "A.h5"
    assert hpcacq(capsys, "run", data, "-o", out, "--roi", "existing", "--roi-id", "1")[0] == 0
    assert {info["roi_bounds"] for info, _ in iter_results(out)} == {(0, 400, 2, 30)}
    code, text, _ = hpcacq(capsys, "run", data, "-o", out, "--resume")
    assert code == 0 and _resumed(text) == (0, 6), text
    # the whole image (ROI 0 in `hpcacq run`) next to ROI 1: both results are kept, each its own row
    by_roi = {}
    for info, _ in iter_results(out):
        by_roi.setdefault(info["roi_id"], set()).add(info["roi_bounds"])
    assert by_roi[1] == {(0, 400, 2, 30)} and by_roi[0] == {(0, 600, 0, 38)}
    code, text, _ = hpcacq(capsys, "run", data, "-o", out, "--resume", "--roi", "existing", "--roi-id", "1")
    assert _resumed(text) == (6, 6)
    assert len(read_manifest(out)) == 12


def _same_size_and_mtime_edit(path, edit):
    st = os.stat(path)
    data = bytearray(path.read_bytes())
    edit(data)
    assert len(data) == st.st_size
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns) == (st.st_size, st.st_mtime_ns)


def test_resume_sees_changes_to_headers_sidecars_and_same_size_same_mtime_content(corpus, tmp_path, capsys):  # issue 11.4
    data = fresh_copy(corpus, tmp_path)
    out = tmp_path / "A.h5"
    assert hpcacq(capsys, "run", data, "-o", out)[0] == 0
    code, text, _ = hpcacq(capsys, "run", data, "-o", out, "--resume")
    assert _resumed(text) == (6, 6)
    tifs = sorted(data.glob("*.tif"))
    # 1. the Olympus header: another um/pixel, same size and mtime
    txt = tifs[0].with_suffix(".txt")
    _same_size_and_mtime_edit(txt, lambda b: b.__setitem__(slice(None), bytes(b).replace(b"0.284 [um/pixel]",
                                                                                           b"0.290 [um/pixel]")))
    # 2. a sidecar appears beside another file
    (data / (tifs[1].stem + ".json")).write_text(json.dumps(
        {"rois": [{"roi_id": 4, "channel": 1, "data": {"x0": 0, "x1": 20, "y0": 0, "y1": 300}}]}))
    # 3. pixels of a third file change, same size and mtime
    _same_size_and_mtime_edit(tifs[2], lambda b: b.__setitem__(slice(len(b) // 2, len(b) // 2 + 64),
                                                               bytes(64)))
    code, text, _ = hpcacq(capsys, "run", data, "-o", out, "--resume")
    assert _resumed(text) == (3, 6), text
    dx = {os.path.basename(f): v for f, v in _dx_by_file(out).items()}
    assert dx[tifs[0].name] == 0.290 and dx[tifs[3].name] == 0.284
    # 4. the sidecar changes content with the same size and mtime: recomputed (its ROIs may matter)
    sidecar = data / (tifs[1].stem + ".json")
    code, text, _ = hpcacq(capsys, "run", data, "-o", out, "--resume")
    assert _resumed(text) == (6, 6)
    _same_size_and_mtime_edit(sidecar, lambda b: b.__setitem__(slice(None), bytes(b).replace(b'"roi_id": 4',
                                                                                               b'"roi_id": 7')))
    code, text, _ = hpcacq(capsys, "run", data, "-o", out, "--resume")
    assert _resumed(text) == (5, 6), text
    roi = {os.path.basename(info["file"]): info["roi_id"] for info, _ in iter_results(out)}
    assert roi[tifs[1].name] == 0  # `hpcacq run --roi new`: the whole image is ROI 0 whatever the sidecar holds


# ----------------------------------------------------------------- 11.2 several analyses per input
def _columns(out, analysis):
    return {(info["file"], info["dataset"]): result.columns for info, result in iter_results(out)
            if info["analysis"] == analysis}


def _assert_same_columns(a, b):
    assert a.keys() == b.keys() and a
    for key in a:
        assert list(a[key]) == list(b[key])
        for name in a[key]:
            assert np.asarray(a[key][name]).tobytes() == np.asarray(b[key][name]).tobytes(), (key, name)


def test_resume_with_another_analysis_adds_to_the_file_and_merge_keeps_both(corpus, tmp_path, capsys):  # issue 11.2
    data = fresh_copy(corpus, tmp_path)
    out, diam = tmp_path / "both.h5", tmp_path / "diameter.h5"
    assert hpcacq(capsys, "run", data, "-o", out)[0] == 0
    velocity = _columns(out, "radon_velocity")
    code, text, _ = hpcacq(capsys, "run", data, "-o", out, "--resume", "--analysis", "diameter")
    assert code in (0, 1) and _resumed(text) == (0, 6)
    _assert_same_columns(_columns(out, "radon_velocity"), velocity)  # kept, bit for bit
    rows = rows_by_file(out)
    assert len(rows) == 6 and all(sorted(r["analysis"] for r in rs) == ["diameter", "radon_velocity"]
                                  for rs in rows.values())
    code, text, _ = hpcacq(capsys, "run", data, "-o", out, "--resume")  # velocity: all done still
    assert _resumed(text) == (6, 6)
    code, text, _ = hpcacq(capsys, "run", data, "-o", out, "--resume", "--analysis", "diameter")
    assert _resumed(text)[1] == 6
    _assert_same_columns(_columns(out, "radon_velocity"), velocity)

    # merge: one file of velocity, one of diameter -> both analyses for every input
    vel = tmp_path / "velocity.h5"
    assert hpcacq(capsys, "run", data, "-o", vel)[0] == 0
    assert hpcacq(capsys, "run", data, "-o", diam, "--analysis", "diameter")[0] in (0, 1)
    merged = tmp_path / "merged.h5"
    code, text, err = hpcacq(capsys, "merge", vel, diam, "-o", merged)
    assert code == 0, (text, err)
    rows = rows_by_file(merged)
    assert len(rows) == 6 and all(sorted(r["analysis"] for r in rs) == ["diameter", "radon_velocity"]
                                  for rs in rows.values())
    _assert_same_columns(_columns(merged, "radon_velocity"), velocity)
    _assert_same_columns(_columns(merged, "diameter"), _columns(diam, "diameter"))
    # the same analysis with other parameters: a real conflict, refused unless --overwrite
    other = tmp_path / "other.h5"
    assert hpcacq(capsys, "run", data, "-o", other, "--window-lines", "32")[0] == 0
    code, text, err = hpcacq(capsys, "merge", vel, other, "-o", tmp_path / "c.h5")
    assert code == 2 and "differ" in err and not (tmp_path / "c.h5").exists()
    code, _, _ = hpcacq(capsys, "merge", vel, other, "-o", tmp_path / "c.h5", "--overwrite")
    assert code == 0
    _assert_same_columns(_columns(tmp_path / "c.h5", "radon_velocity"), _columns(other, "radon_velocity"))
    shutil.copyfile(vel, tmp_path / "vel2.h5")  # identical answers in two files: kept once, no conflict
    code, text, _ = hpcacq(capsys, "merge", vel, tmp_path / "vel2.h5", "-o", tmp_path / "d.h5")
    assert code == 0 and "identical" in text and len(read_manifest(tmp_path / "d.h5")) == 6


# ----------------------------------------------------------------- 11.10 a hard environment


def cli(*args, env=None, timeout=300, code=None, mpi=None) -> subprocess.CompletedProcess:
    """``hpcacq ARGS`` in a subprocess (a crash must not take pytest down); ``code`` replaces the entry,
    ``mpi`` is a number of ranks under mpiexec."""
    full_env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", **(env or {})}
    command = [sys.executable, "-c", code, *map(str, args)] if code else \
        [sys.executable, "-m", "hpcacq", *map(str, args)]
    if mpi:
        command = [MPIEXEC, "-n", str(mpi), *command]
    return subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=timeout)


@contextmanager
def tmpfs(folder: Path, size: str, *options: str):
    """A small tmpfs at ``folder`` (root in CI and here), unmounted afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join([f"size={size}", *options]), "tmpfs", str(folder)],
                   check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture(scope="module")
def bigger(tmp_path_factory):
    """Twelve velocity files whose results (~2.5 MB) do not fit a 1.5 MB file system."""
    from hpcacq.synth.corpus import write_corpus

    folder = tmp_path_factory.mktemp("bigger") / "d"
    write_corpus(folder, n_files=12, kind="velocity", n_lines=6000, seed=3)
    return folder


def _all_columns(out):
    return {(os.path.basename(info["file"]), info["dataset"]): result.columns for info, result in iter_results(out)}


@pytest.mark.parametrize("ranks", [None, pytest.param(2, marks=pytest.mark.mpi)])
def test_full_disk_is_exit_5_with_a_message_and_resume_completes_the_job(bigger, tmp_path, ranks):  # issue 11.10
    reference = tmp_path / "ref.h5"
    assert cli("run", bigger, "-o", reference).returncode == 0
    with tmpfs(tmp_path / "small", "1500k") as small:
        out = small / "out.h5"
        done = cli("run", bigger, "-o", out, mpi=ranks)
        assert done.returncode == 5, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
        text = done.stdout + done.stderr
        assert "no space left" in text.lower() and "--resume" in text and "Traceback" not in text
        assert "Abort" not in text and "BAD TERMINATION" not in text
        summary = next(line for line in done.stdout.splitlines() if line.startswith("12 files:"))
        n_ok = int(summary.split(":")[1].split()[0])
        stored = len(read_manifest(out)) if out.exists() else 0
        assert n_ok == stored, (summary, stored)  # OK counts only what is stored; the rest is "cancelled"
        subprocess.run(["mount", "-o", "remount,size=64m", str(small)], check=True)
        done = cli("run", bigger, "-o", out, "--resume")
        assert done.returncode == 0, done.stdout + done.stderr
        got, want = _all_columns(out), _all_columns(reference)
        assert got.keys() == want.keys() and len(got) == 12
        for key in want:
            for name in want[key]:
                assert np.asarray(got[key][name]).tobytes() == np.asarray(want[key][name]).tobytes()


def test_read_only_output_folder_is_a_usage_error(corpus, tmp_path):  # issue 11.10
    with tmpfs(tmp_path / "ro", "1m", "ro") as folder:
        done = cli("run", corpus, "-o", folder / "out.h5")
        assert done.returncode == 2, done.stdout + done.stderr
        assert "read-only" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("line", ["inputs = 5", "params = 5", "channel = 'x'", "output = 5", "inputs = [1, 2]",
                                  "time_limit = [1]", "threads = 1.5"])
def test_config_values_of_the_wrong_type_are_usage_errors(corpus, tmp_path, capsys, line):  # issue 11.10
    config = tmp_path / "job.toml"
    config.write_text(line + "\n")
    code, out, err = hpcacq(capsys, "run", corpus, "-o", tmp_path / "o.h5", "--config", config)
    key = line.split()[0].replace("_", "-")
    assert code == 2 and ("job.toml" in err or key in err) and "Traceback" not in err, (line, err)


# ----------------------------------------------------------------- 11.11 a damaged output of a killed job
def _killed_output(tmp_path, n=5):
    """A linked output of ``n`` files, one shard each, left as a kill leaves it (no consolidation)."""
    out = tmp_path / "out.h5"
    records = [velocity_record(i, n_rows=40) for i in range(n)]
    writer = ResultsWriter(out, flush_every=1, max_flush_share=1.0, **FAST)
    for record in records:
        writer.write_file(record)
    writer.abandon()  # like a kill: the root and shards as last committed
    with h5py.File(out, "r") as handle:
        assert handle.attrs["layout"] == "linked"
    return out, records


def _truncate(path, keep=0.5):
    size = os.path.getsize(path)
    with open(path, "r+b") as handle:
        handle.truncate(int(size * keep))


def _check_kept(out, records):
    got = {info["file"]: result for info, result in iter_results(out)}
    assert set(got) == {r.file_path for r in records}
    for record in records:
        want = record.records[0].result.columns
        for name in want:
            assert np.asarray(got[record.file_path].columns[name]).tobytes() == np.asarray(want[name]).tobytes()


def test_resume_salvages_every_intact_shard_of_a_truncated_output(tmp_path, capsys):  # issue 11.11
    out, records = _killed_output(tmp_path)
    _truncate(out.parent / "out.h5.parts" / "shard-00003.h5")
    code, text, err = hpcacq(capsys, "summary", out)
    assert code == 2 and "hpcacq repair" in err and "Traceback" not in err, err
    writer = ResultsWriter(out, mode="resume", **FAST)
    assert any("shard-00003.h5" in note and "damaged" in note for note in writer.notes)
    done = writer.done_fingerprints()
    assert set(done) == {r.file_path for i, r in enumerate(records) if i != 2}  # shard 3 held file 2
    writer.write_file(records[2])  # the resumed job runs it again
    writer.close()
    _check_kept(out, records)


def test_repair_rebuilds_a_damaged_root_from_its_shards(tmp_path, capsys):  # issue 11.11
    out, records = _killed_output(tmp_path)
    _truncate(out, keep=0.3)
    code, text, err = hpcacq(capsys, "summary", out)
    assert code == 2 and "hpcacq repair" in err
    code, text, err = hpcacq(capsys, "repair", out)
    assert code == 0 and "5 input files kept" in text and "damaged" in text, (text, err)
    _check_kept(out, records)
    assert not (tmp_path / "out.h5.parts").exists()
    code, text, err = hpcacq(capsys, "summary", out)
    assert code == 0, err


def test_summary_of_a_linked_output_without_its_parts_folder_is_a_clear_message(tmp_path, capsys):  # issue 11.11
    out, _ = _killed_output(tmp_path)
    shutil.rmtree(tmp_path / "out.h5.parts")
    code, text, err = hpcacq(capsys, "summary", out)
    assert code == 2 and "parts folder" in err and "Traceback" not in err


# ----------------------------------------------------------------- 11.12 --overwrite removes only hpcacq results
def test_overwrite_refuses_devices_and_files_that_are_not_hpcacq_results(corpus, tmp_path, capsys):  # issue 11.12
    device = tmp_path / "null-like"
    os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # the same device as /dev/null
    text_file = tmp_path / "notes.h5"
    text_file.write_text("my notes")
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as handle:
        handle["data"] = np.arange(3)
    for target in (device, text_file, plain, tmp_path):
        code, _, err = hpcacq(capsys, "run", corpus, "-o", target, "--overwrite")
        assert code == 2 and ("refused" in err or "directory" in err.lower()), (target, err)
    assert stat.S_ISCHR(os.stat(device).st_mode) and text_file.read_text() == "my notes"
    with h5py.File(plain, "r") as handle:
        assert list(handle) == ["data"]
    # a real results file is replaced; a parts folder holding a foreign file is refused
    out = tmp_path / "out.h5"
    assert hpcacq(capsys, "run", corpus, "-o", out)[0] == 0
    assert hpcacq(capsys, "run", corpus, "-o", out, "--overwrite")[0] == 0
    (tmp_path / "out.h5.parts").mkdir()
    (tmp_path / "out.h5.parts" / "thesis.docx").write_text("do not delete")
    code, _, err = hpcacq(capsys, "run", corpus, "-o", out, "--overwrite")
    assert code == 2 and "refused" in err and (tmp_path / "out.h5.parts" / "thesis.docx").exists()


# ----------------------------------------------------------------- 11.13 late signals, an empty input list
LATE_SIGNAL = textwrap.dedent("""
    import os, signal, sys, time
    import hpcacq.cli.run as run
    original = run._Display.finish
    def finish(self, summary):
        original(self, summary)
        if self.rank0:
            os.kill(os.getpid(), signal.SIGTERM)  # after the summary is printed
            time.sleep(0.3)
    run._Display.finish = finish
    from hpcacq.cli import main
    main(sys.argv[1:])
""")


def test_a_signal_after_the_summary_keeps_the_jobs_exit_code(corpus, tmp_path):  # issue 11.13
    done = cli("run", corpus, "-o", tmp_path / "a.h5", code=LATE_SIGNAL)
    assert done.returncode == 0 and "6 OK" in done.stdout, (done.returncode, done.stderr[-2000:])
    stop = tmp_path / "STOP"
    stop.touch()
    done = cli("run", corpus, "-o", tmp_path / "b.h5", "--stop-file", stop, code=LATE_SIGNAL)
    assert done.returncode == 3, (done.returncode, done.stderr[-2000:])


@pytest.mark.mpi
def test_a_signal_after_the_summary_under_mpi_is_no_bad_termination(corpus, tmp_path):  # issue 11.13
    script = tmp_path / "late.py"
    script.write_text(LATE_SIGNAL)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(script), "run", str(corpus), "-o",
                           str(tmp_path / "m.h5")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    assert "BAD TERMINATION" not in done.stdout + done.stderr


def test_an_empty_input_list_is_a_clear_usage_error(tmp_path, capsys):  # issue 11.13
    empty = tmp_path / "files.txt"
    empty.write_text("# nothing yet\n")
    code, out, err = hpcacq(capsys, "run", f"@{empty}", "-o", tmp_path / "o.h5")
    assert code == 2 and ("no input files" in err or "lists no files" in err), err
    assert not (tmp_path / "o.h5").exists()


def test_resume_recomputes_when_the_reading_options_change(corpus, tmp_path, capsys):  # issue 11.3 (read options)
    data = fresh_copy(corpus, tmp_path)
    out = tmp_path / "A.h5"
    assert hpcacq(capsys, "run", data, "-o", out)[0] == 0
    code, text, _ = hpcacq(capsys, "run", data, "-o", out, "--resume", "--axes", "YX")
    assert _resumed(text) == (0, 6), "pixels read another way: recomputed, not 'already done'"
    code, text, _ = hpcacq(capsys, "run", data, "-o", out, "--resume", "--axes", "YX")
    assert _resumed(text) == (6, 6), text
