"""Where the shared real data lives: $HPCACQ_REALDATA, ../shared/realdata beside the
checkout, or /work/shared/realdata (a fresh clone elsewhere, as CI makes, finds it there)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
HUGE_MM_S = 1e5  # kymflow prints about +-5e6 mm/s where the best angle is 90 degrees
A89_STEMS = [f"20250722_A89_000{i}" for i in range(2, 7)]


def find_realdata() -> Path | None:
    """The realdata folder (holding ``capillary1/``), or None when it is nowhere."""
    candidates = [
        os.environ.get("HPCACQ_REALDATA"),
        ROOT.parent / "shared" / "realdata",
        Path("/work/shared/realdata"),
    ]
    for cand in candidates:
        if cand and (Path(cand) / "capillary1").is_dir():
            return Path(cand).resolve()
    return None


def kymflow_table(path: Path, roi_id: int | None = None) -> dict[str, np.ndarray]:
    """Numeric columns of a kymflow CSV (optionally the rows of one ROI)."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if roi_id is not None:
        rows = [r for r in rows if int(r["roi_id"]) == roi_id]
    # an empty velocity (older a89 layout) marks an undefined window, like the huge values
    out = {name: np.array([float(r[name]) if r[name] else np.nan for r in rows]) for name in ("time", "velocity")}
    # the older a89 layout gives the physical steps on the first row only
    out.update({name: float(rows[0][name]) for name in ("delx", "delt")})
    return out


def capillary_roi(realdata: Path, roi_id: int):
    """(r0, r1, c0, c1) of a capillary1 ROI: x = columns, y = rows, half-open."""
    sidecar = json.loads((realdata / "capillary1" / "Capillary1_0001.json").read_text())
    (roi,) = [r for r in sidecar["rois"] if r["roi_id"] == roi_id]
    d = roi["data"]
    return d["y0"], d["y1"], d["x0"], d["x1"]


def local_reference(ref_velocity: np.ndarray, dt_s: float, window_lines: int = 16) -> np.ndarray:
    """The truth proxy of docs/QUALITY.md: median of kymflow's defined, non-zero windows
    within +-0.125 s of each window."""
    from hpcacq.analyses.cleaning import local_median

    defined = np.where(np.isfinite(ref_velocity) & (np.abs(ref_velocity) <= HUGE_MM_S) & (ref_velocity != 0),
                       ref_velocity, np.nan)
    return local_median(defined, span=int(0.25 / (dt_s * window_lines / 4)))


def real_files(realdata):
    """(name, block, kymflow table, first row) of every real recording: Capillary1's three ROIs, then A89."""
    import tifffile

    folder = realdata / "capillary1"
    image = tifffile.imread(folder / "Capillary1_0001.tif")
    for roi_id in (1, 2, 3):
        ref = kymflow_table(folder / "Capillary1_0001_radon.csv", roi_id)
        r0, r1, c0, c1 = capillary_roi(realdata, roi_id)
        yield f"Capillary1 ROI {roi_id}", image[r0:r1, c0:c1], ref, r0
    for stem in A89_STEMS:
        yield (stem, tifffile.imread(realdata / "a89" / f"{stem}.tif"),
               kymflow_table(realdata / "a89" / "reference" / f"{stem}.csv"), 0)
