"""Fill the Numba cache with every kernel signature that a job uses (``hpcacq compile``).

Kernels are ``@njit(cache=True)``: the first process that calls one compiles it (seconds)
and writes the machine code to ``NUMBA_CACHE_DIR`` (default: ``__pycache__`` beside the
kernel source); later processes load it (milliseconds). On a cluster, thousands of ranks
starting at once with an empty cache would each compile. :func:`precompile` runs every
registered analysis, with every option that changes which kernels run (velocity score,
diameter method / binning / polarity), on small synthetic blocks of the dtypes readers
return, so the cache holds everything a run needs; run it once per machine type.

Numba keys a cache entry by signature and by the CPU (name and features) it was compiled
for, so nodes of another CPU type add their own entries to the same files; the kernel
source path is part of the cache folder name, so every node must see the package at the
same path (a shared installation). ``NUMBA_CACHE_DIR`` must be set before numba is
imported: :func:`precompile` refuses a ``cache_dir`` that differs from the one numba
already uses in this process.

The cache itself (its folder, the compiled kernels, what a process compiled or loaded) is
:mod:`hpcacq.kernels.cache`; this module holds what needs the analyses registry: the
warm-up workload of each analysis, and running it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from ..analyses.options import Units
from ..errors import ParameterError
from ..kernels.cache import (
    KernelEntry,
    cache_folder,
    cache_stats,
    count_index_files,
    current_cache_dir,
    kernel_dispatchers,
    kernel_entries,
)

__all__ = ["PrecompileReport", "precompile", "warm_up", "analysis_modules", "workload"]

#: dtypes of the blocks given to the analyses (what the readers return for microscope files).
DTYPES = ("uint8", "uint16", "float32", "float64")


@dataclass
class PrecompileReport:
    """What :func:`precompile` did.

    ``seconds`` is the wall time of running the workload (compiling or loading);
    ``import_s`` the time to import the kernels. ``compiled``/``loaded`` count
    signatures; ``from_cache`` is True when nothing had to be compiled.
    """

    cache_dir: str
    seconds: float
    import_s: float
    kernels: list[KernelEntry] = field(default_factory=list)
    index_files: int = 0

    @property
    def compiled(self) -> int:
        return sum(k.compiled for k in self.kernels)

    @property
    def loaded(self) -> int:
        return sum(k.loaded for k in self.kernels)

    @property
    def n_signatures(self) -> int:
        return sum(len(k.signatures) for k in self.kernels)

    @property
    def from_cache(self) -> bool:
        return self.compiled == 0 and self.loaded > 0

    def as_dict(self) -> dict:
        return {"cache_dir": self.cache_dir, "seconds": self.seconds, "import_s": self.import_s,
                "n_kernels": len(self.kernels), "n_signatures": self.n_signatures, "compiled": self.compiled,
                "loaded": self.loaded, "from_cache": self.from_cache, "index_files": self.index_files,
                "kernels": [vars(k) for k in self.kernels]}


def workload(analyses: tuple[str, ...] | None = None) -> tuple[tuple[str, dict], ...]:
    """(analysis name, detection parameters) run by :func:`precompile`: each registered analysis' ``WARMUP``.

    Together they select every kernel signature a run uses. Units are stand-ins (they do
    not change the signatures). Imports the analyses (Numba).
    """
    from ..analyses.registry import ANALYSES

    return tuple((name, dict(options)) for name in (analyses or tuple(ANALYSES))
                 for options in ANALYSES[name].warmup)


def analysis_modules() -> tuple[str, ...]:
    """The registered analysis modules: their own kernels (beside ``hpcacq.kernels``) are warmed up too."""
    from ..analyses.registry import REGISTRY

    return tuple(entry.module for entry in REGISTRY.values())


#: The units of the synthetic blocks of :func:`_blocks` (0.3 um per pixel, 1 ms per line).
WARMUP_UNITS = Units(dx_um=0.3, dt_s=0.001)


def _blocks():
    """Small synthetic blocks (``"streaks"`` of flow; a bright ``"vessel"``) in every dtype of :data:`DTYPES`."""
    import numpy as np

    rng = np.random.default_rng(0)
    lines = np.arange(96)[:, None]
    velocity = 1000 + 800 * np.sin(2 * np.pi * (np.arange(38)[None, :] - 0.7 * lines) / 9.0)
    velocity = velocity + rng.normal(0, 20, velocity.shape)
    x = np.arange(48)[None, :]
    vessel = 200 + 1500 * ((x > 14) & (x < 32)) + rng.normal(0, 20, (64, 48))
    return {dtype: {"streaks": np.clip(velocity, 0, 255 if dtype == "uint8" else 65535).astype(dtype),
                    "vessel": np.clip(vessel, 0, 255 if dtype == "uint8" else 65535).astype(dtype)}
            for dtype in DTYPES}


def precompile(cache_dir: str | os.PathLike | None = None, *,
               analyses: tuple[str, ...] | None = None) -> PrecompileReport:
    """Compile (or load from the cache) every kernel signature of :func:`workload`.

    Parameters
    ----------
    cache_dir : str or path-like, optional
        Expected numba cache folder. numba reads ``NUMBA_CACHE_DIR`` when it is imported,
        so this must already be the folder numba uses (the ``hpcacq compile`` command
        sets the variable before importing numba).
    analyses : tuple of str, keyword-only, optional
        Only the kernels of these analyses (registry names); default all.

    Returns
    -------
    PrecompileReport

    Raises
    ------
    ParameterError
        ``cache_dir`` differs from the folder numba uses in this process.
    """
    start = time.perf_counter()
    from ..analyses.registry import ANALYSIS_NAMES, build_options, get_spec

    names = set(ANALYSIS_NAMES)
    wanted = names if analyses is None else set(analyses)
    if not wanted or wanted - names:
        raise ParameterError(f"analyses={sorted(wanted)!r}: choose among {sorted(names)}")
    kernels = kernel_dispatchers(analysis_modules())
    import_s = time.perf_counter() - start
    used = current_cache_dir()
    if cache_dir is not None and os.path.abspath(os.fspath(cache_dir)) != os.path.abspath(used or "."):
        raise ParameterError(f"numba already caches into {used or '__pycache__'!r} in this process; set "
                             f"NUMBA_CACHE_DIR={os.fspath(cache_dir)} before importing numba (or use hpcacq compile)")
    before = cache_stats(kernels)
    start = time.perf_counter()
    for blocks in _blocks().values():
        for name, options in workload(tuple(n for n in ANALYSIS_NAMES if n in wanted)):
            spec = get_spec(name)
            spec.run(blocks[spec.entry.warmup_block], build_options(name, options), WARMUP_UNITS, row_offset=0,
                     threads=1, cancel=None, progress=None)
    seconds = time.perf_counter() - start
    entries = kernel_entries(kernels, before, cache_stats(kernels))
    cache = cache_folder()
    return PrecompileReport(cache_dir=cache, seconds=seconds, import_s=import_s, kernels=entries,
                            index_files=count_index_files(used or os.path.dirname(os.path.dirname(cache))))


def warm_up(analysis: str, options: Any = None) -> bool:
    """Load (or compile) the kernels of one analysis by running it on a small synthetic block.

    The driver calls this on every rank before its first file, so the kernels' loading
    cost and the objects it creates are not part of any file. Returns False (and does
    nothing else) when the block is not valid for these parameters (the first real file
    then loads the kernels), or when the analysis declares no warm-up workload
    (``AnalysisSpec.warmup``: it has no kernels to load).
    """
    import numpy as np

    from ..analyses.registry import build_options, get_spec

    try:
        spec = get_spec(analysis)
        if not spec.warmup:
            return False
        params = build_options(analysis, options)  # the job's options object is used as it is
        window = int(getattr(params, "window_lines", 16))
        block = _blocks()["float64"][spec.entry.warmup_block if spec.entry else "streaks"]
        if block.shape[0] < 4 * window:
            block = np.tile(block, (-(-4 * window // block.shape[0]), 1))
        spec.run(block, params, WARMUP_UNITS, row_offset=0, threads=1, cancel=None, progress=None)
    except Exception:  # noqa: BLE001 - only a warm-up: the real files report real problems
        return False
    return True
