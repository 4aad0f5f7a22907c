"""``hpcacq bench``: throughput of the real pipeline (read, analyse, write HDF5) per layout.

A layout ``RxT`` is R MPI ranks with T cores each (``T`` files analysed at once per rank).
Every measurement runs in child processes, so the benchmark controls what each one sees:

1. JIT: ``hpcacq compile`` into an empty Numba cache folder (cold compile), then again in
   a second process (warm start: loading the same kernels from the cache).
2. Each layout: ``[mpiexec -n R] python [-m mpi4py] -m hpcacq.bench.rank layout``,
   which runs :func:`hpcacq.jobs.driver.execute_job` (the driver of ``hpcacq run``) on the
   corpus with that warm cache; the child gets ``SLURM_CPUS_PER_TASK=T`` (the driver sizes
   each rank's pool from it) and, when ``R*T`` fits, a CPU affinity of ``R*T`` cores, so
   ``1x1`` really has one core (also for rank 0's writer thread).
3. ``reference``: the scikit-image Radon reference on a sample of windows of one file.

Figures per layout: files/s, lines/s, wall time, time per stage (from each file's
``read_s``/``analyse_s``/``total_s`` timings and a clock around the HDF5 writer), peak
resident memory of every rank and parallel efficiency against the one-worker layout.
:func:`run_bench` returns the JSON record documented in docs/BENCH.md.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..analyses.registry import REGISTRY, label_of
from ..errors import InputError, ParameterError
from ..versions import software_versions

__all__ = ["BenchOptions", "parse_layout", "find_mpiexec", "machine_info", "run_bench", "format_table",
           "SCHEMA"]

SCHEMA = "hpcacq-bench/1"
_LAYOUT = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")
_MPI_ENV_PREFIXES = ("PMI_", "PMIX_", "OMPI_", "MPI_LOCALNRANKS", "MPI_LOCALRANKID", "HYDRA_")
Log = Callable[[str], None]


def parse_layout(text: str) -> tuple[int, int]:
    """``"2x1"`` -> (2 ranks, 1 core per rank)."""
    match = _LAYOUT.match(str(text))
    if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise ParameterError(f"layout {text!r} must look like RANKSxTHREADS with both >= 1, e.g. 1x1, 2x1 or 1x2")
    return int(match.group(1)), int(match.group(2))


def find_mpiexec() -> str:
    """``mpiexec`` beside this Python (a venv with the ``mpich`` wheel), else on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("mpiexec")
    if found is None:
        raise ParameterError(f"layouts with more than 1 rank need mpiexec, found neither beside {sys.executable} "
                             "nor on PATH; install it (pip install 'hpcacq[mpi]') or use layouts 1xT only")
    return found


