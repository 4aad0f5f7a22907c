"""``hpcacq bench``: files/s of the real pipeline for several rank x thread layouts."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ._common import UsageFailure, library_errors
from .run import ANALYSIS_NAMES, _parse_params

__all__ = ["bench"]


def _command_line(ctx: click.Context) -> list[str]:
    """The options of this invocation as a command line (for the JSON record)."""
    words = ["hpcacq", "bench"]
    for option in ctx.command.params:
        value = ctx.params.get(option.name)
        if ctx.get_parameter_source(option.name) is click.core.ParameterSource.DEFAULT:
            continue
        flag = option.opts[0]
        if isinstance(value, bool):
            words += [flag] if value else []
        elif isinstance(value, tuple):
            for item in value:
                words += [flag, str(item)]
        elif value is not None:
            words += [flag, str(value)]
    return words


@click.command()
@click.option("--layout", "layouts", multiple=True, metavar="RANKSxTHREADS",
              help="Ranks x cores per rank, repeatable (default: 1x1 and 2x1). Ranks > 1 use mpiexec.")
@click.option("--inputs", multiple=True, type=click.Path(),
              help="Benchmark these files/folders/globs/@lists instead of a synthetic corpus (repeatable).")
@click.option("--n-files", type=click.IntRange(min=1), default=64, show_default=True,
              help="Synthetic corpus: number of files.")
@click.option("--lines", "n_lines", type=click.IntRange(min=16), default=30000, show_default=True,
              help="Synthetic corpus: lines per file.")
@click.option("--pixels", "n_pixels", type=click.IntRange(min=4), default=38, show_default=True,
              help="Synthetic corpus: pixels per line.")
@click.option("--analysis", type=click.Choice(sorted(ANALYSIS_NAMES)), default="velocity", show_default=True,
              help="Analysis run on the whole image of every file.")
@click.option("--param", multiple=True, metavar="NAME=VALUE", help="Analysis parameter (repeatable).")
@click.option("--repeat", type=click.IntRange(min=1), default=1, show_default=True,
              help="Run each layout this many times and report the fastest run.")
@click.option("--reference", is_flag=True, default=False,
              help="Also time the scikit-image Radon reference on a sample of windows of one file.")
@click.option("--reference-windows", type=click.IntRange(min=1), default=150, show_default=True,
              help="Windows timed with the reference.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="Write the JSON record (docs/BENCH.md) to this file, '-' for stdout.")
@click.option("--workdir", type=click.Path(file_okay=False), default=None,
              help="Folder for the corpus, cache and outputs (kept; a matching corpus is reused). "
                   "Default: a temporary folder, removed afterwards.")
def bench(layouts: tuple[str, ...], inputs: tuple[str, ...], n_files: int, n_lines: int, n_pixels: int,
          analysis: str, param: tuple[str, ...], repeat: int, reference: bool, reference_windows: int,
          json_path: str | None, workdir: str | None) -> int:
    """Measure files/s of read + analysis + HDF5 write for rank x thread layouts.

    Runs the same driver as `hpcacq run` in child processes on a synthetic corpus
    sized like real data (or --inputs), after compiling the kernels into an empty
    Numba cache (JIT compile time) and loading them in a second process (warm start).
    Prints per layout: files/s, lines/s, wall time, seconds per stage, peak memory
    per rank and parallel efficiency against the 1-worker layout.

    \b
    Example:
      hpcacq bench --layout 1x1 --layout 2x1 --layout 1x2 --json bench.json
      hpcacq bench --inputs data/ --layout 1x1 --reference
    """
    from ..bench.run import BenchOptions, format_table, run_bench

    params = _parse_params(param)
    log_to = sys.stderr if json_path == "-" else sys.stdout
    with library_errors():
        options = BenchOptions(layouts=layouts or ("1x1", "2x1"), analysis=ANALYSIS_NAMES[analysis], params=params,
                               inputs=tuple(inputs), n_files=n_files, n_lines=n_lines, n_pixels=n_pixels,
                               repeat=repeat, reference=reference, reference_windows=reference_windows,
                               workdir=workdir, keep=workdir is not None)
        record: dict[str, Any] = run_bench(options, log=lambda line: click.echo(line, file=log_to),
                                           argv=_command_line(click.get_current_context()))
    if not all(lay["files_ok"] == lay["files"] for lay in record["layouts"]):
        raise UsageFailure("some files did not analyse OK; check the inputs with `hpcacq run` first")
    click.echo(format_table(record), file=log_to)
    if json_path is not None:
        text = json.dumps(record, indent=2)
        if json_path == "-":
            click.echo(text)
        else:
            with open(json_path, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
    return 0
