"""``hpcacq compile``: fill the Numba cache once, before a job's ranks start."""

from __future__ import annotations

import json
import os
from typing import Any

import click

from ..analyses.registry import ALIASES
from ._common import UsageFailure, library_errors

__all__ = ["compile_kernels"]


@click.command(name="compile")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="Numba cache folder (sets NUMBA_CACHE_DIR); default: $NUMBA_CACHE_DIR, "
                   "else __pycache__ beside the kernels.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="Also write the report as JSON to this file ('-' for stdout, no table).")
@click.option("--analysis", "analyses", multiple=True, type=click.Choice(list(ALIASES)),
              help="Only the kernels of this analysis (repeatable; default all).")
@click.option("-v", "--verbose", is_flag=True, default=False, help="List every kernel signature.")
def compile_kernels(cache_dir: str | None, json_path: str | None, analyses: tuple[str, ...], verbose: bool) -> int:
    """Compile every kernel signature that runs use into the Numba cache.

    Runs each analysis with every option that selects different kernels on small
    synthetic blocks, so later processes (MPI ranks, array tasks) load machine code
    from the cache instead of compiling. Run it once per machine type, before the job,
    with the NUMBA_CACHE_DIR the job uses. A second run finds the cache and is fast.

    \b
    Example:
      hpcacq compile --cache-dir /shared/numba_cache
      export NUMBA_CACHE_DIR=/shared/numba_cache && hpcacq compile
    """
    import sys

    if cache_dir is not None:
        cache_dir = os.path.abspath(cache_dir)
        if "numba" in sys.modules:
            import numba

            if os.path.abspath(numba.config.CACHE_DIR or ".") != cache_dir:
                raise UsageFailure(f"numba is already imported in this process with another cache folder; run "
                                   f"`NUMBA_CACHE_DIR={cache_dir} hpcacq compile` in a fresh process")
        os.makedirs(cache_dir, exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = cache_dir
    from ..jobs.precompile import precompile

    with library_errors():
        report = precompile(cache_dir, analyses=tuple(dict.fromkeys(ALIASES[a] for a in analyses)) or None)
    data: dict[str, Any] = report.as_dict()
    if json_path is not None:
        text = json.dumps(data, indent=2)
        if json_path == "-":
            click.echo(text)
            return 0
        with open(json_path, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    click.echo(f"numba cache: {report.cache_dir} ({report.index_files} index files)")
    if verbose:
        for kernel in report.kernels:
            for signature in kernel.signatures:
                click.echo(f"  {kernel.name}({signature})")
    if report.from_cache:
        click.echo(f"found the cache ({report.index_files} kernels cached): {report.loaded} signatures of the "
                   f"{len(report.kernels)} kernels a run calls loaded in {report.seconds:.2f} s (the other kernels "
                   "are compiled into them), nothing compiled")
    else:
        click.echo(f"compiled {report.compiled} signatures of {len(report.kernels)} kernels in {report.seconds:.1f} s"
                   + (f" ({report.loaded} loaded from the cache)" if report.loaded else "")
                   + f"; the cache holds {report.index_files} kernels")
    return 0
