"""The measuring side of ``hpcacq bench``: code that runs inside the benchmark's child processes.

``python -m hpcacq.bench.rank layout SPEC.json`` (under ``mpiexec ... -m mpi4py`` for
several ranks) runs one job through :func:`hpcacq.jobs.driver.execute_job`, the driver of
``hpcacq run``, with the real reader, analysis and :class:`~hpcacq.results.ResultsWriter`;
the only addition is a clock around the writer's calls. Rank 0 collects each file's
timings (read, analysis, total) from the FileRecords, every rank measures its peak
resident memory, and rank 0 writes the figures to ``SPEC["result"]`` as JSON.

``python -m hpcacq.bench.rank reference SPEC.json`` times the scikit-image reference
of the Radon method on a sample of windows of one file against the kernel on all windows.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any

__all__ = ["TimedWriter", "run_layout", "run_reference", "peak_rss_mib", "main"]


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (``ru_maxrss`` is KiB on Linux)."""
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value / (1024.0 * 1024.0) if sys.platform == "darwin" else value / 1024.0


class TimedWriter:
    """A ResultsWriter whose ``write_file`` and ``close`` calls are timed (seconds in ``.seconds``)."""

    def __init__(self, writer: Any):
        self.writer = writer
        self.seconds = 0.0
        self.close_s = 0.0

    def write_file(self, record: Any) -> None:
        start = time.perf_counter()
        self.writer.write_file(record)
        self.seconds += time.perf_counter() - start

    def done_fingerprints(self) -> dict:
        return self.writer.done_fingerprints()

    def close(self) -> None:
        start = time.perf_counter()
        self.writer.close()
        self.close_s = time.perf_counter() - start
        self.seconds += self.close_s


def run_layout(spec: dict) -> dict | None:
    """Run the job of ``spec["config"]`` on this rank; rank 0 returns (and writes) the figures."""
    from ..jobs.config import JobConfig
    from ..jobs.driver import execute_job
    from ..jobs.resources import launched_under_mpi
    from ..results import ResultsWriter

    values = dict(spec["config"])
    config = JobConfig(**{**values, "inputs": tuple(values["inputs"])})
    files: list[dict] = []
    timed: list[TimedWriter] = []

    def writer_factory(path, *, mode, job_attrs):
        timed.append(TimedWriter(ResultsWriter(path, mode=mode, job_attrs=job_attrs)))
        return timed[-1]

    def on_file(record):
        outcome = next((a.outcome for a in record.records if a.outcome != "OK"), "OK")
        files.append({"rank": int(record.rank), "outcome": outcome, "n_lines": int(record.n_lines),
                      **{k: float(v) for k, v in (record.timings or {}).items()}})

    mpi = launched_under_mpi()
    if mpi:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
        comm.Barrier()
    summary = execute_job(config, on_file_result=on_file, writer_factory=writer_factory, use_mpi=mpi)
    rss = peak_rss_mib()
    rss_all = comm.gather(rss, root=0) if mpi else [rss]
    if rss_all is None:  # not rank 0
        return None
    figures = {"wall_s": summary.elapsed_s, "n_ok": summary.n_ok, "n_files": summary.n_files,
               "n_lines": summary.n_lines, "write_s": timed[0].seconds if timed else 0.0,
               "close_s": timed[0].close_s if timed else 0.0, "peak_rss_mib": rss_all, "files": files,
               "output_bytes": os.path.getsize(config.output) if os.path.exists(config.output) else 0}
    with open(spec["result"], "w", encoding="utf-8") as handle:
        json.dump(figures, handle)
    return figures


def run_reference(spec: dict) -> dict:
    """Time the scikit-image reference on ``spec["windows"]`` windows of ``spec["file"]``
    against the kernel (one thread, all windows); write the figures to ``spec["result"]``."""
    import numpy as np

    from ..analyses.radon_reference import reference_radon_velocity
    from ..analyses.velocity import radon_velocity
    from ..model import AcqImage

    image = AcqImage.open(spec["file"], dx_um=spec.get("dx_um"), dt_s=spec.get("dt_s"))
    block = image.get_channel(int(spec.get("channel", 0)))
    window = int(spec.get("window_lines", 16))
    units = {"dx_um": image.dx_um, "dt_s": image.dt_s}
    radon_velocity(block[: 8 * window], window_lines=window, **units)  # load the kernels first
    start = time.perf_counter()
    # the same method as the reference: the plain search (no background pass, docs/QUALITY.md)
    ours = radon_velocity(block, window_lines=window, threads=1, background="none", **units)
    kernel_s = time.perf_counter() - start
    n_windows = len(ours.columns["theta_deg"])
    picks = np.unique(np.linspace(0, n_windows - 1, min(int(spec["windows"]), n_windows)).round().astype(int))
    start = time.perf_counter()
    ref = reference_radon_velocity(block, window_lines=window, windows=picks, **units)
    reference_s = time.perf_counter() - start
    mine, theirs = ours.columns["velocity_mm_s"][picks], ref.columns["velocity_mm_s"]
    both = np.isfinite(mine) & np.isfinite(theirs)
    agree = (both & (np.abs(mine - theirs) <= 1e-3)) | (np.isnan(mine) & np.isnan(theirs))
    figures = {
        "file": spec["file"], "n_lines": int(block.shape[0]), "n_pixels": int(block.shape[1]),
        "window_lines": window, "n_windows": int(n_windows), "windows": int(len(picks)),
        "kernel_s_per_window": kernel_s / n_windows, "reference_s_per_window": reference_s / len(picks),
        "speed_ratio": (reference_s / len(picks)) / (kernel_s / n_windows),
        "max_abs_dv_mm_s": float(np.max(np.abs(mine[both] - theirs[both]))) if both.any() else float("nan"),
        "fraction_within_1e-3": float(np.mean(agree)),
        "fraction_same_angle": float(np.mean(ours.columns["theta_deg"][picks] == ref.columns["theta_deg"])),
    }
    with open(spec["result"], "w", encoding="utf-8") as handle:
        json.dump(figures, handle)
    return figures


def main(argv: list[str] | None = None) -> int:
    """``python -m hpcacq.bench.rank {layout,reference} SPEC.json``."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in ("layout", "reference"):
        print("usage: python -m hpcacq.bench.rank {layout,reference} SPEC.json", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as handle:
        spec = json.load(handle)
    (run_layout if argv[0] == "layout" else run_reference)(spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
