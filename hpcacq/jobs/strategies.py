"""Batch strategies: what to do with one file, and how each way of failing is reported.

A strategy holds the analysis, the channel (0-based), how the ROI is chosen, the
detection parameters (validated when the strategy is built, in hpcacq's or acqstore's
vocabulary), optional ``dx_um``/``dt_s`` overrides and the threads used inside one file.
:meth:`BatchStrategy.process_file` (acqstore's name; ``run_file`` is the same) takes a
path, an :class:`~hpcacq.model.AcqImage` or an acqstore-like image object (``path``,
``rois``, ``analysis_set``), runs the analysis on its ROI through the image's analysis
set (as acqstore does) and returns a :class:`BatchFileResult`; it never raises for a
problem of the file (those become outcomes).

Execution arguments map onto hpcacq threads inside the file (they never change the
answer): ``threads_per_file`` when given; else Radon's ``use_multiprocessing=False`` or
diameter's ``use_threads=False`` -> 1 thread, ``processes`` / ``max_workers`` -> that
many threads, None -> one per CPU (``os.cpu_count()``).
"""

from __future__ import annotations

import dataclasses
import operator
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from .. import checks
from ..analyses.acqstore_params import build_any
from ..analyses.base import ok_message
from ..analyses.registry import get_spec
from ..errors import AnalysisCancelled, AnalysisExclusionError, ParameterError
from .batch_types import (
    AnalysisBatchKind,
    BatchAnalysisStrategy,
    BatchFileOutcome,
    BatchFileResult,
    FileDetails,
    RoiBatchMode,
)

__all__ = [
    "BatchFileOutcome",
    "BatchFileResult",
    "FileDetails",
    "BatchAnalysisStrategy",
    "RoiBatchMode",
    "AnalysisBatchKind",
    "BatchStrategy",
    "RadonVelocityBatchStrategy",
    "DiameterBatchStrategy",
    "strategy_for",
]


def _describe(exc: BaseException, path: str) -> str:
    """``"<ErrorClass>: <message>"``, naming the file when the message does not."""
    text = str(exc) or repr(exc)
    if path not in text and os.path.basename(path) not in text:
        text = f"{path}: {text}"
    return f"{type(exc).__name__}: {text}"


def refuse_units(detection_params: Any) -> None:
    """Units belong to the files (or the ``dx_um=``/``dt_s=`` overrides), not to ``detection_params``."""
    for unit in ("dx_um", "dt_s"):
        if unit in (detection_params or {}):
            raise ParameterError(f"give {unit} as the strategy's {unit}= option, not in detection_params")


def _roi_mode(value: Any) -> RoiBatchMode:
    """A RoiBatchMode from itself, its value (``"add_new_roi"``, old ``"new"``) or its name."""
    try:
        return RoiBatchMode(value)
    except ValueError:
        raise ParameterError(f"roi_mode={value!r} is not one of {[m.name for m in RoiBatchMode]} "
                             f"(or {[m.value for m in RoiBatchMode]})") from None


