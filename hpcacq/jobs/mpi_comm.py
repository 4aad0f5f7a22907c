"""All MPI messaging of hpcacq (imported only when an MPI launcher started the process).

Rank 0 coordinates and writes; every rank computes. Messages are small pickled tuples:

- worker -> rank 0 (tag ``TAG_UP``): ``(records, want, cancel_reason, finished,
  progress_sent)``: finished :class:`~hpcacq.results.FileRecord` objects, how many more
  files the worker wants, why it cancelled (None if it did not), whether it has nothing
  left to do, and (with ``finished``) how many ``TAG_PROGRESS`` messages it sent in all.
- rank 0 -> worker (tag ``TAG_DOWN``): ``("work", [(index, path), ...])``,
  ``("stop", None)`` (no more files), ``("cancel", reason)``, ``("start", info)``,
  ``("error", exception)`` (setup failed on rank 0) and ``("summary", JobSummary)``.
- worker -> rank 0 (tag ``TAG_PROGRESS``): ``[(path, done, total, elapsed_s), ...]``, the
  worker's running files (:mod:`hpcacq.jobs.progress`), about once a second while it works,
  never after its ``finished`` message.

Every message sent is received before MPI_Finalize: rank 0 ends only after every
worker's ``finished`` message and then takes in the ``progress_sent`` progress messages
of each (:meth:`Link.drain_progress`); a worker ends at ``("summary", ...)``, the last
message rank 0 sends it. With a message left unreceived MPICH's MPI_Finalize fails
("unmatched message(s)"), mpi4py ignores the error at exit, the process exits without
finalizing, and ``mpiexec`` kills every other rank ("BAD TERMINATION ... signal 9").

A blocking ``recv`` spins a core at 100 % in MPICH, so waiting ranks poll ``Iprobe``
with short sleeps that grow while nothing happens (:class:`~hpcacq.jobs.resources.Backoff`;
the longest wait comes from the ``poll_max_s`` option, else ``$HPCACQ_POLL_MAX_S``, else
0.02 s).
"""

from __future__ import annotations

import socket
import sys
import time
import traceback
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from mpi4py import MPI

from .resources import Backoff

__all__ = ["TAG_UP", "TAG_DOWN", "TAG_PROGRESS", "Link", "worker_banner", "install_excepthook", "abort_on_error",
           "relayed"]

TAG_UP = 71
TAG_DOWN = 72
TAG_PROGRESS = 73
ABORT_GRACE_S = 0.3


