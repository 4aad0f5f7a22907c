"""A stand-in analysis with a known answer, to test the batch engine and the drivers alone.

Per line it returns the mean of the ROI times ``scale`` (and the line's time), so every
stored number can be checked exactly; ``delay_s`` / ``delay_from_file`` make it slow, to
test cancellation and scheduling. :func:`install_fakes` registers it under both real
names (``radon_velocity`` and ``diameter``, one exclusive group); the ``fakes`` fixture of
``tests/conftest.py`` installs and removes it around a test. Scripts launched by the tests
(MPI ranks) call :func:`install_fakes` themselves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpcacq.analyses import registry
from hpcacq.analyses.base import AnalysisResult
from hpcacq.analyses.options import stored_params
from hpcacq.errors import AnalysisCancelled, ParameterError

__all__ = ["FAKE_CALLS", "FakeOptions", "fake_run", "install_fakes", "remove_fakes", "write_images"]

FAKE_CALLS: list[dict] = []  # one entry per fake analysis run: threads, file shape


@dataclass(frozen=True)
class FakeOptions:
    """Options of the stand-in analysis."""

    scale: float = 1.0
    delay_s: float = 0.0
    delay_from_file: bool = False  # add image[0, 0] milliseconds to delay_s

    def __post_init__(self):
        if not self.scale > 0:
            raise ParameterError(f"scale must be > 0, got {self.scale}")


def fake_run(image2d, params, units, *, row_offset=0, threads=1, cancel=None, progress=None):
    """Known answer: per line, mean of the ROI x scale; sleeps delay_s in 10 ms chunks."""
    FAKE_CALLS.append({"threads": threads, "shape": image2d.shape})
    delay_s = params.delay_s + (float(image2d[0, 0]) / 1000.0 if params.delay_from_file else 0.0)
    deadline = time.perf_counter() + delay_s
    while time.perf_counter() < deadline:
        if cancel is not None and cancel():
            raise AnalysisCancelled("fake analysis cancelled")
        time.sleep(0.01)
    if cancel is not None and cancel():
        raise AnalysisCancelled("fake analysis cancelled")
    n = image2d.shape[0]
    return AnalysisResult(
        analysis="fake", params=stored_params(params, units),
        columns={"time_s": (row_offset + np.arange(n)) * units.dt_s,
                 "value": image2d.mean(axis=1) * params.scale},
        units={"time_s": "s", "value": "1"},
    )


def install_fakes() -> None:
    """Register the stand-in as both 'radon_velocity' and 'diameter' (same exclusive group).

    Its spec declares no warm-up workload (no kernels), so the driver's warm-up does not run it.
    """
    for name in ("radon_velocity", "diameter"):
        registry.ANALYSES._cache[name] = registry.AnalysisSpec(name, FakeOptions, fake_run)


def remove_fakes() -> None:
    """Forget the stand-in: the next lookup imports the real analyses again."""
    for name in ("radon_velocity", "diameter"):
        registry.ANALYSES._cache.pop(name, None)


def write_images(folder: Path, n: int, *, lines=200, pixels=16, seed=0) -> list[str]:
    """``n`` random .npy line scans (lines x pixels, uint16) with different sizes."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f"scan_{i:03d}.npy"
        np.save(path, rng.integers(0, 4000, size=(lines + 8 * i, pixels), dtype=np.uint16))
        paths.append(str(path))
    return paths
