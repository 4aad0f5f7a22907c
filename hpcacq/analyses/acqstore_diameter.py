"""acqstore's diameter detection parameters, and their translation to :class:`DiameterOptions`.

acqstore (a GUI/batch tool whose API hpcacq offers) describes a diameter analysis with a
flat ``detection_params`` mapping. :data:`ACQSTORE_DIAMETER_SCHEMA` lists every name
acqstore accepts, with acqstore's default, the values it allows, what it does, and the
:class:`~hpcacq.analyses.diameter.DiameterOptions` field that does the same in hpcacq.
:func:`diameter_params_from_acqstore` turns such a mapping into ``DiameterOptions``
keyword arguments; through this API acqstore's defaults apply (for example a 3-line
median post filter and, for ``gradient_edges``, motion gating), while hpcacq's own API
keeps hpcacq's defaults.

Where hpcacq measures differently from acqstore, on purpose:

- Edges are sub-pixel (linear interpolation at the threshold crossings; parabolic peak
  of the derivative for gradient edges); acqstore's whole-pixel edges read about 1 px
  narrow for ``threshold_width`` and carry +-0.5 px of quantisation.
- ``threshold_width`` with ``half_max`` takes the profile's maximum as the lumen level
  (hpcacq's default); acqstore takes its 90th percentile, which over-reads vessels
  covering less than ~10 % of the line. Pass ``peak_percentile=90`` through hpcacq's
  API to get acqstore's level.
- ``threshold_value`` is an intensity of the image in both polarities (the lumen is
  where the profile is <= it for ``dark_on_bright``); acqstore applies it to the
  inverted profile ``max(profile) - profile``, a level relative to each line's maximum.
- ``gradient_min_edge_strength``: an edge weaker than this is NaN and flagged
  ``weak_edge`` (acqstore keeps it and lowers a quality score).
- Motion gating compares each line with the last *accepted* line, the limits growing
  with the number of lines since (a maximum speed); acqstore compares with the previous
  row after gating, so an edge rejected there is followed by an unconstrained one.
- The post filter's result is reported as ``diameter_filtered_px``/``_um`` beside the
  unfiltered diameter (acqstore's ``diameter_px_filt``/``diameter_um_filt``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ParameterError

__all__ = ["AcqstoreParam", "ACQSTORE_DIAMETER_SCHEMA", "ACQSTORE_DIAMETER_DEFAULTS",
           "AcqstoreParameterTypeError", "diameter_params_from_acqstore"]


class AcqstoreParameterTypeError(ParameterError, TypeError):
    """A detection parameter has the wrong type (acqstore raises TypeError there)."""


@dataclass(frozen=True)
class AcqstoreParam:
    """One acqstore diameter detection parameter.

    Attributes
    ----------
    name : str
        acqstore's name.
    default : object
        acqstore's default.
    kind : {"int", "float", "bool", "enum"}
        acqstore's value type.
    allowed : str
        The values acqstore accepts.
    meaning : str
        What it does.
    hpcacq : str
        The ``DiameterOptions`` field it maps to (and how).
    """

    name: str
    default: Any
    kind: str
    allowed: str
    meaning: str
    hpcacq: str
    choices: tuple = ()


_P = AcqstoreParam
ACQSTORE_DIAMETER_SCHEMA: tuple[AcqstoreParam, ...] = (
    _P("window_rows_odd", 5, "int", "odd integer >= 1",
       "lines (time rows) binned into each spatial profile, centred on the line",
       "window_rows (same default, 5)"),
    _P("stride", 1, "int", "integer >= 1",
       "step between analysed lines (lines 0, stride, 2 stride, ...)", "stride"),
    _P("binning_method", "mean", "enum", "mean, median", "how the window's lines are combined",
       "binning", ("mean", "median")),
    _P("polarity", "bright_on_dark", "enum", "bright_on_dark, dark_on_bright",
       "bright lumen on a dark background, or the reverse (profile inverted)",
       "polarity: bright_on_dark -> 'bright', dark_on_bright -> 'dark'",
       ("bright_on_dark", "dark_on_bright")),
    _P("diameter_method", "threshold_width", "enum", "threshold_width, gradient_edges",
       "edges where the profile crosses a threshold, or at the extremes of its derivative",
       "method: threshold_width -> 'halfmax', gradient_edges -> 'gradient'",
       ("threshold_width", "gradient_edges")),
    _P("threshold_mode", "half_max", "enum", "half_max, absolute",
       "threshold_width: threshold half-way between baseline and peak, or threshold_value",
       "threshold_mode: half_max -> 'halfmax', absolute -> 'absolute' (threshold_width only)",
       ("half_max", "absolute")),
    _P("threshold_value", 0.0, "float", "finite number",
       "threshold_width with threshold_mode='absolute': the threshold intensity",
       "threshold_value (only with threshold_mode='absolute')"),
    _P("gradient_sigma", 1.5, "float", "number >= 0 (pixels; 0 = no smoothing)",
       "gradient_edges: sigma of the Gaussian smoothing the profile before the derivative",
       "gradient_sigma_px"),
    _P("gradient_kernel", "central_diff", "enum", "central_diff",
       "gradient_edges: derivative kernel", "none: hpcacq's derivative is the central difference",
       ("central_diff",)),
    _P("gradient_min_edge_strength", 0.02, "float", "number >= 0 (intensity per pixel)",
       "gradient_edges: smallest derivative peak for a confident edge", "gradient_min_strength"),
    _P("enable_motion_gating", True, "bool", "True, False",
       "gradient_edges: reject lines whose edges, diameter or centre jump from the line before",
       "motion_gating (True only with gradient_edges, as acqstore)"),
    _P("max_edge_shift_um", 2.0, "float", "number >= 0 (um per line)",
       "motion gating: largest shift of either edge between lines", "max_edge_shift_um"),
    _P("max_diameter_change_um", 2.0, "float", "number >= 0 (um per line)",
       "motion gating: largest change of the diameter between lines", "max_diameter_change_um"),
    _P("max_center_shift_um", 2.0, "float", "number >= 0 (um per line)",
       "motion gating: largest shift of the vessel centre between lines", "max_center_shift_um"),
    _P("post_filter_kernel_size", 3, "int", "odd integer >= 3",
       "running median (in analysed lines) of the diameter, reported beside it",
       "post_filter_lines (hpcacq's default 1 = off)"),
)
ACQSTORE_DIAMETER_DEFAULTS: dict[str, Any] = {p.name: p.default for p in ACQSTORE_DIAMETER_SCHEMA}
_BY_NAME = {p.name: p for p in ACQSTORE_DIAMETER_SCHEMA}
_POLARITY = {"bright_on_dark": "bright", "dark_on_bright": "dark"}
_METHOD = {"threshold_width": "halfmax", "gradient_edges": "gradient"}
_THRESHOLD = {"half_max": "halfmax", "absolute": "absolute"}


def _typed(param: AcqstoreParam, value: Any) -> Any:
    """``value`` checked against acqstore's type and choices (TypeError / ValueError as acqstore)."""
    name = param.name
    if param.kind == "int":
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise AcqstoreParameterTypeError(f"{name!r} must be int, got {type(value).__name__} {value!r}")
        return int(value)
    if param.kind == "float":
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise AcqstoreParameterTypeError(f"{name!r} must be float or int, got {type(value).__name__} {value!r}")
        if not math.isfinite(value):
            raise ParameterError(f"{name!r} must be finite, got {value!r}")
        return float(value)
    if param.kind == "bool":
        if not isinstance(value, (bool, np.bool_)):
            raise AcqstoreParameterTypeError(f"{name!r} must be bool, got {type(value).__name__} {value!r}")
        return bool(value)
    if value not in param.choices:
        raise ParameterError(f"{name!r} must be one of {param.choices!r}, got {value!r}")
    return value


