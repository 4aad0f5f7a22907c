"""Checks of values read from files: every number is validated where it is read.

Messages name the file and the field, and say what a plausible value is.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import InputError

__all__ = ["INT64_MAX", "UNIT_RANGES", "check_int", "check_unit"]

INT64_MAX = 2**63 - 1

# Plausible physical steps of a line scan: 0.1 nm to 10 mm per pixel, 100 ns to 10 s per line.
UNIT_RANGES = {"dx_um": (1e-4, 1e4, "um per pixel"), "dt_s": (1e-7, 10.0, "s per line")}


def check_unit(name: str, value: Any, where: str, field: str) -> float:
    """``value`` as a float if it is a plausible ``dx_um``/``dt_s``; else an InputError.

    Parameters
    ----------
    name : {"dx_um", "dt_s"}
    where : str
        The file the value came from.
    field : str
        The field that holds it (``"header.voxels[1]"``, ``"X Dimension"``, ...).
    """
    low, high, unit = UNIT_RANGES[name]
    try:
        number = float(value) if not isinstance(value, (bool, str, bytes)) else math.nan
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise InputError(f"{where}: field {field!r} gives {name} = {value!r:.60}; it must be a number > 0 ({unit})")
    if not low <= number <= high:
        raise InputError(f"{where}: field {field!r} gives {name} = {number:g} {unit}, outside the plausible range "
                         f"[{low:g}, {high:g}] {unit} for a line scan; fix the file, or give the true value "
                         f"with --{name.replace('_', '-')}")
    return number


def check_int(value: Any, where: str, field: str, *, low: int = 0, high: int = INT64_MAX) -> int:
    """``value`` as an int in ``[low, high]`` (JSON numbers such as 3.0 accepted); else an InputError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{where}: field {field!r} must be an integer, got {value!r:.60}")
    if isinstance(value, float):
        if not math.isfinite(value) or value != math.floor(value):
            raise InputError(f"{where}: field {field!r} must be an integer, got {value!r:.60}")
        value = int(value)
    if not low <= value <= high:
        shown = str(value) if abs(value) < 10**30 else f"a {len(str(abs(value)))}-digit number"
        raise InputError(f"{where}: field {field!r} = {shown} is outside [{low}, {high}]")
    return value
