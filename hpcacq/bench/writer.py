"""Writer throughput: ``python -m hpcacq.bench.writer [N_FILES] [FOLDER]``.

Writes N synthetic velocity results (:func:`~hpcacq.bench.records.velocity_record`: 7497
rows x 7 columns, the size of a real Capillary file) with the default crash-safe settings
(fsync on, 16 files per shard), then closes (consolidation), and prints files/s for
writing and for the whole job.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

from ..results.writer import ResultsWriter
from .records import velocity_record

__all__ = ["main"]


def main(n_files: int = 400, folder: str | None = None) -> None:
    """Write ``n_files`` records into ``FOLDER/bench.h5`` (a new temporary folder by default); print files/s."""
    folder = folder or tempfile.mkdtemp(prefix="hpcacq-bench-")
    os.makedirs(folder, exist_ok=True)
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
    n_columns = len(records[0].records[0].result.columns)
    print(f"{n_files} files x 7497 rows x {n_columns} columns: write {n_files / written:.0f} files/s "
          f"({written:.2f} s), with consolidation {n_files / total:.0f} files/s ({total:.2f} s), {size:.0f} MB")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 400, sys.argv[2] if len(sys.argv) > 2 else None)
