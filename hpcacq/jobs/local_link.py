"""The job's link when it runs in one process: :class:`~hpcacq.jobs.mpi_comm.Link` with no other ranks.

The driver's rank-0 code talks to the other ranks only through its link; with this one
there are none (no messages arrive, messages to workers go nowhere), so the local and the
MPI paths run the same code. Imports nothing of MPI.
"""

from __future__ import annotations

from typing import Any

from .resources import Backoff

__all__ = ["LocalLink", "LOCAL_POLL_S"]

LOCAL_POLL_S = 0.05  # idle wait of the only process between looks at its own pool, s


class LocalLink:
    """Rank 0 of a one-rank job: ``rank`` 0, ``size`` 1, one rank on the node, ``host`` None.

    ``host`` None leaves each record's host to the job (as without MPI before).
    """

    rank = 0
    size = 1
    ranks_on_node = 1
    host = None

    @property
    def workers(self) -> range:
        """Ranks other than the coordinator: none."""
        return range(1, 1)

    def backoff(self) -> Backoff:
        """The idle wait of the only process: a steady :data:`LOCAL_POLL_S`."""
        return Backoff(min_s=LOCAL_POLL_S, max_s=LOCAL_POLL_S)

    def poll_up(self) -> list[tuple[int, tuple]]:
        """No worker messages, ever."""
        return []

    def poll_progress(self) -> list[tuple[int, list]]:
        """No workers' progress, ever."""
        return []

    def drain_progress(self, sent: Any) -> list[tuple[int, list]]:
        """No workers' progress to wait for."""
        return []

    def tell_workers(self, kind: str, payload: Any = None) -> None:
        """Nobody to tell."""

    def relay_error(self, exc: BaseException) -> BaseException:
        """A setup error of rank 0: nobody else to tell; raised as it is."""
        return exc
