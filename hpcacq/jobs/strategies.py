"""Batch strategies: what to do with one file, and how each way of failing is reported.

A strategy holds the analysis, the channel (0-based), how the ROI is chosen, the
detection parameters (validated when the strategy is built), optional ``dx_um``/``dt_s``
overrides and the threads used inside one file. :meth:`BatchStrategy.run_file` opens one
file, runs the analysis on its ROI and returns a :class:`BatchFileResult`; it never
raises for a problem of the file (those become outcomes).
"""

from __future__ import annotations

import enum
import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..analyses.base import ok_message
from ..analyses.registry import build_params, get_spec
from ..errors import AnalysisCancelled, AnalysisExclusionError, ParameterError

__all__ = [
    "BatchFileOutcome",
    "BatchFileResult",
    "RoiBatchMode",
    "AnalysisBatchKind",
    "BatchStrategy",
    "RadonVelocityBatchStrategy",
    "DiameterBatchStrategy",
    "strategy_for",
]


class BatchFileOutcome(str, enum.Enum):
    """What happened to one file of a batch (the value is what the HDF5 manifest stores)."""

    OK = "OK"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    SKIPPED_MISSING_ROI = "SKIPPED_MISSING_ROI"
    SKIPPED_CONFLICT = "SKIPPED_CONFLICT"


class RoiBatchMode(str, enum.Enum):
    """Which ROI of each file is analysed.

    ANALYZE_EXISTING_ROI uses the ROI ``roi_id`` (e.g. from a kymflow sidecar); a file
    without it is SKIPPED_MISSING_ROI. ADD_NEW_ROI adds a whole-image ROI to every file.
    """

    ANALYZE_EXISTING_ROI = "existing"
    ADD_NEW_ROI = "new"


class AnalysisBatchKind(str, enum.Enum):
    """The analyses a batch can run (values are the registry names)."""

    RADON_VELOCITY = "radon_velocity"
    DIAMETER = "diameter"


@dataclass
class BatchFileResult:
    """The outcome of one file of a batch.

    Attributes
    ----------
    file_path : str
        The input file.
    analysis_name : str
        ``"radon_velocity"`` or ``"diameter"``.
    channel : int
        0-based channel analysed.
    roi_id : int or None
        ROI analysed (None when the file was never opened).
    outcome : BatchFileOutcome
    message : str
        Empty when OK; else what went wrong, e.g. ``"InputError: a.tif: truncated TIFF"``.
    result : AnalysisResult or None
        The table, when OK.
    roi_bounds : (r0, r1, c0, c1) or None
        Half-open rows (time) x cols (space) of the ROI.
    params : dict
        Validated parameters (including ``dx_um``, ``dt_s``) when known, else the
        detection parameters as given.
    elapsed_s : float
        Wall time spent on this file (reading + analysing), seconds.
    n_lines : int
        Lines (rows) of the analysed ROI; 0 when not analysed.
    timings : dict
        ``read_s``, ``analyse_s``, ``total_s`` in seconds.
    """

    file_path: str
    analysis_name: str
    channel: int
    roi_id: int | None
    outcome: BatchFileOutcome
    message: str = ""
    result: Any = None
    roi_bounds: tuple[int, int, int, int] | None = None
    params: dict = field(default_factory=dict)
    elapsed_s: float = 0.0
    n_lines: int = 0
    timings: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome is BatchFileOutcome.OK


def _describe(exc: BaseException, path: str) -> str:
    """``"<ErrorClass>: <message>"``, naming the file when the message does not."""
    text = str(exc) or repr(exc)
    if path not in text and os.path.basename(path) not in text:
        text = f"{path}: {text}"
    return f"{type(exc).__name__}: {text}"


