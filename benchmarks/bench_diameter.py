"""Vessel diameter kernels: lines per second, against a naive per-line Python loop.

Usage (from the repository root)::

    python benchmarks/bench_diameter.py              # full report
    python benchmarks/bench_diameter.py --startup    # only: import + first call in this process

The image is synthetic, 30000 lines x 38 pixels (the size of Capillary1_0001), a vessel
of 14 px with a slow diameter change, PSF sigma 1.5 px, noise, rounded to integers as
12-bit data. Kernel timings are best-of-5, single thread unless stated; the machine is
shared, so compare the ratios printed in one run. Compile vs cache-load time is measured
in two fresh processes sharing an empty temporary NUMBA_CACHE_DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
N_LINES, N_PIXELS = 30000, 38


def make_image() -> np.ndarray:
    from hpcacq.synth.diameter import make_vessel_kymograph, vasomotion

    diam = vasomotion(N_LINES, mean_px=14.0, amplitude_px=2.0, period_lines=3000)
    img = make_vessel_kymograph(N_LINES, N_PIXELS, diameter_px=diam, psf_sigma_px=1.5,
                                noise_sd=40.0, background=200.0, amplitude=1500.0, rng=0)
    return np.round(img)


def startup() -> dict:
    """Import + first call of both kernels on a small block (compile or cache load)."""
    small = make_image()[:50]
    t0 = time.perf_counter()
    from hpcacq.kernels import diameter as kd

    t1 = time.perf_counter()
    kd.halfmax_edges(small)
    t2 = time.perf_counter()
    kd.fit_edges(small)
    t3 = time.perf_counter()
    return {"import_s": t1 - t0, "halfmax_first_call_s": t2 - t1, "fit_first_call_s": t3 - t2}


def best_rate(func, n_lines: int, repeats: int = 20) -> float:
    """Lines per second of ``func()`` (best of ``repeats``)."""
    func()
    best = min(_timed(func) for _ in range(repeats))
    return n_lines / best


def _timed(func) -> float:
    t0 = time.perf_counter()
    func()
    return time.perf_counter() - t0


def naive_loop(image: np.ndarray) -> np.ndarray:
    """What a per-line Python loop does (kymflow style, made sub-pixel): mean of 5 lines,
    np.percentile, first/last pixel at or above the threshold, linear interpolation."""
    n = image.shape[0]
    out = np.full(n, np.nan)
    for i in range(n):
        prof = image[max(i - 2, 0):i + 3].mean(axis=0)
        base, peak = np.percentile(prof, [10, 100])
        thr = base + 0.5 * (peak - base)
        above = np.nonzero(prof >= thr)[0]
        first, last = above[0], above[-1]
        if 0 < first and last < len(prof) - 1:
            left = first - 1 + (thr - prof[first - 1]) / (prof[first] - prof[first - 1])
            right = last + (prof[last] - thr) / (prof[last] - prof[last + 1])
            out[i] = right - left
    return out


def startup_in_fresh_processes() -> list[dict]:
    """Run ``--startup`` twice in new processes with one empty cache dir: compile, then load."""
    runs = []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for _ in range(2):
            out = subprocess.run([sys.executable, __file__, "--startup"], env=env, check=True,
                                 capture_output=True, text=True).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
    return runs


def report() -> None:
    from hpcacq.analyses.diameter import vessel_diameter
    from hpcacq.kernels import diameter as kd

    compile_run, cached_run = startup_in_fresh_processes()
    print(f"first call, empty cache (compile): halfmax {compile_run['halfmax_first_call_s']:.2f} s, "
          f"fit {compile_run['fit_first_call_s']:.2f} s")
    print(f"first call, cache filled (load):   halfmax {cached_run['halfmax_first_call_s']:.3f} s, "
          f"fit {cached_run['fit_first_call_s']:.3f} s")
    img = make_image()
    print(f"image {img.shape[0]} x {img.shape[1]} (lines x pixels), single thread unless stated:")
    rates = {
        "halfmax kernel (mean binning)": best_rate(lambda: kd.halfmax_edges(img), N_LINES),
        "halfmax kernel (median binning)": best_rate(lambda: kd.halfmax_edges(img, binning="median"), N_LINES),
        "fit kernel (mean binning)": best_rate(lambda: kd.fit_edges(img), N_LINES, repeats=3),
        "vessel_diameter halfmax, threads=1": best_rate(lambda: vessel_diameter(img, dx_um=0.3, dt_s=1e-3), N_LINES),
        "vessel_diameter fit, threads=1": best_rate(
            lambda: vessel_diameter(img, dx_um=0.3, dt_s=1e-3, method="fit"), N_LINES, repeats=3),
        "vessel_diameter fit, threads=2": best_rate(
            lambda: vessel_diameter(img, dx_um=0.3, dt_s=1e-3, method="fit", threads=2), N_LINES, repeats=3),
    }
    n_naive = 3000
    rates["naive Python loop (np.percentile)"] = best_rate(lambda: naive_loop(img[:n_naive]), n_naive, repeats=2)
    for name, rate in rates.items():
        print(f"  {name:38s} {rate:12,.0f} lines/s")
    naive = rates["naive Python loop (np.percentile)"]
    print(f"  speed-up halfmax kernel / naive loop: {rates['halfmax kernel (mean binning)'] / naive:,.0f}x; "
          f"fit kernel / naive loop: {rates['fit kernel (mean binning)'] / naive:,.1f}x")
    left, right, _ = kd.halfmax_edges(img, stop=500)
    diff = np.nanmax(np.abs(naive_loop(img[:502])[:500] - (right - left)))
    print(f"  naive loop vs kernel diameters, first 500 lines: max |difference| = {diff:.2e} px")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--startup", action="store_true", help="only time import + first call (JSON)")
    args = parser.parse_args()
    if args.startup:
        print(json.dumps(startup()))
    else:
        report()


if __name__ == "__main__":
    main()