def _as_int(value: Any) -> int | None:
    """``value`` as an int when it is an integer (Python or NumPy, not bool), else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _path_of(image_or_path: Any) -> str:
    """The file of a path, an AcqImage (its ``source``) or an acqstore-like image (its ``path``)."""
    for attr in ("source", "path"):
        value = getattr(image_or_path, attr, None)
        if isinstance(value, (str, os.PathLike)):
            return os.fspath(value)
    return os.fspath(image_or_path) if isinstance(image_or_path, (str, os.PathLike)) else str(image_or_path)


def _threads(given: Any, enabled: bool, count: Any, count_name: str) -> int:
    """Threads inside one file from hpcacq's ``threads_per_file`` or acqstore's execution arguments."""
    if given is not None:
        given = checks.integer("threads_per_file", given, 1)
        if count is not None and count != given:
            raise ParameterError(f"threads_per_file={given} and {count_name}={count} disagree; give one of them")
        return given
    if not enabled:
        return 1
    if count is None:
        return max(1, os.cpu_count() or 1)
    return checks.integer(count_name, count, 1, "or None for one per CPU")


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
    roi_mode : RoiBatchMode or str
        ADD_NEW_ROI (whole image, default) or ANALYZE_EXISTING_ROI (needs ``roi_id``);
        values and names accepted.
    roi_id : int or None
        The ROI to analyse with ANALYZE_EXISTING_ROI; ignored with ADD_NEW_ROI.
    detection_params : dict or None
        Scientific options, hpcacq's names (``{"window_lines": 32}``) or acqstore's
        (``{"window_width": 64}``); checked now, into ``options``.
    options : options object or None
        The validated options of the analysis (``RadonOptions``, ...), used as they are;
        None: built from ``detection_params`` (a job builds them once, in
        :class:`~hpcacq.jobs.config.JobConfig`, and every strategy and file reuses them).
    dx_um, dt_s : float or None
        µm per pixel and s per line overriding the files' headers.
    threads_per_file : int or None
        Threads inside one analysis; None: from the execution arguments of the concrete
        strategy (see the module doc). Answers do not depend on it.
    read_options : dict or None
        How files are read: ``transpose``, ``axes``, ``max_memory`` (see
        :func:`hpcacq.io.read_acquisition`); the analysis's working memory is added to
        the memory check.
    whole_image_roi_id : int or None
        ADD_NEW_ROI only: the id of the whole-image ROI, the same in every file
        (``hpcacq run`` uses :data:`WHOLE_IMAGE_ROI_ID`, 0). None (default): a new ROI
        with the next id, as acqstore does.

    Raises
    ------
    ParameterError
        Any option is invalid; the message says which and how to fix it (a ValueError).
    UnknownParameterError
        An unknown detection parameter (also a KeyError), listing the valid names.
    """

    kind: ClassVar[AnalysisBatchKind]
    analysis_name: ClassVar[str]
    channel: int = 0
    roi_mode: RoiBatchMode = RoiBatchMode.ADD_NEW_ROI
    roi_id: int | None = None
    detection_params: dict | None = None
    options: Any = None
    dx_um: float | None = None
    dt_s: float | None = None
    threads_per_file: int | None = None
    read_options: dict | None = None
    whole_image_roi_id: int | None = None

    def __post_init__(self) -> None:
        channel = _as_int(self.channel)
        if channel is None or channel < 0:
            raise ParameterError(f"channel={self.channel!r} must be an integer >= 0 (channels are 0-based)")
        object.__setattr__(self, "channel", channel)
        if self.roi_id is not None and _as_int(self.roi_id) is not None:
            object.__setattr__(self, "roi_id", _as_int(self.roi_id))
        object.__setattr__(self, "roi_mode", _roi_mode(self.roi_mode))
        self._check_roi()
        object.__setattr__(self, "threads_per_file", self._execution_threads())
        for unit in ("dx_um", "dt_s"):
            object.__setattr__(self, unit, checks.optional(checks.positive, unit, getattr(self, unit),
                                                           "or None to read it from the file"))
        object.__setattr__(self, "detection_params", self._checked_params())
        from ..io.limits import check_read_options

        object.__setattr__(self, "read_options", check_read_options(self.read_options))

    def _execution_threads(self) -> int:
        return _threads(self.threads_per_file, True, None, "threads_per_file")

    def _check_roi(self) -> None:
        if self.roi_mode is RoiBatchMode.ANALYZE_EXISTING_ROI:
            if isinstance(self.roi_id, bool) or not isinstance(self.roi_id, int):
                raise ParameterError(
                    f"roi_mode ANALYZE_EXISTING_ROI needs an integer roi_id (got {self.roi_id!r}); "
                    "give roi_id=... or use RoiBatchMode.ADD_NEW_ROI")

    def _checked_params(self) -> dict:
        """The detection parameters as given; ``options`` built from them unless given."""
        values = dict(self.detection_params or {})
        refuse_units(values)
        if self.options is None:
            object.__setattr__(self, "options", build_any(self.analysis_name, values)[1])
        elif not isinstance(self.options, get_spec(self.analysis_name).options_cls):
            raise ParameterError(f"options for {self.analysis_name!r} must be a "
                                 f"{get_spec(self.analysis_name).options_cls.__name__}, got {type(self.options).__name__}")
        return values

    def reference_params(self) -> dict:
        """The validated hpcacq parameters except units that come from each file.

        Includes ``dx_um``/``dt_s`` only when they are overridden. Used by resume to
        compare a stored result's parameters with this job's.
        """
        values = {unit: getattr(self, unit) for unit in ("dx_um", "dt_s") if getattr(self, unit) is not None}
        values.update({f.name: getattr(self.options, f.name) for f in dataclasses.fields(self.options)})
        return values

    def _result(self, path: str, outcome: BatchFileOutcome, message: str = "", *, roi_id: Any = None,
                **details) -> BatchFileResult:
        details.setdefault("params", dict(self.detection_params))
        return BatchFileResult(str(path), self.analysis_name, self.channel, roi_id, outcome,
                               message).with_details(**details)

    def cancelled(self, path: Any, message: str = "cancelled before it started") -> BatchFileResult:
        """The result of a file that was never started because the batch was cancelled (roi_id None)."""
        return self._result(_path_of(path), BatchFileOutcome.CANCELLED, message)

    def process_file(self, acq_image: Any, *, cancel_event: threading.Event | None = None) -> BatchFileResult:
        """Analyse one file (path, AcqImage or acqstore-like image): acqstore's name of :meth:`run_file`."""
        return self.run_file(acq_image, cancel_event=cancel_event)

    def run_file(self, image_or_path: Any, *, cancel_event: threading.Event | None = None,
                 progress: Any = None) -> BatchFileResult:
        """Open one file (or take an image) and run the analysis.

        Never raises for a problem of the file: cancellation becomes CANCELLED, the
        other analysis on the same (channel, ROI) SKIPPED_CONFLICT, a missing ROI
        SKIPPED_MISSING_ROI, any other exception FAILED with ``"<Error>: <message>"``.
        An earlier analysis with the same key on the image is replaced.
        ``progress(done, total)``, if given, is called between the analysis' chunks.
        """
        start = time.perf_counter()
        path = _path_of(image_or_path)
        if cancel_event is not None and cancel_event.is_set():
            return self.cancelled(path)
        timings = {"read_s": 0.0, "analyse_s": 0.0}
        target: dict = {}
        try:
            outcome = self._run(image_or_path, path, cancel_event, timings, target, progress)
        except AnalysisCancelled:
            outcome = self._result(path, BatchFileOutcome.CANCELLED, "cancelled while running", **target)
        except AnalysisExclusionError as exc:
            outcome = self._result(path, BatchFileOutcome.SKIPPED_CONFLICT, _describe(exc, path), **target)
        except Exception as exc:  # noqa: BLE001 - every problem of one file becomes FAILED
            outcome = self._result(path, BatchFileOutcome.FAILED, _describe(exc, path), **target)
        elapsed = time.perf_counter() - start
        return outcome.with_details(elapsed_s=elapsed, timings={**timings, "total_s": elapsed})

    def _open(self, image_or_path: Any, timings: dict, cancel=None):
        from ..model import AcqImage

        if isinstance(getattr(image_or_path, "open_error", None), Exception):  # AcqImageList's unreadable file
            raise image_or_path.open_error
        if isinstance(image_or_path, AcqImage):
            for unit in ("dx_um", "dt_s"):
                if getattr(self, unit) is not None:
                    setattr(image_or_path, unit, getattr(self, unit))
            return image_or_path
        if hasattr(image_or_path, "analysis_set") and hasattr(image_or_path, "rois"):  # acqstore-like image
            if self.dx_um is not None or self.dt_s is not None:
                raise ParameterError("dx_um/dt_s overrides apply to hpcacq AcqImages and paths only; set the "
                                     "units on this image object instead")
            return image_or_path
        start = time.perf_counter()
        from ..analyses.registry import working_bytes_per_pixel

        image = AcqImage.open(image_or_path, dx_um=self.dx_um, dt_s=self.dt_s, **(self.read_options or {}),
                              working_bytes_per_pixel=working_bytes_per_pixel(self.analysis_name), cancel=cancel)
        timings["read_s"] = time.perf_counter() - start
        return image

    def _run(self, image_or_path: Any, path: str, cancel_event, timings: dict, target: dict,
             progress=None) -> BatchFileResult:
        from ..model import AnalysisKey, AnalysisRunContext

        image = self._open(image_or_path, timings, None if cancel_event is None else cancel_event.is_set)
        if self.roi_mode is RoiBatchMode.ANALYZE_EXISTING_ROI:
            if not image.rois.has_roi(self.roi_id):
                ids = image.rois.ids() if hasattr(image.rois, "ids") else "unknown"
                return self._result(path, BatchFileOutcome.SKIPPED_MISSING_ROI,
                                    f"{path}: no ROI {self.roi_id}; the file has ROI ids {ids or 'none'}")
            roi_id = self.roi_id
        else:
            roi_id = _whole_image_roi(image, self.whole_image_roi_id).roi_id
        target["roi_id"] = roi_id
        image.analysis_set.remove(AnalysisKey(self.analysis_name, self.channel, roi_id))
        analysis = image.analysis_set.create(self.analysis_name, channel=self.channel, roi_id=roi_id,
                                             detection_params=self.options)
        context = AnalysisRunContext(cancel_callback=None if cancel_event is None else cancel_event.is_set,
                                     threads=self.threads_per_file, progress=progress)
        start = time.perf_counter()
        result = image.analysis_set.run_analysis(analysis.key, context=context)
        timings["analyse_s"] = time.perf_counter() - start
        roi = image.rois.get(roi_id)
        return self._result(path, BatchFileOutcome.OK, ok_message(result), roi_id=roi_id, result=result,
                            roi_bounds=getattr(roi, "bounds", None), params=dict(result.params),
                            n_lines=int(getattr(roi, "n_lines", 0)))


