"""Writer throughput: ``python -m hpcacq.results._bench [N_FILES] [FOLDER]``.

Writes N synthetic velocity results (7497 rows x 6 columns, the size of a real
Capillary file) with the default crash-safe settings (fsync on, 16 files per shard),
then closes (consolidation), and prints files/s for writing and for the whole job.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import numpy as np

from ..analyses.base import AnalysisResult
from .records import AnalysisRecord, FileRecord
from .writer import ResultsWriter

COLUMNS = ("time_s", "theta_deg", "velocity_mm_s", "velocity_clean_mm_s", "separability", "flags")
UNITS = {"time_s": "s", "theta_deg": "deg", "velocity_mm_s": "mm/s", "velocity_clean_mm_s": "mm/s",
         "separability": "1", "flags": "1"}


def velocity_record(index: int, n_rows: int = 7497, rng: np.random.Generator | None = None) -> FileRecord:
    """A FileRecord shaped like one real velocity result (for benchmarks and tests)."""
    rng = rng or np.random.default_rng(index)
    columns = {name: rng.normal(size=n_rows) for name in COLUMNS[:-1]}
    columns["flags"] = rng.integers(0, 4, size=n_rows).astype(np.int64)
    params = {"window_lines": 16, "dx_um": 0.5, "dt_s": 0.001, "angle_step_deg": 0.25}
    result = AnalysisResult(analysis="radon_velocity", params=params, columns=columns, units=UNITS,
                            flag_bits={"low_separability": 1, "edge": 2}, summary={"median_velocity_mm_s": 1.5})
    record = AnalysisRecord(analysis="radon_velocity", channel=0, roi_id=1, roi_bounds=(0, n_rows * 16, 0, 38),
                            outcome="OK", message="", params=params, result=result, elapsed_s=0.5)
    return FileRecord(file_path=f"/data/mouse 1/file_{index:06d}.tif", fingerprint={"size": 1000 + index,
                      "mtime_ns": 10**18 + index, "sha256": None}, records=[record], rank=index % 4,
                      host="node1", timings={"read_s": 0.1, "analyse_s": 0.5, "total_s": 0.6}, n_lines=n_rows * 16)


def main(n_files: int = 400, folder: str | None = None) -> None:
    folder = folder or tempfile.mkdtemp(prefix="hpcacq-bench-")
    path = os.path.join(folder, "bench.h5")
    records = [velocity_record(i) for i in range(min(n_files, 32))]
    start = time.perf_counter()
    writer = ResultsWriter(path, mode="overwrite", job_attrs={"analysis": "radon_velocity"})
    for i in range(n_files):
        record = records[i % len(records)]
        record.file_path = f"/data/mouse 1/file_{i:06d}.tif"
        writer.write_file(record)
    written = time.perf_counter() - start
    writer.close()
    total = time.perf_counter() - start
    size = os.path.getsize(path) / 1e6
    print(f"{n_files} files x 7497 rows x 6 columns: write {n_files / written:.0f} files/s "
          f"({written:.2f} s), with consolidation {n_files / total:.0f} files/s ({total:.2f} s), {size:.0f} MB")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 400, sys.argv[2] if len(sys.argv) > 2 else None)
