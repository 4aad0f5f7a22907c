"""What every analysis shares at run time: chunks on a thread pool, cancel, progress; unit checks.

An analysis cuts its block into chunks (windows or lines) small enough that a cancel
request or a progress report waits at most a fraction of a second, and runs them on
``threads`` threads (the kernels release the GIL). Chunks are independent and their
results are put back in order, so the answer never depends on ``threads``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any

from ..errors import AnalysisCancelled, MissingUnitsError

__all__ = ["run_chunks", "chunk_bounds", "require_unit"]


def chunk_bounds(total: int, chunk: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` cutting ``range(total)`` into pieces of at most ``chunk``."""
    return [(start, min(start + chunk, total)) for start in range(0, total, chunk)]


def run_chunks(work: Callable[[int, int], Any], bounds: Sequence[tuple[int, int]], *, threads: int,
               cancel: Callable[[], bool] | None, progress: Callable[[int, int], None] | None,
               what: str, unit: str) -> list[Any]:
    """Run ``work(start, stop)`` for every chunk of ``bounds``; the results in chunk order.

    Parameters
    ----------
    work : callable
        ``work(start, stop)`` computes one chunk (thread-safe; no shared writes).
    bounds : sequence of (int, int)
        The chunks, e.g. from :func:`chunk_bounds`.
    threads : int, keyword-only
        Threads; 1 runs the chunks in order in this thread.
    cancel : callable or None, keyword-only
        Polled before the first chunk and after each one; True stops the run.
    progress : callable or None, keyword-only
        ``progress(done, total)`` in ``unit`` at the same moments.
    what, unit : str, keyword-only
        The analysis and what the chunks count, for the cancel message
        (the registered name and ``"windows"`` or ``"lines"``).

    Raises
    ------
    AnalysisCancelled
        ``cancel()`` returned True: "<what> cancelled after <done> of <total> <unit>".
    """
    total = sum(stop - start for start, stop in bounds)
    parts: dict[int, Any] = {}
    stopped = threading.Event()

    def task(i: int):
        return i, (None if stopped.is_set() else work(*bounds[i]))

    def poll() -> None:
        done = sum(bounds[j][1] - bounds[j][0] for j in parts)
        if progress is not None:
            progress(done, total)
        if cancel is not None and cancel():
            stopped.set()
            raise AnalysisCancelled(f"{what} cancelled after {done} of {total} {unit}")

    poll()
    if threads <= 1 or len(bounds) <= 1:
        for i in range(len(bounds)):
            parts[i] = task(i)[1]
            poll()
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            pending = {pool.submit(task, i) for i in range(len(bounds))}
            try:
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        i, part = future.result()
                        parts[i] = part
                    poll()
            finally:
                stopped.set()
                for future in pending:
                    future.cancel()
    return [parts[i] for i in range(len(bounds))]


def require_unit(name: str, value: Any, hint: str = "") -> None:
    """Raise :class:`~hpcacq.errors.MissingUnitsError` if unit ``name`` (``dx_um``, ``dt_s``) is None.

    Every analysis reports a missing unit with this one message, naming the Python
    keyword and the command-line option that give it.
    """
    if value is None:
        flag = "--" + name.replace("_", "-")
        raise MissingUnitsError(f"{name} is unknown: pass {name}= (Python) or {flag} (CLI)"
                                + (f"; {hint}" if hint else ""))
