"""Live progress of `hpcacq run`: a status area on a terminal, periodic lines in logs, over MPI too."""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpcacq.jobs.progress import BoardRelay, FileBoard, JobProgress, ProgressSnapshot, RunningFile, format_duration

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MPIEXEC = shutil.which("mpiexec", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
PROGRESS_LINE = re.compile(r"progress: (\d+)/(\d+) files \(\d+%\), ([\d.]+) files/s, ([\d,]+) lines/s, "
                           r"(\d+[smhd][\dsmh]*|unknown) left")


def _env() -> dict:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))
    return {**os.environ, "PYTHONPATH": path, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


@pytest.fixture(scope="module")
def long_files(tmp_path_factory):
    """6 files that take ~0.7 s each on one thread: a run of a few seconds, many progress ticks."""
    from hpcacq.synth.corpus import write_corpus

    folder = tmp_path_factory.mktemp("progress") / "data"
    write_corpus(folder, n_files=6, kind="velocity", n_lines=30000, seed=2)
    return folder


def test_snapshot_figures_and_time_left():
    running = [RunningFile("a/x.tif", 0, 50, 100, 2.0), RunningFile("y.tif", 1, 0, 0, 0.5)]
    snap = ProgressSnapshot(n_done=2, n_total=6, n_lines=60000, elapsed_s=10.0, running=running)
    assert snap.files_per_s == pytest.approx(0.2) and snap.lines_per_s == pytest.approx(6000)
    # 2.5 files' worth of work in 10 s; 3.5 left at the same rate: 14 s
    assert snap.eta_s == pytest.approx(14.0)
    line = snap.line()
    assert line.startswith("progress: 2/6 files (33%), 0.20 files/s, 6,000 lines/s, 14s left")
    assert "x.tif 50% on rank 0" in line and "y.tif 0% on rank 1" in line
    assert ProgressSnapshot(n_done=0, n_total=3, n_lines=0, elapsed_s=1.0).eta_s is None
    assert [format_duration(s) for s in (5, 65, 3700, 90000)] == ["5s", "1m05s", "1h01m", "1d01h"]


def test_board_follows_the_analysis_callbacks():
    board = FileBoard(rank=3)
    seen = []

    def task(index, path, progress):
        progress(10, 40)
        seen.append(board.running())
        return path

    assert board.wrap(task)(7, "f.tif") == "f.tif"
    (item,) = seen[0]
    assert (item.path, item.rank, item.done, item.total, item.fraction) == ("f.tif", 3, 10, 40, 0.25)
    assert board.running() == []  # finished files leave the board

    def plain(index, path):  # a job without the progress keyword (e.g. a benchmark's no-op job)
        seen.append(board.running())
        return index

    assert board.wrap(plain)(2, "g.tif") == 2
    assert [(f.path, f.fraction) for f in seen[-1]] == [("g.tif", 0.0)] and board.running() == []


class FakeLink:
    """Rank 0 and one worker in one process: what the worker sends, rank 0 polls."""

    def __init__(self):
        self.waiting: list = []

    def send_progress(self, running):
        self.waiting.append((1, running))

    def poll_progress(self):
        out, self.waiting = self.waiting, []
        return out


def test_worker_boards_reach_rank_0_and_are_drained_without_a_watcher():
    link, worker = FakeLink(), FileBoard(rank=1)
    relay = BoardRelay(worker, link, every_s=0.0)
    worker.callback(5, "w.tif")(3, 4)
    relay.tick()
    relay.tick()  # unchanged: not sent again
    assert len(link.waiting) == 1
    seen = []
    root = JobProgress(seen.append, n_total=2, board=FileBoard(0), counts=lambda: (1, 100), link=link, every_s=0.05)
    time.sleep(0.06)
    root.tick()
    (snap,) = seen
    assert [(f.path, f.rank, f.fraction) for f in snap.running] == [("w.tif", 1, 0.75)]
    assert snap.eta_s == pytest.approx((2 - 1.75) * snap.elapsed_s / 1.75)
    worker.finish(5)
    relay.tick()
    silent = JobProgress(None, n_total=2, board=FileBoard(0), counts=lambda: (0, 0), link=link, every_s=0.05)
    time.sleep(0.06)
    silent.tick()
    assert link.waiting == []  # nobody displays progress, yet rank 0 takes the messages in


def _read_pty(master: int, proc: subprocess.Popen, timeout_s: float) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    return out


def test_terminal_shows_done_total_rates_time_left_and_files_in_progress(long_files, tmp_path):
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "hpcacq", "run", str(long_files), "-o", str(tmp_path / "o.h5"),
                             "--threads", "1"], stdin=slave, stdout=slave, stderr=slave, env=_env(), close_fds=True)
    os.close(slave)
    try:
        text = _read_pty(master, proc, 300).decode("utf-8", "replace")
    finally:
        os.close(master)
        proc.wait(timeout=60)
    assert proc.returncode == 0, text[-2000:]
    heads = re.findall(r"\[(\d+)/6 files \d+%\] ([\d.]+) files/s  ([\d,]+) lines/s  (\d+[smhd][\dsmh]*) left", text)
    assert heads, text[-2000:]
    middle = [h for h in heads if 0 < int(h[0]) < 6]
    assert middle, "no status while the run was half done"
    done, files_s, lines_s, left = middle[0]
    assert float(files_s) > 0 and int(lines_s.replace(",", "")) > 0 and left
    # each running file with its own bar and percentage, from the analysis' progress callbacks
    bars = re.findall(r"velocity_000\d\.tif\s+\[[#.]{20}\]\s+(\d+)%", text)
    assert any(0 < int(p) < 100 for p in bars), text[-2000:]
    assert "\033[J" in text  # redrawn in place, not scrolled
    assert "6 files: 6 OK" in text


