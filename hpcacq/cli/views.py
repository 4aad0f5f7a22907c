"""``hpcacq info`` and ``hpcacq summary``: look at inputs and results (``export``: cli/export.py)."""

from __future__ import annotations

import collections

import click

from ..analyses.registry import HEADLINE
from ._common import library_errors, read_options

__all__ = ["info", "summary", "MEASUREMENT"]

#: The column whose per-file median `hpcacq summary` shows, per analysis.
MEASUREMENT = dict(HEADLINE)


@click.command()
@click.argument("file", type=click.Path())
@click.option("--dx-um", type=float, default=None, help="Micrometres per pixel (overrides headers).")
@click.option("--dt-s", type=float, default=None, help="Seconds per line (overrides headers).")
@read_options
def info(file: str, dx_um: float | None, dt_s: float | None, transpose: bool, axes: str | None) -> int:
    """Show shape, channels, dtype, units (and where they came from) and ROIs of FILE,
    read as `hpcacq run` reads it (a file refused for its orientation or page layout is
    refused here with the same message).

    \b
    Example:
      hpcacq info data/velocity_0000.tif
      hpcacq info scan_stored_sideways.tif --transpose
    """
    from ..model import AcqImage

    with library_errors():
        image = AcqImage.open(file, dx_um=dx_um, dt_s=dt_s, transpose=transpose, axes=axes)
    source = image.header.get("units_source") or "none"
    n_lines, n_pixels = image.shape
    click.echo(f"file      {image.source}")
    click.echo(f"shape     {n_lines} lines (time, axis 0) x {n_pixels} pixels (space, axis 1)")
    click.echo(f"channels  {image.n_channels} (0-based: 0..{image.n_channels - 1})")
    click.echo(f"dtype     {image.dtype}")
    overridden = " (--dx-um/--dt-s given)" if dx_um is not None or dt_s is not None else ""
    click.echo(f"dx_um     {image.dx_um if image.dx_um is not None else 'unknown: pass --dx-um'}")
    click.echo(f"dt_s      {image.dt_s if image.dt_s is not None else 'unknown: pass --dt-s'}")
    click.echo(f"units     from {source}{overridden}")
    rois = list(image.rois)
    click.echo(f"rois      {len(rois)}")
    for roi in rois:
        r0, r1, c0, c1 = roi.bounds
        click.echo(f"  roi {roi.roi_id}: rows [{r0}, {r1}) x cols [{c0}, {c1})")
    return 0


def _row_key(row: dict) -> tuple:
    """Sort key of a manifest row: by file, analysis, channel, ROI (the whole image first)."""
    return (row["file"], row["analysis"], row["channel"], -1 if row["roi_id"] is None else row["roi_id"])


def _medians(path: str) -> dict[tuple, tuple[float, str | None]]:
    """Per (file, analysis, channel, roi): the median of the measurement column and the
    quality line of the stored summary (:mod:`.quality_view`)."""
    import numpy as np

    from ..results import iter_results
    from .quality_view import quality_line

    out = {}
    for meta, result in iter_results(path):
        column = MEASUREMENT.get(meta["analysis"])
        values = result.columns.get(column)
        if values is not None:
            finite = np.asarray(values, dtype=float)
            finite = finite[np.isfinite(finite)]
            median = float(np.median(finite)) if finite.size else float("nan")
            out[(meta["file"], meta["analysis"], meta["channel"], meta["roi_id"])] = (
                median, quality_line(result.summary, list(result.flag_bits)))
    return out


@click.command()
@click.argument("results", type=click.Path())
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="Also write the per-file table (outcome, message, median and quality figures) as CSV to this "
                   "file; '-' writes only the CSV, to stdout.")
def summary(results: str, csv_path: str | None) -> int:
    """Show the job, outcome counts, failed files and per-file medians and quality of RESULTS (.h5).

    Per file: the median of the measurement (velocity: over trusted windows, the
    cleaned velocity), the fraction of trusted windows, of NaN and of each flag that
    fired, and a WARNING line when the measurement is doubtful (docs/QUALITY.md).
    Exits 1 when some file is not OK (FAILED, SKIPPED or CANCELLED), else 0.

    \b
    Example:
      hpcacq summary out.h5
      hpcacq summary out.h5 --csv summary.csv
    """
    if csv_path is not None:
        from .summary_csv import summary_csv

        code = summary_csv(results, csv_path)
        if csv_path == "-":
            return code
    from ..results import read_job_attrs, read_manifest
    from .quality_view import doubtful_reason

    with library_errors():
        attrs = read_job_attrs(results)
        rows = read_manifest(results)
        medians = _medians(results)
    click.echo(f"results   {results} ({attrs['layout']}, created {attrs['created_utc']})")
    for name, value in sorted(attrs["job"].items()):
        click.echo(f"job.{name:<10} {value}")
    counts = collections.Counter(row["outcome"] for row in rows)
    click.echo("outcomes  " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no files"))
    bad = sorted((row for row in rows if row["outcome"] != "OK"), key=_row_key)
    for row in bad:
        click.echo(f"  {row['outcome']} {row['file']!r}: {row['message']}")
    doubtful = 0
    for row in sorted(rows, key=_row_key):  # by file, not by completion order: runs compare line by line
        key = (row["file"], row["analysis"], row["channel"], row["roi_id"])
        if key in medians:
            median, quality = medians[key]
            click.echo(f"  {row['file']!r} ch{row['channel']} roi {row['roi_id']}: "
                       f"median {MEASUREMENT[row['analysis']]} = {median:.4g}")
            if quality:
                click.echo(f"      quality: {quality}")
            why = doubtful_reason(row.get("message"))
            if why:
                doubtful += 1
                click.echo(f"      WARNING doubtful: {why}")
    if doubtful:
        click.echo(f"doubtful  {doubtful} OK result(s) whose measurement should not be trusted as is "
                   f"(see WARNING lines; docs/QUALITY.md)")
    return 1 if bad else 0
