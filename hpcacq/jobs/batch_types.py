"""The batch value types, with acqstore's names, values and shapes.

:class:`BatchFileResult` is acqstore's frozen, hashable six-field record. What hpcacq
knows beyond it (the result table, ROI bounds, validated parameters, timings) is kept in
its ``details`` (:class:`FileDetails`), an attribute that is not a dataclass field: it
takes no part in equality, hashing or ``repr``, and is lost by ``dataclasses.replace``.
The historical attribute names (``result``, ``roi_bounds``, ``params``, ``elapsed_s``,
``n_lines``, ``timings``) read it.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..analyses.registry import ANALYSIS_NAMES

__all__ = ["BatchFileOutcome", "RoiBatchMode", "AnalysisBatchKind", "BatchFileResult", "FileDetails",
           "BatchAnalysisStrategy"]


class _ValueEnum(str, enum.Enum):
    """A str enum whose ``str()`` is its value and that also accepts its member names (and old values)."""

    def __str__(self) -> str:
        return str(self.value)

    @classmethod
    def _missing_(cls, value: object):
        legacy = getattr(cls, "_LEGACY", {})
        if isinstance(value, str):
            name = legacy.get(value, value)
            for member in cls:
                if name in (member.name, member.value):
                    return member
        return None


class BatchFileOutcome(_ValueEnum):
    """What happened to one file (acqstore's values; HDF5 results store the member name, e.g. ``"OK"``)."""

    OK = "ok"
    SKIPPED_MISSING_ROI = "skipped_missing_roi"
    SKIPPED_CONFLICT = "skipped_conflict"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RoiBatchMode(_ValueEnum):
    """Which ROI of each file is analysed.

    ANALYZE_EXISTING_ROI (``"analyze_existing_roi"``) uses ROI ``roi_id`` (e.g. from a
    kymflow sidecar); a file without it is SKIPPED_MISSING_ROI. ADD_NEW_ROI
    (``"add_new_roi"``) adds a whole-image ROI to every file. hpcacq's former values
    ``"existing"``/``"new"`` and the member names are accepted too.
    """

    ANALYZE_EXISTING_ROI = "analyze_existing_roi"
    ADD_NEW_ROI = "add_new_roi"


RoiBatchMode._LEGACY = {"existing": "ANALYZE_EXISTING_ROI", "new": "ADD_NEW_ROI"}


#: The analyses a batch can run: one member per registered analysis, its name upper-cased.
AnalysisBatchKind = _ValueEnum("AnalysisBatchKind", [(name.upper(), name) for name in ANALYSIS_NAMES],
                               module=__name__, qualname="AnalysisBatchKind")
AnalysisBatchKind.__doc__ = "The analyses a batch can run (values are the registry names)."


@dataclass
class FileDetails:
    """hpcacq's extra knowledge about one file of a batch (not part of the result's identity).

    Attributes
    ----------
    result : AnalysisResult or None
        The table, when OK (None after ``keep_results=False``).
    roi_bounds : (r0, r1, c0, c1) or None
        Half-open rows (time) x cols (space) of the ROI analysed.
    params : dict
        Validated hpcacq parameters (with ``dx_um``, ``dt_s``) when known, else the
        detection parameters as given.
    elapsed_s : float
        Wall time spent on the file (reading + analysing), seconds.
    n_lines : int
        Lines of the analysed ROI; 0 when not analysed.
    timings : dict
        ``read_s``, ``analyse_s``, ``total_s`` in seconds.
    """

    result: Any = None
    roi_bounds: tuple[int, int, int, int] | None = None
    params: dict = field(default_factory=dict)
    elapsed_s: float = 0.0
    n_lines: int = 0
    timings: dict = field(default_factory=dict)


@dataclass(frozen=True)
class BatchFileResult:
    """The outcome of one file of a batch: acqstore's six fields, in its order.

    Attributes
    ----------
    file_path : str
        The input file.
    analysis_name : str
        A registered analysis name (``"unknown"`` when a foreign strategy raised).
    channel : int
        0-based channel analysed (-1 when unknown).
    roi_id : int or None
        ROI analysed; None when the file was cancelled before it started, has no such
        ROI, or failed before an ROI was chosen.
    outcome : BatchFileOutcome
    message : str
        ``"ok"`` (or ``"ok; doubtful: ..."``) when OK; else what went wrong, naming the file.
    details : FileDetails
        Not a field (see the module doc).
    """

    file_path: str
    analysis_name: str
    channel: int
    roi_id: int | None
    outcome: BatchFileOutcome
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "details", FileDetails())

    def with_details(self, **values: Any) -> BatchFileResult:
        """Set fields of :attr:`details` (this object, for chaining)."""
        for name, value in values.items():
            setattr(self.details, name, value)
        return self

    @property
    def ok(self) -> bool:
        return self.outcome is BatchFileOutcome.OK

    result = property(lambda self: self.details.result, doc="``details.result``")
    roi_bounds = property(lambda self: self.details.roi_bounds, doc="``details.roi_bounds``")
    params = property(lambda self: self.details.params, doc="``details.params``")
    elapsed_s = property(lambda self: self.details.elapsed_s, doc="``details.elapsed_s``")
    n_lines = property(lambda self: self.details.n_lines, doc="``details.n_lines``")
    timings = property(lambda self: self.details.timings, doc="``details.timings``")


@runtime_checkable
class BatchAnalysisStrategy(Protocol):
    """Anything with ``process_file(acq_image, *, cancel_event) -> BatchFileResult`` is a strategy."""

    def process_file(self, acq_image: Any, *, cancel_event: threading.Event) -> BatchFileResult:
        ...
