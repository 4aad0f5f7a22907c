"""The registered analyses: name -> parameters class, run function, exclusive group.

The analysis modules (and through them Numba) are imported only when a spec is first
looked up, so listing the names (``list(ANALYSES)``) and importing this module stay cheap.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ParameterError
from .base import AnalysisResult, params_from_mapping

__all__ = ["AnalysisSpec", "ANALYSES", "ANALYSIS_NAMES", "get_spec", "build_params"]

ROI_GEOMETRY = "primary_kymograph"  # acqstore's name of the group


@dataclass(frozen=True)
class AnalysisSpec:
    """How to validate and run one analysis.

    Attributes
    ----------
    name : str
        Registered name (``"radon_velocity"`` or ``"diameter"``).
    params_cls : type
        Frozen parameters dataclass (``RadonParams``, ``DiameterParams``) holding every
        scientific option plus ``dx_um`` and ``dt_s``.
    run : callable
        ``run(image2d, params, *, row_offset, threads, cancel, progress) -> AnalysisResult``
        where ``image2d`` is the ROI block (n_lines, n_pixels) and ``row_offset`` its r0.
    exclusive_group : str or None
        Analyses of one group exclude each other on the same (channel, ROI):
        velocity wants an ROI along a vessel, diameter one across it.
    """

    name: str
    params_cls: type
    run: Callable[..., AnalysisResult]
    exclusive_group: str | None = ROI_GEOMETRY


def _params_kwargs(params: Any) -> dict[str, Any]:
    return {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}


def _runner(module_name: str, func_name: str) -> Callable[..., AnalysisResult]:
    def run(image2d, params, *, row_offset=0, threads=1, cancel=None, progress=None) -> AnalysisResult:
        func = getattr(importlib.import_module(module_name), func_name)
        return func(
            image2d, **_params_kwargs(params), row_offset=row_offset, threads=threads,
            cancel=cancel, progress=progress,
        )

    run.__name__ = f"run_{func_name}"
    run.__doc__ = f"Run ``{module_name}.{func_name}`` on an ROI block with a validated params object."
    return run


# name -> (module, params class, public function)
_SOURCES = {
    "radon_velocity": ("hpcacq.analyses.velocity", "RadonParams", "radon_velocity"),
    "diameter": ("hpcacq.analyses.diameter", "DiameterParams", "vessel_diameter"),
}
ANALYSIS_NAMES: tuple[str, ...] = tuple(_SOURCES)


class _LazySpecs(Mapping[str, AnalysisSpec]):
    """Mapping of analysis specs that imports an analysis module on first lookup."""

    def __init__(self, sources: dict[str, tuple[str, str, str]]):
        self._sources = sources
        self._cache: dict[str, AnalysisSpec] = {}

    def __getitem__(self, name: str) -> AnalysisSpec:
        if name not in self._cache:
            module_name, params_name, func_name = self._sources[name]
            module = importlib.import_module(module_name)
            self._cache[name] = AnalysisSpec(
                name=name,
                params_cls=getattr(module, params_name),
                run=_runner(module_name, func_name),
            )
        return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)

    def __repr__(self) -> str:
        return f"ANALYSES({', '.join(self._sources)})"


ANALYSES: Mapping[str, AnalysisSpec] = _LazySpecs(_SOURCES)


def get_spec(name: str) -> AnalysisSpec:
    """The spec of analysis ``name``; ParameterError listing the valid names if unknown."""
    if not isinstance(name, str) or name not in ANALYSES:
        raise ParameterError(f"unknown analysis {name!r}; valid names are: {', '.join(ANALYSES)}")
    return ANALYSES[name]


def _as_mapping(name: str, spec: AnalysisSpec, detection_params: Any) -> dict[str, Any]:
    if detection_params is None:
        return {}
    if isinstance(detection_params, spec.params_cls):
        return _params_kwargs(detection_params)
    if not isinstance(detection_params, Mapping):
        raise ParameterError(
            f"detection_params for {name!r} must be a dict (or a {spec.params_cls.__name__}), "
            f"got {type(detection_params).__name__}"
        )
    return dict(detection_params)


def build_params(name: str, detection_params: Any = None, *, dx_um: float, dt_s: float):
    """Validate ``detection_params`` for analysis ``name`` and build its frozen params.

    Parameters
    ----------
    name : str
        Registered analysis name.
    detection_params : dict, params object or None
        Scientific options (e.g. ``{"window_lines": 32}``); unknown names are rejected.
        ``dx_um``/``dt_s`` may appear only if equal to the image's.
    dx_um : float, keyword-only
        Micrometres per pixel of the image.
    dt_s : float, keyword-only
        Seconds per line of the image.

    Raises
    ------
    ParameterError
        Unknown analysis, unknown parameter name, invalid value, or units that disagree
        with the image's.
    """
    spec = get_spec(name)
    values = _as_mapping(name, spec, detection_params)
    for unit, value in (("dx_um", dx_um), ("dt_s", dt_s)):
        given = values.get(unit)
        if given is not None and given != value:
            raise ParameterError(
                f"detection_params gives {unit}={given} but the image has {unit}={value}; set units on "
                f"the image (AcqImage.open(path, {unit}=...)), not in detection_params"
            )
        values[unit] = value
    try:
        return params_from_mapping(spec.params_cls, values)
    except ParameterError:
        raise
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"invalid parameters for {name!r}: {exc}") from None
