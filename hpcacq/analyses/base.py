"""What every analysis returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["AnalysisResult", "ok_message", "real_block", "reject_non_finite"]


@dataclass
class AnalysisResult:
    """The per-window (velocity) or per-line (diameter) table of one analysis.

    Attributes
    ----------
    analysis : str
        Registered analysis name (a key of :data:`hpcacq.analyses.registry.REGISTRY`).
    params : dict
        The parameters of the run: ``dx_um``, ``dt_s``, then every option
        (:func:`hpcacq.analyses.options.stored_params`).
    columns : dict of str -> 1-D ndarray
        Equal-length columns; the first is ``time_s`` (seconds from the first line of
        the image, not of the ROI). Flags are an integer bit mask column ``flags``.
    units : dict of str -> str
        Unit of each column (``"s"``, ``"deg"``, ``"mm/s"``, ``"px"``, ``"um"``, ``"1"``).
    flag_bits : dict of str -> int
        Meaning of each bit of ``flags``.
    summary : dict of str -> float
        A few scalars worth a glance (median velocity, fraction flagged, ...).
    warnings : list of str
        Why this file's measurement as a whole is doubtful (most windows untrusted, no
        vessel edges found, velocity pinned at zero, ...). Empty when it can be trusted.
        The data are kept either way; the batch turns the warnings into the OK
        outcome's message (see :func:`ok_message`).
    """

    analysis: str
    params: dict[str, Any]
    columns: dict[str, np.ndarray]
    units: dict[str, str]
    flag_bits: dict[str, int] = field(default_factory=dict)
    summary: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        lengths = {name: len(col) for name, col in self.columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"columns of unequal length: {lengths}")

    @property
    def n_rows(self) -> int:
        return len(self.columns["time_s"])


def ok_message(result: AnalysisResult | None) -> str:
    """The message of an OK outcome: ``"ok"``, or ``"ok; doubtful: <why>; <why>"``.

    A doubtful result keeps its data and its OK outcome (acqstore's outcomes are
    unchanged); the message, the summary and the plots say why it should not be trusted.
    """
    warnings = list(result.warnings) if result is not None else []
    return "ok" if not warnings else "ok; doubtful: " + "; ".join(warnings)


def real_block(image: Any, analysis: str) -> np.ndarray:
    """``image`` as an array if it is a 2-D block of real numbers (not converted), else an
    :class:`~hpcacq.errors.InputError` naming ``analysis`` and what to do."""
    from ..errors import InputError

    arr = np.asarray(image)
    if arr.ndim != 2:
        raise InputError(f"{analysis} needs a 2-D block (n_lines, n_pixels), got shape {arr.shape}; "
                         "pick one channel (image[c]) and cut the ROI first")
    if arr.dtype.kind not in "uifb":
        raise InputError(f"image must hold real numbers, got dtype {arr.dtype}; convert with .astype(float)")
    return arr


def reject_non_finite(arr: np.ndarray, bad: np.ndarray | None = None) -> None:
    """Raise an :class:`~hpcacq.errors.InputError` locating the first NaN/inf pixel of ``arr``
    (``bad``: its mask, if already computed); return when every pixel is finite."""
    from ..errors import InputError

    bad = ~np.isfinite(arr) if bad is None else bad
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InputError(f"image has {int(bad.sum())} NaN/inf pixel(s) (first at line {row}, pixel {col}); "
                         "replace them (e.g. np.nan_to_num) or choose an ROI without them")
