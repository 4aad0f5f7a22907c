"""The kill campaign (issue 11): random SIGKILLs of `hpcacq run`, each followed by --resume.

The loop kills `hpcacq run` at random moments at each kill point: while files are written,
right after the last file (inside the final consolidation), during a resume, and (under
mpiexec) one MPI rank or the other, until every kill point has been hit ``KILL_ROUNDS``
times (default 1; each kill point is asserted), then goes on with random kills until
``KILL_CAMPAIGN_S`` seconds have passed (default 0: a long campaign is
``KILL_CAMPAIGN_S=150``, about 60 kills). After every kill the output
must open (or be absent) and keep every file it held before (files lost: 0); the job is
then resumed, maybe killed again, until a resume completes; the result must equal an
uninterrupted run bit for bit: every dataset of every file group, and one manifest row per
file (mismatches: 0). The counts are printed (run with ``-s``) and asserted.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from hpcacq.results import read_manifest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
MPIEXEC = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
ROUNDS = int(os.environ.get("KILL_ROUNDS", "1"))  # kills at each kill point, at least
BUDGET_S = float(os.environ.get("KILL_CAMPAIGN_S", "0"))  # then random kills until this many seconds
N_FILES = 40
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from hpcacq.synth.corpus import write_corpus

    folder = tmp_path_factory.mktemp("campaign") / "d"
    write_corpus(folder, n_files=N_FILES, kind="velocity", n_lines=1500, seed=21)
    return folder


def _command(data: Path, out: Path, *extra: str, mpi: bool = False) -> list[str]:
    command = [sys.executable, "-m", "hpcacq", "run", str(data), "-o", str(out), "--threads", "1", *extra]
    return [MPIEXEC, "-n", "2", *command] if mpi else command


def _datasets(path: Path) -> dict[tuple[str, str], bytes]:
    """(input file name, dataset path inside its group) -> raw bytes, for every dataset of every file group."""
    out = {}
    with h5py.File(path, "r") as handle:
        for group in handle["files"].values():
            name = os.path.basename(str(group.attrs["path"]))

            def visit(inner, obj, name=name):
                if isinstance(obj, h5py.Dataset):
                    out[(name, inner)] = np.asarray(obj[()]).tobytes() + str(obj.dtype).encode()

            group.visititems(visit)
    return out


def _stored_ok(out: Path) -> set[str] | None:
    """Input files stored OK in ``out`` (None: no output yet); raises if the output does not open."""
    if not out.exists():
        return None
    return {row["file"] for row in read_manifest(out) if row["outcome"] == "OK"}


def _rank_pids(out: Path) -> dict[int, int]:
    """MPI rank -> pid of the `hpcacq run` processes writing ``out`` (from /proc)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            if str(out).encode() not in cmdline or b"hpcacq" not in cmdline or b"-n" in cmdline:
                continue
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for item in environ:
            if item.startswith(b"PMI_RANK="):
                found[int(item.split(b"=", 1)[1])] = int(entry)
    return found


def _run_and_kill(command: list[str], out: Path, rng: random.Random, mode: str) -> tuple[int, bool]:
    """Start ``command``; kill it (``mode``) at a random moment; (return code, killed)."""
    proc = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    target_line = rng.randint(1, N_FILES) if mode != "consolidation" else N_FILES
    delay = rng.uniform(0.0, 0.03 if mode == "consolidation" else 0.2)
    killed = False
    try:
        for line in proc.stdout:
            if line.startswith("[") and "/" in line:
                done = int(line[1:line.index("/")])
                if done >= min(target_line, _todo_hint(line)):
                    time.sleep(delay)
                    killed = _kill(proc, out, rng, mode)
                    break
        proc.stdout.read()
    finally:
        rc = proc.wait(timeout=300)
    return rc, killed


def _todo_hint(line: str) -> int:
    """n of a '[k/n]' progress line (a resume has fewer than N_FILES to do)."""
    return int(line[line.index("/") + 1:line.index("]")])


def _kill(proc: subprocess.Popen, out: Path, rng: random.Random, mode: str) -> bool:
    if mode == "mpi_rank":
        pids = _rank_pids(out)
        if not pids:
            return False
        rank = rng.choice(sorted(pids))
        os.kill(pids[rank], signal.SIGKILL)
        return True
    if proc.poll() is not None:
        return False
    os.killpg(proc.pid, signal.SIGKILL)
    return True


def test_random_sigkills_then_resume_lose_nothing_and_equal_an_uninterrupted_run(data, tmp_path):
    reference = tmp_path / "reference.h5"
    done = subprocess.run(_command(data, reference), env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    want = _datasets(reference)
    assert len({name for name, _ in want}) == N_FILES

    rng = random.Random(2026)
    modes = ["writing", "writing", "consolidation", "resume"] + (["mpi_rank"] if MPIEXEC else [])
    counts = {"kills": 0, "iterations": 0, "files_lost": 0, "mismatches": 0, "unreadable": 0}
    by_mode = {mode: 0 for mode in modes}
    start = time.monotonic()
    turn = 0
    while min(by_mode.values()) < ROUNDS or time.monotonic() - start < BUDGET_S:
        turn += 1
        assert turn <= 8 * ROUNDS * len(modes) or min(by_mode.values()) >= ROUNDS, f"kill points not hit: {by_mode}"
        mode = modes[turn % len(modes)]
        if by_mode[mode] >= ROUNDS and time.monotonic() - start >= BUDGET_S:
            continue  # this kill point is covered: on to the next
        counts["iterations"] += 1
        folder = tmp_path / f"it{counts['iterations']}"
        folder.mkdir()
        out = folder / "out.h5"
        seen: set[str] = set()
        first_mode = "writing" if mode == "resume" else mode
        rc, killed = _run_and_kill(_command(data, out, mpi=mode == "mpi_rank"), out, rng, first_mode)
        counts["kills"] += killed
        by_mode[first_mode] += killed
        for attempt in range(6):  # resume, maybe killed again (a kill during resume), until it completes
            try:
                stored = _stored_ok(out) or set()
            except Exception:  # noqa: BLE001 - counted: the output must always open
                counts["unreadable"] += 1
                stored = set()
            counts["files_lost"] += len(seen - stored)
            seen |= stored
            kill_resume = mode == "resume" and attempt < 2 and rng.random() < 0.7
            command = _command(data, out, "--resume")
            if kill_resume:
                rc, killed = _run_and_kill(command, out, rng, "writing")
                counts["kills"] += killed
                by_mode["resume"] += killed
                if not killed and rc == 0:
                    break
                continue
            rc = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300).returncode
            if rc == 0:
                break
        assert rc == 0, f"iteration {counts['iterations']}: the resume did not complete (rc {rc})"
        got = _datasets(out)
        rows = read_manifest(out)
        counts["files_lost"] += len(seen - {row["file"] for row in rows if row["outcome"] == "OK"})
        if got != want or len(rows) != N_FILES or len({row["file"] for row in rows}) != N_FILES:
            counts["mismatches"] += 1
        shutil.rmtree(folder)
    print(f"\nkill campaign: {counts['kills']} kills in {counts['iterations']} iterations "
          f"({', '.join(f'{m}: {n}' for m, n in by_mode.items())}) in {time.monotonic() - start:.0f} s; "
          f"files lost {counts['files_lost']}, mismatches {counts['mismatches']}, "
          f"unreadable outputs {counts['unreadable']}")
    assert min(by_mode.values()) >= ROUNDS, by_mode
    assert counts["files_lost"] == 0 and counts["mismatches"] == 0 and counts["unreadable"] == 0