@dataclass(frozen=True, kw_only=True)
class RadonVelocityBatchStrategy(BatchStrategy):
    """Red-blood-cell velocity (Radon) on one ROI per file; see :class:`BatchStrategy`.

    Also takes acqstore's ``use_multiprocessing`` (default True) and ``processes``
    (default None = one thread per CPU): threads inside the file (module doc).
    """

    kind: ClassVar[AnalysisBatchKind] = AnalysisBatchKind.RADON_VELOCITY
    analysis_name: ClassVar[str] = "radon_velocity"
    use_multiprocessing: bool = True
    processes: int | None = None

    def _execution_threads(self) -> int:
        return _threads(self.threads_per_file, bool(self.use_multiprocessing), self.processes, "processes")


@dataclass(frozen=True, kw_only=True)
class DiameterBatchStrategy(BatchStrategy):
    """Vessel diameter on one ROI per file; see :class:`BatchStrategy`.

    Also takes acqstore's ``use_threads`` (default True) and ``max_workers`` (default
    None = one thread per CPU): threads inside the file (module doc).
    """

    kind: ClassVar[AnalysisBatchKind] = AnalysisBatchKind.DIAMETER
    analysis_name: ClassVar[str] = "diameter"
    use_threads: bool = True
    max_workers: int | None = None

    def _execution_threads(self) -> int:
        return _threads(self.threads_per_file, bool(self.use_threads), self.max_workers, "max_workers")