EVERY_S = 0.2


def test_log_gets_a_progress_line_every_n_seconds(long_files, tmp_path):
    start = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "hpcacq", "run", str(long_files), "-o", str(tmp_path / "o.h5"),
                          "--threads", "1", "--progress-every", str(EVERY_S)], capture_output=True, text=True,
                         env=_env(), timeout=300)
    elapsed = time.monotonic() - start
    assert out.returncode == 0, out.stderr
    lines = [PROGRESS_LINE.search(line) for line in out.stdout.splitlines() if line.startswith("progress:")]
    assert elapsed > 4 * EVERY_S and all(lines), out.stdout
    # a line every EVERY_S while the files run: at least a third of the job's time / EVERY_S (the
    # progress clock starts once the kernels are loaded, and the job ends with the final write)
    seconds = [int(re.search(r"(\d+)s elapsed", line).group(1)) for line in out.stdout.splitlines()
               if line.startswith("progress:")]
    job_s = float(re.search(r"lines in ([\d.]+) s", out.stdout).group(1))
    assert seconds == sorted(seconds) and len(lines) >= max(3, int(job_s / EVERY_S / 3)), \
        f"{len(lines)} progress lines in a job of {job_s} s: {out.stdout}"
    assert any(m.group(5) != "unknown" for m in lines) and all(m.group(2) == "6" for m in lines)
    assert "running: velocity_000" in out.stdout  # the files in progress, with their percentage
    default = subprocess.run([sys.executable, "-m", "hpcacq", "run", "--help"], capture_output=True, text=True,
                             env=_env())
    assert "--progress-every" in default.stdout and "30" in default.stdout


@pytest.mark.mpi
def test_progress_of_other_ranks_reaches_rank_0(long_files, tmp_path):
    if MPIEXEC is None:
        pytest.fail("mpiexec not found: pip install -e '.[mpi]'")
    out = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-m", "mpi4py", "-m", "hpcacq", "run", str(long_files),
                          "-o", str(tmp_path / "o.h5"), "--threads", "1", "--progress-every", str(EVERY_S)],
                         capture_output=True, text=True, env=_env(), timeout=300)
    assert out.returncode == 0, out.stderr
    assert re.search(r"velocity_000\d\.tif \d+% on rank 1", out.stdout), out.stdout
    assert out.stdout.count("progress:") >= 1 and "6 files: 6 OK" in out.stdout


def test_relay_close_sends_the_held_back_change_at_once_then_nothing():
    link, worker = FakeLink(), FileBoard(rank=1)
    relay = BoardRelay(worker, link, every_s=60.0)
    relay.tick()  # nothing ran yet: nothing to tell
    worker.callback(5, "w.tif")
    relay.tick()
    worker.finish(5)
    relay.tick()  # held back by every_s
    assert [running for _, running in link.waiting] == [[("w.tif", 0, 0, pytest.approx(0.0, abs=1.0))]]
    assert relay.close() == 2  # the finished board goes now, counted: rank 0 receives both
    assert link.waiting[-1] == (1, [])
    worker.callback(6, "x.tif")
    relay.tick()
    assert relay.close() == 2 and len(link.waiting) == 2  # closed: never sends again
