"""``hpcacq repair``: salvage the output of a killed or failed job (every intact shard kept)."""

from __future__ import annotations

import os

import click

from ._common import UsageFailure, library_errors

__all__ = ["repair"]


@click.command()
@click.argument("results", type=click.Path(dir_okay=False))
def repair(results: str) -> int:
    """Rebuild RESULTS (an .h5 of `hpcacq run`) from what a killed or failed job left.

    Keeps every intact shard of RESULTS.parts/ (a damaged root is rebuilt from them, an
    unreadable shard is set aside as .damaged and its files are missing: rerun the job
    with --resume to redo them), then writes one self-contained RESULTS. A closed,
    intact file is left as it is. The same happens at the start of `hpcacq run --resume`.

    \b
    Example:
      hpcacq repair out.h5 && hpcacq summary out.h5
    """
    from ..results import ResultsWriter
    from ..results.salvage import stored_job_attrs

    parts = results + ".parts"
    if not os.path.lexists(results) and not os.path.isdir(parts):
        raise UsageFailure(f"nothing to repair: neither {results} nor {parts} exists")
    with library_errors():
        writer = ResultsWriter(results, mode="resume", job_attrs=stored_job_attrs(results, parts))
        notes, n_files = list(writer.notes), len(writer._groups)
        writer.close()
    for note in notes:
        click.echo(f"repair: {note}")
    click.echo(f"{results}: {n_files} input files kept, one self-contained file"
               + ("" if notes else " (nothing was damaged)"))
    return 0
