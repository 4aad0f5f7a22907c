"""Run a job: one process with a thread pool, or many MPI ranks with dynamic dispatch.

:func:`run_job` picks the driver from the environment: under ``mpiexec``/``srun``
(``PMI_SIZE``, ``OMPI_COMM_WORLD_SIZE``, ``PMIX_*``) with more than one rank it imports
mpi4py and runs the MPI driver, otherwise the local one; mpi4py is never imported
without a launcher.

MPI: rank 0 is the coordinator, the only HDF5 writer, and computes too. Files are handed
out on request (a few ahead per rank to hide latency; never a static split, since file
sizes differ); workers send back picklable FileRecords. Each rank runs a thread pool
sized from the cores it really has. Cancellation seen by any rank goes to rank 0, which
tells every rank; unstarted files become CANCELLED, finished ones are written.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from ..errors import HpcacqError
from .batch import FileJob, FilePool
from .cancel import CancelSource
from .config import EXIT_USAGE, JobConfig, JobSummary, summarize
from .local_link import LocalLink
from .plan import Todo, plan_todo
from .progress import RELAY_EVERY_S, BoardRelay, FileBoard, JobProgress
from .resources import cores_per_rank, launched_under_mpi, mpi_world_rank, plan_threads
from .resume import StampedJob
from .strategies import WHOLE_IMAGE_ROI_ID

__all__ = ["run_job", "execute_job", "file_outcome", "main"]

Log = Callable[[str], None]
PREFETCH_PER_SLOT = 2  # files a worker holds beyond its running ones, when files are short
PREFETCH_BELOW_S = 1.0  # files longer than this on average are not prefetched (no file waits
#                         behind a slow one while another rank is idle; the latency is < 2 %)
CANCEL_BLOCK = 256  # unstarted files turned into CANCELLED records per step (bounded memory)


def file_outcome(record: Any) -> str:
    """The outcome of a whole FileRecord: OK, or the first analysis outcome that is not."""
    for analysis in record.records:
        if analysis.outcome != "OK":
            return analysis.outcome
    return "OK"


class _Tally:
    """Rank 0's sink: write each FileRecord, count outcomes, report progress."""

    def __init__(self, writer: Any, log: Log, on_file_result: Callable | None, progress: bool, n_total: int,
                 on_output_error: Callable[[str], None] = lambda reason: None):
        self.writer, self.log, self.on_file_result = writer, log, on_file_result
        self.progress, self.n_total = progress, n_total
        self.outcomes: Counter[str] = Counter()
        self.n_done = 0
        self.n_lines = 0
        self.output_error: OSError | None = None  # the writer failed: stop, keep what is stored
        self.on_output_error = on_output_error

    def add(self, record: Any) -> None:
        if self.output_error is None:
            try:
                record = self.writer.write_file(record) or record  # a record it cannot store comes back FAILED
            except OSError as exc:  # full disk, I/O error (OutputError): the job stops, resume continues
                self.output_error = exc
                self.log(f"output error: {exc}")
                self.on_output_error(f"cannot write the output: {exc}")
        if self.output_error is not None:  # not stored: run again by --resume
            self.outcomes["CANCELLED"] += 1
            self.n_done += 1
            return
        outcome = file_outcome(record)
        self.outcomes[outcome] += 1
        self.n_done += 1
        if outcome == "OK":
            self.n_lines += record.n_lines
        if self.on_file_result is not None:
            self.on_file_result(record)
        if self.progress or outcome not in ("OK", "CANCELLED"):
            message = next((a.message for a in record.records if a.message and a.message != "ok"), "")
            self.log(f"[{self.n_done}/{self.n_total}] {outcome} {record.file_path} (rank {record.rank})"
                     + (f": {message}" if message else ""))


