"""Figures of a results file (matplotlib, optional: ``pip install 'hpcacq[plot]'``).

matplotlib is imported only when a figure is drawn, and only with the Agg canvas (no
display needed)::

    from hpcacq.plots import file_figure, summary_figure, save_figure
    save_figure(file_figure("out.h5", "Capillary1_0001.tif", analysis="velocity"), "file.png")
    save_figure(summary_figure("out.h5"), "summary.png")

Modules: :mod:`.data` gathers what is drawn (no matplotlib), :mod:`.traces` draws one
analysis' table, :mod:`.figures` lays out the two figures, :mod:`.backend` imports
matplotlib and writes files.
"""

from .backend import MissingDependencyError, save_figure
from .data import file_plot_data, summary_rows
from .figures import file_figure, summary_figure

__all__ = ["file_figure", "summary_figure", "save_figure", "file_plot_data", "summary_rows",
           "MissingDependencyError"]
