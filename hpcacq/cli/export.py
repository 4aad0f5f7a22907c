"""``hpcacq export``: results as CSV tables with a data dictionary (columns.json)."""

from __future__ import annotations

import click

from ._common import UsageFailure, library_errors

__all__ = ["export"]


@click.command()
@click.argument("results", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["csv"]), default="csv", show_default=True, help="Output format.")
@click.option("-o", "--output", "folder", type=click.Path(file_okay=False), required=True,
              help="Folder for the CSV files and columns.json (created if needed).")
@click.option("--single", is_flag=True, default=False,
              help="One table per analysis (radon_velocity.csv, diameter.csv) instead of one CSV per input "
                   "file and analysis.")
@click.option("--kymflow-columns", "kymflow", is_flag=True, default=False,
              help="Also write kymflow's column names: delx (um/px), delt (s/line), numLines, pntsPerLine.")
def export(results: str, fmt: str, folder: str, single: bool, kymflow: bool) -> int:
    """Export every OK result of RESULTS (.h5) as CSV tables into a folder.

    One CSV per input file and analysis (<file stem>.<analysis>.csv; --single: one
    table per analysis), one row per window (velocity) or line (diameter). Each row
    has the file, channel, ROI id and bounds, dx_um, dt_s and the window, then the
    measurements (velocity_mm_s, ... or diameter_um, ...) and one True/False column per
    flag (flag_theta_90, ...). columns.json gives the unit and meaning of every column.

    \b
    Example:
      hpcacq export out.h5 --format csv -o out_csv
      python -c "import pandas as pd; print(pd.read_csv('out_csv/radon_velocity.csv'))"  # after --single
    """
    del fmt  # only csv for now
    from ..results.csv_export import export_tables

    with library_errors():
        written = export_tables(results, folder, single=single, kymflow=kymflow)
    if not written:
        raise UsageFailure(f"{results} holds no OK result to export; `hpcacq summary {results}` tells why")
    for path in written:
        click.echo(path)
    click.echo(f"{len(written)} table(s); units and meanings of the columns: {folder.rstrip('/')}/columns.json")
    return 0
