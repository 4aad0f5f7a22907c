"""Analyses of one image, with acqstore's names and behaviour.

:class:`AcqAnalysisSet` holds analysis objects (:class:`RadonVelocityAnalysis`,
:class:`DiameterAnalysis`) keyed by :class:`AnalysisKey` ``(analysis_name, channel,
roi_id)``. Pixels and units come from a *data provider*: any object with
``get_roi_image(channel=, roi_id=) -> (n_lines, n_pixels) array`` (time on axis 0, space
on axis 1) and ``get_image_physical_units() -> (seconds_per_line, um_per_pixel)``; an
:class:`hpcacq.model.AcqImage` is one. When the provider also knows its channels and
ROIs (an AcqImage), :meth:`AcqAnalysisSet.create` checks them at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterator, Mapping

import numpy as np

from .analyses.acqstore_params import acqstore_defaults, acqstore_schema, build_any
from .analyses.base import AnalysisResult
from .analyses.registry import build_params, get_spec
from .errors import AnalysisCancelled, AnalysisExclusionError, MissingUnitsError, ParameterError

__all__ = ["AnalysisKey", "AnalysisRunContext", "BaseAnalysis", "RadonVelocityAnalysis", "DiameterAnalysis",
           "AcqAnalysisSet", "PRIMARY_KYMOGRAPH"]

#: acqstore's exclusive group of the two analyses: an ROI lies along a vessel (velocity) or across it (diameter).
PRIMARY_KYMOGRAPH = "primary_kymograph"
_UNITS = ("dx_um", "dt_s")
_UNITS_HINT = {"dx_um": "--dx-um", "dt_s": "--dt-s"}


@dataclass(frozen=True)
class AnalysisKey:
    """Identifies one analysis of an image: which analysis, on which channel (0-based) and ROI."""

    analysis_name: str
    channel: int
    roi_id: int

    def csv_filename(self, source_name: str) -> str:
        """``"<source_name>.<analysis_name>.csv"``, e.g. ``"a.tif.radon_velocity.csv"`` (extension kept)."""
        return f"{source_name}.{self.analysis_name}.csv"


@dataclass
class AnalysisRunContext:
    """Progress and cancellation of one run, and its threads; none of them changes the answer.

    Attributes
    ----------
    cancel_callback : callable or None
        Zero-argument callable polled between chunks; True stops the run with
        :class:`~hpcacq.errors.AnalysisCancelled`.
    threads : int
        Threads used inside the analysis (kernels release the GIL).
    progress : callable or None
        hpcacq's ``progress(done, total)`` (chunks), called between chunks.
    progress_callback : callable or None
        acqstore's ``progress_callback(fraction, message)``, fraction in [0, 1].
    """

    cancel_callback: Callable[[], bool] | None = None
    threads: int = 1
    progress: Callable[[int, int], None] | None = None
    progress_callback: Callable[[float | None, str], None] | None = None

    def report_progress(self, fraction: float | None, message: str = "") -> None:
        """Pass ``(fraction, message)`` to ``progress_callback`` if there is one."""
        if self.progress_callback is not None:
            self.progress_callback(fraction, message)

    def is_cancelled(self) -> bool:
        """True once the cancel callback says so (False without a callback)."""
        return bool(self.cancel_callback is not None and self.cancel_callback())

    def raise_if_cancelled(self) -> None:
        """Raise :class:`~hpcacq.errors.AnalysisCancelled` if cancellation was requested."""
        if self.is_cancelled():
            raise AnalysisCancelled("analysis cancelled")

    def chunk_progress(self) -> Callable[[int, int], None] | None:
        """The ``progress(done, total)`` an analysis calls, feeding both callbacks (None if neither)."""
        if self.progress is None and self.progress_callback is None:
            return None

        def progress(done: int, total: int) -> None:
            if self.progress is not None:
                self.progress(done, total)
            self.report_progress(done / total if total else None, f"{done}/{total} chunks")

        return progress


def _default_threads(enabled: bool, count: Any, name: str) -> int:
    if not enabled:
        return 1
    if count is None:
        return max(1, os.cpu_count() or 1)
    if isinstance(count, bool) or int(count) < 1:
        raise ParameterError(f"{name}={count!r} must be an integer >= 1 (or None for one per CPU)")
    return int(count)


class BaseAnalysis:
    """One requested analysis: its key, detection parameters and (after a run) its result.

    Parameters
    ----------
    channel : int, keyword-only
        0-based channel.
    roi_id : int, keyword-only
        ROI analysed.
    detection_params : dict, params object or None, keyword-only
        In hpcacq's or acqstore's vocabulary (see :mod:`hpcacq.analyses.acqstore_params`);
        checked now (an unknown name raises :class:`~hpcacq.errors.UnknownParameterError`,
        a KeyError).

    Attributes
    ----------
    key : AnalysisKey
    detection_params : dict
        As given (the vocabulary it was given in).
    vocabulary : {"hpcacq", "acqstore"}
    result : hpcacq.analyses.base.AnalysisResult or None
        The table once run.
    """

    analysis_name: ClassVar[str]
    exclusive_group: ClassVar[str | None] = PRIMARY_KYMOGRAPH

    def __init__(self, *, channel: int, roi_id: int, detection_params: Any = None,
                 dx_um: float | None = None, dt_s: float | None = None):
        self.key = AnalysisKey(self.analysis_name, channel, roi_id)
        self.detection_params = dict(detection_params) if isinstance(detection_params, Mapping) else (
            {} if detection_params is None else detection_params)
        self.vocabulary, self.hpcacq_params = self._validated(detection_params, dx_um, dt_s)
        self.result: AnalysisResult | None = None
        self.summary: dict = {}
        self.threads: int | None = None  # set by set_execution_options; None: the run context's

    def _validated(self, detection_params: Any, dx_um, dt_s) -> tuple[str, dict]:
        """Check now (stand-in units while the image's are unknown); hpcacq's names -> values."""
        given = dict(detection_params) if isinstance(detection_params, Mapping) else None
        if dx_um is None or dt_s is None:
            stand_in = {k: v for k, v in given.items() if k not in _UNITS} if given is not None else detection_params
            vocabulary, params = build_any(self.analysis_name, stand_in, dx_um=1.0, dt_s=1.0)
        else:
            vocabulary, params = build_any(self.analysis_name, detection_params, dx_um=dx_um, dt_s=dt_s)
        values = {f: getattr(params, f) for f in params.__dataclass_fields__ if f not in _UNITS}
        if given is None and detection_params is not None:  # a params object carries its units
            values.update({k: getattr(detection_params, k) for k in _UNITS})
        elif given:
            values.update({k: v for k, v in given.items() if k in _UNITS})
        return vocabulary, values

    @classmethod
    def get_detection_schema(cls) -> tuple:
        """acqstore's detection-parameter schema of this analysis."""
        return acqstore_schema(cls.analysis_name)

    @classmethod
    def get_default_detection_params(cls) -> dict[str, Any]:
        """acqstore's defaults (acqstore's names); hpcacq's own defaults apply to an empty dict."""
        return acqstore_defaults(cls.analysis_name)

    @classmethod
    def validate_detection_params(cls, params: Any) -> None:
        """Check ``params`` (either vocabulary); UnknownParameterError (a KeyError) or ParameterError."""
        if not isinstance(params, Mapping):
            raise ParameterError(f"detection_params must be a dict, got {type(params).__name__}")
        stand_in = {k: v for k, v in params.items() if k not in _UNITS}
        build_any(cls.analysis_name, stand_in, dx_um=1.0, dt_s=1.0)

    def to_json_dict(self) -> dict[str, Any]:
        """Identity, detection parameters and summary, JSON-ready."""
        return {"analysis_name": self.key.analysis_name, "channel": self.key.channel, "roi_id": self.key.roi_id,
                "detection_params": dict(self.detection_params) if isinstance(self.detection_params, Mapping)
                else dict(self.hpcacq_params), "summary": dict(self.summary)}

    def load_json_dict(self, record: Mapping[str, Any]) -> None:
        """Take detection parameters (checked) and summary from a :meth:`to_json_dict` record."""
        params = dict(record.get("detection_params", {}))
        self.vocabulary, self.hpcacq_params = self._validated(params, None, None)
        self.detection_params = params
        self.summary = dict(record.get("summary", {}))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(channel={self.key.channel}, roi_id={self.key.roi_id}, " \
               f"detection_params={self.detection_params!r})"


class RadonVelocityAnalysis(BaseAnalysis):
    """Red-blood-cell velocity by the Radon method (``"radon_velocity"``); see :func:`hpcacq.radon_velocity`."""

    analysis_name: ClassVar[str] = "radon_velocity"

    def set_execution_options(self, *, use_multiprocessing: bool = True, processes: int | None = None) -> None:
        """acqstore's execution options, as hpcacq threads for this file.

        ``use_multiprocessing=False`` -> 1 thread; else ``processes`` threads (None: one
        per CPU). Threads never change the answer.
        """
        self.threads = _default_threads(bool(use_multiprocessing), processes, "processes")


class DiameterAnalysis(BaseAnalysis):
    """Vessel diameter, one value per line (``"diameter"``); see :func:`hpcacq.vessel_diameter`."""

    analysis_name: ClassVar[str] = "diameter"

    def set_execution_options(self, *, use_threads: bool = True, max_workers: int | None = None) -> None:
        """acqstore's execution options: ``use_threads=False`` -> 1 thread, else ``max_workers`` (None: per CPU)."""
        self.threads = _default_threads(bool(use_threads), max_workers, "max_workers")


ANALYSIS_CLASSES: dict[str, type[BaseAnalysis]] = {
    RadonVelocityAnalysis.analysis_name: RadonVelocityAnalysis,
    DiameterAnalysis.analysis_name: DiameterAnalysis,
}


def _key_of(item: Any) -> Any:
    """An AnalysisKey from itself or from an analysis object (its ``.key``)."""
    return item.key if isinstance(getattr(item, "key", None), AnalysisKey) else item


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
        missing = [name for name, value in (("dx_um", dx_um), ("dt_s", dt_s)) if value is None]
        if missing:
            raise MissingUnitsError(
                f"{self.source_path}: unknown {' and '.join(missing)} (no header gives them); pass "
                f"{', '.join(m + '=' for m in missing)} to AcqImage.open / from_array, or "
                f"{' / '.join(_UNITS_HINT[m] for m in missing)} on the command line")
        return float(dx_um), float(dt_s)

    def params(self, key: Any) -> Any:
        """The validated hpcacq params object of ``key``, with the image's current units.

        Raises MissingUnitsError naming the options when ``dx_um`` or ``dt_s`` is unknown.
        """
        analysis = self.get_required(key)
        if self._provider is None:
            raise ParameterError(f"{self.source_path}: this analysis set has no data provider")
        dx_um, dt_s = self._units()
        return build_params(analysis.key.analysis_name, analysis.hpcacq_params, dx_um=dx_um, dt_s=dt_s)

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
        params = self.params(analysis.key)
        context.raise_if_cancelled()
        block = self._provider.get_roi_image(channel=analysis.key.channel, roi_id=analysis.key.roi_id)
        result = get_spec(analysis.key.analysis_name).run(
            np.asarray(block), params, row_offset=self._row_offset(analysis.key.roi_id),
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
