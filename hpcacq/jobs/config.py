"""The job description behind ``hpcacq run`` and the summary it returns.

:class:`JobConfig` is frozen and validated when built, so a bad analysis name, channel,
ROI choice or parameter fails before any file is read; under MPI every rank builds the
same config from the same command line.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import checks
from ..analyses.acqstore_params import build_any
from ..errors import ParameterError
from .inputs import InputList
from .strategies import BatchFileOutcome, BatchStrategy, RoiBatchMode, _roi_mode, refuse_units, strategy_for

__all__ = ["JobConfig", "JobSummary", "EXIT_OK", "EXIT_SOME_FAILED", "EXIT_USAGE", "EXIT_CANCELLED",
           "EXIT_INTERNAL", "EXIT_OUTPUT", "summarize"]

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 3
EXIT_INTERNAL = 4
EXIT_OUTPUT = 5  # the output could not be written (full disk, read-only, I/O error): --resume continues


@dataclass(frozen=True, kw_only=True)
class JobConfig:
    """Everything one ``hpcacq run`` needs (frozen; validated when built).

    Parameters
    ----------
    inputs : sequence of str
        Input files (already expanded: see ``hpcacq.jobs.inputs.expand_inputs``). An
        :class:`~hpcacq.jobs.inputs.InputList` is kept as is (on disk, read lazily); any
        other sequence becomes a tuple.
    output : str
        HDF5 results file (written by rank 0 only).
    analysis : str
        A registered analysis name (:data:`hpcacq.analyses.registry.ANALYSIS_NAMES`).
    channel : int
        0-based channel.
    roi_mode : RoiBatchMode
        ADD_NEW_ROI (whole image) or ANALYZE_EXISTING_ROI (needs ``roi_id``).
    roi_id : int or None
    params : dict
        Detection parameters of the analysis as given (hpcacq's or acqstore's names),
        checked now into ``options``; stored as given in the job's attributes.
    dx_um, dt_s : float or None
        µm per pixel / s per line overriding the files' headers.
    threads : int or None
        Threads inside one file's analysis; None sizes them from the cores of a rank.
    resume : bool
        Continue an existing output: files already OK for the same input and
        parameters are skipped.
    overwrite : bool
        Replace an existing output.
    time_limit_s : float or None
        Stop (exit code 3) after this many seconds; finished files are kept.
    stop_file : str or None
        Stop when this file appears.
    progress : bool or None
        True logs one line per finished file; otherwise only failures and the summary.
    transpose : bool
        Every file is stored (pixels, lines): swap the axes after reading.
    axes : str or None
        What the stored dimensions of a page stack are (letters T, C, Y, X, e.g. ``"TYX"``).
    max_memory : int, str or None
        Per-rank memory bound (bytes or ``"4G"``, ``"25%"``); None uses
        ``$HPCACQ_MAX_MEMORY`` or half the node's memory per rank (:mod:`hpcacq.io.limits`).

    Attributes
    ----------
    options : frozen dataclass
        The analysis' validated options (``RadonOptions``, ...), built once here from
        ``params``; every strategy, file and warm-up of this job (on this rank) uses this
        one object.
    """

    inputs: Sequence[str]
    output: str
    analysis: str
    channel: int = 0
    roi_mode: RoiBatchMode = RoiBatchMode.ADD_NEW_ROI
    roi_id: int | None = None
    params: dict = field(default_factory=dict)
    dx_um: float | None = None
    dt_s: float | None = None
    threads: int | None = None
    resume: bool = False
    overwrite: bool = False
    time_limit_s: float | None = None
    stop_file: str | None = None
    progress: bool | None = None
    transpose: bool = False
    axes: str | None = None
    max_memory: int | str | None = None
    options: Any = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if isinstance(self.inputs, (str, bytes, os.PathLike)):
            raise ParameterError("inputs must be a sequence of file paths, not one string")
        if not isinstance(self.inputs, InputList):
            object.__setattr__(self, "inputs", tuple(os.fspath(p) for p in self.inputs))
        object.__setattr__(self, "output", os.fspath(self.output))
        object.__setattr__(self, "params", dict(self.params or {}))
        object.__setattr__(self, "roi_mode", _roi_mode(self.roi_mode))
        if len(self.inputs) == 0:
            raise ParameterError("no input files: the inputs given (folders, globs, @lists) hold no supported file "
                                 "(.tif, .tiff, .npy, .h5, .hdf5); check the paths")
        if self.resume and self.overwrite:
            raise ParameterError("resume and overwrite exclude each other: choose one")
        checks.optional(checks.integer, "threads", self.threads, 1, "or None")
        checks.optional(checks.positive, "time_limit_s", self.time_limit_s, "or None")
        if self.stop_file is not None:
            object.__setattr__(self, "stop_file", os.fspath(self.stop_file))
        name = getattr(self.analysis, "value", self.analysis)  # a registered name or an AnalysisBatchKind
        refuse_units(self.params)
        object.__setattr__(self, "options", build_any(name, self.params)[1])  # the one build of this job
        self.strategy()  # validates analysis, channel, ROI choice, units and read options

    def strategy(self, *, threads_per_file: int = 1) -> BatchStrategy:
        """The batch strategy of this job (raises ParameterError for bad options)."""
        return strategy_for(self.analysis, channel=self.channel, roi_mode=self.roi_mode, roi_id=self.roi_id,
                            detection_params=self.params, options=self.options, dx_um=self.dx_um, dt_s=self.dt_s,
                            threads_per_file=threads_per_file,
                            read_options={"transpose": self.transpose, "axes": self.axes,
                                          "max_memory": self.max_memory})

    def job_attrs(self) -> dict:
        """JSON-friendly description stored as attributes of the HDF5 file."""
        return {
            "analysis": self.analysis, "channel": self.channel, "roi_mode": self.roi_mode.name,
            "roi_id": self.roi_id, "params": dict(self.params),
            "dx_um": self.dx_um, "dt_s": self.dt_s, "n_inputs": len(self.inputs),
        }


@dataclass(frozen=True)
class JobSummary:
    """Counts of one job, the same on every rank.

    ``n_ok`` includes ``n_resumed`` files found OK in the output by ``resume``.
    ``n_lines`` counts lines analysed in this run; ``elapsed_s`` is wall time.
    ``exit_code``: 0 all OK, 1 some FAILED or SKIPPED, 3 cancelled, 5 the output could not
    be written (``output_error`` says why; what was stored is kept, ``--resume`` continues).
    """

    n_files: int
    n_ok: int
    n_failed: int
    n_skipped: int
    n_cancelled: int
    n_lines: int
    elapsed_s: float
    cancelled: bool
    exit_code: int
    n_resumed: int = 0
    cancel_reason: str | None = None
    output_error: str | None = None

    @property
    def files_per_s(self) -> float:
        return (self.n_files - self.n_resumed) / self.elapsed_s if self.elapsed_s > 0 else float("nan")

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        text = (f"{self.n_files} files: {self.n_ok} OK ({self.n_resumed} from an earlier run), "
                f"{self.n_failed} failed, {self.n_skipped} skipped, {self.n_cancelled} cancelled; "
                f"{self.n_lines} lines in {self.elapsed_s:.1f} s")
        out = [text]
        if self.output_error:
            out.append(f"output error: {self.output_error}")
        elif self.cancelled:
            out.append(f"cancelled ({self.cancel_reason or 'stop requested'}): run again with --resume to finish")
        return out


def summarize(outcomes: Iterable[str], *, n_lines: int, elapsed_s: float, n_resumed: int = 0,
              cancelled: bool = False, cancel_reason: str | None = None,
              output_error: str | None = None) -> JobSummary:
    """Build the :class:`JobSummary` from the outcome values of the files run now."""
    counts = {o: 0 for o in BatchFileOutcome}
    for outcome in outcomes:
        counts[BatchFileOutcome(outcome)] += 1
    n_skipped = counts[BatchFileOutcome.SKIPPED_MISSING_ROI] + counts[BatchFileOutcome.SKIPPED_CONFLICT]
    n_failed, n_cancelled = counts[BatchFileOutcome.FAILED], counts[BatchFileOutcome.CANCELLED]
    cancelled = cancelled or n_cancelled > 0
    if output_error:
        code = EXIT_OUTPUT
    elif cancelled:
        code = EXIT_CANCELLED
    else:
        code = EXIT_SOME_FAILED if (n_failed or n_skipped) else EXIT_OK
    n_ok = counts[BatchFileOutcome.OK] + n_resumed
    return JobSummary(n_files=n_ok + n_failed + n_skipped + n_cancelled, n_ok=n_ok, n_failed=n_failed,
                      n_skipped=n_skipped, n_cancelled=n_cancelled, n_lines=n_lines, elapsed_s=elapsed_s,
                      cancelled=cancelled, exit_code=code, n_resumed=n_resumed, cancel_reason=cancel_reason,
                      output_error=output_error)
