"""Live progress of a job: files done, rates, time left, and the files in progress.

Each rank keeps a :class:`FileBoard` of its running files, fed by the analyses'
``progress(done, total)`` callbacks (called between chunks of windows or lines, from
the file's thread: a dict assignment, no lock, no per-window work). Worker ranks send
their board to rank 0 twice a second (less often on many ranks; :class:`BoardRelay`, through
:mod:`hpcacq.jobs.mpi_comm`); rank 0's :class:`JobProgress` combines its own board,
the workers' and the finished-file counts into a :class:`ProgressSnapshot`, handed to
an ``on_progress`` callback every ``every_s`` seconds (the CLI draws it).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FileBoard", "BoardRelay", "JobProgress", "ProgressSnapshot", "RunningFile", "accepts_progress",
           "format_duration", "RELAY_EVERY_S"]

RELAY_EVERY_S = 0.5  # a worker rank sends its running files to rank 0 at most this often (small jobs)


@dataclass(frozen=True)
class RunningFile:
    """A file being analysed: ``done`` of ``total`` units (windows or lines; 0/0 until the
    analysis reports), on ``rank``, for ``elapsed_s`` seconds."""

    path: str
    rank: int
    done: int
    total: int
    elapsed_s: float

    @property
    def fraction(self) -> float:
        """Fraction analysed, 0..1 (0 while the file is read or before the first chunk)."""
        return min(1.0, self.done / self.total) if self.total > 0 else 0.0


@dataclass(frozen=True)
class ProgressSnapshot:
    """The job's progress at one moment (rank 0).

    ``eta_s`` is None until something has finished or progressed; rates are averages
    since the job started (files/s of finished files; lines/s of the lines of OK files).
    """

    n_done: int
    n_total: int
    n_lines: int
    elapsed_s: float
    running: list[RunningFile] = field(default_factory=list)

    @property
    def files_per_s(self) -> float:
        return self.n_done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def lines_per_s(self) -> float:
        return self.n_lines / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left: the work left (files not done, minus the running files' done
        fractions) at the rate so far."""
        effective = self.n_done + sum(f.fraction for f in self.running)
        if effective <= 0 or self.elapsed_s <= 0:
            return None
        return max(0.0, (self.n_total - effective) * self.elapsed_s / effective)

    def line(self) -> str:
        """One plain line with every figure (logs), e.g. for a SLURM log."""
        percent = 100.0 * self.n_done / self.n_total if self.n_total else 100.0
        eta = "unknown" if self.eta_s is None else format_duration(self.eta_s)
        text = (f"progress: {self.n_done}/{self.n_total} files ({percent:.0f}%), {self.files_per_s:.2f} files/s, "
                f"{self.lines_per_s:,.0f} lines/s, {eta} left, {format_duration(self.elapsed_s)} elapsed")
        if self.running:
            ranks = any(f.rank for f in self.running)  # MPI: say where each file runs
            shown = ", ".join(f"{_short(f.path)} {100 * f.fraction:.0f}%" + (f" on rank {f.rank}" if ranks else "")
                              for f in self.running[:4])
            more = f" (+{len(self.running) - 4} more)" if len(self.running) > 4 else ""
            text += f"; running: {shown}{more}"
        return text


def _short(path: str, width: int = 40) -> str:
    name = path.replace("\\", "/").rsplit("/", 1)[-1] or path
    return name if len(name) <= width else "..." + name[-(width - 3):]


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``, ``3d04h``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


class FileBoard:
    """This rank's running files, updated from the analyses' threads."""

    def __init__(self, rank: int = 0):
        self.rank = rank
        self._files: dict[int, list] = {}  # index -> [path, done, total, start]
        self.version = 0

    def callback(self, index: int, path: str) -> Callable[[int, int], None]:
        """Register file ``index`` as started; returns its ``progress(done, total)``."""
        entry = [str(path), 0, 0, time.monotonic()]
        self._files[index] = entry
        self.version += 1

        def progress(done: int, total: int) -> None:
            entry[1], entry[2] = int(done), int(total)
            self.version += 1

        return progress

    def finish(self, index: int) -> None:
        self._files.pop(index, None)
        self.version += 1

    def running(self) -> list[RunningFile]:
        now = time.monotonic()
        return [RunningFile(path, self.rank, done, total, now - start)
                for path, done, total, start in list(self._files.values())]

    def wrap(self, task: Callable[..., Any]) -> Callable[[int, str], Any]:
        """``task(index, path[, progress=...])`` as a ``(index, path)`` task that keeps the board.

        The file is on the board while the task runs; its ``progress(done, total)`` is
        passed only to a task that takes a ``progress`` keyword (else it shows 0 %)."""
        with_progress = accepts_progress(task)

        def run(index: int, path: str) -> Any:
            callback = self.callback(index, path)
            try:
                return task(index, path, progress=callback) if with_progress else task(index, path)
            finally:
                self.finish(index)

        return run


