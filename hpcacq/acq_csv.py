"""acqstore's sidecar tables: ``<file>.<analysis_name>.csv`` beside the acquisition.

Each CSV holds every run analysis of that name on the file, one row per window (velocity)
or line (diameter), with ``channel`` (0-based) and ``roi_id`` first, then the analysis'
columns (``time_s`` in seconds from the image's first line, velocities in mm/s, ...).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from typing import Any

__all__ = ["write_analysis_csvs"]


def _rows(analysis: Any) -> tuple[list[str], Iterable[list]]:
    columns = analysis.result.columns
    names = list(columns)
    key = analysis.key
    return names, ([key.channel, key.roi_id, *(columns[n][i].item() for n in names)]
                   for i in range(analysis.result.n_rows))


def write_analysis_csvs(source_path: str, analyses: list[Any]) -> list[str]:
    """Write one CSV per analysis name for the run ``analyses`` of ``source_path``.

    Parameters
    ----------
    source_path : str
        The acquisition file; CSVs go beside it, named by :meth:`AnalysisKey.csv_filename`.
    analyses : list of analysis objects
        Those with a ``result`` are written; each file is replaced atomically.

    Returns
    -------
    list of str
        Paths written.

    Raises
    ------
    ValueError
        Two analyses of one name have different columns.
    """
    by_name: dict[str, list[Any]] = {}
    for analysis in analyses:
        if analysis.result is not None:
            by_name.setdefault(analysis.key.analysis_name, []).append(analysis)
    folder, base = os.path.split(os.path.abspath(source_path))
    written = []
    for name, group in by_name.items():
        header = list(group[0].result.columns)
        target = os.path.join(folder, group[0].key.csv_filename(base))
        tmp = f"{target}.{os.getpid()}.tmp"
        with open(tmp, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["channel", "roi_id", *header])
            for analysis in group:
                names, rows = _rows(analysis)
                if names != header:
                    raise ValueError(f"{name}: analyses with different columns ({header} vs {names})")
                writer.writerows(rows)
        os.replace(tmp, target)
        written.append(target)
    return written