class _Collector:
    """Free each finished file's reference cycles at once, cheaply.

    An ``AcqImage`` and its analysis set refer to each other, so without this a file's
    pixels live until Python's next full collection, several files later: about 30 MB
    more peak memory per rank for 30000 x 38 files. A full collection scans every object
    (~20 ms with numba loaded), so before the first file, once the kernels are loaded
    (see :func:`_make_job`), what is alive is frozen (:func:`gc.freeze`) and the
    collection after each file scans only newer objects (~1 ms). The job's end unfreezes;
    nothing is frozen if the caller froze first or disabled the collector.
    """

    def __init__(self):
        self.active = gc.isenabled()
        self.frozen = False
        if self.active and gc.get_freeze_count() == 0:
            gc.collect()
            gc.freeze()
            self.frozen = True

    def after(self, n_finished: int) -> None:
        if n_finished and self.active:
            gc.collect()

    def close(self) -> None:
        if self.frozen:
            gc.unfreeze()
            self.frozen = False


class _RankPool:
    """This rank's files: a local queue feeding a thread pool of FileJob.run."""

    def __init__(self, job: FileJob, slots: int, *, board: FileBoard | None = None,
                 ticker: Callable[[], None] | None = None):
        self.job = job
        self.queue: deque[tuple[int, str]] = deque()
        task = job.run if board is None else board.wrap(job.run)
        self.pool = FilePool(task, slots, on_error=lambda i, path, exc: job.failed(path, exc))
        self.collector = _Collector()
        self.ticker = ticker  # live progress (jobs/progress.py), called at every step

    @property
    def idle(self) -> bool:
        return not self.queue and not self.pool.busy

    def _start_queued(self) -> None:
        while self.queue and self.pool.free:
            self.pool.submit(*self.queue.popleft())

    def step(self, timeout: float = 0.0) -> list:
        """Start queued files on free slots (unless cancelled); return finished records."""
        if self.ticker is not None:
            self.ticker()
        if self.job.cancel_event.is_set():
            records = [self.job.cancelled(path) for _, path in self.queue]
            self.queue.clear()
        else:
            records = []
            self._start_queued()
        finished = [record for _, record in self.pool.collect(timeout=timeout)]
        if finished and not self.job.cancel_event.is_set():
            # Refill the slots just freed now, not at the next step: the caller is about to
            # send these records (a blocking MPI send of ~0.4 MB waits for rank 0 to receive)
            # or write them, and a slot left idle meanwhile costs ~30 ms per file.
            self._start_queued()
        self.collector.after(len(finished))
        return records + finished

    def close(self) -> None:
        self.pool.close()
        self.collector.close()


