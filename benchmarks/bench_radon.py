"""Radon velocity kernel speed on real data, against the scikit-image reference.

Usage (from the repository root)::

    python benchmarks/bench_radon.py                  # full report (runs a second process too)
    python benchmarks/bench_radon.py --subset 150     # reference windows to time (evenly spaced)
    python benchmarks/bench_radon.py --second-process # only: start-up cost of a fresh process

The image is ``Capillary1_0001`` ROI 1 (30000 lines x 38 pixels, W=16, 7497 windows),
read directly with tifffile. Timings are single-thread and noisy on a shared machine:
compare the ratios printed in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DX_UM, DT_S, WINDOW = 0.284, 35.099 / 30000, 16


def _tif() -> Path:
    for cand in (os.environ.get("HPCACQ_REALDATA"), ROOT.parent / "shared" / "realdata", "/work/shared/realdata"):
        if cand and (Path(cand) / "capillary1" / "Capillary1_0001.tif").is_file():
            return Path(cand) / "capillary1" / "Capillary1_0001.tif"
    sys.exit("real data not found: set HPCACQ_REALDATA to the realdata folder")


def _load() -> np.ndarray:
    import tifffile

    return np.ascontiguousarray(tifffile.imread(_tif()), dtype=np.float64)


def startup() -> dict:
    """Import + first call on a small block (compile or cache load), in this process."""
    t0 = time.perf_counter()
    from hpcacq.kernels import radon as kr

    t1 = time.perf_counter()
    kr.radon_windows(np.random.default_rng(0).normal(size=(64, 5)), window_lines=WINDOW)
    t2 = time.perf_counter()
    return {"import_s": t1 - t0, "first_call_s": t2 - t1}


def kernel_time(image: np.ndarray, repeats: int = 3) -> tuple[float, float, np.ndarray]:
    """Table build time for this geometry, best-of-``repeats`` time for all windows, angles."""
    from hpcacq.kernels import radon as kr

    t0 = time.perf_counter()
    kr.angle_table(WINDOW, image.shape[1])
    table_s = time.perf_counter() - t0
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        theta, _, _ = kr.radon_windows(image, window_lines=WINDOW)
        best = min(best, time.perf_counter() - t0)
    return table_s, best, theta


def reference_time(image: np.ndarray, n: int, n_windows: int):
    from hpcacq.analyses.radon_reference import reference_radon_velocity

    picks = np.linspace(0, n_windows - 1, n).round().astype(int)
    t0 = time.perf_counter()
    ref = reference_radon_velocity(image, dx_um=DX_UM, dt_s=DT_S, window_lines=WINDOW, windows=picks)
    return (time.perf_counter() - t0) / n, picks, ref


def second_process() -> dict:
    out = subprocess.run([sys.executable, __file__, "--second-process", "--json"], check=True,
                         capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subset", type=int, default=150, help="reference windows to time (default 150)")
    ap.add_argument("--second-process", action="store_true", help="only measure a fresh process's start-up")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    first = startup()
    if args.second_process:
        print(json.dumps(first) if args.json else
              f"start-up: import {first['import_s']:.3f} s, first call {first['first_call_s']:.3f} s")
        return
    import numba

    print(f"numba {numba.__version__}, cache dir {os.environ.get('NUMBA_CACHE_DIR', '__pycache__')}, "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"this process: import {first['import_s']:.3f} s, first call (compile or cache load) "
          f"{first['first_call_s']:.3f} s")
    fresh = second_process()
    print(f"second process: import {fresh['import_s']:.3f} s, first call {fresh['first_call_s']:.3f} s"
          f" (cache load, no recompilation)")
    image = _load()
    n_windows = image.shape[0] // (WINDOW // 4) - 3
    table_s, kernel_s, theta = kernel_time(image)
    print(f"image {image.shape[0]} x {image.shape[1]}, W={WINDOW}, {n_windows} windows")
    print(f"angle table (once per geometry): {table_s:.3f} s")
    print(f"kernel, 1 thread, all windows: {kernel_s:.3f} s = {n_windows / kernel_s:,.0f} windows/s "
          f"= {image.shape[0] / kernel_s:,.0f} lines/s")
    per_ref, picks, ref = reference_time(image, args.subset, n_windows)
    print(f"skimage reference: {per_ref * 1e3:.2f} ms/window on {len(picks)} windows "
          f"-> {per_ref * n_windows:.1f} s for all")
    print(f"speed ratio (reference / kernel, per window): {per_ref * n_windows / kernel_s:.0f}x")
    ours_v = DX_UM / DT_S * np.tan(np.deg2rad(theta[picks])) / 1000
    ref_v = ref.columns["velocity_mm_s"]
    same_theta = np.mean(theta[picks] == ref.columns["theta_deg"])
    both = np.isfinite(ref_v)
    close = np.mean(np.abs(ours_v[both] - ref_v[both]) <= 1e-3)
    print(f"agreement on the subset: same angle {same_theta:.2%}, velocity within 1e-3 mm/s {close:.2%}")


if __name__ == "__main__":
    main()
