"""Dispatcher cost of the MPI driver: files per second with a no-op analysis.

Every rank runs the real driver (dynamic dispatch, prefetch, polling, FileRecords sent to
rank 0) but each file's "analysis" does nothing (or sleeps ``--work-ms``) and rank 0's
writer only counts records, so the figure is the driver's own cost per file.

Run (it relaunches itself under MPICH's ``mpiexec -n RANKS``, oversubscribed)::

    python benchmarks/bench_dispatch.py --ranks 32 --files 20000
    python benchmarks/bench_dispatch.py --ranks 8 --files 400 --work-ms 20   # idle-CPU check
    python benchmarks/bench_dispatch.py --ranks 32 --files 5000 --hdf5-dir /tmp  # + real HDF5 writer

Prints one ``RESULT`` line: ranks, files, seconds, files/s, and the CPU each rank used
during the run as a fraction of the wall time (low = waiting ranks do not spin).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class CountingWriter:
    """Rank 0's writer stand-in: counts records and checks each file comes once."""

    seen: set[str] = set()

    def __init__(self, path, *, mode, job_attrs):
        CountingWriter.seen = set()

    def write_file(self, record):
        if record.file_path in CountingWriter.seen:
            raise RuntimeError(f"{record.file_path} written twice")
        CountingWriter.seen.add(record.file_path)

    def done_fingerprints(self):
        return {}

    def close(self):
        pass


def _record_classes():
    from hpcacq.results import AnalysisRecord, FileRecord

    return AnalysisRecord, FileRecord


class NoopJob:
    """FileJob with no reading and no analysis: returns an OK record at once."""

    work_s = 0.0

    def __init__(self, strategy, event, *, rank, host):
        self.strategy, self.cancel_event, self.rank, self.host = strategy, event, rank, host
        self._classes = _record_classes()

    def _record(self, path, outcome):
        analysis_record, file_record = self._classes
        analysis = analysis_record(analysis="radon_velocity", channel=0, roi_id=1, roi_bounds=None, outcome=outcome,
                                   message="", params={}, result=None, elapsed_s=0.0)
        return file_record(file_path=path, fingerprint={}, records=[analysis], rank=self.rank, host=self.host,
                           timings={}, n_lines=0)

    def run(self, index, path):
        if self.work_s:
            time.sleep(self.work_s)
        return self._record(path, "OK")

    def cancelled(self, path):
        return self._record(path, "CANCELLED")

    def failed(self, path, exc):
        return self._record(path, "FAILED")


def _hdf5_writer(folder: str):
    from hpcacq.results import ResultsWriter

    def factory(path, *, mode, job_attrs):
        CountingWriter.seen = set()
        writer = ResultsWriter(os.path.join(folder, "bench.h5"), mode="overwrite", job_attrs=job_attrs)
        original = writer.write_file

        def write_file(record):
            CountingWriter.seen.add(record.file_path)
            original(record)

        writer.write_file = write_file
        return writer

    return factory


def measure(n_files: int, work_ms: float, threads: int, hdf5_dir: str | None = None) -> None:
    """One rank's part (under mpiexec): run the driver, gather figures on rank 0."""
    from mpi4py import MPI

    from hpcacq.jobs.config import JobConfig
    from hpcacq.jobs.driver import execute_job

    NoopJob.work_s = work_ms / 1000.0
    comm = MPI.COMM_WORLD
    config = JobConfig(inputs=tuple(f"/nonexistent/file_{i:06d}.tif" for i in range(n_files)), output="unused.h5",
                       analysis="radon_velocity", dx_um=1.0, dt_s=1.0, threads=threads)
    import hpcacq.jobs.mpi_comm  # noqa: F401 - imports are not the dispatcher's cost

    _record_classes()
    comm.Barrier()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    writer = CountingWriter if hdf5_dir is None else _hdf5_writer(hdf5_dir)
    summary = execute_job(config, job_factory=NoopJob, writer_factory=writer, use_mpi=True)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    cpu_fractions = comm.gather(cpu / wall, root=0)
    if comm.rank == 0:
        assert summary.n_ok == n_files == len(CountingWriter.seen), summary
        fractions = sorted(cpu_fractions)
        print(f"RESULT ranks={comm.size} files={n_files} work_ms={work_ms:g} hdf5={int(hdf5_dir is not None)} "
              f"seconds={wall:.3f} "
              f"files_per_s={n_files / wall:.0f} cpu_rank0={cpu_fractions[0]:.3f} "
              f"cpu_workers_median={fractions[len(fractions) // 2]:.3f} cpu_workers_max={max(cpu_fractions[1:]):.3f}",
              flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=32)
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--work-ms", type=float, default=0.0, help="sleep per file (0: no-op)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--hdf5-dir", help="write records with the real ResultsWriter into this folder")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        measure(args.files, args.work_ms, args.threads, args.hdf5_dir)
        return 0
    mpiexec = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    command = [mpiexec, "-n", str(args.ranks), sys.executable, "-m", "mpi4py", __file__, "--inner",
               "--files", str(args.files), "--work-ms", str(args.work_ms), "--threads", str(args.threads)]
    if args.hdf5_dir:
        command += ["--hdf5-dir", args.hdf5_dir]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.call(command, env=env)


if __name__ == "__main__":
    sys.exit(main())
