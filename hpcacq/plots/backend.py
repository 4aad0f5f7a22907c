"""matplotlib, imported only when a figure is made, with the Agg (file-only) canvas.

Figures are built as :class:`matplotlib.figure.Figure` objects with an Agg canvas attached,
never through ``pyplot``: no display is needed and no global figure state is kept.
"""

from __future__ import annotations

import os

from ..errors import HpcacqError, ParameterError

__all__ = ["MissingDependencyError", "new_figure", "save_figure", "FORMATS", "DPI"]

DPI = 100  # figure sizes are given in pixels; inches = pixels / DPI
FORMATS = (".png", ".pdf", ".svg")


class MissingDependencyError(HpcacqError):
    """An optional dependency (here matplotlib) is not installed."""


def _matplotlib():
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependencyError("plots need matplotlib: pip install 'hpcacq[plot]'") from None
    return matplotlib, Figure, FigureCanvasAgg


def new_figure(width_px: int, height_px: int):
    """An empty Figure of ``width_px`` x ``height_px`` pixels (at :data:`DPI`) on an Agg canvas."""
    _, figure_class, canvas_class = _matplotlib()
    fig = figure_class(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, layout="constrained")
    canvas_class(fig)
    return fig


def save_figure(fig, path: str | os.PathLike) -> str:
    """Write ``fig`` to ``path`` (.png, .pdf or .svg) at its own size; returns the path.

    Written under a temporary name and renamed, so a reader never sees half a file.
    """
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in FORMATS:
        raise ParameterError(f"cannot write {path!r}: the name must end in one of {', '.join(FORMATS)}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ParameterError(f"cannot write {path!r}: folder {folder!r} does not exist")
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp{suffix}")
    try:
        fig.savefig(tmp, dpi=DPI, format=suffix[1:])
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