def _grant(queue: Todo, want: int, size: int) -> list[tuple[int, str]]:
    """Take up to ``want`` files, fewer near the end so every rank gets a share."""
    return queue.take(min(want, max(1, -(-len(queue) // max(1, size)))))


def _handle_workers(link: Any, queue: Todo, tally: _Tally, source: CancelSource, finished: dict[int, int]) -> bool:
    """Rank 0: take in every waiting worker message; True if there was any.

    ``finished`` gets each finished worker's rank -> the progress messages it sent.
    """
    messages = link.poll_up()
    for src, (records, want, reason, done, progress_sent) in messages:
        for record in records:
            tally.add(record)
        if reason and not source.event.is_set():
            source.cancel(f"rank {src}: {reason}")
        if want:
            grant = [] if source.event.is_set() else _grant(queue, want, link.size)
            if grant:
                link.send_down(src, "work", grant)
            else:
                link.send_down(src, "stop")
        if done:
            finished[src] = progress_sent
    return bool(messages)


def _coordinate(link: Any, queue: Todo, local: _RankPool, tally: _Tally, source: CancelSource,
                log: Log, finished: dict[int, int]) -> None:
    """Rank 0 (or the only process): hand out files, run its own share, write everything.

    Returns once every worker has finished; ``finished``: worker rank -> the progress
    messages it sent (all received by ``JobProgress.close`` before the job ends).
    """
    n_workers = len(link.workers)
    told_workers = False
    backoff = link.backoff()
    while True:
        active = _handle_workers(link, queue, tally, source, finished)
        if source.event.is_set():
            if link.workers and not told_workers:
                log(f"cancelling: {source.reason}")
                link.tell_workers("cancel", source.reason)
                told_workers = True
            local.queue.extend(queue.take(CANCEL_BLOCK))  # recorded CANCELLED by local.step
        if len(queue) and len(local.queue) < local.pool.free:
            local.queue.extend(queue.take(local.pool.free - len(local.queue)))
        records = local.step()
        for record in records:
            tally.add(record)
        if not len(queue) and local.idle and len(finished) == n_workers:
            return
        if active or records or (len(queue) and source.event.is_set()):
            backoff.reset()
        elif local.pool.busy:
            for record in local.step(timeout=backoff.next()):
                tally.add(record)
        else:
            backoff.sleep()


class _Appetite:
    """How many files a worker wants in hand: its slots, plus a prefetch when files are short."""

    def __init__(self, slots: int):
        self.slots, self._n, self._total_s = slots, 0, 0.0

    def seen(self, records: list) -> None:
        for record in records:
            self._n += 1
            self._total_s += float(record.timings.get("total_s", 0.0) or 0.0)

    @property
    def in_hand(self) -> int:
        if self._n == 0 or self._total_s / self._n >= PREFETCH_BELOW_S:
            return self.slots  # unknown or slow files: no prefetch
        return self.slots * (1 + PREFETCH_PER_SLOT)


def _serve(link: Any, local: _RankPool, source: CancelSource, relay: BoardRelay) -> JobSummary:
    """A worker rank: ask for files, run them, send records back, relay cancellation.

    Its last message is the ``finished`` one, after the relay's last progress message
    (``relay.close()``: nothing is sent after it, so rank 0 can receive everything).
    """
    appetite = _Appetite(local.pool.slots)
    outstanding = no_more = told_cancel = finished = False
    backoff = link.backoff()
    while True:
        active = False
        for kind, payload in link.poll_down():
            active = True
            if kind == "work":
                local.queue.extend(payload)
                outstanding = False
            elif kind == "stop":
                no_more, outstanding = True, False
            elif kind == "cancel":
                source.cancel(payload)
            elif kind == "summary":
                return payload
        reason = None
        if source.event.is_set() and not (told_cancel or finished):
            reason, told_cancel, no_more = source.reason or "cancelled", True, True
        records = local.step()
        appetite.seen(records)
        want_total = appetite.in_hand
        deficit = want_total - local.pool.busy - len(local.queue)
        want = deficit if (not no_more and not outstanding and (deficit * 2 >= want_total or local.idle)) else 0
        done = no_more and not outstanding and local.idle and not finished
        if records or want or reason or done:
            link.send_up(records, want, reason, done, relay.close() if done else 0)
            outstanding, finished, active = outstanding or want > 0, finished or done, True
        if active:
            backoff.reset()
        elif local.pool.busy:  # a finishing file wakes us at once; the timeout only bounds cancel latency
            records = local.step(timeout=backoff.max_s)
            appetite.seen(records)
            if records:
                link.send_up(records, 0, None, False)
                backoff.reset()
        else:
            backoff.sleep()


def _open_writer(config: JobConfig, writer_factory: Callable | None, size: int) -> Any:
    mode = "resume" if config.resume else ("overwrite" if config.overwrite else "new")
    if writer_factory is None:
        from ..results import ResultsWriter as writer_factory
    return writer_factory(config.output, mode=mode, job_attrs={**config.job_attrs(), "mpi_size": size})


def _make_job(config: JobConfig, event: threading.Event, *, cores: int, n_files: int, rank: int,
              host: str | None, job_factory: Callable | None) -> tuple[FileJob, int]:
    slots, threads = plan_threads(cores, threads_per_file=config.threads, n_files=n_files)
    # `--roi new`: the whole image is ROI 0 in every file (the library keeps acqstore's next id)
    strategy = dataclasses.replace(config.strategy(threads_per_file=threads), whole_image_roi_id=WHOLE_IMAGE_ROI_ID)
    if job_factory is None:
        from .precompile import warm_up

        warm_up(config.analysis, config.options)  # kernels loaded before the first file
    if job_factory is None:  # records carry what resume compares (a custom job stamps its own)
        job = StampedJob(FileJob(strategy, event, rank=rank, host=host))
    else:
        job = job_factory(strategy, event, rank=rank, host=host)
    return job, slots


def _run_root(config: JobConfig, link: Any, source: CancelSource, log: Log, on_file_result, job_factory,
              writer_factory, watch: tuple | None = None) -> JobSummary:
    start = time.perf_counter()
    size = link.size
    try:
        writer = _open_writer(config, writer_factory, size)
        for note in getattr(writer, "notes", None) or []:  # what resume salvaged of a damaged output
            log(f"resume: {note}")
        try:
            todo, n_resumed = plan_todo(config, writer, log)
        except BaseException:
            writer.close()
            raise
    except (HpcacqError, OSError) as exc:
        raise link.relay_error(exc)  # noqa: B904 - the same exception, told to every rank first
    link.tell_workers("start", len(todo))
    cores = cores_per_rank(ranks_on_node=link.ranks_on_node)
    job, slots = _make_job(config, source.event, cores=cores, n_files=max(1, len(todo) // size), rank=0,
                           host=link.host, job_factory=job_factory)
    log(f"{len(todo)} files on {size} rank(s), {slots} file(s) at a time x {job.strategy.threads_per_file} "
        f"thread(s) each on rank 0")
    tally = _Tally(writer, log, on_file_result, bool(config.progress), len(todo), on_output_error=source.cancel)
    board = FileBoard(0)
    on_progress, every_s = watch or (None, 1.0)
    progress = JobProgress(on_progress, n_total=len(todo), board=board, counts=lambda: (tally.n_done, tally.n_lines),
                           link=link, every_s=every_s)
    local = _RankPool(job, slots, board=board, ticker=progress.tick)
    progress_sent: dict[int, int] = {}  # finished worker rank -> the progress messages it sent
    try:
        _coordinate(link, todo, local, tally, source, log, progress_sent)
    finally:
        local.close()
        output_error = _close_writer(writer, tally.output_error)
        progress.close(progress_sent)  # every progress message of the workers: none stays unreceived
    if output_error is not None and tally.output_error is None:
        log(f"output error: {output_error}")
    for outcome, n in (getattr(writer, "dropped", None) or {}).items():  # not stored after all: rerun by resume
        tally.outcomes[outcome] -= n
        tally.outcomes["CANCELLED"] += n
    summary = summarize(tally.outcomes.elements(), n_lines=tally.n_lines, elapsed_s=time.perf_counter() - start,
                        n_resumed=n_resumed, cancelled=source.event.is_set(), cancel_reason=source.reason,
                        output_error=None if output_error is None else str(output_error))
    link.tell_workers("summary", summary)
    return summary


def _close_writer(writer: Any, error: OSError | None) -> OSError | None:
    """Close the writer (consolidate), or abandon it after a write error; the storage error, if any.

    A full disk or an I/O error leaves the output as last committed (resumable) and
    becomes the job's exit code 5, the same on every rank, never a traceback or an abort.
    """
    try:
        if error is not None and hasattr(writer, "abandon"):
            writer.abandon()
        else:
            writer.close()
    except OSError as exc:
        return error or exc
    return error


def _run_worker(config: JobConfig, link: Any, source: CancelSource, job_factory) -> JobSummary:
    kind, payload = link.wait_down()
    if kind == "error":
        from .mpi_comm import relayed

        raise relayed(payload)
    cores = cores_per_rank(ranks_on_node=link.ranks_on_node)
    job, slots = _make_job(config, source.event, cores=cores, n_files=max(1, payload // link.size),
                           rank=link.rank, host=link.host, job_factory=job_factory)
    board = FileBoard(link.rank)
    relay = BoardRelay(board, link, every_s=max(RELAY_EVERY_S, link.size / 200))  # rank 0: <= ~200 messages/s
    local = _RankPool(job, slots, board=board, ticker=relay.tick)
    try:
        return _serve(link, local, source, relay)
    finally:
        local.close()


def execute_job(config: JobConfig, *, log: Log | None = None, on_file_result: Callable | None = None,
                job_factory: Callable | None = None, writer_factory: Callable | None = None,
                use_mpi: bool | None = None, on_progress: Callable | None = None,
                progress_every_s: float = 1.0) -> JobSummary:
    """:func:`run_job` with its parts replaceable (for benchmarks and tests).

    Parameters
    ----------
    job_factory : callable, optional
        ``job_factory(strategy, cancel_event, rank=, host=)`` returning an object with
        :class:`~hpcacq.jobs.batch.FileJob`'s ``run``/``cancelled``/``failed`` (e.g. a
        no-op job that measures the dispatcher alone).
    writer_factory : callable, optional
        ``writer_factory(path, mode=, job_attrs=)`` with ``write_file``,
        ``done_fingerprints`` and ``close`` (default :class:`hpcacq.results.ResultsWriter`).
    use_mpi : bool or None
        None detects the launcher from the environment.
    on_progress, progress_every_s :
        See :func:`run_job`.
    """
    log = log or (lambda line: None)
    if use_mpi is None:
        use_mpi = launched_under_mpi()
    watch = None if on_progress is None else (on_progress, progress_every_s)
    with CancelSource(stop_file=config.stop_file, time_limit_s=config.time_limit_s) as source:
        if not use_mpi:
            return _run_root(config, LocalLink(), source, log, on_file_result, job_factory, writer_factory, watch)
        from . import mpi_comm

        link = mpi_comm.Link()
        mpi_comm.install_excepthook(link)
        with mpi_comm.abort_on_error(link):
            if link.rank == 0:
                return _run_root(config, link, source, log, on_file_result, job_factory, writer_factory, watch)
            return _run_worker(config, link, source, job_factory)


def run_job(config: JobConfig, *, log: Log | None = None, on_file_result: Callable | None = None,
            on_progress: Callable | None = None, progress_every_s: float = 1.0) -> JobSummary:
    """Run every input file of ``config`` and write the HDF5 results.

    Parameters
    ----------
    config : JobConfig
        The validated job.
    log : callable, optional
        Called with one line of text per event worth telling (start, failures, progress
        when ``config.progress``, cancellation); only rank 0 logs.
    on_file_result : callable, optional
        Called on rank 0 with each :class:`hpcacq.results.FileRecord` once written.
    on_progress : callable, optional
        Called on rank 0 every ``progress_every_s`` seconds with a
        :class:`hpcacq.jobs.progress.ProgressSnapshot` (files done/total, rates, time
        left, the files in progress on every rank with their own progress).
    progress_every_s : float
        Seconds between two ``on_progress`` calls.

    Returns
    -------
    JobSummary
        The same on every rank; ``exit_code`` 0 (all OK), 1 (some FAILED/SKIPPED), 3
        (cancelled by a signal, the stop file or the time limit; resume finishes the job) or
        5 (the output could not be written, e.g. a full disk: ``output_error`` says why; what
        was stored is kept and resume continues).

    Raises
    ------
    ParameterError, InputError
        A problem the user can fix, raised on every rank (e.g. the output exists
        without ``resume``/``overwrite``).
    """
    return execute_job(config, log=log, on_file_result=on_file_result, on_progress=on_progress,
                       progress_every_s=progress_every_s)


def main(argv: list[str] | None = None) -> int:
    """``python -m hpcacq.jobs.driver JOB.json``: run a JobConfig given as JSON (tests, scripts)."""
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0], encoding="utf-8") as handle:
        values = json.load(handle)
    try:
        config = JobConfig(**{**values, "inputs": tuple(values["inputs"])})
        summary = run_job(config, log=lambda line: print(line, flush=True))
    except HpcacqError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    if mpi_world_rank() == 0:
        for line in summary.lines():
            print(line, flush=True)
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main())
