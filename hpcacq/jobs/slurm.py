"""Render SLURM batch scripts that run ``hpcacq run`` over MPI ranks.

:func:`render_sbatch` is a pure function: its keyword-only, typed signature is the list
of options, every value is shell-quoted with :func:`shlex.quote`, ``#SBATCH`` lines are
sorted so the text is stable. :func:`render_sbatch_from_mapping` takes the same options
from a dict (a TOML file) and rejects unknown names, listing the valid ones.

The script asks SLURM for ``USR1`` some seconds before the time limit
(``--signal=B:USR1@<seconds>``); the batch shell traps USR1 and TERM (``scancel``) and
forwards them to the ``srun`` step, whose ranks finish their current files, write them
and exit with code 3; ``--resume`` then finishes the job.
"""

from __future__ import annotations

import inspect
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from .. import checks
from ..errors import ParameterError

__all__ = ["render_sbatch", "render_sbatch_from_mapping", "sbatch_options", "job_name_from_run_args",
           "output_from_run_args", "node_cpus"]

_TIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")
_ARRAY = re.compile(r"^\d+-\d+(%\d+)?$")




def output_from_run_args(run_args: Sequence[str]) -> str | None:
    """The results file given to ``hpcacq run`` as ``-o X``, ``--output X`` or ``--output=X``."""
    args = [os.fspath(a) for a in run_args]
    for i, word in enumerate(args):
        if word in ("-o", "--output") and i + 1 < len(args):
            return args[i + 1]
        if word.startswith("--output="):
            return word.split("=", 1)[1]
        if word.startswith("-o") and len(word) > 2 and not word.startswith("--"):
            return word[2:]
    return None


def job_name_from_run_args(run_args: Sequence[str], results: str | None = None) -> str:
    """A job name from the run's results file: ``data/velocity.h5`` -> ``hpcacq-velocity``.

    ``results`` (the ``--results`` option) wins; without any results file: ``hpcacq``.
    """
    output = results or output_from_run_args(run_args)
    if not output:
        return "hpcacq"
    stem = os.path.splitext(os.path.basename(str(output).rstrip("/")))[0]
    stem = re.sub(r"[^A-Za-z0-9_.+-]", "_", stem).strip("._") or "results"
    return f"hpcacq-{stem}"


def node_cpus(partition: str | None = None) -> tuple[int, str]:
    """CPUs of one compute node and where that number came from.

    Asks SLURM (``sinfo -h -o %c``: CPUs per node of ``partition``, or of the default
    partition; the smallest when nodes differ) and falls back to the CPUs of this
    machine (``os.sched_getaffinity``) when ``sinfo`` is missing or fails.
    """
    if shutil.which("sinfo"):
        command = ["sinfo", "-h", "-o", "%c"] + (["-p", partition] if partition else [])
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
            counts = [int(w.rstrip("+")) for w in out.stdout.split() if w.rstrip("+").isdigit()]
        except (OSError, subprocess.SubprocessError):
            counts = []
        if out.returncode == 0 and counts:
            where = f"partition {partition}" if partition else "the default partition"
            return min(counts), f"from sinfo, CPUs per node of {where}"
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        count = os.cpu_count() or 1
    return max(1, count), ("from this machine's CPU count, sinfo gave no answer; give --ntasks-per-node "
                           "if the compute nodes differ")


def _check(job_name, nodes, ntasks_per_node, cpus_per_task, time, array, list_file, signal_seconds) -> None:
    if not job_name or "\n" in job_name:
        raise ParameterError(f"job_name={job_name!r} must be a non-empty single-line name")
    checks.integer("nodes", nodes, 1)
    checks.integer("ntasks_per_node", ntasks_per_node, 1)
    checks.integer("cpus_per_task", cpus_per_task, 1)
    checks.integer("signal_seconds", signal_seconds, 0)
    if not _TIME.match(str(time)):
        raise ParameterError(f"time={time!r} must be a SLURM time such as 01:00:00, 90 or 1-12:00:00")
    if array is not None and not _ARRAY.match(str(array)):
        raise ParameterError(f"array={array!r} must be a contiguous SLURM array range such as 0-9 or 0-99%10 "
                             "(each task takes every N-th line of the list file)")
    if array is not None and list_file is None:
        raise ParameterError("array jobs need list_file (one input path per line): each task takes its slice")


