"""The analyses of one image (acqstore's ``AcqAnalysisSet``), keyed by :class:`AnalysisKey`.

Pixels and units come from a *data provider*: any object with ``get_roi_image(channel=,
roi_id=) -> (n_lines, n_pixels) array`` (time on axis 0, space on axis 1) and
``get_image_physical_units() -> (seconds_per_line, um_per_pixel)``; an
:class:`hpcacq.model.AcqImage` is one. When the provider also knows its channels and ROIs
(an AcqImage), :meth:`AcqAnalysisSet.create` checks them at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from .analyses.base import AnalysisResult
from .analyses.options import Units, stored_params
from .analyses.registry import get_spec
from .analysis_objects import (
    ANALYSIS_CLASSES,
    PRIMARY_KYMOGRAPH,
    AnalysisKey,
    AnalysisRunContext,
    BaseAnalysis,
    DiameterAnalysis,
    RadonVelocityAnalysis,
    check_given_units,
)
from .analysis_objects import (
    key_of as _key_of,
)
from .errors import AnalysisExclusionError, MissingUnitsError, ParameterError

__all__ = ["AcqAnalysisSet", "AnalysisKey", "AnalysisRunContext", "BaseAnalysis", "RadonVelocityAnalysis",
           "DiameterAnalysis", "PRIMARY_KYMOGRAPH"]

_UNITS_HINT = {"dx_um": "--dx-um", "dt_s": "--dt-s"}


class _Results(Mapping):
    """Read-only view key -> result of the run analyses; an analysis object works as its key."""

    def __init__(self, analyses: dict):
        self._analyses = analyses

    def __getitem__(self, key: Any) -> AnalysisResult:
        analysis = self._analyses.get(_key_of(key))
        if analysis is None or analysis.result is None:
            raise KeyError(key)
        return analysis.result

    def __iter__(self) -> Iterator[AnalysisKey]:
        return (k for k, a in list(self._analyses.items()) if a.result is not None)

    def __len__(self) -> int:
        return sum(a.result is not None for a in self._analyses.values())

    def __contains__(self, key: object) -> bool:
        analysis = self._analyses.get(_key_of(key))
        return analysis is not None and analysis.result is not None


def _image_like(provider: Any) -> Any:
    """The object that knows channels and ROIs behind a provider (an AcqImage or acqstore-like image)."""
    return getattr(provider, "acq_image", provider)


class AcqAnalysisSet:
    """The analyses requested on one image and their results, by :class:`AnalysisKey`.

    Parameters
    ----------
    source_path : str, path-like or AcqImage
        The image's file (text), or the :class:`~hpcacq.model.AcqImage` itself (then it is
        also the data provider).
    data_provider : object, optional
        ``get_roi_image(channel=, roi_id=)`` and ``get_image_physical_units()`` (see the
        module doc); needed to run analyses.
    """

    def __init__(self, source_path: Any, data_provider: Any = None):
        if data_provider is None and hasattr(source_path, "get_roi_image"):
            data_provider, source_path = source_path, getattr(source_path, "source", None)
        self.source_path = "<array>" if source_path is None else os.fspath(source_path)
        self._provider = data_provider
        self._analyses: dict[AnalysisKey, BaseAnalysis] = {}

    # ------------------------------------------------------------ checks
    def _check_target(self, channel: Any, roi_id: Any) -> None:
        image = _image_like(self._provider)
        n = getattr(image, "n_channels", None)
        if n is not None and (isinstance(channel, bool) or not isinstance(channel, (int, np.integer))
                              or not 0 <= channel < n):
            raise ParameterError(f"channel {channel!r} does not exist; valid channels are 0..{n - 1} (0-based)")
        rois = getattr(image, "rois", None)
        if rois is not None and hasattr(rois, "has_roi") and not rois.has_roi(roi_id):
            ids = rois.ids() if hasattr(rois, "ids") else []
            raise ParameterError(f"no ROI with id {roi_id!r}; existing ids: {ids or 'none'} "
                                 "(add one with rois.create_rect_roi())")

    def _check_exclusion(self, analysis: BaseAnalysis) -> None:
        group, key = analysis.exclusive_group, analysis.key
        if group is None:
            return
        for other in self._analyses.values():
            if other.exclusive_group != group or other.key.analysis_name == key.analysis_name:
                continue
            if (other.key.channel, other.key.roi_id) == (key.channel, key.roi_id):
                raise AnalysisExclusionError(
                    f"{key.analysis_name!r} and {other.key.analysis_name!r} exclude each other on channel "
                    f"{key.channel}, ROI {key.roi_id} (exclusive group {group!r}: an ROI lies either along or "
                    "across a vessel); remove the other analysis or use another ROI")

    def _known_units(self) -> tuple[float | None, float | None]:
        """(dx_um, dt_s) of the provider, None where unknown (or no provider)."""
        if self._provider is None:
            return None, None
        dt_s, dx_um = self._provider.get_image_physical_units()
        return dx_um, dt_s

    # ------------------------------------------------------------ building the set
    def add(self, analysis: BaseAnalysis) -> None:
        """Add an analysis object; ValueError if its key exists, AnalysisExclusionError on a conflict."""
        if analysis.key in self._analyses:
            raise ParameterError(f"analysis {analysis.key} already exists; remove(key) it first to replace it")
        self._check_exclusion(analysis)
        self._analyses[analysis.key] = analysis

    def create(self, analysis_name: str, channel: int = 0, roi_id: int = 1,
               detection_params: Any = None) -> BaseAnalysis:
        """Request analysis ``analysis_name`` on ``channel`` (0-based) and ROI ``roi_id``; return it.

        ``detection_params`` (hpcacq's or acqstore's names) is validated now. The returned
        object's ``.key`` runs it (:meth:`run_analysis`).

        Raises
        ------
        ParameterError
            Unknown analysis (lists the names), channel or ROI (names what exists),
            invalid parameters, or an analysis with the same key already exists (a
            ValueError: :meth:`remove` it first).
        UnknownParameterError
            An unknown detection parameter (a KeyError, listing the valid names).
        AnalysisExclusionError
            The other analysis of the same exclusive group is on this (channel, ROI).
        """
        get_spec(analysis_name)
        self._check_target(channel, roi_id)
        dx_um, dt_s = self._known_units()
        analysis = ANALYSIS_CLASSES[analysis_name](channel=int(channel), roi_id=roi_id,
                                                   detection_params=detection_params, dx_um=dx_um, dt_s=dt_s)
        self.add(analysis)
        return analysis

    def remove(self, key: Any) -> bool:
        """Forget analysis ``key`` (or analysis object) and its result: True, or False if absent."""
        return self._analyses.pop(_key_of(key), None) is not None

    def get(self, key: Any) -> BaseAnalysis | None:
        """The analysis with ``key``, or None."""
        return self._analyses.get(_key_of(key))

    def get_required(self, key: Any) -> BaseAnalysis:
        """The analysis with ``key``; ParameterError (a ValueError) naming the requested ones if absent."""
        analysis = self.get(key)
        if analysis is None:
            raise ParameterError(f"no analysis {_key_of(key)}; requested: {self.keys() or 'none'} (use create() first)")
        return analysis

    def as_list(self) -> list[BaseAnalysis]:
        """The analysis objects, in the order they were created."""
        return list(self._analyses.values())

    def keys(self) -> list[AnalysisKey]:
        """Requested analyses' keys, in the order they were created."""
        return list(self._analyses)

    def get_exclusive_group_analysis(self, *, group: str, channel: int, roi_id: int) -> BaseAnalysis | None:
        """The analysis of exclusive ``group`` on (channel, ROI), or None."""
        return next((a for a in self._analyses.values() if a.exclusive_group == group
                     and (a.key.channel, a.key.roi_id) == (channel, roi_id)), None)

    def get_primary_kymograph_analysis(self, *, channel: int, roi_id: int) -> BaseAnalysis | None:
        """The velocity or diameter analysis on (channel, ROI), or None."""
        return self.get_exclusive_group_analysis(group=PRIMARY_KYMOGRAPH, channel=channel, roi_id=roi_id)

    def serialize_json_analysis(self) -> list[dict[str, Any]]:
        """JSON-ready records of every analysis (see :meth:`BaseAnalysis.to_json_dict`)."""
        return [a.to_json_dict() for a in self._analyses.values()]

    def load_json_analysis(self, records: list[Mapping[str, Any]]) -> None:
        """Replace the analyses by ``records``; duplicates and exclusions raise as in :meth:`add`."""
        loaded = []
        for record in records:
            name = str(record["analysis_name"])
            get_spec(name)
            analysis = ANALYSIS_CLASSES[name](channel=int(record["channel"]), roi_id=int(record["roi_id"]))
            analysis.load_json_dict(record)
            loaded.append(analysis)
        previous, self._analyses = self._analyses, {}
        try:
            for analysis in loaded:
                self.add(analysis)
        except Exception:
            self._analyses = previous  # nothing already there is lost on a bad set of records
            raise

    # ------------------------------------------------------------ running
    def _units(self) -> tuple[float, float]:
        dx_um, dt_s = self._known_units()
        if dx_um is None or dt_s is None:
            missing = [name for name, value in (("dx_um", dx_um), ("dt_s", dt_s)) if value is None]
            raise MissingUnitsError(
                f"{self.source_path}: unknown {' and '.join(missing)} (no header gives them); pass "
                f"{', '.join(m + '=' for m in missing)} to AcqImage.open / from_array, or "
                f"{' / '.join(_UNITS_HINT[m] for m in missing)} on the command line")
        return float(dx_um), float(dt_s)

    def units(self, key: Any) -> Units:
        """The :class:`~hpcacq.analyses.options.Units` analysis ``key`` runs with: the image's current ones.

        Raises MissingUnitsError naming the options when ``dx_um`` or ``dt_s`` is unknown,
        ParameterError when the analysis' ``detection_params`` gave other units.
        """
        analysis = self.get_required(key)
        if self._provider is None:
            raise ParameterError(f"{self.source_path}: this analysis set has no data provider")
        dx_um, dt_s = self._units()
        check_given_units(analysis.given_units, dx_um=dx_um, dt_s=dt_s)
        return Units(dx_um, dt_s)

    def options(self, key: Any) -> Any:
        """The validated options object of analysis ``key`` (``RadonOptions``, ...), as it was built."""
        return self.get_required(key).options

    def params(self, key: Any) -> dict[str, Any]:
        """The parameters a result of ``key`` stores: ``dx_um``, ``dt_s`` (the image's) and every option."""
        return stored_params(self.options(key), self.units(key))

    def _row_offset(self, roi_id: Any) -> int:
        rois = getattr(_image_like(self._provider), "rois", None)
        roi = rois.get(roi_id) if rois is not None and hasattr(rois, "get") else None
        return int(getattr(roi, "r0", 0) or 0)

    def run_analysis(self, key: Any, context: AnalysisRunContext | None = None) -> AnalysisResult:
        """Run analysis ``key`` (or analysis object) on its ROI block and keep the result.

        Result times count from the first line of the image (the ROI's first row is
        passed as the row offset when the image knows its ROIs).

        Raises
        ------
        MissingUnitsError
            ``dx_um`` or ``dt_s`` is unknown.
        AnalysisCancelled
            The context's cancel callback returned True (a RuntimeError).
        """
        context = context or AnalysisRunContext()
        analysis = self.get_required(key)
        units = self.units(analysis.key)
        context.raise_if_cancelled()
        block = self._provider.get_roi_image(channel=analysis.key.channel, roi_id=analysis.key.roi_id)
        result = get_spec(analysis.key.analysis_name).run(
            np.asarray(block), analysis.options, units, row_offset=self._row_offset(analysis.key.roi_id),
            threads=analysis.threads or context.threads,
            cancel=context.is_cancelled if context.cancel_callback is not None else None,
            progress=context.chunk_progress(),
        )
        analysis.result, analysis.summary = result, dict(result.summary)
        return result

    @property
    def results(self) -> Mapping[AnalysisKey, AnalysisResult]:
        """Read-only mapping key -> result of the analyses run so far."""
        return _Results(self._analyses)

    def __len__(self) -> int:
        return len(self._analyses)

    def __contains__(self, key: object) -> bool:
        return _key_of(key) in self._analyses

    def __iter__(self):
        return iter(self._analyses.values())
