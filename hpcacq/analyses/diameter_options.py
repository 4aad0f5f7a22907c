"""Options of the vessel diameter analysis (:class:`DiameterOptions`); cheap to import (no NumPy).

The units of a file (``dx_um``, ``dt_s``) are not options: see
:class:`hpcacq.analyses.options.Units`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import checks
from ..errors import ParameterError
from .options import option, options_from_mapping

__all__ = ["DiameterOptions", "METHODS", "BINNINGS", "POLARITIES", "THRESHOLD_MODES"]

METHODS = ("halfmax", "fit", "gradient")
BINNINGS = ("mean", "median")
POLARITIES = ("bright", "dark")
THRESHOLD_MODES = ("halfmax", "absolute")
_NON_NEGATIVE = (("gradient_sigma_px", "e.g. 1.5 (0 = no smoothing)"),
                 ("gradient_min_strength", "intensity per pixel, e.g. 0 (off)"),
                 ("max_edge_shift_um", "e.g. 2.0"), ("max_diameter_change_um", "e.g. 2.0"),
                 ("max_center_shift_um", "e.g. 2.0"))


def _odd(name: str, value, hint: str) -> int:
    k = checks.integer(name, value, 1, hint)
    if k % 2 == 0:
        raise ParameterError(f"{name} must be odd (centred on the line), got {k}; use {k - 1} or {k + 1}")
    return k


@dataclass(frozen=True)
class DiameterOptions:
    """Validated options of the vessel diameter analysis (one per job; no units).

    Each field's meaning, unit and range is its ``metadata["help"]`` (``hpcacq params
    diameter`` prints them). Build one from a dict with ``DiameterOptions.from_mapping({...})``,
    which rejects unknown names.
    """

    window_rows: int = option(
        5, "Lines averaged around each measured line, odd (>= 1), as kymflow's 5; clipped to the lines that "
           "exist at the block's first and last lines.", cli=True, low=1, metavar="N")
    binning: str = option("mean", "How the window_rows lines are combined: 'mean' or 'median'.", choices=BINNINGS)
    method: str = option(
        "halfmax", "halfmax = sub-pixel half-maximum edges; fit = blurred top-hat profile fit (narrow vessels, "
                   "about 30x slower); gradient = steepest rise and fall of the smoothed profile.",
        cli=True, choices=METHODS)
    polarity: str = option(
        "bright", "Lumen brighter (fluorescent plasma, 'bright', default) or darker ('dark') than the background "
                  "(the profile is flipped).", cli=True, choices=POLARITIES)
    baseline_percentile: float = option(
        10.0, "Percentile (0-100) of the binned profile taken as the background level (default 10); the "
              "threshold is half-way between it and peak_percentile's level.")
    peak_percentile: float = option(
        100.0, "Percentile (0-100) of the binned profile taken as the lumen level (default 100, the maximum; "
               "kymflow uses 90).")
    max_iter: int = option(50, "Largest number of Levenberg-Marquardt steps per line (fit only, default 50).")
    min_fit_r2: float = option(0.9, "Fits with R^2 below this are flagged fit_poor (fit only, default 0.9).")
    stride: int = option(
        1, "Analyse every stride-th line only (lines 0, stride, 2 stride, ... of the block; default 1 = every "
           "line). Each analysed line is binned with its own neighbours, so the rows are exactly the stride=1 "
           "rows at those lines.")
    threshold_mode: str = option(
        "halfmax", "method='halfmax' only: threshold half-way between baseline and peak ('halfmax', default), "
                   "or the fixed intensity threshold_value ('absolute').", choices=THRESHOLD_MODES)
    threshold_value: float | None = option(
        None, "Absolute threshold, in the image's intensity units (of the binned profile): the lumen is where "
              "the profile is >= it (polarity 'bright') or <= it ('dark'). Required with "
              "threshold_mode='absolute'.")
    gradient_sigma_px: float = option(
        1.5, "method='gradient': sigma (pixels, >= 0; 0 = no smoothing) of the Gaussian that smooths the binned "
             "profile before its derivative is taken (default 1.5).")
    gradient_min_strength: float = option(
        0.0, "method='gradient': an edge whose derivative peak is below this (intensity units per pixel, >= 0) "
             "is not trusted: NaN and flagged weak_edge (default 0: off).")
    motion_gating: bool = option(
        False, "Reject an edge that moved more than max_edge_shift_um, or both edges when the diameter changed "
               "more than max_diameter_change_um or the centre moved more than max_center_shift_um, from the "
               "last accepted line (limits are per analysed line, times the number of analysed lines since "
               "that line). Rejected edges are NaN and flagged motion_rejected. Default False.")
    max_edge_shift_um: float = option(2.0, "Motion-gating limit of one edge's move, um per analysed line "
                                           "(>= 0, default 2.0).")
    max_diameter_change_um: float = option(2.0, "Motion-gating limit of the diameter's change, um per analysed "
                                                "line (>= 0, default 2.0).")
    max_center_shift_um: float = option(2.0, "Motion-gating limit of the centre's move, um per analysed line "
                                             "(>= 0, default 2.0).")
    post_filter_lines: int = option(
        1, "Odd length (in analysed lines) of a running median of the diameter, reported in the extra columns "
           "diameter_filtered_px / diameter_filtered_um; NaN lines stay NaN and are left out of their "
           "neighbours' medians. 1 = off (default).")

    def __post_init__(self) -> None:
        object.__setattr__(self, "window_rows",
                           _odd("window_rows", self.window_rows, "use an odd number of lines such as 1, 3 or 5"))
        checks.one_of("binning", self.binning, BINNINGS)
        checks.one_of("method", self.method, METHODS)
        checks.one_of("polarity", self.polarity, POLARITIES)
        q_lo = checks.number("baseline_percentile", self.baseline_percentile, "e.g. 10")
        q_hi = checks.number("peak_percentile", self.peak_percentile, "e.g. 100")
        if not 0.0 <= q_lo < q_hi <= 100.0:
            raise ParameterError(
                f"need 0 <= baseline_percentile < peak_percentile <= 100, got {q_lo} and {q_hi}; "
                f"kymflow uses 10 and 90")
        object.__setattr__(self, "baseline_percentile", q_lo)
        object.__setattr__(self, "peak_percentile", q_hi)
        object.__setattr__(self, "max_iter", checks.integer("max_iter", self.max_iter, 1, "e.g. 50"))
        r2 = checks.number("min_fit_r2", self.min_fit_r2, "e.g. 0.9")
        if r2 > 1.0:
            checks.fail("min_fit_r2", "<= 1 (R^2 never exceeds 1)", r2)
        object.__setattr__(self, "min_fit_r2", r2)
        self._check_options()

    def _check_options(self) -> None:
        """Validate the stride, threshold, gradient, motion-gating and post-filter options."""
        object.__setattr__(self, "stride", checks.integer("stride", self.stride, 1, "e.g. 1 (every line) or 10"))
        checks.one_of("threshold_mode", self.threshold_mode, THRESHOLD_MODES)
        if self.threshold_mode == "absolute":
            if self.method != "halfmax":
                raise ParameterError(f"threshold_mode='absolute' applies to method='halfmax', not {self.method!r}")
            if self.threshold_value is None:
                raise ParameterError("threshold_mode='absolute' needs threshold_value= (intensity of the lumen edge)")
        elif self.threshold_value is not None:
            raise ParameterError("threshold_value is used only with threshold_mode='absolute'; set that too, "
                                 "or leave threshold_value out")
        object.__setattr__(self, "threshold_value",
                           checks.optional(checks.number, "threshold_value", self.threshold_value,
                                           "an intensity, e.g. 500"))
        for name, hint in _NON_NEGATIVE:
            object.__setattr__(self, name, checks.non_negative(name, getattr(self, name), hint))
        object.__setattr__(self, "motion_gating", checks.flag("motion_gating", self.motion_gating))
        object.__setattr__(self, "post_filter_lines",
                           _odd("post_filter_lines", self.post_filter_lines, "an odd number such as 1 (off), 3 or 5"))

    @classmethod
    def from_mapping(cls, values) -> DiameterOptions:
        """Build from a dict, rejecting unknown names (see ``options_from_mapping``)."""
        return options_from_mapping(cls, values)
