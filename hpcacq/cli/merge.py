"""``hpcacq merge``: join several results files (e.g. a SLURM job array's) into one."""

from __future__ import annotations

import click

from ._common import library_errors

__all__ = ["merge"]


@click.command()
@click.argument("results", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(), help="The merged HDF5 results file.")
@click.option("--overwrite", is_flag=True,
              help="Replace OUTPUT if it exists, and keep the later RESULTS file's answer where two differ.")
def merge(results: tuple[str, ...], output: str, overwrite: bool) -> int:
    """Merge RESULTS files (.h5 written by `hpcacq run`) into one OUTPUT file.

    Every analysis of every input file is kept: velocity from one file and diameter from
    another end up side by side. The same analysis (file, ROI, analysis, channel) in several
    RESULTS: an OK result is never replaced by a failed one, identical answers are kept
    once, and different answers are refused unless --overwrite (then the last file given
    wins). Inputs may be closed or still linked (a killed job); they are only read.

    \b
    Example:
      hpcacq merge velocity_*.h5 -o velocity.h5     # after a job array
      hpcacq summary velocity.h5
    """
    from ..results.merge import merge_results

    with library_errors():
        report = merge_results(results, output, overwrite=overwrite, on_conflict="later" if overwrite else "refuse")
    click.echo(f"merged {len(report['inputs'])} results files into {output}: "
               f"{report['n_files']} input files, {report['n_rows']} manifest rows")
    if report["replaced"]:
        click.echo(f"{len(report['replaced'])} analyses were in several results; the later copy was kept")
    if report["kept_ok"]:
        click.echo(f"{len(report['kept_ok'])} analyses kept an earlier OK result over a later failure")
    if report["same"]:
        click.echo(f"{len(report['same'])} analyses were identical in several results (kept once)")
    return 0