def _sbatch_lines(options: dict[str, Any]) -> list[str]:
    lines = []
    for name, value in sorted(options.items()):
        if value is None:
            continue
        if "\n" in str(value) or "\r" in str(value):
            raise ParameterError(f"{name.replace('-', '_')}={value!r} contains a newline and cannot go on a "
                                 "#SBATCH line; choose a path without newlines for the SLURM log/workdir")
        lines.append(f"#SBATCH --{name}={shlex.quote(str(value))}")
    return lines


def _quote_all(words: Sequence[str]) -> str:
    return " ".join(shlex.quote(os.fspath(word)) for word in words)


_PRELUDE = """\
set -u
{path_line}export SRUN_CPUS_PER_TASK="${{SLURM_CPUS_PER_TASK:-1}}"
{extra_env}
step=""
stop=""
forward() {{
    echo "hpcacq batch script: got SIG$1, asking the ranks to stop cleanly" >&2
    stop="$1"
    if [ -n "$step" ]; then kill -"$1" "$step" 2>/dev/null || true; fi
}}
trap 'forward USR1' USR1
trap 'forward TERM' TERM
"""

_ARRAY_SLICE = """\
# Array task: take every N-th line of the list file, starting at this task's index.
task=$(( SLURM_ARRAY_TASK_ID - ${{SLURM_ARRAY_TASK_MIN:-0}} ))
count="${{SLURM_ARRAY_TASK_COUNT:-1}}"
slice={stem}_"$SLURM_ARRAY_TASK_ID".list
awk -v t="$task" -v n="$count" '(NR - 1) % n == t' {list_file} > "$slice"
"""

_PRECOMPILE = """\
# Fill the shared Numba cache for this node's CPU type before the ranks start (fast when it
# is already filled), so that they load the kernels instead of each compiling them.
{python} -m hpcacq compile >&2 || echo "hpcacq compile failed: the ranks will compile the kernels themselves" >&2
if [ -n "$stop" ]; then echo "hpcacq exit code: 3 (stopped before the ranks started: rerun with --resume)"; exit 3; fi
"""

_LAUNCH = """\
srun --mpi=pmi2 --kill-on-bad-exit=1 {python} -m mpi4py -m hpcacq run {args} &
step=$!
rc=0
wait "$step" || rc=$?
# A trapped signal interrupts `wait`; keep waiting until the step really ends.
while kill -0 "$step" 2>/dev/null; do rc=0; wait "$step" || rc=$?; done
echo "hpcacq exit code: $rc (0 all OK, 1 some failed/skipped, 3 cancelled: rerun with --resume)"
exit "$rc"
"""