def _positive_or_none(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise ParameterError(f"{name}={value!r} must be a number > 0 (or None to read it from the file)")
    return float(value)


def _roi_mode(value: Any) -> RoiBatchMode:
    """A RoiBatchMode from itself, its value ("existing"/"new") or its name."""
    if isinstance(value, RoiBatchMode):
        return value
    for mode in RoiBatchMode:
        if value in (mode.value, mode.name):
            return mode
    raise ParameterError(f"roi_mode={value!r} is not one of {[m.name for m in RoiBatchMode]} "
                         f"(or {[m.value for m in RoiBatchMode]})")


#: Id that ``hpcacq run --roi new`` gives the whole-image ROI in every file (kymflow ids start at 1);
#: the strategies' ``whole_image_roi_id`` (None in the library: acqstore's next id).
WHOLE_IMAGE_ROI_ID = 0


def _whole_image_roi(image: Any, wanted: int | None) -> Any:
    """ADD_NEW_ROI's ROI: acqstore's new whole-image ROI (next id), or, with ``wanted``, the
    whole image with that id (reused when the image already has it; the next id when the
    file's ROI ``wanted`` is another region or the image object has no ``RoiSet.add``)."""
    from ..model import Roi

    rois, shape = image.rois, getattr(image, "shape", None)
    if wanted is None or shape is None or not hasattr(rois, "add"):
        return rois.create_rect_roi()
    whole = Roi(wanted, 0, int(shape[0]), 0, int(shape[1]))
    if not rois.has_roi(wanted):
        return rois.add(whole)
    existing = rois.get(wanted)
    return existing if existing.bounds == whole.bounds else rois.create_rect_roi()


@dataclass(frozen=True, kw_only=True)
class BatchStrategy:
    """How every file of a batch is analysed (base of the two concrete strategies).

    Parameters
    ----------
    channel : int
        0-based channel to analyse.
    roi_mode : RoiBatchMode
        ADD_NEW_ROI (whole image, default) or ANALYZE_EXISTING_ROI (needs ``roi_id``).
    roi_id : int or None
        The ROI to analyse with ANALYZE_EXISTING_ROI; must be None with ADD_NEW_ROI.
    detection_params : dict or None
        Scientific options of the analysis (e.g. ``{"window_lines": 32}``); checked now.
    dx_um, dt_s : float or None
        µm per pixel and s per line overriding the files' headers.
    threads_per_file : int
        Threads inside one analysis (passed to its ``threads=``); answers do not depend
        on it.
    whole_image_roi_id : int or None
        ADD_NEW_ROI only: the id of the whole-image ROI, the same in every file
        (``hpcacq run`` uses :data:`WHOLE_IMAGE_ROI_ID`, 0). None (default): a new ROI
        with the next id, as acqstore does.

    Raises
    ------
    ParameterError
        Any option is invalid; the message says which and how to fix it.
    """

    kind: ClassVar[AnalysisBatchKind]
    channel: int = 0
    roi_mode: RoiBatchMode = RoiBatchMode.ADD_NEW_ROI
    roi_id: int | None = None
    detection_params: dict | None = None
    dx_um: float | None = None
    dt_s: float | None = None
    threads_per_file: int = 1
    whole_image_roi_id: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.channel, bool) or not isinstance(self.channel, int) or self.channel < 0:
            raise ParameterError(f"channel={self.channel!r} must be an integer >= 0 (channels are 0-based)")
        object.__setattr__(self, "roi_mode", _roi_mode(self.roi_mode))
        self._check_roi()
        if isinstance(self.threads_per_file, bool) or not isinstance(self.threads_per_file, int) \
                or self.threads_per_file < 1:
            raise ParameterError(f"threads_per_file={self.threads_per_file!r} must be an integer >= 1")
        object.__setattr__(self, "dx_um", _positive_or_none("dx_um", self.dx_um))
        object.__setattr__(self, "dt_s", _positive_or_none("dt_s", self.dt_s))
        object.__setattr__(self, "detection_params", self._checked_params())

    def _check_roi(self) -> None:
        if self.roi_mode is RoiBatchMode.ANALYZE_EXISTING_ROI:
            if isinstance(self.roi_id, bool) or not isinstance(self.roi_id, int):
                raise ParameterError(
                    f"roi_mode ANALYZE_EXISTING_ROI needs an integer roi_id (got {self.roi_id!r}); "
                    "give roi_id=... or use RoiBatchMode.ADD_NEW_ROI")
        elif self.roi_id is not None:
            raise ParameterError(
                f"roi_id={self.roi_id!r} is only used with RoiBatchMode.ANALYZE_EXISTING_ROI; "
                "drop roi_id or change roi_mode")

    def _checked_params(self) -> dict:
        values = dict(self.detection_params or {})
        for unit in ("dx_um", "dt_s"):
            if unit in values:
                raise ParameterError(f"give {unit} as the strategy's {unit}= option, not in detection_params")
        # Validate now with stand-in units; the real ones come from each file (or overrides).
        build_params(self.analysis_name, values, dx_um=self.dx_um or 1.0, dt_s=self.dt_s or 1.0)
        return values

    @property
    def analysis_name(self) -> str:
        """Registry name of the analysis."""
        return self.kind.value

    def reference_params(self) -> dict:
        """The validated parameters except units that come from each file.

        Includes ``dx_um``/``dt_s`` only when they are overridden. Used by resume to
        compare a stored result's parameters with this job's.
        """
        params = build_params(self.analysis_name, self.detection_params, dx_um=self.dx_um or 1.0,
                              dt_s=self.dt_s or 1.0)
        values = {name: getattr(params, name) for name in params.__dataclass_fields__}
        for unit in ("dx_um", "dt_s"):
            if getattr(self, unit) is None:
                values.pop(unit)
        return values

    def _result(self, path: str, outcome: BatchFileOutcome, message: str = "", **extra) -> BatchFileResult:
        extra.setdefault("params", dict(self.detection_params))
        return BatchFileResult(str(path), self.analysis_name, self.channel, extra.pop("roi_id", self.roi_id),
                               outcome, message, **extra)

    def cancelled(self, path: Any, message: str = "cancelled before it started") -> BatchFileResult:
        """The result of a file that was never started because the batch was cancelled."""
        return self._result(str(path), BatchFileOutcome.CANCELLED, message)

    def run_file(self, image_or_path: Any, *, cancel_event: threading.Event | None = None,
                 progress: Any = None) -> BatchFileResult:
        """Open one file (or take an :class:`~hpcacq.model.AcqImage`) and run the analysis.

        Never raises for a problem of the file: cancellation becomes CANCELLED, the
        other analysis on the same (channel, ROI) SKIPPED_CONFLICT, a missing ROI
        SKIPPED_MISSING_ROI, any other exception FAILED with ``"<Error>: <message>"``.
        ``progress(done, total)``, if given, is called between the analysis' chunks.
        """
        start = time.perf_counter()
        from ..model import AcqImage

        path = image_or_path.source if isinstance(image_or_path, AcqImage) else str(image_or_path)
        if cancel_event is not None and cancel_event.is_set():
            return self.cancelled(path)
        timings = {"read_s": 0.0, "analyse_s": 0.0}
        try:
            outcome = self._run(image_or_path, path, cancel_event, timings, progress)
        except AnalysisCancelled:
            outcome = self._result(path, BatchFileOutcome.CANCELLED, "cancelled while running")
        except AnalysisExclusionError as exc:
            outcome = self._result(path, BatchFileOutcome.SKIPPED_CONFLICT, _describe(exc, path))
        except Exception as exc:  # noqa: BLE001 - every problem of one file becomes FAILED
            outcome = self._result(path, BatchFileOutcome.FAILED, _describe(exc, path))
        outcome.elapsed_s = time.perf_counter() - start
        outcome.timings = {**timings, "total_s": outcome.elapsed_s}
        return outcome

    def _open(self, image_or_path: Any, timings: dict):
        from ..model import AcqImage

        if isinstance(image_or_path, AcqImage):
            image = image_or_path
            for unit in ("dx_um", "dt_s"):
                if getattr(self, unit) is not None:
                    setattr(image, unit, getattr(self, unit))
            return image
        start = time.perf_counter()
        image = AcqImage.open(image_or_path, dx_um=self.dx_um, dt_s=self.dt_s)
        timings["read_s"] = time.perf_counter() - start
        return image

    def _run(self, image_or_path: Any, path: str, cancel_event, timings: dict, progress=None) -> BatchFileResult:
        from ..model import AnalysisRunContext

        image = self._open(image_or_path, timings)
        if self.roi_mode is RoiBatchMode.ANALYZE_EXISTING_ROI:
            if not image.rois.has_roi(self.roi_id):
                return self._result(path, BatchFileOutcome.SKIPPED_MISSING_ROI,
                                    f"{path}: no ROI {self.roi_id}; the file has ROI ids "
                                    f"{image.rois.ids() or 'none'}")
            roi = image.rois.get(self.roi_id)
        else:
            roi = _whole_image_roi(image, self.whole_image_roi_id)
        # create() replaces an earlier analysis (and result) with the same key.
        key = image.analysis_set.create(self.analysis_name, channel=self.channel, roi_id=roi.roi_id,
                                        detection_params=self.detection_params)
        params = image.analysis_set.params(key)
        context = AnalysisRunContext(cancel_callback=None if cancel_event is None else cancel_event.is_set,
                                     threads=self.threads_per_file, progress=progress)
        start = time.perf_counter()
        result = image.analysis_set.run_analysis(key, context)
        timings["analyse_s"] = time.perf_counter() - start
        return self._result(path, BatchFileOutcome.OK, ok_message(result), roi_id=roi.roi_id, result=result,
                            roi_bounds=roi.bounds,
                            params={n: getattr(params, n) for n in params.__dataclass_fields__},
                            n_lines=roi.n_lines)


@dataclass(frozen=True, kw_only=True)
class RadonVelocityBatchStrategy(BatchStrategy):
    """Red-blood-cell velocity (Radon) on one ROI per file; see :class:`BatchStrategy`."""

    kind: ClassVar[AnalysisBatchKind] = AnalysisBatchKind.RADON_VELOCITY


@dataclass(frozen=True, kw_only=True)
class DiameterBatchStrategy(BatchStrategy):
    """Vessel diameter on one ROI per file; see :class:`BatchStrategy`."""

    kind: ClassVar[AnalysisBatchKind] = AnalysisBatchKind.DIAMETER


_STRATEGIES = {AnalysisBatchKind.RADON_VELOCITY: RadonVelocityBatchStrategy,
               AnalysisBatchKind.DIAMETER: DiameterBatchStrategy}


def strategy_for(analysis: str | AnalysisBatchKind, **options: Any) -> BatchStrategy:
    """Build the strategy of ``analysis`` (registry name or kind) with ``options``."""
    try:
        kind = AnalysisBatchKind(analysis)
    except ValueError:
        get_spec(analysis)  # raises ParameterError listing the valid names
        raise ParameterError(f"analysis {analysis!r} has no batch strategy") from None
    return _STRATEGIES[kind](**options)