_STRATEGIES: dict[Any, type[BatchStrategy]] = {cls.kind: cls for cls in (RadonVelocityBatchStrategy,
                                                                         DiameterBatchStrategy)}


def _strategy_class(kind: Any) -> type[BatchStrategy]:
    """The strategy class of ``kind``: its own, else a plain one made once from the registry."""
    if kind not in _STRATEGIES:
        name = "".join(part.title() for part in kind.value.split("_")) + "BatchStrategy"
        cls = type(name, (BatchStrategy,), {"__module__": __name__, "__qualname__": name,
                                            "__annotations__": {}, "kind": kind, "analysis_name": kind.value,
                                            "__doc__": f"{kind.value!r} on one ROI per file; see :class:`BatchStrategy`."})
        _STRATEGIES[kind] = dataclass(frozen=True, kw_only=True)(cls)
    return _STRATEGIES[kind]


def strategy_for(analysis: str | AnalysisBatchKind, **options: Any) -> BatchStrategy:
    """Build the strategy of ``analysis`` (registry name or kind) with ``options``."""
    try:
        kind = AnalysisBatchKind(analysis)
    except ValueError:
        get_spec(analysis)  # raises ParameterError listing the valid names
        raise ParameterError(f"analysis {analysis!r} has no batch strategy") from None
    return _strategy_class(kind)(**options)
