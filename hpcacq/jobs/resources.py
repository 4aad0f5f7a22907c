"""How this process was launched and how many cores it really has.

Nothing here imports mpi4py: the launcher is recognised from environment variables alone,
so a plain ``hpcacq run`` (or an ``sbatch`` script that calls it without ``srun``) never
initialises MPI.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["mpi_world_size", "mpi_world_rank", "launched_under_mpi", "cores_per_rank", "plan_threads", "Backoff"]

import time  # noqa: E402

POLL_MIN_S = 0.0005
POLL_MAX_S = 0.02

# (variable holding the world size, variable that must exist alongside to trust it)
_SIZE_VARIABLES = (
    "PMI_SIZE",  # MPICH Hydra mpiexec, srun --mpi=pmi2, Intel MPI
    "OMPI_COMM_WORLD_SIZE",  # Open MPI mpirun
    "PMIX_SIZE",  # some PMIx launchers
    "MPI_LOCALNRANKS",  # MPICH Hydra (per node; a lower bound)
)


def mpi_world_size(environ: Mapping[str, str] | None = None) -> int:
    """Number of MPI ranks the launcher started, from the environment (1 = no MPI).

    Recognises MPICH Hydra / ``srun --mpi=pmi2`` (``PMI_SIZE``), Open MPI
    (``OMPI_COMM_WORLD_SIZE``) and PMIx (``PMIX_SIZE``; ``PMIX_RANK`` alone counts as a
    launch of unknown size, reported as 2 so the MPI driver asks MPI itself). ``SLURM_*``
    variables are ignored on purpose: they exist inside an ``sbatch`` script that runs
    the program without ``srun``, where there is no MPI.
    """
    env = os.environ if environ is None else environ
    for name in _SIZE_VARIABLES:
        value = env.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    if env.get("PMIX_RANK", "").strip().isdigit():
        return 2
    return 1


def mpi_world_rank(environ: Mapping[str, str] | None = None) -> int:
    """This process's MPI rank from the launcher's environment (0 without MPI)."""
    env = os.environ if environ is None else environ
    for name in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        value = env.get(name, "").strip()
        if value.isdigit():
            return int(value)
    return 0


def launched_under_mpi(environ: Mapping[str, str] | None = None) -> bool:
    """True when an MPI launcher started this process with more than one rank."""
    return mpi_world_size(environ) > 1


def _affinity_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def cores_per_rank(*, ranks_on_node: int = 1, environ: Mapping[str, str] | None = None) -> int:
    """Cores this process may use, shared fairly with the other ranks on its node.

    Parameters
    ----------
    ranks_on_node : int, keyword-only
        MPI ranks running on this node (1 without MPI).
    environ : mapping, keyword-only, optional
        Environment to read (default ``os.environ``).

    Returns
    -------
    int
        ``SLURM_CPUS_PER_TASK`` when SLURM set it (already per rank); otherwise the CPUs of
        ``os.sched_getaffinity``, divided by ``ranks_on_node`` when the launcher left every
        rank the whole node (oversubscribed). Always at least 1.
    """
    env = os.environ if environ is None else environ
    slurm = env.get("SLURM_CPUS_PER_TASK", "").strip()
    if slurm.isdigit() and int(slurm) > 0:
        return int(slurm)
    affinity = _affinity_count()
    node_cpus = os.cpu_count() or affinity
    if ranks_on_node > 1 and affinity >= node_cpus:
        # Every rank sees the whole node: split it.
        return max(1, affinity // ranks_on_node)
    return max(1, affinity)


def plan_threads(cores: int, *, threads_per_file: int | None, n_files: int) -> tuple[int, int]:
    """Split ``cores`` between files analysed at once and threads inside each file.

    Parameters
    ----------
    cores : int
        Cores of this rank (see :func:`cores_per_rank`).
    threads_per_file : int or None, keyword-only
        Threads inside one analysis, as asked by the user; None chooses: 1 thread per
        file when there are at least as many files as cores (file-level parallelism has
        no overhead), else the cores divided among the files.
    n_files : int, keyword-only
        Files this rank is expected to analyse.

    Returns
    -------
    (files_in_parallel, threads_per_file) : (int, int)
        Their product never exceeds ``max(cores, threads_per_file)``.
    """
    cores = max(1, int(cores))
    if threads_per_file is None:
        threads_per_file = 1 if n_files >= cores else max(1, cores // max(1, n_files))
    files_in_parallel = max(1, cores // threads_per_file)
    return files_in_parallel, int(threads_per_file)


class Backoff:
    """Waits that double from ``min_s`` to ``max_s`` while idle, reset on activity.

    Waiting ranks sleep instead of spinning in a blocking MPI receive (which burns a
    core in MPICH). ``max_s`` comes from the argument, else ``$HPCACQ_POLL_MAX_S``, else
    0.02 s: the worst added latency per message.
    """

    def __init__(self, min_s: float = POLL_MIN_S, max_s: float | None = None):
        if max_s is None:
            max_s = float(os.environ.get("HPCACQ_POLL_MAX_S", POLL_MAX_S))
        self.min_s, self.max_s = min_s, max(min_s, max_s)
        self._next = min_s

    def reset(self) -> None:
        self._next = self.min_s

    def next(self) -> float:
        """The next interval to wait (and grow the one after)."""
        value = self._next
        self._next = min(self.max_s, self._next * 2)
        return value

    def sleep(self) -> None:
        time.sleep(self.next())
