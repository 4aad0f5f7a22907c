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


def _slurm_options(command):
    """Add one ``--option`` per parameter of render_sbatch (its signature is the list)."""
    from ..jobs.slurm import render_sbatch  # light: stdlib only

    for name, param in reversed(inspect.signature(render_sbatch).parameters.items()):
        if name == "run_args":
            continue
        kind = int if isinstance(param.default, int) else str
        default = None if param.default is inspect.Parameter.empty else param.default
        text = f"sbatch/script option {name} (default: {default})" if name != "python" else \
            "Python of every rank (default: this one)"
        command = click.option("--" + name.replace("_", "-"), name, type=kind, default=None, help=text)(command)
    return command


@click.command(context_settings={"ignore_unknown_options": True})
@_slurm_options
@click.option("--config", type=click.Path(dir_okay=False), default=None,
              help="TOML file with any of these options (command line wins).")
@click.argument("run_args", nargs=-1, type=click.UNPROCESSED)
def slurm(config: str | None, run_args: tuple[str, ...], **options: Any) -> int:
    """Print an sbatch script running `hpcacq run RUN_ARGS` over MPI ranks.

    Put the `hpcacq run` arguments after `--`. The script forwards scancel (TERM) and
    the pre-time-limit USR1 to the ranks, which stop cleanly (exit 3; --resume finishes).
    With --array and --list-file each array task runs its slice of the list and
    writes RESULTS_<task>.h5.

    \b
    Example:
      hpcacq slurm --job-name vel --nodes 2 --time 02:00:00 -- data/ -o out.h5 --analysis velocity > vel.sbatch
      hpcacq slurm --job-name big --array 0-9 --list-file files.txt --results out.h5 -- --analysis velocity
    """
    from ..jobs.slurm import render_sbatch_from_mapping

    values = {k: v for k, v in options.items() if v is not None}
    merged = dict(load_toml(config)) if config else {}
    merged.update(values)
    if run_args:
        merged["run_args"] = list(run_args)
    if "job_name" not in {k.replace("-", "_") for k in merged}:
        raise UsageFailure("missing --job-name (or job_name in the --config file)")
    with library_errors():
        text = render_sbatch_from_mapping(merged)
    click.echo(text, nl=False)
    return 0
