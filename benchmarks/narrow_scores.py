"""The Radon scores on narrow and wide lines: the tables of docs/QUALITY.md, "Scores on narrow lines".

Prints two tables:

1. synthetic lines (7 and 12 px cut from a 27-px scan, the same cells as the published
   table; 38 and 150 px as generated), constant speed: signed error of the
   median velocity over trusted windows, per score and window;
2. the real A89 files (``$HPCACQ_REALDATA`` or ``../shared/realdata``): headline per score
   at W = 16 and 64 against kymflow's median, and ``lag_ratio``.

Run: ``python benchmarks/narrow_scores.py`` (a few minutes on 2 cores).
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hpcacq.analyses.velocity import radon_velocity  # noqa: E402
from hpcacq.synth.flow import make_flow_kymograph  # noqa: E402

DX_UM, DT_S = 0.5, 0.001
WINDOWS = (16, 64, 128)
SCORES = ("variance", "balanced", "path_normalized")  # the columns of docs/QUALITY.md


def _line(n_pixels: int, speed: float) -> np.ndarray:
    if n_pixels >= 27:
        return make_flow_kymograph(np.full(4000, speed), n_pixels, rng=21)
    first = (27 - n_pixels) // 2
    return np.ascontiguousarray(make_flow_kymograph(np.full(4000, speed), 27, rng=21)[:, first:first + n_pixels])


def synthetic() -> None:
    print("1. synthetic: px, px/line | signed error of the median over trusted windows, "
          f"W = {' / '.join(map(str, WINDOWS))}, per score: {', '.join(SCORES)}")
    for n_pixels, speeds in [(7, (0.3, 0.5, 1.0, 2.0)), (12, (0.3, 1.0)), (38, (0.3,)), (150, (0.5,))]:
        for speed in speeds:
            image = _line(n_pixels, speed)
            cells = []
            for score in SCORES:
                errors = []
                for window in WINDOWS:
                    result = radon_velocity(image, dx_um=DX_UM, dt_s=DT_S, window_lines=window, score=score)
                    v = result.columns["velocity_mm_s"][result.columns["flags"] == 0] * 1000 * DT_S / DX_UM
                    errors.append(f"{np.median(v) / speed - 1:+.1%}")
                cells.append(" / ".join(errors))
            print(f"   {n_pixels:3d} {speed:4.1f} | " + " | ".join(cells))


def _kymflow_median(path: Path) -> float:
    with open(path, newline="", encoding="utf-8") as fh:
        v = np.array([float(r["velocity"]) if r["velocity"] else np.nan for r in csv.DictReader(fh)])
    return float(np.median(v[np.isfinite(v) & (np.abs(v) < 1e6) & (v != 0)]))


def real() -> None:
    folder = Path(os.environ.get("HPCACQ_REALDATA", ROOT.parent / "shared" / "realdata")) / "a89"
    if not folder.is_dir():
        print(f"2. real files: {folder} not found, skipped")
        return
    import tifffile

    from hpcacq.io.olympus import read_olympus_header

    print(f"2. real files: name, px | per score ({', '.join(SCORES)}): headline vs kymflow at W = 16 / 64 "
          "(lag_ratio at 16 / 64 on lines <= 12 px)")
    for path in sorted(folder.glob("*.tif")):
        image = tifffile.imread(path)
        header = read_olympus_header(path.with_suffix(".txt"))
        kymflow = _kymflow_median(folder / "reference" / f"{path.stem}.csv")
        cells = []
        for score in SCORES:
            heads, lags = [], []
            for window in (16, 64):
                result = radon_velocity(image, dx_um=header.dx_um, dt_s=header.dt_s(image.shape[0]),
                                        window_lines=window, score=score, threads=2)
                heads.append(f"{result.summary['median_velocity_mm_s'] / kymflow - 1:+.1%}")
                lags.append(f"{result.summary.get('lag_ratio', np.nan):+.1%}")
            lag = f" (lag {' / '.join(lags)})" if image.shape[1] <= 12 else ""
            cells.append(" / ".join(heads) + lag)
        print(f"   {path.stem} {image.shape[1]:3d} | " + " | ".join(cells))


if __name__ == "__main__":
    synthetic()
    real()