def _ranges(p: dict[str, Any]) -> None:
    """acqstore's range rules (its run-time checks), raised here, before any file is read."""
    w = p["window_rows_odd"]
    if w < 1 or w % 2 == 0:
        raise ParameterError(f"'window_rows_odd' must be odd and >= 1, got {w}")
    if p["stride"] < 1:
        raise ParameterError(f"'stride' must be >= 1, got {p['stride']}")
    for name in ("gradient_sigma", "gradient_min_edge_strength", "max_edge_shift_um",
                 "max_diameter_change_um", "max_center_shift_um"):
        if p[name] < 0:
            raise ParameterError(f"{name!r} must be >= 0, got {p[name]}")
    k = p["post_filter_kernel_size"]
    if k < 3 or k % 2 == 0:
        raise ParameterError(f"'post_filter_kernel_size' must be odd and >= 3, got {k}")


def diameter_params_from_acqstore(detection_params: Mapping[str, Any]) -> dict[str, Any]:
    """``DiameterOptions`` keyword arguments (without ``dx_um``/``dt_s``) for acqstore's parameters.

    Parameters
    ----------
    detection_params : Mapping
        acqstore diameter detection parameters (any subset of
        :data:`ACQSTORE_DIAMETER_SCHEMA`); missing ones take acqstore's defaults.

    Returns
    -------
    dict
        Keyword arguments for :class:`~hpcacq.analyses.diameter.DiameterOptions` /
        :func:`~hpcacq.analyses.diameter.vessel_diameter`: ``window_rows``, ``stride``,
        ``binning``, ``polarity``, ``method``, ``gradient_sigma_px``,
        ``gradient_min_strength``, ``motion_gating``, ``max_edge_shift_um``,
        ``max_diameter_change_um``, ``max_center_shift_um``, ``post_filter_lines`` and, for
        ``threshold_width``, ``threshold_mode`` (and ``threshold_value`` when absolute).

    Raises
    ------
    KeyError
        An unknown name; the message lists the valid names.
    AcqstoreParameterTypeError
        A value of the wrong type (a :class:`ParameterError` and a ``TypeError``).
    ParameterError
        A value out of range or not among the choices (a ``ValueError``).
    """
    if not isinstance(detection_params, Mapping):
        raise AcqstoreParameterTypeError(
            f"detection_params must be a dict, got {type(detection_params).__name__}")
    unknown = sorted(set(detection_params) - set(_BY_NAME), key=str)
    if unknown:
        raise KeyError(f"unknown diameter detection parameter(s) {', '.join(map(repr, unknown))}; "
                       f"valid names are: {', '.join(_BY_NAME)}")
    p = dict(ACQSTORE_DIAMETER_DEFAULTS)
    p.update({name: _typed(_BY_NAME[name], value) for name, value in detection_params.items()})
    _ranges(p)
    gradient = p["diameter_method"] == "gradient_edges"
    out: dict[str, Any] = {
        "window_rows": p["window_rows_odd"], "stride": p["stride"], "binning": p["binning_method"],
        "polarity": _POLARITY[p["polarity"]], "method": _METHOD[p["diameter_method"]],
        "gradient_sigma_px": p["gradient_sigma"], "gradient_min_strength": p["gradient_min_edge_strength"],
        "motion_gating": gradient and p["enable_motion_gating"],
        "max_edge_shift_um": p["max_edge_shift_um"], "max_diameter_change_um": p["max_diameter_change_um"],
        "max_center_shift_um": p["max_center_shift_um"], "post_filter_lines": p["post_filter_kernel_size"],
    }
    if not gradient:
        out["threshold_mode"] = _THRESHOLD[p["threshold_mode"]]
        if out["threshold_mode"] == "absolute":
            out["threshold_value"] = p["threshold_value"]
    return out
