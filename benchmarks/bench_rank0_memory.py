"""Rank 0's resident memory against the number of files in one job.

Runs ``hpcacq run``'s driver in this process the way the CLI does (inputs expanded from a
folder into an on-disk InputList; one rank, one worker thread, velocity, HDF5 written
with fsync) on N tiny files (64 x 38 pixels: N hard links to one synthetic file, so only
the job's per-file bookkeeping counts), and samples the resident memory (VmRSS) every
0.5 s. Prints a timeline, the growth per file while running (least-squares slope) and
the peak including the final consolidation.

    python benchmarks/bench_rank0_memory.py 20000 [--folder DIR]
    python benchmarks/bench_rank0_memory.py 200000 --noop   # the driver alone

``--noop``: no reading, no analysis, and a writer that only counts (the dispatcher's and
the input list's share).

The corpus folder DIR/data_N is made once and reused.
"""

from __future__ import annotations

import argparse
import os
import shutil
import threading
import time

import numpy as np


def resident_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


class CountingWriter:
    """A writer that keeps nothing: counts records."""

    n = 0

    def __init__(self, path, *, mode, job_attrs):
        CountingWriter.n = 0

    def write_file(self, record):
        CountingWriter.n += 1

    def done_fingerprints(self):
        return {}

    def close(self):
        pass


def make_inputs(folder: str, n_files: int) -> str:
    """A folder of ``n_files`` hard links to one 64 x 38 line scan (made once, reused)."""
    from hpcacq.synth.corpus import write_corpus

    data = os.path.join(folder, f"data_{n_files}")
    if not os.path.isdir(data) or sum(1 for _ in os.scandir(data)) != 2 * n_files:
        print(f"making {n_files} files of 64 x 38 in {data} (hard links to one file) ...", flush=True)
        (source,) = write_corpus(os.path.join(folder, "one"), n_files=1, n_lines=64, seed=1, overwrite=True)
        header = os.path.splitext(source)[0] + ".txt"  # the Olympus header with dx and dt
        os.makedirs(data, exist_ok=True)
        for i in range(n_files):
            if i % 50000 == 0:  # a file system allows ~65,000 links per file: a new copy now and then
                copies = []
                for src, suffix in ((source, ".tif"), (header, ".txt")):
                    copies.append((os.path.join(folder, "one", f"copy_{n_files}_{i}{suffix}"), suffix))
                    shutil.copyfile(src, copies[-1][0])
            target = os.path.join(data, f"file_{i:07d}")
            for src, suffix in copies:
                if not os.path.exists(target + suffix):
                    os.link(src, target + suffix)
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n_files", type=int)
    parser.add_argument("--folder", default="/tmp/hpcacq-rank0-memory")
    parser.add_argument("--noop", action="store_true", help="no analysis, a writer that only counts")
    args = parser.parse_args()

    from bench_dispatch import NoopJob  # this folder: the dispatcher benchmark's no-op analysis

    from hpcacq.jobs.config import JobConfig
    from hpcacq.jobs.driver import execute_job, run_job
    from hpcacq.jobs.inputs import InputList

    data = make_inputs(args.folder, args.n_files)
    output = os.path.join(args.folder, f"out_{args.n_files}.h5")
    done = {"files": 0}
    samples: list[tuple[float, float, int]] = []
    stop = threading.Event()

    def sample() -> None:
        start = time.monotonic()
        while not stop.is_set():
            samples.append((time.monotonic() - start, resident_mib(), done["files"]))
            time.sleep(0.5)

    def on_file(record) -> None:
        done["files"] += 1

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    inputs = InputList.from_specs([data])
    print(f"{len(inputs)} input files; resident {resident_mib():.1f} MiB before the job", flush=True)
    config = JobConfig(inputs=inputs, output=output, analysis="radon_velocity", threads=1, overwrite=True)
    if args.noop:
        summary = execute_job(config, job_factory=NoopJob, writer_factory=CountingWriter, use_mpi=False,
                              on_file_result=on_file)
    else:
        summary = run_job(config, on_file_result=on_file)
    stop.set()
    thread.join()
    samples.append((samples[-1][0] if samples else 0.0, resident_mib(), done["files"]))
    for t, rss, files in samples[::max(1, len(samples) // 12)]:
        print(f"t={t:7.1f} s  files done {files:7d}  resident {rss:7.1f} MiB")
    running = [(files, rss) for _, rss, files in samples if 0.1 * args.n_files <= files < args.n_files]
    if len(running) >= 3:
        x = np.array([f for f, _ in running], dtype=float)
        y = np.array([r for _, r in running], dtype=float)
        slope = np.polyfit(x, y, 1)[0] * 1024 * 1024  # bytes per file
        print(f"growth while running (files {int(x[0])} -> {int(x[-1])}, least squares): {slope:.0f} bytes "
              f"per file; resident {y[0]:.1f} -> {y[-1]:.1f} MiB, max {y.max():.1f} MiB")
    print(f"{summary.n_ok} of {args.n_files} files OK; peak resident memory "
          f"{max(rss for _, rss, _ in samples):.1f} MiB (including the final consolidation)")


if __name__ == "__main__":
    main()
