"""Compare a results file with the known answers of a synthetic corpus (``truth.json``).

Used by ``hpcacq validate`` (and the demo) to show that an installation measures what it
should: per file, the median measured velocity or diameter beside the true one.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..results import iter_results, read_manifest
from .corpus import TRUTH_NAME, read_truth

__all__ = ["compare_with_truth", "MEASURED"]

#: analysis kind of the corpus -> (result column, truth key, unit)
MEASURED = {"velocity": ("velocity_mm_s", "velocity_mm_s", "mm/s"),
            "diameter": ("diameter_um", "diameter_um", "um")}


def compare_with_truth(results: str | os.PathLike, truth: str | os.PathLike) -> list[dict]:
    """One row per file of the corpus: ``file``, ``outcome``, ``true``, ``measured`` (median of
    the per-window or per-line values, NaN ignored), ``rel_error`` (|measured - true| / |true|),
    ``unit``. A corpus file missing from the results has outcome ``"MISSING"``.

    ``truth`` is a corpus folder or its ``truth.json``.
    """
    truth_path = Path(truth)
    folder = truth_path if truth_path.is_dir() else truth_path.parent
    if not truth_path.is_dir() and truth_path.name != TRUTH_NAME:
        raise InputError(f"{truth_path}: expected a corpus folder or its {TRUTH_NAME}")
    corpus = read_truth(folder)
    column, key, unit = MEASURED[corpus["kind"]]
    by_name: dict[str, dict] = {}
    for row in read_manifest(results):
        by_name.setdefault(os.path.basename(row["file"]), row)
    medians = {}
    for info, result in iter_results(results):
        values = np.asarray(result.columns[column], dtype=float)
        values = values[np.isfinite(values)]
        medians[os.path.basename(info["file"])] = float(np.median(values)) if values.size else math.nan
    rows = []
    for entry in corpus["files"]:
        name, true = entry["file"], float(entry[key])
        row = by_name.get(name)
        measured = medians.get(name, math.nan)
        rows.append({"file": name, "outcome": row["outcome"] if row else "MISSING", "true": true,
                     "measured": measured, "unit": unit,
                     "rel_error": abs(measured - true) / abs(true) if true else abs(measured)})
    return rows
