"""``hpcacq validate``: measured answers of a synthetic corpus beside the true ones."""

from __future__ import annotations

import math

import click

from ._common import library_errors

__all__ = ["validate"]


@click.command()
@click.argument("results", type=click.Path())
@click.option("--truth", required=True, type=click.Path(exists=True),
              help="Corpus folder written by `hpcacq synth` (or its truth.json).")
@click.option("--tolerance", type=click.FloatRange(min=0), default=0.05, show_default=True,
              help="Largest relative error of a file's median accepted.")
def validate(results: str, truth: str, tolerance: float) -> int:
    """Compare RESULTS of a synthetic corpus with its known velocities or diameters.

    Prints, per file, the true value, the median measured one and the relative error; exits
    with 1 when a file is missing, not OK, or off by more than --tolerance. Use it to check an
    installation (or a new cluster) gives the right answers before a real study.

    \b
    Example:
      hpcacq synth data --n-files 8 --kind velocity
      hpcacq run data -o out.h5 --analysis velocity
      hpcacq validate out.h5 --truth data
    """
    from ..synth.check import compare_with_truth

    with library_errors():
        rows = compare_with_truth(results, truth)
    bad = 0
    click.echo(f"{'file':<28} {'outcome':<10} {'true':>12} {'measured':>12} {'rel.err':>8}")
    for row in rows:
        ok = row["outcome"] == "OK" and math.isfinite(row["rel_error"]) and row["rel_error"] <= tolerance
        bad += not ok
        click.echo(f"{row['file']:<28} {row['outcome']:<10} {row['true']:>12.5g} {row['measured']:>12.5g} "
                   f"{row['rel_error'] * 100:>7.2f}%{'' if ok else '  <-- off'}")
    unit = rows[0]["unit"] if rows else ""
    click.echo(f"{len(rows) - bad} of {len(rows)} files within {tolerance:.0%} of the truth (values in {unit})")
    return 1 if bad else 0
