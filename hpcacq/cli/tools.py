"""``hpcacq synth`` (synthetic data with known answers) and ``hpcacq slurm`` (sbatch scripts)."""

from __future__ import annotations

import inspect
from typing import Any

import click

from ._common import UsageFailure, library_errors, load_toml

__all__ = ["synth", "slurm"]


@click.command()
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--n-files", type=click.IntRange(min=1), default=8, show_default=True, help="Number of files.")
@click.option("--kind", type=click.Choice(["velocity", "diameter"]), default="velocity", show_default=True,
              help="Moving-cell streaks (velocity) or a vessel band (diameter).")
@click.option("--n-lines", type=click.IntRange(min=1), default=30000, show_default=True, help="Lines (time) per file.")
@click.option("--n-pixels", type=click.IntRange(min=1), default=None, help="Pixels (space) per line [38 / 48].")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same files.")
@click.option("--overwrite", is_flag=True, default=False, help="Write into a folder that already holds a corpus.")
def synth(folder: str, n_files: int, kind: str, n_lines: int, n_pixels: int | None, seed: int, overwrite: bool) -> int:
    """Write synthetic line scans with known answers (truth.json) into FOLDER.

    \b
    Example:
      hpcacq synth data --n-files 8 --kind velocity --n-lines 5000 --seed 1
    """
    from ..synth.corpus import write_corpus

    with library_errors():
        paths = write_corpus(folder, n_files=n_files, kind=kind, n_lines=n_lines, n_pixels=n_pixels,
                             seed=seed, overwrite=overwrite)
    click.echo(f"wrote {len(paths)} {kind} files and truth.json into {folder}")
    return 0


#: Help of each ``hpcacq slurm`` option, in words (a test checks every render_sbatch parameter has one).
SLURM_HELP = {
    "job_name": "Name of the job in squeue and in the log file name. Default: from the results file, "
                "e.g. -o velocity.h5 gives hpcacq-velocity.",
    "nodes": "Number of nodes (computers) of the job. Default: 1.",
    "ntasks_per_node": "MPI ranks started on each node. Default: fill the node: its CPUs (asked to sinfo, "
                       "else this machine's) divided by --cpus-per-task.",
    "cpus_per_task": "CPU cores of each rank; its thread pool uses them (files at once x threads per file). "
                     "Default: 1.",
    "time": "Wall-time limit, HH:MM:SS, minutes or D-HH:MM:SS; the job stops cleanly before it "
            "(see --signal-seconds). Default: 01:00:00.",
    "partition": "SLURM partition (queue) to submit to. Default: the cluster's default partition.",
    "account": "Account charged for the job. Default: your default account.",
    "mem_per_cpu": "Memory per CPU, e.g. 2G. Default: the cluster's default.",
    "array": "Job array range such as 0-9 or 0-99%10 (at most 10 running); each task takes every "
             "N-th line of --list-file. Default: no array.",
    "list_file": "File with one input path per line, passed to the run as @FILE (arrays: each task "
                 "its slice). Default: none (inputs come after --).",
    "results": "Results file added to the run as -o (arrays: each task writes STEM_<task>.h5). "
               "Default: none (give -o after --).",
    "signal_seconds": "Seconds before the time limit at which SLURM asks the job to stop: running "
                      "files finish and are written, exit code 3, --resume completes it. Default: 120.",
    "output": "SLURM log file (%x job name, %j job id, %A/%a array job/task). Default: slurm-%x-%j.out.",
    "python": "Python interpreter of every rank. Default: the one running this command.",
    "numba_cache_dir": "Shared folder for compiled kernels; the script runs `hpcacq compile` into it "
                       "before the ranks start. Default: none (each rank's default cache).",
    "workdir": "Folder the job runs in (relative paths start there). Default: the folder you submit from.",
}


def _slurm_options(command):
    """Add one ``--option`` per parameter of render_sbatch (its signature is the list)."""
    from ..jobs.slurm import render_sbatch  # light: stdlib only

    for name, param in reversed(inspect.signature(render_sbatch).parameters.items()):
        if name == "run_args":
            continue
        kind = int if isinstance(param.default, int) or name == "ntasks_per_node" else str
        text = SLURM_HELP.get(name, f"render_sbatch option {name} (default: {param.default})")
        command = click.option("--" + name.replace("_", "-"), name, type=kind, default=None, help=text)(command)
    return command


def _discard_empty_redirect() -> str:
    """After an error: remove the empty file the shell made for ``> job.sbatch``; say so."""
    import os
    import stat

    try:
        info = os.fstat(1)
        target = os.readlink("/proc/self/fd/1")
    except OSError:
        return ""
    if stat.S_ISREG(info.st_mode) and info.st_size == 0 and os.path.isfile(target):
        try:
            os.unlink(target)
        except OSError:
            return ""
        return f" (removed the empty {target} that `>` had created)"
    return ""


@click.command(context_settings={"ignore_unknown_options": True})
@_slurm_options
@click.option("--config", type=click.Path(dir_okay=False), default=None,
              help="TOML file with any of these options (command line wins).")
@click.argument("run_args", nargs=-1, type=click.UNPROCESSED)
def slurm(config: str | None, run_args: tuple[str, ...], **options: Any) -> int:
    """Print an sbatch script running `hpcacq run RUN_ARGS` over MPI ranks.

    Put the `hpcacq run` arguments after `--`; nothing else is needed: the job is named
    after the results file and fills one node with ranks. The script forwards scancel
    (TERM) and the pre-time-limit USR1 to the ranks, which stop cleanly (exit 3;
    --resume finishes). With --array and --list-file each array task runs its slice of
    the list and writes RESULTS_<task>.h5.

    \b
    Example:
      hpcacq slurm -- data/ -o out.h5 > job.sbatch
      hpcacq slurm --nodes 2 --time 02:00:00 -- data/ -o out.h5 --analysis velocity > vel.sbatch
      hpcacq slurm --array 0-9 --list-file files.txt --results out.h5 -- --analysis velocity
    """
    from ..jobs.slurm import output_from_run_args, render_sbatch_from_mapping

    try:
        values = {k: v for k, v in options.items() if v is not None}
        merged = dict(load_toml(config)) if config else {}
        merged.update(values)
        if run_args:
            merged["run_args"] = list(run_args)
        with library_errors():
            text = render_sbatch_from_mapping(merged)  # unknown or bad options first
        keys = {str(k).replace("-", "_"): v for k, v in merged.items()}
        if not keys.get("results") and not output_from_run_args(keys.get("run_args") or ()):
            raise UsageFailure("the job needs a results file: give it after --, e.g. "
                               "`hpcacq slurm -- data/ -o out.h5`, or --results out.h5")
    except UsageFailure as exc:
        exc.message += _discard_empty_redirect()
        raise
    click.echo(text, nl=False)
    return 0
