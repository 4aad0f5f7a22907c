"""Rank 0's resident memory against the number of files in one job (the results writer's share).

Runs ``hpcacq run``'s driver in this process (one rank, one worker thread, velocity, HDF5
written with fsync) on N tiny synthetic files (64 x 38 pixels, so the files' own memory
does not matter) and samples the resident memory (VmRSS) every 0.5 s. Prints a timeline,
the growth per file while running and the peak including the final consolidation.

    python benchmarks/bench_rank0_memory.py 10000 [--folder DIR]

The corpus is written once into DIR (default /tmp/hpcacq-rank0-memory) and reused.
"""

from __future__ import annotations

import argparse
import glob
import os
import threading
import time


def resident_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n_files", type=int)
    parser.add_argument("--folder", default="/tmp/hpcacq-rank0-memory")
    args = parser.parse_args()

    from hpcacq.jobs.config import JobConfig
    from hpcacq.jobs.driver import run_job
    from hpcacq.synth.corpus import write_corpus

    data = os.path.join(args.folder, "data")
    paths = sorted(glob.glob(os.path.join(data, "*.tif")))
    if len(paths) < args.n_files:
        print(f"writing {args.n_files} files of 64 x 38 into {data} ...", flush=True)
        paths = sorted(map(str, write_corpus(data, n_files=args.n_files, n_lines=64, seed=1, overwrite=True)))
    paths = paths[:args.n_files]
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
    config = JobConfig(inputs=tuple(paths), output=output, analysis="radon_velocity", threads=1, overwrite=True)
    summary = run_job(config, on_file_result=on_file)
    stop.set()
    thread.join()
    samples.append((samples[-1][0] if samples else 0.0, resident_mib(), done["files"]))
    for t, rss, files in samples[::max(1, len(samples) // 12)]:
        print(f"t={t:7.1f} s  files done {files:7d}  resident {rss:7.1f} MiB")
    running = [(files, rss) for _, rss, files in samples if files > 0 and files < args.n_files]
    if len(running) >= 2 and running[-1][0] > running[0][0]:
        (f0, r0), (f1, r1) = running[len(running) // 10], running[-1]
        if f1 > f0:
            print(f"growth while running: {(r1 - r0) * 1024 / (f1 - f0):.2f} KB per file "
                  f"(files {f0} -> {f1}: {r0:.1f} -> {r1:.1f} MiB)")
    print(f"{summary.n_ok} of {args.n_files} files OK; peak resident memory "
          f"{max(rss for _, rss, _ in samples):.1f} MiB (including the final consolidation)")


if __name__ == "__main__":
    main()
