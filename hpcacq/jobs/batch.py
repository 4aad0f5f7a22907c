"""The batch API acqstore users know: a thread pool over files, one outcome per file.

Example::

    from hpcacq import AcqAnalysisBatch, RadonVelocityBatchStrategy, RoiBatchMode
    strategy = RadonVelocityBatchStrategy(channel=0, roi_mode=RoiBatchMode.ADD_NEW_ROI, roi_id=None,
                                          detection_params={"window_lines": 16}, threads_per_file=2)
    results = AcqAnalysisBatch(paths, strategy, max_parallel_files=2).run()
    for r in results:
        print(r.file_path, r.outcome, r.message)

Any object with ``process_file(acq_image, *, cancel_event) -> BatchFileResult`` is a
strategy (:class:`BatchAnalysisStrategy`, duck-typed). An exception escaping it becomes
that file's FAILED result with ``repr(exc)`` as its message (analysis name and channel
from the strategy's ``analysis_name``/``channel`` when it has them, else ``"unknown"``
and -1), never the end of the batch.

:func:`to_file_record` turns a :class:`BatchFileResult` into the picklable
:class:`hpcacq.results.FileRecord` the HDF5 writer stores (and MPI ranks send to rank 0).
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import ParameterError
from .strategies import (
    AnalysisBatchKind,
    BatchAnalysisStrategy,
    BatchFileOutcome,
    BatchFileResult,
    BatchStrategy,
    DiameterBatchStrategy,
    RadonVelocityBatchStrategy,
    RoiBatchMode,
    strategy_for,
)
from .strategies import (
    _path_of as _path,
)

__all__ = [
    "BatchFileOutcome",
    "BatchFileResult",
    "BatchAnalysisStrategy",
    "RoiBatchMode",
    "AnalysisBatchKind",
    "BatchStrategy",
    "RadonVelocityBatchStrategy",
    "DiameterBatchStrategy",
    "strategy_for",
    "FilePool",
    "AcqAnalysisBatch",
    "to_file_record",
    "FileJob",
]

FileTask = Callable[[int, Any], Any]  # (index, file) -> result object


class FilePool:
    """Run ``task(index, file)`` for files on a pool of ``slots`` threads.

    The caller submits files as slots free up (so a cancel stops the queue at once)
    and collects finished results with :meth:`collect`. A task that raises yields
    ``on_error(index, file, exc)`` instead, so no file is ever lost.
    """

    def __init__(self, task: FileTask, slots: int, *, on_error: Callable[[int, Any, BaseException], Any]):
        self._task = task
        self._on_error = on_error
        self.slots = max(1, int(slots))
        self._executor = cf.ThreadPoolExecutor(self.slots, thread_name_prefix="hpcacq-file")
        self._running: dict[cf.Future, tuple[int, Any]] = {}

    @property
    def busy(self) -> int:
        """Files submitted and not yet collected."""
        return len(self._running)

    @property
    def free(self) -> int:
        return max(0, self.slots - len(self._running))

    def submit(self, index: int, file: Any) -> None:
        self._running[self._executor.submit(self._task, index, file)] = (index, file)

    def collect(self, timeout: float | None = 0.0) -> list[tuple[int, Any]]:
        """Finished ``(index, result)`` pairs, waiting up to ``timeout`` s for the first."""
        if not self._running:
            return []
        done, _ = cf.wait(self._running, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        finished = []
        for future in done:
            index, file = self._running.pop(future)
            try:
                finished.append((index, future.result()))
            except Exception as exc:  # noqa: BLE001 - a worker exception becomes an outcome
                finished.append((index, self._on_error(index, file, exc)))
        return sorted(finished, key=lambda pair: pair[0])

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def _clamped(max_parallel_files: Any) -> int:
    try:
        return max(1, int(max_parallel_files))
    except (TypeError, ValueError):
        raise ParameterError(f"max_parallel_files={max_parallel_files!r} must be an integer "
                             "(values below 1 count as 1)") from None


class AcqAnalysisBatch:
    """Analyse many files with one strategy, several files at once.

    Parameters
    ----------
    files : sequence of str, path-like, AcqImage or acqstore-like image
        The inputs, in the order results are returned.
    strategy : BatchAnalysisStrategy
        What to run on each file: :class:`RadonVelocityBatchStrategy`,
        :class:`DiameterBatchStrategy`, or any object with ``process_file(acq_image, *,
        cancel_event)``.
    max_parallel_files : int
        Files analysed at the same time (threads of the file pool); anything ``int()``
        takes, values below 1 count as 1. The strategy's threads run inside each file.

    Examples
    --------
    Two images (in memory here; usually file paths) with streaks moving 1 and 2 pixels per
    line, at 0.5 um per pixel and 1 ms per line: 0.5 and 1 mm/s.

    >>> import numpy as np
    >>> from hpcacq import AcqImage, RadonVelocityBatchStrategy
    >>> lines, x = np.mgrid[0:64, 0:32]
    >>> images = [AcqImage(1000 + 500 * np.cos(2 * np.pi * (x - speed * lines) / 10), path=f"scan_{speed}.npy")
    ...           for speed in (1, 2)]
    >>> strategy = RadonVelocityBatchStrategy(dx_um=0.5, dt_s=0.001)
    >>> for result in AcqAnalysisBatch(images, strategy, max_parallel_files=2).run():  # in input order
    ...     velocity = result.details.result.summary["median_velocity_mm_s"]
    ...     print(result.file_path, result.outcome.name, round(float(velocity), 2))
    scan_1.npy OK 0.5
    scan_2.npy OK 1.0
    """

    def __init__(self, files: Iterable[Any], strategy: BatchAnalysisStrategy, max_parallel_files: int = 4):
        if not callable(getattr(strategy, "process_file", None)):
            raise ParameterError(
                f"strategy must have a process_file(acq_image, *, cancel_event) method (e.g. a "
                f"RadonVelocityBatchStrategy or DiameterBatchStrategy), got {type(strategy).__name__}")
        self.files: list[Any] = list(files)
        self.strategy = strategy
        self.max_parallel_files = _clamped(max_parallel_files)

    def run(self, cancel_event: threading.Event | None = None,
            on_file_result: Callable[[BatchFileResult], None] | None = None, *,
            keep_results: bool = True) -> list[BatchFileResult]:
        """Run every file; return one :class:`BatchFileResult` per file, in input order.

        Parameters
        ----------
        cancel_event : threading.Event, optional
            When set, files not started become CANCELLED and running analyses stop at
            their next chunk (CANCELLED too); finished files keep their results.
        on_file_result : callable, optional
            Called with each result as its file completes (in completion order), from
            the thread that called :meth:`run`, so it may write to a file without locks.
        keep_results : bool, keyword-only
            False drops each result table (``details.result``) after the callback (long
            batches whose callback stores the tables elsewhere).
        """
        event = cancel_event or threading.Event()
        results: list[BatchFileResult | None] = [None] * len(self.files)
        pending = deque(enumerate(self.files))
        pool = FilePool(lambda i, f: self.strategy.process_file(f, cancel_event=event), self.max_parallel_files,
                        on_error=lambda i, f, exc: self._worker_failed(f, exc))
        try:
            while pending or pool.busy:
                while pending and pool.free and not event.is_set():
                    pool.submit(*pending.popleft())
                finished = pool.collect(timeout=0.05)
                if event.is_set():
                    finished += [(i, self._cancelled(f)) for i, f in pending]
                    pending.clear()
                for index, result in finished:
                    results[index] = result
                    if on_file_result is not None:
                        on_file_result(result)
                    if not keep_results and hasattr(result, "details"):
                        result.details.result = None
        finally:
            pool.close()
        return results  # type: ignore[return-value]

    def _identity(self) -> tuple[str, int]:
        name = getattr(self.strategy, "analysis_name", None)
        channel = getattr(self.strategy, "channel", None)
        return (name if isinstance(name, str) else "unknown",
                channel if isinstance(channel, int) and not isinstance(channel, bool) else -1)

    def _cancelled(self, file: Any) -> BatchFileResult:
        cancelled = getattr(self.strategy, "cancelled", None)  # hpcacq's strategies say why
        if callable(cancelled):
            return cancelled(_path(file))
        return BatchFileResult(_path(file), *self._identity(), None, BatchFileOutcome.CANCELLED, "cancelled")

    def _worker_failed(self, file: Any, exc: BaseException) -> BatchFileResult:
        return BatchFileResult(_path(file), *self._identity(), None, BatchFileOutcome.FAILED, repr(exc))


_HOST = socket.gethostname()


def to_file_record(result: BatchFileResult, *, rank: int = 0, host: str | None = None,
                   fingerprint: dict | None = None):
    """The :class:`hpcacq.results.FileRecord` of one file's :class:`BatchFileResult`.

    The outcome is stored by its member name (``"OK"``, ``"SKIPPED_MISSING_ROI"``, ...), as
    the HDF5 layout has always done. ``fingerprint`` defaults to :func:`hpcacq.results.file_fingerprint` of the file
    (size and modification time; empty for a file that cannot be read).
    """
    from ..results import AnalysisRecord, FileRecord, file_fingerprint

    if fingerprint is None:
        try:
            fingerprint = file_fingerprint(result.file_path)
        except OSError:
            fingerprint = {}
    record = AnalysisRecord(
        analysis=result.analysis_name, channel=result.channel, roi_id=result.roi_id,
        roi_bounds=result.roi_bounds, outcome=result.outcome.name, message=result.message,
        params=dict(result.params), result=result.result, elapsed_s=result.elapsed_s,
    )
    return FileRecord(
        file_path=os.fspath(result.file_path), fingerprint=fingerprint, records=[record], rank=rank,
        host=host or _HOST, timings=dict(result.timings), n_lines=result.n_lines,
    )


class FileJob:
    """What one rank does with one file of a job: run the strategy, make the FileRecord.

    Parameters
    ----------
    strategy : BatchStrategy
    cancel_event : threading.Event
        Polled by the analyses (between chunks) and checked before a file starts.
    rank : int, keyword-only
        MPI rank (0 without MPI), stored in each record.
    host : str, keyword-only, optional
    """

    def __init__(self, strategy: BatchStrategy, cancel_event: threading.Event, *, rank: int = 0,
                 host: str | None = None):
        self.strategy = strategy
        self.cancel_event = cancel_event
        self.rank = rank
        self.host = host or _HOST

    def run(self, index: int, path: str, progress=None):
        """Analyse file ``path`` (number ``index`` of the job) into a FileRecord.

        ``progress(done, total)``, if given, is called between the analysis' chunks.
        """
        result = self.strategy.run_file(path, cancel_event=self.cancel_event, progress=progress)
        return to_file_record(result, rank=self.rank, host=self.host)

    def cancelled(self, path: str):
        """The FileRecord of a file the job never started."""
        return to_file_record(self.strategy.cancelled(path), rank=self.rank, host=self.host)

    def failed(self, path: str, exc: BaseException):
        """The FileRecord of a file whose worker raised (a bug, not a problem of the file)."""
        result = self.strategy._result(path, BatchFileOutcome.FAILED, f"{type(exc).__name__}: {path}: {exc}")
        return to_file_record(result, rank=self.rank, host=self.host)
