"""Signals that arrive after a job has finished must not change its exit code.

While a job runs, :class:`~hpcacq.jobs.cancel.CancelSource` turns SIGTERM, SIGINT and
SIGUSR1 into a clean stop (exit 3) and then restores the handlers it found. A signal
arriving after that (``scancel`` as the summary is printed, ``mpiexec`` forwarding a
late SIGTERM while ranks finalize) would kill the process with the default action:
``rc -15`` or MPI's "BAD TERMINATION" although every file is stored. The command line
calls :func:`hold_late_signals` before the job: the handlers CancelSource restores are
then these, which note the first late signal and let the process exit with the job's
own code (0, 1 or 3). A second late signal has the default effect, so a process stuck
after its job can still be stopped.
"""

from __future__ import annotations

import signal
import sys
import threading

from .cancel import CANCEL_SIGNALS

__all__ = ["hold_late_signals", "late_signals_seen"]

_SEEN: list[str] = []


def _late(signum: int, frame) -> None:  # noqa: ARG001 - signal API
    name = signal.Signals(signum).name
    _SEEN.append(name)
    for other in CANCEL_SIGNALS:  # the next one stops the process
        signal.signal(other, signal.SIG_DFL if other != signal.SIGINT else signal.default_int_handler)
    try:
        print(f"hpcacq: {name} after the job finished: exiting with the job's code", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def hold_late_signals() -> None:
    """Install the late-signal handlers (main thread only; elsewhere nothing happens)."""
    if threading.current_thread() is threading.main_thread():
        for signum in CANCEL_SIGNALS:
            signal.signal(signum, _late)


def late_signals_seen() -> list[str]:
    """Names of the late signals received so far."""
    return list(_SEEN)