def accepts_progress(func: Callable) -> bool:
    """True when ``func`` takes a ``progress`` keyword (FileJob.run does; bench no-op jobs may not)."""
    try:
        return "progress" in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


class BoardRelay:
    """A worker rank: send its board to rank 0 when it changed, at most every ``every_s``.

    ``sent`` counts the messages. The worker calls :meth:`close` before it tells rank 0
    it has finished, and tells it this count: rank 0 then receives every one of them
    before MPI_Finalize (:meth:`JobProgress.close`). A message sent after rank 0's last
    look would stay unreceived: MPICH's MPI_Finalize then fails on rank 0, which exits
    without finalizing, and ``mpiexec`` kills every other rank (exit code 9).
    """

    def __init__(self, board: FileBoard, link: Any, every_s: float = RELAY_EVERY_S):
        self.board, self.link, self.every_s = board, link, every_s
        self._sent_version = 0  # an untouched board (nothing ran) is not sent
        self._next = 0.0
        self.sent = 0
        self.closed = False

    def tick(self) -> None:
        now = time.monotonic()
        if self.closed or now < self._next or self.board.version == self._sent_version:
            return
        self._next = now + self.every_s
        self._send()

    def _send(self) -> None:
        self._sent_version = self.board.version
        self.link.send_progress([(f.path, f.done, f.total, f.elapsed_s) for f in self.board.running()])
        self.sent += 1

    def close(self) -> int:
        """Send the board's last change now (whatever ``every_s``), stop relaying; the messages sent."""
        if not self.closed:
            if self.board.version != self._sent_version:
                self._send()
            self.closed = True
        return self.sent


class JobProgress:
    """Rank 0: every ``every_s`` seconds, a :class:`ProgressSnapshot` to ``on_progress``.

    ``counts()`` returns ``(files done, lines of OK files)`` (the driver's tally). With
    ``on_progress`` None it only takes in the workers' progress messages, so they never
    pile up on rank 0.
    """

    def __init__(self, on_progress: Callable[[ProgressSnapshot], None] | None, *, n_total: int, board: FileBoard,
                 counts: Callable[[], tuple[int, int]], link: Any = None, every_s: float = 1.0):
        self.on_progress, self.n_total, self.board, self.counts = on_progress, n_total, board, counts
        self.link, self.every_s = link, max(0.05, float(every_s))
        self.start = time.monotonic()
        self._next = self.start + self.every_s
        self._remote: dict[int, list[RunningFile]] = {}

    def _poll(self) -> None:
        if self.link is None:
            return
        for rank, items in self.link.poll_progress():
            self._remote[rank] = [RunningFile(path, rank, done, total, elapsed)
                                  for path, done, total, elapsed in items]

    def snapshot(self) -> ProgressSnapshot:
        self._poll()
        n_done, n_lines = self.counts()
        running = self.board.running() + [f for items in self._remote.values() for f in items]
        return ProgressSnapshot(n_done=n_done, n_total=self.n_total, n_lines=n_lines,
                                elapsed_s=time.monotonic() - self.start,
                                running=sorted(running, key=lambda f: -f.elapsed_s))

    def tick(self) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.every_s
        if self.on_progress is None:
            self._poll()  # nobody watches: still take the workers' messages in (bounded memory)
        else:
            self.on_progress(self.snapshot())

    def close(self, sent: Mapping[int, int] | None = None) -> None:
        """Take in the workers' last messages: with ``sent`` (worker rank -> messages it
        sent, from :meth:`BoardRelay.close`), every one of them, waiting for any still on
        its way; none may stay unreceived at MPI_Finalize (see :class:`BoardRelay`)."""
        self._poll()
        if self.link is not None and sent:
            for rank, items in self.link.drain_progress(sent):
                self._remote[rank] = [RunningFile(path, rank, done, total, elapsed)
                                      for path, done, total, elapsed in items]