def render_sbatch(
    *,
    job_name: str | None = None,
    run_args: Sequence[str] = (),
    nodes: int = 1,
    ntasks_per_node: int | None = None,
    cpus_per_task: int = 1,
    time: str = "01:00:00",
    partition: str | None = None,
    account: str | None = None,
    mem_per_cpu: str | None = None,
    array: str | None = None,
    list_file: str | None = None,
    results: str | None = None,
    signal_seconds: int = 120,
    output: str = "slurm-%x-%j.out",
    python: str = sys.executable,
    numba_cache_dir: str | None = None,
    workdir: str | None = None,
) -> str:
    """The text of an sbatch script running ``hpcacq run`` on ``nodes x ntasks_per_node`` ranks.

    Parameters
    ----------
    job_name : str or None
        ``--job-name``; None: from the results file (:func:`job_name_from_run_args`,
        ``-o velocity.h5`` -> ``hpcacq-velocity``).
    run_args : sequence of str
        Arguments after ``hpcacq run`` (inputs, ``-o OUT.h5``, ``--analysis``, ...).
    nodes, cpus_per_task : int
        Nodes of the job; cores of each MPI rank (its thread pool is sized from
        ``SLURM_CPUS_PER_TASK``).
    ntasks_per_node : int or None
        MPI ranks per node (ranks = nodes x ntasks_per_node). None fills a node: its CPUs
        (:func:`node_cpus`: ``sinfo``, else this machine) divided by ``cpus_per_task``;
        the script says where the number came from.
    time : str
        Wall-time limit (``HH:MM:SS``, minutes, or ``D-HH:MM:SS``).
    partition, account, mem_per_cpu : str or None
        Passed through when given.
    array : str or None
        Job-array spec (``0-9``, ``0-99%10``): each task takes every N-th line of
        ``list_file`` (N = task count) and writes ``<results stem>_<task id>.h5``.
    list_file : str or None
        One input path per line; added to the run as ``@list_file`` (array: its slice).
    results : str or None
        Output HDF5 added as ``-o`` (array: the base name of each task's output).
    signal_seconds : int
        Seconds before the time limit at which SLURM sends USR1 to the batch shell,
        which forwards it to the ranks so they stop cleanly (exit code 3).
    output : str
        SLURM log file pattern (``%x`` job name, ``%j`` job id, ``%a`` array task).
    python : str
        Python interpreter used by every rank (default: the one rendering the script).
    numba_cache_dir : str or None
        Exported as ``NUMBA_CACHE_DIR``: a folder shared by the ranks (and by later jobs).
        The script then runs ``hpcacq compile`` in the batch shell before ``srun``, which
        compiles every kernel once into that folder (or finds it already filled), so the
        ranks load the kernels instead of each compiling them. Nodes of another CPU type
        add their own entries when they first run; run ``hpcacq compile`` on one node of
        each type beforehand to avoid that.
    workdir : str or None
        ``--chdir`` of the job.

    Returns
    -------
    str
        The script (bash), ending with a newline.

    Raises
    ------
    ParameterError
        An option is out of range or inconsistent (array without list_file, ...).
    """
    if job_name is None:
        job_name = job_name_from_run_args(run_args, results)
    layout_note = ""
    if ntasks_per_node is None:
        checks.integer("cpus_per_task", cpus_per_task, 1)
        cpus, source = node_cpus(partition)
        ntasks_per_node = max(1, cpus // cpus_per_task)
        layout_note = (f"# Layout: {ntasks_per_node} rank(s) per node x {cpus_per_task} CPU(s) = a node of {cpus} CPUs, "
                       f"{source}.")
    _check(job_name, nodes, ntasks_per_node, cpus_per_task, time, array, list_file, signal_seconds)
    sbatch = {"job-name": job_name, "nodes": nodes, "ntasks-per-node": ntasks_per_node,
              "cpus-per-task": cpus_per_task, "time": time, "partition": partition, "account": account,
              "mem-per-cpu": mem_per_cpu, "array": array, "output": output, "chdir": workdir,
              "signal": f"B:USR1@{signal_seconds}" if signal_seconds else None}
    extra_env = f"export NUMBA_CACHE_DIR={shlex.quote(numba_cache_dir)}" if numba_cache_dir else ""
    path_line = ""
    if os.path.isabs(python):  # its bin folder holds hpcacq and mpiexec: put it first on PATH
        path_line = f'export PATH={shlex.quote(os.path.dirname(python))}:"$PATH"\n'
    parts = ["#!/bin/bash", *_sbatch_lines(sbatch), "# Rendered by `hpcacq slurm`; edit the options there, not here.",
             layout_note, _PRELUDE.format(path_line=path_line, extra_env=extra_env)]
    args = list(run_args)
    if array is not None:
        stem = os.path.splitext(results or "results.h5")[0]
        parts.append(_ARRAY_SLICE.format(stem=shlex.quote(stem), list_file=shlex.quote(list_file)))
        args_text = f'@"$slice" -o {shlex.quote(stem)}_"$SLURM_ARRAY_TASK_ID".h5 {_quote_all(args)}'.rstrip()
    else:
        head = ([f"@{list_file}"] if list_file else []) + (["-o", results] if results else [])
        args_text = _quote_all(head + args)
    if numba_cache_dir:
        parts.append(_PRECOMPILE.format(python=shlex.quote(python)))
    parts.append(_LAUNCH.format(python=shlex.quote(python), args=args_text))
    return "\n".join(part for part in parts if part != "")


def sbatch_options() -> tuple[str, ...]:
    """Names accepted by :func:`render_sbatch` (and in a TOML ``hpcacq slurm --config``)."""
    return tuple(inspect.signature(render_sbatch).parameters)


def render_sbatch_from_mapping(values: Mapping[str, Any]) -> str:
    """:func:`render_sbatch` from a mapping (e.g. a TOML table); ``-`` in names means ``_``.

    Raises
    ------
    ParameterError
        A name is not an option (the message lists the valid ones) or a value is bad.
    """
    valid = sbatch_options()
    options = {str(name).replace("-", "_"): value for name, value in values.items()}
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ParameterError(f"unknown SLURM option(s) {unknown}; valid options are {sorted(valid)}")
    return render_sbatch(**options)