class Link:
    """This rank's view of the job: rank, size, host, and the two message directions."""

    def __init__(self, comm: Any = None, *, poll_max_s: float | None = None):
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.host = socket.gethostname()
        self.poll_max_s = poll_max_s
        node = self.comm.Split_type(MPI.COMM_TYPE_SHARED)
        self.ranks_on_node = node.Get_size()
        node.Free()
        self._status = MPI.Status()
        self._held: list[tuple[str, Any]] = []
        self._progress_received: Counter[int] = Counter()  # worker rank -> TAG_PROGRESS messages taken in

    @property
    def workers(self) -> range:
        """Ranks other than the coordinator."""
        return range(1, self.size)

    def backoff(self) -> Backoff:
        return Backoff(max_s=self.poll_max_s)

    def _poll(self, tag: int) -> Iterator[tuple[int, Any]]:
        status = self._status
        while self.comm.iprobe(source=MPI.ANY_SOURCE, tag=tag, status=status):
            source = status.Get_source()
            yield source, self.comm.recv(source=source, tag=tag)

    def poll_up(self) -> list[tuple[int, tuple]]:
        """Messages from workers waiting now (rank 0); never blocks."""
        return list(self._poll(TAG_UP))

    def poll_down(self) -> list[tuple[str, Any]]:
        """Messages from rank 0 waiting now, in order (workers); never blocks."""
        messages = self._held + [message for _, message in self._poll(TAG_DOWN)]
        self._held = []
        return messages

    def send_up(self, records: list, want: int, cancel_reason: str | None, finished: bool,
                progress_sent: int = 0) -> None:
        self.comm.send((records, want, cancel_reason, finished, progress_sent), dest=0, tag=TAG_UP)

    def send_progress(self, running: list) -> None:
        """Tell rank 0 this worker's running files ``[(path, done, total, elapsed_s), ...]``."""
        self.comm.send(running, dest=0, tag=TAG_PROGRESS)

    def poll_progress(self) -> list[tuple[int, list]]:
        """Workers' progress messages waiting now, as ``(rank, running files)`` (rank 0)."""
        messages = list(self._poll(TAG_PROGRESS))
        self._progress_received.update(rank for rank, _ in messages)
        return messages

    def drain_progress(self, sent: Mapping[int, int]) -> list[tuple[int, list]]:
        """Rank 0 at the end: the progress messages not taken in yet of the workers in
        ``sent`` (rank -> messages it sent), waiting for those still on their way.

        The workers sent them all before their ``finished`` message, so this returns
        at once; polled with sleeps like every wait here.
        """
        messages: list[tuple[int, list]] = []
        backoff = self.backoff()
        while any(self._progress_received[rank] < n for rank, n in sent.items()):
            arrived = self.poll_progress()
            messages += arrived
            if arrived:
                backoff.reset()
            else:
                backoff.sleep()
        return messages

    def send_down(self, dest: int, kind: str, payload: Any = None) -> None:
        self.comm.send((kind, payload), dest=dest, tag=TAG_DOWN)

    def tell_workers(self, kind: str, payload: Any = None) -> None:
        for dest in self.workers:
            self.send_down(dest, kind, payload)

    def relay_error(self, exc: BaseException) -> BaseException:
        """Send rank 0's setup error to every worker (each raises it too); ``exc``, marked :func:`relayed`."""
        self.tell_workers("error", exc)
        return relayed(exc)

    def wait_down(self) -> tuple[str, Any]:
        """The next message from rank 0, polling with sleeps (no spinning core)."""
        backoff = self.backoff()
        while True:
            messages = self.poll_down()
            if messages:
                self._held = messages[1:]
                return messages[0]
            backoff.sleep()

    def abort(self, code: int = 1) -> None:
        self.comm.Abort(code)


def worker_banner(rank: int, size: int, host: str) -> str:
    """First line of a rank's traceback, as mpi4py.futures prints it."""
    return f"### Worker {rank} of {size} on {host}"


def _report(link: Link, exc_type, exc, tb) -> None:
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    sys.stderr.write(f"{worker_banner(link.rank, link.size, link.host)}\n{text}")
    sys.stderr.flush()
    time.sleep(ABORT_GRACE_S)  # let the launcher forward the traceback before Abort kills everyone


def install_excepthook(link: Link) -> None:
    """Make an uncaught exception on this rank abort the whole job instead of hanging it.

    Needed when the program was started as plain ``hpcacq run`` under ``mpiexec``/``srun``;
    ``python -m mpi4py`` does the same by itself. The traceback is printed after a
    ``### Worker {rank} of {size} on {host}`` line, then ``COMM_WORLD.Abort(1)``.
    """
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        if issubclass(exc_type, (KeyboardInterrupt, SystemExit)) or getattr(exc, "_hpcacq_relayed", False):
            previous(exc_type, exc, tb)
            return
        _report(link, exc_type, exc, tb)
        link.abort(1)

    sys.excepthook = hook


class abort_on_error:  # noqa: N801 - used as a context manager, reads like a statement
    """Context manager: any exception escaping the block prints the banner and aborts.

    Wraps each rank's driver loop, so one failing rank stops every rank even when the
    caller (e.g. the CLI) would catch the exception and exit normally, leaving the
    other ranks waiting for messages forever. Exceptions marked with :func:`relayed`
    (a setup error rank 0 already sent to every rank, which all raise) pass through.
    """

    def __init__(self, link: Link):
        self.link = link

    def __enter__(self) -> abort_on_error:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None or issubclass(exc_type, SystemExit) or getattr(exc, "_hpcacq_relayed", False):
            return False
        _report(self.link, exc_type, exc, tb)
        self.link.abort(1)
        return False  # pragma: no cover - Abort does not return


def relayed(exc: BaseException) -> BaseException:
    """Mark ``exc`` as known to every rank, so :class:`abort_on_error` lets it propagate."""
    exc._hpcacq_relayed = True  # type: ignore[attr-defined]
    return exc