@dataclass
class BenchOptions:
    """What ``hpcacq bench`` measures (see the command's options)."""

    layouts: tuple[str, ...] = ("1x1", "2x1")
    analysis: str = "radon_velocity"
    params: dict = field(default_factory=dict)
    inputs: tuple[str, ...] = ()  # user files; empty = synthetic corpus
    n_files: int = 64
    n_lines: int = 30000
    n_pixels: int = 38
    seed: int = 0
    repeat: int = 1
    reference: bool = False
    reference_windows: int = 150
    workdir: str | None = None
    keep: bool = False

    def __post_init__(self) -> None:
        if not self.layouts:
            raise ParameterError("give at least one --layout, e.g. --layout 1x1 --layout 2x1")
        self.layouts = tuple(dict.fromkeys(f"{r}x{t}" for r, t in map(parse_layout, self.layouts)))
        for name in ("n_files", "n_lines", "n_pixels", "repeat", "reference_windows"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ParameterError(f"{name}={value!r} must be an integer >= 1")
        if self.reference and self.analysis != "radon_velocity":
            raise ParameterError("--reference times the Radon velocity reference: use it with --analysis velocity")


# ------------------------------------------------------------------ machine and versions
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_total_gib() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None


def machine_info() -> dict:
    """Host name, CPU model, CPU counts, memory and the load average now."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        usable = os.cpu_count() or 1
    return {"hostname": socket.gethostname(), "cpu_model": _cpu_model(), "n_cpus": os.cpu_count() or 1,
            "n_cpus_usable": usable, "mem_total_gib": _mem_total_gib(), "os": platform.platform(),
            "load_avg_start": list(os.getloadavg())}


# ------------------------------------------------------------------ child processes
def _child_env(cache_dir: str, cores_per_rank: int | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_MPI_ENV_PREFIXES)}
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    env["NUMBA_CACHE_DIR"] = cache_dir
    env["PYTHONUNBUFFERED"] = "1"
    if cores_per_rank is not None:
        env["SLURM_CPUS_PER_TASK"] = str(cores_per_rank)
    return env


def _pin(n_cores: int) -> Callable[[], None] | None:
    """A preexec function restricting the child to the first ``n_cores`` usable CPUs (None: no pinning)."""
    try:
        usable = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return None
    if n_cores >= len(usable):
        return None
    cpus = set(usable[:n_cores])
    return lambda: os.sched_setaffinity(0, cpus)


def _run_child(command: list[str], env: dict, what: str, preexec: Callable | None = None,
               timeout: float | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, preexec_fn=preexec, timeout=timeout)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise InputError(f"{what} failed (exit code {done.returncode}): {' '.join(command)}\n{tail}")
    return seconds, done.stdout


def _measure_compile(cache_dir: str, analysis: str, log: Log) -> dict:
    """Cold compile of the analysis's kernels into an empty cache, then a second process loading them."""
    shutil.rmtree(cache_dir, ignore_errors=True)
    os.makedirs(cache_dir)
    command = [sys.executable, "-m", "hpcacq", "compile", "--cache-dir", cache_dir, "--analysis", label_of(analysis),
               "--json", "-"]
    env = _child_env(cache_dir)
    log("compiling the kernels into an empty cache (cold) ...")
    cold_process_s, out = _run_child(command, env, "hpcacq compile")
    cold = json.loads(out)
    warm_process_s, out = _run_child(command, env, "hpcacq compile (second process)")
    warm = json.loads(out)
    return {"cold_s": cold["seconds"], "warm_s": warm["seconds"], "cold_process_s": cold_process_s,
            "warm_process_s": warm_process_s, "n_signatures": cold["n_signatures"],
            "compiled_warm": warm["compiled"], "cache_dir": cache_dir}


def _layout_figures(name: str, ranks: int, threads: int, raw: dict, process_s: float) -> dict:
    workers = ranks * threads
    wall = float(raw["wall_s"])
    files = raw["files"]
    total = {key: sum(f.get(key, 0.0) for f in files) for key in ("read_s", "analyse_s", "total_s")}
    per_rank = []
    for rank in range(ranks):
        mine = [f for f in files if f["rank"] == rank]
        per_rank.append({"rank": rank, "files": len(mine), "busy_s": sum(f.get("total_s", 0.0) for f in mine),
                         "peak_rss_mib": float(raw["peak_rss_mib"][rank])})
    n_ok = int(raw["n_ok"])
    return {
        "layout": name, "ranks": ranks, "threads_per_rank": threads, "workers": workers,
        "files": int(raw["n_files"]), "files_ok": n_ok, "lines": int(raw["n_lines"]),
        "wall_s": wall, "process_s": process_s,
        "files_per_s": n_ok / wall if wall > 0 else float("nan"),
        "lines_per_s": int(raw["n_lines"]) / wall if wall > 0 else float("nan"),
        "efficiency": None,
        "stages_s": {
            "read": total["read_s"] / workers,
            "kernel": total["analyse_s"] / workers,
            "other": max(0.0, total["total_s"] - total["read_s"] - total["analyse_s"]) / workers,
            "waiting": wall - total["total_s"] / workers,
            "write": float(raw["write_s"]),
        },
        "write_close_s": float(raw["close_s"]),
        "peak_rss_mib": max(float(v) for v in raw["peak_rss_mib"]),
        "per_rank": per_rank,
        "output_bytes": int(raw["output_bytes"]),
        "runs_files_per_s": [],
    }


def _run_layout(name: str, inputs: list[str], options: BenchOptions, cache_dir: str, workdir: Path,
                log: Log) -> dict:
    ranks, threads = parse_layout(name)
    spec_path = workdir / f"layout_{name}.json"
    spec = {"config": {"inputs": list(inputs), "output": str(workdir / f"bench_{name}.h5"),
                       "analysis": options.analysis, "params": dict(options.params), "overwrite": True,
                       "progress": False},
            "result": str(workdir / f"layout_{name}.result.json")}
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    command = [sys.executable, "-m", "hpcacq.bench.rank", "layout", str(spec_path)]
    if ranks > 1:
        command = [find_mpiexec(), "-n", str(ranks), sys.executable, "-m", "mpi4py", *command[1:]]
    env = _child_env(cache_dir, threads)
    best = None
    runs = []
    for attempt in range(options.repeat):
        log(f"layout {name}: {ranks} rank(s) x {threads} core(s), run {attempt + 1}/{options.repeat} ...")
        Path(spec["result"]).unlink(missing_ok=True)
        process_s, _ = _run_child(command, env, f"layout {name}", preexec=_pin(ranks * threads))
        raw = json.loads(Path(spec["result"]).read_text(encoding="utf-8"))
        figures = _layout_figures(name, ranks, threads, raw, process_s)
        runs.append(figures["files_per_s"])
        if best is None or figures["files_per_s"] > best["files_per_s"]:
            best = figures
    best["runs_files_per_s"] = runs
    if not options.keep:
        Path(spec["config"]["output"]).unlink(missing_ok=True)
        Path(spec["result"]).unlink(missing_ok=True)
    return best


def _run_reference(inputs: list[str], options: BenchOptions, cache_dir: str, workdir: Path, log: Log) -> dict:
    log(f"reference: scikit-image Radon on {options.reference_windows} windows of {inputs[0]} ...")
    spec_path = workdir / "reference.json"
    spec = {"file": inputs[0], "windows": options.reference_windows,
            "window_lines": int(options.params.get("window_lines", 16)), "result": str(workdir / "reference.result.json")}
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    _run_child([sys.executable, "-m", "hpcacq.bench.rank", "reference", str(spec_path)],
               _child_env(cache_dir), "reference timing", preexec=_pin(1))
    return json.loads(Path(spec["result"]).read_text(encoding="utf-8"))


#: The synthetic corpus kind (:data:`hpcacq.synth.corpus.KINDS`) of each warm-up block
#: (registry ``warmup_block``): moving streaks are a velocity corpus, a vessel band a diameter one.
_CORPUS_KIND = {"streaks": "velocity", "vessel": "diameter"}


def _corpus_kind(analysis: str) -> str:
    """The synthetic corpus an analysis is benchmarked on: images of what it measures."""
    entry = REGISTRY.get(analysis)
    return _CORPUS_KIND[entry.warmup_block] if entry is not None else "diameter"


def _corpus(options: BenchOptions, workdir: Path, log: Log) -> tuple[list[str], str]:
    if options.inputs:
        from ..jobs.inputs import expand_inputs

        return list(expand_inputs(options.inputs)), "user"
    from ..synth.corpus import read_truth, write_corpus

    folder = workdir / "corpus"
    wanted = {"kind": _corpus_kind(options.analysis),
              "n_files": options.n_files, "n_lines": options.n_lines, "n_pixels": options.n_pixels,
              "seed": options.seed}
    try:
        truth = read_truth(folder)
        if all(truth.get(k) == v for k, v in wanted.items()):
            log(f"reusing the synthetic corpus in {folder}")
            return [str(folder / f["file"]) for f in truth["files"]], "synthetic"
    except InputError:
        pass
    log(f"writing {options.n_files} synthetic {wanted['kind']} files of {options.n_lines} x {options.n_pixels} "
        f"uint16 into {folder} ...")
    paths = write_corpus(folder, overwrite=True, **wanted)
    return [str(p) for p in paths], "synthetic"


def _input_shape(path: str) -> tuple[int, int, str]:
    from ..io.readers import read_acquisition

    data = read_acquisition(path).data
    return int(data.shape[-2]), int(data.shape[-1]), str(data.dtype)


def run_bench(options: BenchOptions, *, log: Log | None = None, argv: list[str] | None = None) -> dict:
    """Run the benchmark; returns the record documented in docs/BENCH.md.

    Raises
    ------
    ParameterError
        Bad layout, no mpiexec for a layout with several ranks, ``--reference`` with
        another analysis.
    InputError
        An input cannot be found, or a child process failed (its last lines of output
        are in the message).
    """
    log = log or (lambda line: None)
    if any(parse_layout(name)[0] > 1 for name in options.layouts):
        find_mpiexec()  # fail before any work
    machine = machine_info()
    started = _dt.datetime.now(_dt.timezone.utc)
    own_workdir = options.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="hpcacq-bench-") if own_workdir else options.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        inputs, corpus_kind = _corpus(options, workdir, log)
        if not inputs:
            raise InputError("no input files to benchmark")
        sizes = [os.path.getsize(p) for p in inputs]
        n_lines, n_pixels, dtype = _input_shape(inputs[int(max(range(len(sizes)), key=sizes.__getitem__))])
        cache_dir = str(workdir / "numba_cache")
        compile_figures = _measure_compile(cache_dir, options.analysis, log)
        layouts = [_run_layout(name, inputs, options, cache_dir, workdir, log) for name in options.layouts]
        reference = _run_reference(inputs, options, cache_dir, workdir, log) if options.reference else None
    finally:
        if own_workdir and not options.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    base = next((lay for lay in layouts if lay["workers"] == 1), None)
    for lay in layouts:
        if base is not None and base["files_per_s"] > 0:
            lay["efficiency"] = lay["files_per_s"] / (lay["workers"] * base["files_per_s"])
    largest = max(sizes)
    machine["load_avg_end"] = list(os.getloadavg())
    return {
        "schema": SCHEMA,
        "date_utc": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_s": (_dt.datetime.now(_dt.timezone.utc) - started).total_seconds(),
        "command": list(argv) if argv is not None else list(sys.argv),
        "machine": machine,
        "versions": software_versions(full=True),
        "parameters": {
            "analysis": options.analysis, "params": dict(options.params), "corpus": corpus_kind,
            "n_files": len(inputs), "n_lines": n_lines, "n_pixels": n_pixels, "dtype": dtype,
            "input_bytes": sum(sizes), "largest_file_bytes": largest, "layouts": list(options.layouts),
            "repeat": options.repeat, "workdir": None if own_workdir and not options.keep else str(workdir),
        },
        "memory_limit_mib": (3 * largest + 300e6) / 2**20,  # issue 4: 3 x largest file + 300 MB
        "compile": compile_figures,
        "layouts": layouts,
        "reference": reference,
    }


