"""``hpcacq plot``: a PNG of one file's kymograph and traces, or of the whole batch."""

from __future__ import annotations

import re

import click

from ..analyses.registry import ALIASES
from ._common import UsageFailure, library_errors

__all__ = ["plot"]


def _size(ctx, param, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", value)
    if not match or not (200 <= int(match[1]) <= 20000 and 150 <= int(match[2]) <= 20000):
        raise click.BadParameter(f"{value!r} is not WIDTHxHEIGHT in pixels (e.g. 1600x900; 200..20000 x 150..20000)")
    return int(match[1]), int(match[2])


def _time_range(ctx, param, value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        start, end = (float(part) for part in value.split(":"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not START:END in seconds (e.g. 10:12)") from None
    if not 0 <= start < end:
        raise click.BadParameter(f"{value!r}: need 0 <= START < END (seconds from the first line)")
    return start, end


@click.command()
@click.argument("results", type=click.Path())
@click.argument("file", required=False)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Image to write: .png (or .pdf, .svg).")
@click.option("--summary", "overview", is_flag=True, help="One row per file instead of one file's kymograph.")
@click.option("--analysis", type=click.Choice(list(ALIASES)), default=None,
              help="Which analysis to draw (default: every one of FILE; the most frequent with --summary).")
@click.option("--channel", type=click.IntRange(min=0), default=None, help="Only this channel (0-based).")
@click.option("--roi-id", type=int, default=None, help="Only this ROI id.")
@click.option("--time", "time_range", callback=_time_range, metavar="START:END", default=None,
              help="Zoom on this time range (seconds from the first line); not with --summary.")
@click.option("--size", callback=_size, metavar="WxH", default=None,
              help="Image size in pixels [default: 1600x900; --summary: 1100 wide, 22 px per row].")
def plot(results: str, file: str | None, output: str, overview: bool, analysis: str | None, channel: int | None,
         roi_id: int | None, time_range, size) -> int:
    """Draw RESULTS (.h5): one input FILE, or with --summary the whole batch, into an image.

    The file figure shows the kymograph (time across, space up; long files are averaged over
    blocks of lines for display) with its ROIs, then each analysis under it on the same time
    axis: velocity raw and cleaned, or diameter per line, and a strip marking flagged
    windows/lines per flag. FILE is the input path as `hpcacq summary` shows it, or its base
    name; default: the first file (by path) with an OK analysis. When the input file is gone or changed
    since the run, only the traces are drawn and the title says so.

    The summary figure has one row per file: median with interquartile whiskers, and the
    outcome (OK, FAILED, SKIPPED, CANCELLED) as marker and colour.

    Needs matplotlib: pip install 'hpcacq[plot]'.

    \b
    Example:
      hpcacq plot out.h5 -o file.png
      hpcacq plot out.h5 Capillary1_0001.tif --analysis velocity --time 10:12 -o zoom.png
      hpcacq plot out.h5 --summary -o batch.png
    """
    from ..plots import file_figure, save_figure, summary_figure

    if overview and file is not None:
        raise UsageFailure(f"--summary draws every file; drop FILE ({file!r}) or drop --summary")
    if overview and time_range is not None:
        raise UsageFailure("--time zooms on one file's kymograph; it does not apply with --summary")
    with library_errors():
        if overview:
            fig = summary_figure(results, analysis=analysis, channel=channel, roi_id=roi_id, size=size)
        else:
            fig = file_figure(results, file, analysis=analysis, channel=channel, roi_id=roi_id,
                              time_range=time_range, size=size or (1600, 900))
        save_figure(fig, output)
    width, height = (round(v) for v in fig.get_size_inches() * fig.dpi)
    click.echo(f"wrote {output} ({width} x {height} px)")
    for note in getattr(fig, "hpcacq_notes", []):
        click.echo(f"  note: {note}")
    return 0
