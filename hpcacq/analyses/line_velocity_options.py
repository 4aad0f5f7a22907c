"""Options of the line cross-correlation velocity analysis (:class:`LineVelocityOptions`); no NumPy.

The units of a file (``dx_um``, ``dt_s``) are not options: see
:class:`hpcacq.analyses.options.Units`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import checks
from .options import option, options_from_mapping

__all__ = ["LineVelocityOptions"]


@dataclass(frozen=True)
class LineVelocityOptions:
    """Validated options of the line cross-correlation velocity (one per job; no units).

    Each field's meaning, unit and range is its ``metadata["help"]`` (``hpcacq params
    line_velocity`` prints them). Build one from a dict with
    ``LineVelocityOptions.from_mapping({...})``, which rejects unknown names.
    """

    window_lines: int = option(
        32, "Lines per window, a multiple of 4 (>= 8); windows start every N/4 lines, as the Radon search's "
            "(default 32: on synthetic 7-pixel lines the median error of trusted windows is <= 0.9% from 32 lines on, "
            "1.4-1.8% at 16).",
        cli=True, low=8, metavar="N")
    background_lines: int = option(
        4096, "Each column's running mean over this many lines is subtracted first (static background); "
              "0 = each column's mean over the whole ROI (default 4096).", low=0)
    max_shift_px: int = option(
        0, "Largest shift searched between two lines, pixels; 0 (default) = min(n_pixels - min_overlap_px, 24). "
           "The fastest measurable speed is max_shift_px - 1 pixels per line.", low=0)
    min_overlap_px: int = option(
        3, "Pixels two shifted lines must share (default 3).", low=1)
    max_lag_lines: int = option(
        32, "Longest lag between the two lines of a pair, lines (default 32).", low=1)
    select_windows: int = option(
        15, "Windows in the running median of lag-1 peaks that chooses each window's lags (default 15).", low=1)
    min_peak_z: float = option(
        4.0, "Windows whose lag-1 correlation peak, as a z-score against uncorrelated noise (R * sqrt(pairs * "
             "overlapping pixels)), is below this get the weak_correlation flag and are NaN in "
             "velocity_clean_mm_s (default 4: white noise reaches it on <= 0.3% of windows; docs/QUALITY.md); "
             "0 disables it and common_mode.")
    clean_span_s: float = option(
        0.15, "Seconds of neighbouring windows the local outlier rule compares each window with "
              "(default 0.15, as radon_velocity's clean='local').")

    def __post_init__(self) -> None:
        object.__setattr__(self, "window_lines", checks.window_lines(self.window_lines, 8))
        for name, low, hint in (("background_lines", 0, "0: the whole ROI"), ("max_shift_px", 0, "0: automatic"),
                                ("min_overlap_px", 1, "e.g. 3"), ("max_lag_lines", 1, "e.g. 32"),
                                ("select_windows", 1, "e.g. 15")):
            object.__setattr__(self, name, checks.integer(name, getattr(self, name), low, hint))
        checks.non_negative("min_peak_z", self.min_peak_z, "4 is the default (docs/QUALITY.md), 0 disables the flags")
        checks.positive("clean_span_s", self.clean_span_s, "e.g. clean_span_s=0.15")
        if self.max_shift_px == 1:
            checks.fail("max_shift_px", "0 (automatic) or at least 2", 1, "a shift range of 1 pixel measures nothing")

    @property
    def step_lines(self) -> int:
        """Lines between the starts of consecutive windows."""
        return self.window_lines // 4

    @classmethod
    def from_mapping(cls, values) -> LineVelocityOptions:
        """Build from a dict, rejecting unknown names (see ``options_from_mapping``)."""
        return options_from_mapping(cls, values)
