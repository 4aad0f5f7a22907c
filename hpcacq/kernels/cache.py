"""The Numba cache of the kernels: where it is, which compiled functions it holds, what was loaded.

Kernels are ``@njit(cache=True)`` (:mod:`._jit`): the first process that calls one compiles
it and writes the machine code to ``NUMBA_CACHE_DIR`` (default: ``__pycache__`` beside the
kernel source); later processes load it. A dispatcher counts, per signature, the cache
misses (compiled in this process) and hits (loaded from the cache); comparing the counts
before and after a workload tells what that workload compiled and what it loaded. What
workload fills the cache is the analyses' business (``hpcacq.jobs.precompile``).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["KernelEntry", "current_cache_dir", "cache_folder", "kernel_dispatchers", "cache_stats",
           "kernel_entries", "count_index_files"]


@dataclass
class KernelEntry:
    """One compiled kernel: ``module.function``, its signatures and what this process did."""

    name: str
    signatures: list[str]
    compiled: int  # signatures compiled in this process (cache misses)
    loaded: int  # signatures loaded from the cache (cache hits)


def current_cache_dir() -> str:
    """The folder numba caches into in this process ('' = ``__pycache__`` beside the sources)."""
    import numba

    return str(numba.config.CACHE_DIR or "")


def cache_folder() -> str:
    """Where this process's kernel cache files are: ``NUMBA_CACHE_DIR``, or ``__pycache__`` of the kernels."""
    return current_cache_dir() or os.path.join(os.path.dirname(__file__), "__pycache__")


def kernel_dispatchers(extra_modules: Iterable[str] = ()) -> dict[str, object]:
    """``"module.function"`` -> numba dispatcher of every ``hpcacq.kernels`` module and of ``extra_modules``.

    A dispatcher is listed under the module that defines it, not under those that import it.
    """
    from numba.core.registry import CPUDispatcher

    package = __name__.rsplit(".", 1)[0]
    modules = [f"{package}.{info.name}" for info in pkgutil.iter_modules(importlib.import_module(package).__path__)
               if not info.name.startswith("_")]
    found = {}
    for module_name in [*modules, *extra_modules]:
        module = importlib.import_module(module_name)
        short = module_name.rsplit(".", 1)[1]
        for attr, value in vars(module).items():
            if isinstance(value, CPUDispatcher) and getattr(value, "__module__", "") == module.__name__:
                found[f"{short}.{attr}"] = value
    return dict(sorted(found.items()))


def cache_stats(dispatchers: dict[str, object]) -> dict[str, tuple[int, int]]:
    """``"module.function"`` -> (signatures compiled, signatures loaded from cache) in this process."""
    out = {}
    for name, dispatcher in dispatchers.items():
        stats = dispatcher.stats  # type: ignore[attr-defined]
        out[name] = (sum(stats.cache_misses.values()), sum(stats.cache_hits.values()))
    return out


def kernel_entries(dispatchers: dict[str, object], before: dict[str, tuple[int, int]],
                   after: dict[str, tuple[int, int]]) -> list[KernelEntry]:
    """The kernels with a signature, and what was compiled and loaded between two :func:`cache_stats`."""
    entries = []
    for name, dispatcher in dispatchers.items():
        signatures = [", ".join(str(t) for t in sig) for sig in dispatcher.signatures]  # type: ignore[attr-defined]
        if signatures:
            entries.append(KernelEntry(name, signatures, after[name][0] - before[name][0],
                                       after[name][1] - before[name][1]))
    return entries


def count_index_files(cache_dir: str) -> int:
    """Number of numba index files (``.nbi``: one per cached function) below ``cache_dir``."""
    if not cache_dir or not os.path.isdir(cache_dir):
        return 0
    return sum(name.endswith(".nbi") for _, _, names in os.walk(cache_dir) for name in names)
