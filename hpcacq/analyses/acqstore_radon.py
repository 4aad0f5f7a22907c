"""acqstore's detection parameters of the Radon velocity analysis, mapped onto :class:`RadonOptions`.

acqstore's ``RadonVelocityAnalysis`` has one detection parameter, ``window_width``: the
number of lines (time samples) per Radon window, default 64, one of 16, 64 or 128. It is
hpcacq's ``window_lines`` (whose own default stays 16, kymflow's). Every other hpcacq
option keeps hpcacq's default when the parameters come in acqstore's vocabulary.

Velocities are hpcacq's: ``(dx_um / dt_s) * tan(theta) / 1000`` mm/s. acqstore's wrapper
divides by ``tan(theta)`` where the geometry multiplies; that is not reproduced (see
docs/ACQSTORE.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ParameterError, UnknownParameterError

__all__ = ["AcqstoreParam", "RADON_SCHEMA", "radon_params_from_acqstore", "check_acqstore_values"]


@dataclass(frozen=True)
class AcqstoreParam:
    """One acqstore detection parameter: name, type, default, allowed values, meaning.

    Attributes
    ----------
    name : str
        acqstore's key in ``detection_params``.
    value_type : {"int", "float", "bool", "str"}
        Python type a value must have (``bool`` is not an ``int`` here).
    default : object
        acqstore's default.
    choices : tuple or None
        Allowed values, when restricted.
    hpcacq_name : str
        The hpcacq parameter it sets.
    description : str
        What it means, with its unit.
    """

    name: str
    value_type: str
    default: Any
    choices: tuple | None
    hpcacq_name: str
    description: str


RADON_SCHEMA: tuple[AcqstoreParam, ...] = (
    AcqstoreParam("window_width", "int", 64, (16, 64, 128), "window_lines",
                  "lines (time samples) per Radon window; windows advance by a quarter of it"),
)

_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def check_acqstore_values(analysis: str, schema: tuple[AcqstoreParam, ...], values: Mapping[str, Any]) -> None:
    """Check ``values`` against an acqstore ``schema``, as acqstore's validation does.

    Raises
    ------
    UnknownParameterError
        A name not in the schema (also a KeyError); the message lists the valid names.
    ParameterError
        A value of the wrong type or not among the choices.
    """
    by_name = {p.name: p for p in schema}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise UnknownParameterError(
            f"unknown detection parameter(s) {', '.join(map(repr, unknown))} for {analysis!r}; "
            f"valid names are: {', '.join(by_name)}")
    for name, value in values.items():
        entry = by_name[name]
        bad_type = not isinstance(value, _TYPES[entry.value_type]) or (
            entry.value_type != "bool" and isinstance(value, bool))
        if bad_type:
            raise ParameterError(f"{name!r} for {analysis!r} must be {entry.value_type}, got {value!r}")
        if entry.choices is not None and value not in entry.choices:
            raise ParameterError(f"{name!r} for {analysis!r} must be one of {entry.choices!r}, got {value!r}")


def radon_params_from_acqstore(detection_params: Mapping[str, Any] | None) -> dict[str, Any]:
    """hpcacq :class:`~hpcacq.analyses.velocity.RadonOptions` keyword arguments from acqstore's.

    Parameters
    ----------
    detection_params : mapping or None
        acqstore names (``window_width``); missing ones take acqstore's defaults.

    Returns
    -------
    dict
        ``{"window_lines": ...}`` (units are added by the caller).
    """
    values = dict(detection_params or {})
    check_acqstore_values("radon_velocity", RADON_SCHEMA, values)
    full = {p.name: values.get(p.name, p.default) for p in RADON_SCHEMA}
    return {"window_lines": int(full["window_width"])}
