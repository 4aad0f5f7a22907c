"""Detection parameters in either vocabulary: hpcacq's names or acqstore's.

One ``detection_params`` dict is read in **hpcacq's vocabulary** (``window_lines``,
``method``, ... with hpcacq's defaults) when every name is one of hpcacq's, and in
**acqstore's vocabulary** (``window_width``, ``diameter_method``, ... with acqstore's
defaults for the names not given) otherwise. An empty or missing dict means hpcacq's
defaults. A name known to neither raises :class:`~hpcacq.errors.UnknownParameterError`
(a KeyError) listing both vocabularies; a dict mixing the two is refused. A name shared
by both vocabularies (diameter's ``polarity``) is tried as hpcacq's first, then as
acqstore's. The tables are in docs/ACQSTORE.md and docs/ACQSTORE_DIAMETER.md.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ParameterError, UnknownParameterError
from .registry import REGISTRY

__all__ = ["acqstore_schema", "acqstore_defaults", "candidate_params", "build_any", "validate_acqstore",
           "hpcacq_field_names"]

_UNITS = ("dx_um", "dt_s")

# analysis -> (module, schema attribute, translation function), from each registry line
_SOURCES = {name: entry.acqstore for name, entry in REGISTRY.items() if entry.acqstore is not None}


def _source(name: str) -> tuple[tuple, Callable[[Mapping[str, Any]], dict]]:
    module_name, schema_name, func_name = _SOURCES[name]
    module = importlib.import_module(module_name)
    return getattr(module, schema_name), getattr(module, func_name)


def _entry_name(entry: Any) -> str:
    return entry["name"] if isinstance(entry, Mapping) else entry.name


def _entry_default(entry: Any) -> Any:
    return entry["default"] if isinstance(entry, Mapping) else entry.default


def acqstore_schema(name: str) -> tuple:
    """acqstore's detection-parameter schema of analysis ``name`` (entries with name, default, ...)."""
    return tuple(_source(name)[0])


def acqstore_defaults(name: str) -> dict[str, Any]:
    """acqstore's default ``detection_params`` of analysis ``name``."""
    return {_entry_name(e): _entry_default(e) for e in acqstore_schema(name)}


def validate_acqstore(name: str, detection_params: Any) -> None:
    """Check ``detection_params`` in acqstore's vocabulary (what acqstore's ``validate_detection_params`` does).

    Raises
    ------
    UnknownParameterError
        Unknown name (also a KeyError), listing acqstore's names.
    ParameterError
        A bad value (type, choice, range).
    """
    if not isinstance(detection_params, Mapping):
        raise ParameterError(f"detection_params must be a dict, got {type(detection_params).__name__}")
    _source(name)[1](dict(detection_params))


def candidate_params(name: str, detection_params: Mapping[str, Any] | None,
                     hpcacq_names: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
    """The readings of ``detection_params`` to try, in order: ``[(vocabulary, hpcacq kwargs), ...]``.

    Parameters
    ----------
    name : str
        Registered analysis name.
    detection_params : mapping or None
        As the user gave it.
    hpcacq_names : tuple of str
        Field names of the analysis' hpcacq parameters class.

    Raises
    ------
    UnknownParameterError
        A name in neither vocabulary; the message lists the valid names of both.
    ParameterError
        Names of both vocabularies mixed in one dict.
    """
    values = dict(detection_params or {})
    if name not in _SOURCES or not values or set(values) <= set(hpcacq_names):
        readings = [("hpcacq", values)]
        if name in _SOURCES and values:
            acq_names = {_entry_name(e) for e in acqstore_schema(name)}
            if set(values) <= acq_names:
                readings.append(("acqstore", values))
    else:
        acq_names = [_entry_name(e) for e in acqstore_schema(name)]
        unknown = sorted(set(values) - set(hpcacq_names) - set(acq_names))
        if unknown:
            own = [n for n in hpcacq_names]
            raise UnknownParameterError(
                f"unknown parameter(s) {', '.join(map(repr, unknown))} for {name!r}; valid names are: "
                f"{', '.join(own)} (hpcacq) or {', '.join(acq_names)} (acqstore)")
        units = {k: values.pop(k) for k in _UNITS if k in values}
        hpcacq_only = sorted(set(values) - set(acq_names))
        if hpcacq_only:
            raise ParameterError(
                f"detection_params for {name!r} mixes hpcacq names ({', '.join(hpcacq_only)}) with acqstore names "
                f"({', '.join(sorted(set(values) - set(hpcacq_only)))}); use one vocabulary (docs/ACQSTORE.md)")
        readings = [("acqstore", {**values, **units})]
    out = []
    for vocabulary, given in readings:
        if vocabulary == "hpcacq":
            out.append((vocabulary, given))
            continue
        units = {k: given[k] for k in _UNITS if k in given}
        rest = {k: v for k, v in given.items() if k not in _UNITS}
        try:
            out.append((vocabulary, {**_source(name)[1](rest), **units}))
        except (ParameterError, KeyError, TypeError, ValueError):
            if not out:  # the only reading: its error is the answer
                raise
    return out


def build_any(name: str, detection_params: Any) -> tuple[str, Any]:
    """Validate ``detection_params`` in either vocabulary and build hpcacq's options object.

    Returns
    -------
    (vocabulary, options) : (str, frozen dataclass)
        ``"hpcacq"`` or ``"acqstore"``, and e.g. a :class:`RadonOptions` (an options
        object given is returned as it is).

    Raises
    ------
    ParameterError
        As :func:`candidate_params` and :func:`hpcacq.analyses.registry.build_options`.
    """
    from .registry import build_options, get_spec

    spec = get_spec(name)
    if detection_params is not None and not isinstance(detection_params, Mapping):
        return "hpcacq", build_options(name, detection_params)
    first_error = None
    for vocabulary, values in candidate_params(name, detection_params, hpcacq_field_names(spec.options_cls)):
        try:
            return vocabulary, build_options(name, values)
        except ParameterError as exc:
            first_error = first_error or exc
    raise first_error


def hpcacq_field_names(options_cls: type) -> tuple[str, ...]:
    """Field names of an hpcacq options dataclass and the units (``dx_um``, ``dt_s``)."""
    return _UNITS + tuple(f.name for f in dataclasses.fields(options_cls))