def format_table(record: dict) -> str:
    """The human-readable summary of a bench record (what ``hpcacq bench`` prints)."""
    p, m, c = record["parameters"], record["machine"], record["compile"]
    name = label_of(p["analysis"])
    extra = "".join(f", {k}={v}" for k, v in p["params"].items())
    mem = f"{m['mem_total_gib']:.1f} GiB" if m.get("mem_total_gib") else "? GiB"
    lines = [
        f"hpcacq bench {record['date_utc']}: {p['n_files']} {p['corpus']} files of {p['n_lines']} x {p['n_pixels']} "
        f"{p['dtype']}, {name}{extra}, whole image, HDF5 written, warm cache",
        f"{m['hostname']}: {m['cpu_model']}, {m['n_cpus']} CPUs, {mem}, load {m['load_avg_start'][0]:.2f} at start; "
        f"hpcacq {record['versions']['hpcacq']} ({(record['versions']['git_commit'] or '?')[:8]}), "
        f"numba {record['versions']['numba']}",
        f"JIT compile (empty cache) {c['cold_s']:.1f} s; warm start (cache load, 2nd process) {c['warm_s']:.2f} s",
        "",
        "layout  workers  files/s    lines/s   wall s   read  kernel  other   wait  write  peak MiB/rank  efficiency",
    ]
    for lay in record["layouts"]:
        s = lay["stages_s"]
        eff = "-" if lay["efficiency"] is None else f"{lay['efficiency']:.0%}"
        lines.append(f"{lay['layout']:<7} {lay['workers']:>7} {lay['files_per_s']:>8.2f} {lay['lines_per_s']:>10,.0f} "
                     f"{lay['wall_s']:>8.2f} {s['read']:>6.2f} {s['kernel']:>7.2f} {s['other']:>6.2f} "
                     f"{s['waiting']:>6.2f} {s['write']:>6.2f} {lay['peak_rss_mib']:>14.0f}  {eff:>10}")
    lines.append(f"stages: seconds per worker (read + kernel + other + wait = wall); write: rank 0's HDF5 writer. "
                 f"memory limit 3 x largest file + 300 MB = {record['memory_limit_mib']:.0f} MiB")
    ref = record.get("reference")
    if ref:
        lines.append(f"reference (scikit-image, {ref['windows']} windows of {os.path.basename(ref['file'])}): "
                     f"{ref['reference_s_per_window'] * 1e3:.2f} ms/window vs kernel "
                     f"{ref['kernel_s_per_window'] * 1e6:.1f} us/window = {ref['speed_ratio']:.0f}x; "
                     f"max |dv| {ref['max_abs_dv_mm_s']:.2g} mm/s, {ref['fraction_within_1e-3']:.1%} within 1e-3 mm/s")
    return "\n".join(lines)
