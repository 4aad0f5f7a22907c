"""acqstore's analysis objects: the key, the run context and one class per analysis.

An analysis object (:class:`RadonVelocityAnalysis`, :class:`DiameterAnalysis`) holds its
:class:`AnalysisKey` ``(analysis_name, channel, roi_id)``, its detection parameters
(checked when it is built, in hpcacq's or acqstore's vocabulary, see
:mod:`hpcacq.analyses.acqstore_params`), its execution threads and, once run, hpcacq's
:class:`~hpcacq.analyses.base.AnalysisResult`. :class:`hpcacq.analysis_set.AcqAnalysisSet`
keeps them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from . import checks
from .analyses.acqstore_params import acqstore_defaults, acqstore_schema, build_any
from .analyses.base import AnalysisResult
from .analyses.registry import REGISTRY
from .errors import AnalysisCancelled, ParameterError

__all__ = ["AnalysisKey", "AnalysisRunContext", "BaseAnalysis", "RadonVelocityAnalysis", "DiameterAnalysis",
           "SumIntensityAnalysis", "PlainAnalysis", "ANALYSIS_CLASSES", "PRIMARY_KYMOGRAPH", "key_of", "check_given_units"]

#: acqstore's exclusive group of the two analyses: an ROI lies along a vessel (velocity) or across it (diameter).
PRIMARY_KYMOGRAPH = "primary_kymograph"
_UNITS = ("dx_um", "dt_s")


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


def check_given_units(given: Mapping[str, float], *, dx_um: float | None, dt_s: float | None) -> None:
    """Units given in ``detection_params`` must equal the image's (where the image's are known)."""
    for unit, value in (("dx_um", dx_um), ("dt_s", dt_s)):
        if value is not None and unit in given and given[unit] != value:
            raise ParameterError(
                f"detection_params gives {unit}={given[unit]} but the image has {unit}={value}; set units on "
                f"the image (AcqImage.open(path, {unit}=...)), not in detection_params")


def _default_threads(enabled: bool, count: Any, name: str) -> int:
    if not enabled:
        return 1
    if count is None:
        return max(1, os.cpu_count() or 1)
    return checks.integer(name, count, 1, "or None for one per CPU")


class BaseAnalysis:
    """One requested analysis: its key, detection parameters and (after a run) its result.

    Parameters
    ----------
    channel : int, keyword-only
        0-based channel.
    roi_id : int, keyword-only
        ROI analysed.
    detection_params : dict, options object or None, keyword-only
        In hpcacq's or acqstore's vocabulary (see :mod:`hpcacq.analyses.acqstore_params`);
        checked now (an unknown name raises :class:`~hpcacq.errors.UnknownParameterError`,
        a KeyError). An options object (``RadonOptions``, ...) is used as it is.
    dx_um, dt_s : float or None, keyword-only
        The image's units when known: units given in ``detection_params`` must equal them.

    Attributes
    ----------
    key : AnalysisKey
    detection_params : dict
        As given (the vocabulary it was given in).
    vocabulary : {"hpcacq", "acqstore"}
    options : frozen dataclass
        The validated options (``RadonOptions``, ``DiameterOptions``, ...), built once.
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
        self.vocabulary, self.options, self.given_units = self._validated(detection_params)
        check_given_units(self.given_units, dx_um=dx_um, dt_s=dt_s)
        self.result: AnalysisResult | None = None
        self.summary: dict = {}
        self.threads: int | None = None  # set by set_execution_options; None: the run context's

    def _validated(self, detection_params: Any) -> tuple[str, Any, dict[str, float]]:
        """Check now: (vocabulary, options object, units given in ``detection_params``).

        An options object is taken as it is (a job builds one and passes it to every file).
        """
        if detection_params is not None and not isinstance(detection_params, Mapping):
            vocabulary, options = build_any(self.analysis_name, detection_params)
            return vocabulary, options, {}
        values = dict(detection_params or {})
        units = {}
        for name in _UNITS:
            value = values.pop(name, None)
            if value is not None:
                checks.positive(name, value, "or leave it out: the image's units apply")
                units[name] = value
        vocabulary, options = build_any(self.analysis_name, values)
        return vocabulary, options, units

    @property
    def hpcacq_params(self) -> dict[str, Any]:
        """The options in hpcacq's names, plus ``dx_um``/``dt_s`` when ``detection_params`` gave them."""
        return {**{f.name: getattr(self.options, f.name) for f in dataclasses.fields(self.options)},
                **self.given_units}

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
        build_any(cls.analysis_name, {k: v for k, v in params.items() if k not in _UNITS})

    def to_json_dict(self) -> dict[str, Any]:
        """Identity, detection parameters and summary, JSON-ready."""
        return {"analysis_name": self.key.analysis_name, "channel": self.key.channel, "roi_id": self.key.roi_id,
                "detection_params": dict(self.detection_params) if isinstance(self.detection_params, Mapping)
                else dict(self.hpcacq_params), "summary": dict(self.summary)}

    def load_json_dict(self, record: Mapping[str, Any]) -> None:
        """Take detection parameters (checked) and summary from a :meth:`to_json_dict` record."""
        params = dict(record.get("detection_params", {}))
        self.vocabulary, self.options, self.given_units = self._validated(params)
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


class SumIntensityAnalysis(BaseAnalysis):
    """Summed intensity of each line of the ROI (``"sum_intensity"``); coexists with velocity or diameter."""

    analysis_name: ClassVar[str] = "sum_intensity"
    exclusive_group: ClassVar[str | None] = None

    def set_execution_options(self, **_options: Any) -> None:
        """No execution options: one pass over the block needs one thread."""


class PlainAnalysis(BaseAnalysis):
    """An analysis acqstore has no class for: threads as ``DiameterAnalysis``; one subclass per registry line."""

    def set_execution_options(self, *, use_threads: bool = True, max_workers: int | None = None) -> None:
        """``use_threads=False`` -> 1 thread, else ``max_workers`` (None: per CPU)."""
        self.threads = _default_threads(bool(use_threads), max_workers, "max_workers")


def _plain_class(name: str, exclusive_group: str | None) -> type[BaseAnalysis]:
    title = "".join(part.title() for part in name.split("_")) + "Analysis"
    return type(title, (PlainAnalysis,), {"analysis_name": name, "exclusive_group": exclusive_group,
                                          "__doc__": f"The registered analysis ``{name!r}``.",
                                          "__module__": __name__})


_OWN_CLASSES: dict[str, type[BaseAnalysis]] = {
    cls.analysis_name: cls for cls in (RadonVelocityAnalysis, DiameterAnalysis, SumIntensityAnalysis)
}
#: Registered name -> analysis class: acqstore's own classes, a :class:`PlainAnalysis` for the others.
ANALYSIS_CLASSES: dict[str, type[BaseAnalysis]] = {
    name: _OWN_CLASSES.get(name) or _plain_class(name, entry.exclusive_group) for name, entry in REGISTRY.items()
}


def key_of(item: Any) -> Any:
    """An AnalysisKey from itself or from an analysis object (its ``.key``)."""
    return item.key if isinstance(getattr(item, "key", None), AnalysisKey) else item
