"""Where the Radon velocity reaches its resolution limits: the figures of docs/QUALITY.md.

Prints five tables (synthetic truth from :mod:`hpcacq.synth.flow`; real files from
``$HPCACQ_REALDATA`` or ``../shared/realdata``):

1. fast flow on 150-px lines: trusted and ``angle_edge`` windows, their median error,
   the file warnings;
2. measured against true streak crossing (lines per crossing of the scan line);
3. the real files' headline at windows of 16, 32 and 64 lines;
4. synthetic median error by line width and window;
5. the "synthetic, 96 files" row of the flag table (trusted and flagged windows, error).

Run: ``python benchmarks/quality_limits.py`` (a few minutes on 2 cores).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hpcacq.analyses.velocity import ANGLE_EDGE, radon_velocity  # noqa: E402
from hpcacq.synth.flow import make_flow_kymograph, stall_speed, window_truth_px_per_line  # noqa: E402

DX_UM, DT_S = 0.5, 0.001


def _err(v, truth):
    return np.abs(v / truth - 1)


def _median(err, mask) -> str:
    return f"{np.nanmedian(err[mask]):.1%}" if mask.any() else "-"


def fast_flow() -> None:
    print("1. fast flow, 150-px lines: speed W | trusted (error) | angle_edge (error) | warnings")
    for speed_px, window in [(25, 16), (37.5, 16), (50, 16), (60, 16), (75, 64), (100, 16)]:
        speed = speed_px * (1 + 0.2 * np.sin(np.arange(4000) / 300.0))
        image = make_flow_kymograph(speed, 150, rng=int(speed_px * 4) + window + 150)
        result = radon_velocity(image, dx_um=DX_UM, dt_s=DT_S, window_lines=window)
        truth = window_truth_px_per_line(speed, window) * DX_UM / DT_S / 1000
        err = _err(result.columns["velocity_mm_s"], truth)
        flags = result.columns["flags"]
        trusted, edge = flags == 0, (flags & ANGLE_EDGE) != 0
        print(f"   {speed_px:5.1f} {window:3d} | {trusted.mean():.0%} ({_median(err, trusted)}) | "
              f"{edge.mean():.0%} ({_median(err, edge)})"
              f" | {'; '.join(w[:45] for w in result.warnings) or 'none'}")


def crossing() -> None:
    print("2. streak crossing: pixels, px/line, W | true lines per crossing | measured | warned")
    for n_pixels, speed_px in [(38, 10), (38, 20), (38, 22), (38, 25), (20, 11), (20, 13)]:
        speed = speed_px * (1 + 0.2 * np.sin(np.arange(4000) / 300.0))
        result = radon_velocity(make_flow_kymograph(speed, n_pixels, rng=11), dx_um=DX_UM, dt_s=DT_S,
                                window_lines=64)
        warned = any("cross the line" in w for w in result.warnings)
        print(f"   {n_pixels:3d} {speed_px:4.0f} 64 | {n_pixels / np.median(speed):.2f} | "
              f"{result.summary['median_crossing_lines']:.2f} | {warned}")


def real_windows() -> None:
    folder = Path(os.environ.get("HPCACQ_REALDATA", ROOT.parent / "shared" / "realdata"))
    if not folder.is_dir():
        print(f"3. real files: {folder} not found, skipped")
        return
    import tifffile

    from hpcacq.io.olympus import read_olympus_header

    print("3. real files: name, pixels | headline at W = 16, 32, 64 (mm/s) | 64 vs 16 | crossing | warnings at 16")
    for path in sorted((folder / "a89").glob("*.tif")):
        image = tifffile.imread(path)
        header = read_olympus_header(path.with_suffix(".txt"))
        heads = []
        for window in (16, 32, 64):
            result = radon_velocity(image, dx_um=header.dx_um, dt_s=header.dt_s(image.shape[0]), window_lines=window,
                                    threads=2)
            heads.append(result.summary["median_velocity_mm_s"])
            if window == 16:
                first = result
        print(f"   {path.stem} {image.shape[1]:3d} | {heads[0]:+.3f} {heads[1]:+.3f} {heads[2]:+.3f} | "
              f"{heads[2] / heads[0] - 1:+.1%} | {first.summary['median_crossing_lines']:.1f} | "
              f"{'; '.join(w[:60] for w in first.warnings) or 'none'}")


def by_width() -> None:
    print("4. synthetic median |error| by line width (no static background): pixels | W = 16, 32, 64, 128")
    for n_pixels, base in [(150, 1.2), (38, 1.2), (20, 0.6), (7, 0.6)]:
        cells = []
        for window in (16, 32, 64, 128):
            speed = base * (1 + 0.3 * np.sin(np.arange(3000) / 700.0))
            result = radon_velocity(make_flow_kymograph(speed, n_pixels, rng=n_pixels + window), dx_um=DX_UM,
                                    dt_s=DT_S, window_lines=window)
            truth = window_truth_px_per_line(speed, window) * DX_UM / DT_S / 1000
            trusted = result.columns["flags"] == 0
            cells.append(f"{np.median(_err(result.columns['velocity_mm_s'][trusted], truth[trusted])):.1%}")
        print(f"   {n_pixels:3d} | {' '.join(cells)}")


FLAG_CASES = {"walls": dict(walls=1.5, illumination=0.3, bleach=0.1), "spots": dict(spots=4.0, n_spots=2),
              "illumination": dict(illumination=1.2, bleach=0.3), "stall": dict(walls=1.5, illumination=0.3),
              "mild": dict(walls=0.3, spots=0.5, n_spots=1, illumination=0.4, bleach=0.1), "none": {}}


def flags_synthetic() -> None:
    """96 files: 7, 20, 38, 150 px x W = 16-128 x the static cases (and a 0.5 s stall over walls)."""
    n_windows, trusted, flagged = 0, [], {}
    for n_pixels in (7, 20, 38, 150):
        for window in (16, 32, 64, 128):
            for i, (case, kwargs) in enumerate(FLAG_CASES.items()):
                speed = (0.6 if n_pixels == 7 else 1.2) * (1 + 0.3 * np.sin(np.arange(4000) / 700.0))
                if case == "stall":
                    speed = speed * stall_speed(4000, px_per_line=1.0, stall_start=1500, stall_lines=500)
                result = radon_velocity(make_flow_kymograph(speed, n_pixels, rng=n_pixels + window + i, **kwargs),
                                        dx_um=DX_UM, dt_s=DT_S, window_lines=window)
                truth = window_truth_px_per_line(speed, window) * DX_UM / DT_S / 1000
                v, flags = result.columns["velocity_mm_s"], result.columns["flags"]
                moving = truth != 0  # stopped windows: error 0 when they read 0, else 1
                err = np.where(moving, _err(v, np.where(moving, truth, 1.0)), (v != 0).astype(float))
                n_windows += v.size
                trusted.append(err[flags == 0])
                for name, bit in result.flag_bits.items():
                    flagged.setdefault(name, []).append(err[(flags & bit) != 0])
    ok = np.concatenate(trusted)
    cells = [f"trusted {ok.size / n_windows:.1%} ({np.nanmedian(ok):.3f})"]
    for name, parts in flagged.items():
        e = np.concatenate(parts)
        cells.append(f"{name} {e.size / n_windows:.1%} ({np.nanmedian(e):.2f})" if np.isfinite(e).any()
                     else f"{name} {e.size / n_windows:.1%}")
    print("5. synthetic, 96 files: fraction of windows (median error)\n   " + " | ".join(cells))


if __name__ == "__main__":
    fast_flow()
    crossing()
    real_windows()
    by_width()
    flags_synthetic()
