"""Every way of stopping a job sets one :class:`threading.Event`.

Sources: the signals SIGTERM (``scancel``, ``kill``), SIGINT (Ctrl-C) and SIGUSR1
(``scancel --signal=USR1``, SLURM's ``--signal`` warning before the time limit), a stop
file that appears on disk, and a wall-clock time limit. The drivers pass ``event.is_set``
to the analyses as their cancel callback (polled between chunks) and, under MPI, relay
the event to every rank through rank 0.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["CANCEL_SIGNALS", "CancelSource"]

CANCEL_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)


class CancelSource:
    """Turn signals, a stop file and a time limit into one event.

    Use as a context manager; signal handlers are installed on entry (only in the main
    thread, where Python allows it) and the previous handlers restored on exit::

        with CancelSource(stop_file="STOP", time_limit_s=3600) as source:
            run_files(cancel=source.event.is_set)
            if source.event.is_set():
                print("stopped:", source.reason)

    Parameters
    ----------
    event : threading.Event, optional
        Event to set (a new one by default).
    stop_file : str or path-like, optional, keyword-only
        Cancel when this file exists (checked every ``poll_s``).
    time_limit_s : float, optional, keyword-only
        Cancel this many seconds after entry.
    signals : bool, keyword-only
        Install handlers for SIGTERM, SIGINT and SIGUSR1 (default True).
    poll_s : float, keyword-only
        How often the watcher thread checks the stop file and the clock.
    """

    def __init__(self, event: threading.Event | None = None, *, stop_file: str | os.PathLike | None = None,
                 time_limit_s: float | None = None, signals: bool = True, poll_s: float = 0.1):
        self.event = threading.Event() if event is None else event
        self.stop_file = None if stop_file is None else Path(stop_file)
        self.time_limit_s = time_limit_s
        self.signals = signals
        self.poll_s = poll_s
        self.reason: str | None = None
        self._previous: dict[int, object] = {}
        self._watcher: threading.Thread | None = None
        self._closing = threading.Event()
        self._deadline: float | None = None

    def cancel(self, reason: str) -> None:
        """Set the event, remembering the first reason given."""
        if self.reason is None:
            self.reason = reason
        self.event.set()

    def _on_signal(self, signum: int, frame) -> None:  # noqa: ARG002 - signal API
        self.cancel(f"signal {signal.Signals(signum).name}")

    def check(self) -> bool:
        """Check the stop file and the time limit now; True when cancelled."""
        if not self.event.is_set():
            if self._deadline is not None and time.monotonic() >= self._deadline:
                self.cancel(f"time limit of {self.time_limit_s:g} s reached")
            elif self.stop_file is not None and self.stop_file.exists():
                self.cancel(f"stop file {self.stop_file} found")
        return self.event.is_set()

    def _watch(self) -> None:
        while not self._closing.wait(self.poll_s):
            if self.check():
                return

    def __enter__(self) -> CancelSource:
        if self.time_limit_s is not None:
            self._deadline = time.monotonic() + float(self.time_limit_s)
        if self.signals and threading.current_thread() is threading.main_thread():
            for signum in CANCEL_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._on_signal)
        if self.stop_file is not None or self._deadline is not None:
            self.check()
            self._watcher = threading.Thread(target=self._watch, name="hpcacq-cancel-watch", daemon=True)
            self._watcher.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._closing.set()
        if self._watcher is not None:
            self._watcher.join()
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    @property
    def is_set(self) -> Callable[[], bool]:
        """The zero-argument cancel callback for analyses (``event.is_set``)."""
        return self.event.is_set
