"""Line cross-correlation velocity: lines per second, Numba kernel against the NumPy formulation.

Usage (from the repository root)::

    python benchmarks/bench_line_velocity.py                    # 7, 12, 38, 150 px, 6000 lines
    python benchmarks/bench_line_velocity.py --pixels 38 --lines 30000 --speed 3

The images are synthetic (``hpcacq.synth.flow.make_flow_kymograph``: cells at a constant
``--speed`` px per line, noise; the same seed for every width). For each width the same
image runs through ``line_velocity`` (default options: 32-line windows, one thread) twice:
with ``narrow_velocity._lag_correlation`` (the kernel of ``kernels/line_correlation.py``)
and with ``_lag_correlation_numpy`` (the NumPy formulation it replaced). Also printed: one
``_lag_correlation`` call at lag 1 (all shifts), and the largest difference of the speeds.
Timings are best-of-``--repeat`` after a warm-up call; the machine is shared, so compare
the ratios printed in one run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def best_seconds(func, repeat: int) -> float:
    func()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def measure(n_pixels: int, n_lines: int, speed: float, repeat: int) -> dict:
    import hpcacq.analyses.narrow_velocity as narrow
    from hpcacq.analyses.line_velocity import line_velocity
    from hpcacq.kernels.windows import window_count
    from hpcacq.synth.flow import make_flow_kymograph

    image = make_flow_kymograph(np.full(n_lines, speed), n_pixels, rng=1)
    clean = narrow.subtract_running_mean(image, lines=4096)
    shift = narrow.shift_range_px(n_pixels, None, 3)
    n_windows = window_count(n_lines, 32)
    kernel = narrow._lag_correlation
    row = {"pixels": n_pixels, "lines": n_lines}
    speeds = {}
    for name, func in (("kernel", kernel), ("numpy", narrow._lag_correlation_numpy)):
        narrow._lag_correlation = func  # what line_velocity calls, through lag_estimate
        try:
            row[f"{name}_lag1"] = n_lines / best_seconds(lambda f=func: f(clean, 32, 1, shift, n_windows), repeat)
            row[f"{name}_run"] = n_lines / best_seconds(
                lambda n=name: speeds.__setitem__(n, line_velocity(image, dx_um=0.5, dt_s=0.001).columns["px_per_line"]),
                repeat)
        finally:
            narrow._lag_correlation = kernel
    row["max_diff"] = float(np.nanmax(np.abs(speeds["kernel"] - speeds["numpy"])))
    row["same_nan"] = bool(np.array_equal(np.isnan(speeds["kernel"]), np.isnan(speeds["numpy"])))
    row["median_px_per_line"] = float(np.nanmedian(speeds["kernel"]))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixels", type=int, nargs="+", default=[7, 12, 38, 150], help="line widths (px)")
    parser.add_argument("--lines", type=int, default=6000, help="lines per image")
    parser.add_argument("--speed", type=float, default=1.0, help="cell speed, px per line")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per measurement (best kept)")
    args = parser.parse_args()
    print(f"line_velocity, {args.lines} lines, cells at {args.speed} px/line, W = 32, one thread; lines/s")
    print(f"{'pixels':>6} {'numpy run':>11} {'kernel run':>11} {'ratio':>6}   {'numpy lag 1':>11} "
          f"{'kernel lag 1':>12} {'ratio':>6}   {'max |dv| px/line':>16} same NaN  median v")
    for n_pixels in args.pixels:
        r = measure(n_pixels, args.lines, args.speed, args.repeat)
        print(f"{n_pixels:6d} {r['numpy_run']:11,.0f} {r['kernel_run']:11,.0f} {r['kernel_run'] / r['numpy_run']:6.1f}"
              f"   {r['numpy_lag1']:11,.0f} {r['kernel_lag1']:12,.0f} {r['kernel_lag1'] / r['numpy_lag1']:6.1f}"
              f"   {r['max_diff']:16.1e} {r['same_nan']!s:8} {r['median_px_per_line']:8.3f}", flush=True)


if __name__ == "__main__":
    main()
