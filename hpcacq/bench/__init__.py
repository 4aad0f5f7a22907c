"""Benchmarks of the real pipeline: ``hpcacq bench`` and the writer throughput.

- :mod:`.run`: ``hpcacq bench`` (corpus, layouts in child processes, stage timings, the
  JSON record of docs/BENCH.md);
- :mod:`.rank`: what runs inside one benchmark rank (``python -m hpcacq.bench.rank``);
- :mod:`.writer`: HDF5 writer throughput (``python -m hpcacq.bench.writer``);
- :mod:`.records`: FileRecords shaped like real velocity and diameter results, for the
  writer benchmark and the tests.

Imports run ``cli -> bench -> jobs -> ...``: nothing outside ``cli`` imports this package.
"""

from .run import SCHEMA, BenchOptions, find_mpiexec, format_table, machine_info, parse_layout, run_bench

__all__ = ["BenchOptions", "SCHEMA", "find_mpiexec", "format_table", "machine_info", "parse_layout", "run_bench"]
