"""Options of the Radon velocity analysis (:class:`RadonOptions`); cheap to import (no NumPy).

The units of a file (``dx_um``, ``dt_s``) are not options: see
:class:`hpcacq.analyses.options.Units`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import checks
from .options import option, options_from_mapping

__all__ = ["RadonOptions", "SCORES", "SCORE_ENERGY_POWER", "CLEAN_METHODS", "BACKGROUND_MODES"]

SCORES = ("variance", "path_normalized", "balanced")
#: Each score's power of the uniform projection energy the variance is divided by
#: (``hpcacq.kernels.radon.radon_windows``; calibrated in docs/QUALITY.md, "Scores on narrow lines").
SCORE_ENERGY_POWER = {"variance": 0.0, "path_normalized": 1.0, "balanced": 0.75}
CLEAN_METHODS = ("local", "kymflow", "kymflow_3pt")
BACKGROUND_MODES = ("auto", "none", "always")


@dataclass(frozen=True)
class RadonOptions:
    """Validated options of the Radon velocity analysis (one per job; no units).

    Each field's meaning, unit and range is its ``metadata["help"]`` (``hpcacq params
    velocity`` prints them). Build one from a dict with ``RadonOptions.from_mapping({...})``,
    which rejects unknown names.
    """

    window_lines: int = option(
        16, "Lines per Radon window, a multiple of 4 (>= 4); windows start every N/4 lines (16 is "
            "kymflow's).", cli=True, low=4, metavar="N")
    min_separability: float = option(
        1.5, "Windows whose separability (variance at the best angle / mean variance over the coarse angles) "
             "is below this get the low_separability flag and are NaN in velocity_clean_mm_s (default 1.5, "
             "calibrated in docs/QUALITY.md; Drew et al.'s 3 flags most good windows of narrow real scans).")
    clean_sd: float = option(2.0, "SD cut of the kymflow recipes (default 2, as kymflow).")
    score: str = option(
        "variance", "'variance' (default) scores an angle by the variance of its projection, as kymflow and "
                    "Drew et al. Paths through a non-square window differ in length and longer ones gain "
                    "variance: slow speeds read high on wide lines at W=16 (about +3.5% at 0.3 px/line on 38 "
                    "pixels) and narrow lines read low (7 pixels: 5-17% slow). 'path_normalized' divides each "
                    "angle's variance by the projection energy of a uniform window at that angle: within 0.5% "
                    "at W=16 on wide lines, but 2-6% fast on 7-pixel lines. 'balanced' divides by that "
                    "energy to the power 0.75: median velocity within 3% on 12-150 pixels, per-window median "
                    "error 1.6-2.7% on 7-pixel lines cut from a wider scan; not the default: it is not "
                    "kymflow's answer, and on the real 7-pixel files it reads 14-25% above kymflow (docs/QUALITY.md, 'Scores on narrow lines').",
        choices=SCORES)
    clean: str = option(
        "local", "Cleaning recipe for velocity_clean_mm_s (see hpcacq.analyses.cleaning): 'local' (default) "
                 "removes values far from their neighbours' median and keeps slow changes; 'kymflow' is "
                 "kymflow's current +-clean_sd SD cut and 5-point median, 'kymflow_3pt' its older 3-point one.",
        choices=CLEAN_METHODS)
    clean_span_s: float = option(
        0.15, "Time span of the neighbourhood of the 'local' recipe, seconds (default 0.15; at least 7 "
              "windows): shorter than a stall or a physiological slow-down, longer than a spike.")
    clean_mad: float = option(4.0, "Cut of the 'local' recipe in robust SDs (1.4826 MAD) (default 4).")
    background: str = option(
        "auto", "Static background removal before the angle search (each column's running mean over "
                "background_lines lines is subtracted). 'auto' (default) re-analyses only the windows whose "
                "plain best angle is 0 (locked on structure that does not move), so every other window is "
                "kymflow's number; 'none' is kymflow's plain search; 'always' searches every window on the "
                "background-removed block. 'auto' also searches every window on the background-removed block "
                "when the static background holds at least static_fraction of the block's variance (walls, "
                "bright spots or uneven illumination dominate; no kymflow reference file comes near: "
                "0.01-0.28).", choices=BACKGROUND_MODES)
    background_lines: int = option(
        4096, "Length of the running mean, lines (default 4096; 0 = each column's mean over the whole ROI). "
              "Much longer than a stall, so stopped cells stay visible.", low=0)
    static_fraction: float = option(
        0.5, "1 - var(block - background) / var(block) from which 'auto' removes the background from every "
             "window (default 0.5).")
    stall_separability: float = option(
        3.0, "A window still at angle 0 after background removal is a trusted stall (0 mm/s) when its "
             "separability is at least this (default 3).")
    stall_min_s: float = option(
        0.1, "... and when such windows follow each other for at least this long, seconds (default 0.1; at "
             "least 3 windows).")
    edge_deg: float = option(
        1.0, "Windows whose best angle is within this of 90 degrees (but not 90) get the angle_edge flag "
             "(default 1, i.e. faster than tan(89 deg) = 57 px per line).")

    def __post_init__(self) -> None:
        object.__setattr__(self, "window_lines", checks.window_lines(self.window_lines))
        checks.positive("clean_sd", self.clean_sd, "e.g. clean_sd=2.0")
        checks.positive("clean_mad", self.clean_mad, "e.g. clean_mad=4.0")
        checks.one_of("clean", self.clean, CLEAN_METHODS)
        checks.one_of("background", self.background, BACKGROUND_MODES)
        checks.positive("clean_span_s", self.clean_span_s, "e.g. clean_span_s=0.15")
        object.__setattr__(self, "background_lines",
                           checks.integer("background_lines", self.background_lines, 0, "0: the whole ROI"))
        for name in ("stall_separability", "edge_deg", "static_fraction", "stall_min_s"):
            checks.non_negative(name, getattr(self, name))
        checks.one_of("score", self.score, SCORES)
        checks.non_negative("min_separability", self.min_separability,
                            "1.5 is the default (docs/QUALITY.md), 0 disables the flag")

    @property
    def step_lines(self) -> int:
        """Lines between the starts of consecutive windows."""
        return self.window_lines // 4

    @classmethod
    def from_mapping(cls, values) -> RadonOptions:
        """Build from a dict, rejecting unknown names (see ``options_from_mapping``)."""
        return options_from_mapping(cls, values)
