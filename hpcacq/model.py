"""The acquisition model, with the names users of acqstore know.

:class:`AcqImage` holds one file's pixels (n_channels, n_lines, n_pixels), its physical
steps ``dx_um`` (µm per pixel) and ``dt_s`` (s per line), its ROIs (:class:`RoiSet`) and
its analyses (:class:`AcqAnalysisSet`), keyed by :class:`AnalysisKey`. Channels are
0-based; ROIs are half-open rectangles ``rows [r0, r1)`` (time) x ``cols [c0, c1)`` (space).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from .analyses.base import AnalysisResult
from .analyses.registry import build_params, get_spec
from .errors import AnalysisExclusionError, InputError, MissingUnitsError, ParameterError
from .io.readers import as_channels, read_acquisition

__all__ = ["Roi", "RoiSet", "AnalysisKey", "AnalysisRunContext", "AcqAnalysisSet", "AcqImage"]


@dataclass(frozen=True)
class Roi:
    """A rectangular region of interest: rows ``[r0, r1)`` (time) x cols ``[c0, c1)`` (space).

    ``channel`` is the 0-based channel the ROI was drawn on (None: any); analyses choose
    their channel themselves.
    """

    roi_id: int
    r0: int
    r1: int
    c0: int
    c1: int
    channel: int | None = None

    @property
    def bounds(self) -> tuple[int, int, int, int]:
        """``(r0, r1, c0, c1)``, half-open."""
        return (self.r0, self.r1, self.c0, self.c1)

    @property
    def n_lines(self) -> int:
        """Number of lines (rows, time) in the ROI."""
        return self.r1 - self.r0

    @property
    def n_pixels(self) -> int:
        """Number of pixels (columns, space) in the ROI."""
        return self.c1 - self.c0


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


class RoiSet:
    """The ROIs of one image of ``shape`` (n_lines, n_pixels), by integer id."""

    def __init__(self, shape: tuple[int, int]):
        self._shape = (int(shape[0]), int(shape[1]))
        self._rois: dict[int, Roi] = {}

    def _check_bounds(self, bounds: Any) -> tuple[int, int, int, int]:
        n_lines, n_pixels = self._shape
        if not isinstance(bounds, (tuple, list)) or len(bounds) != 4 or not all(map(_is_int, bounds)):
            raise ParameterError(f"ROI bounds must be 4 integers (r0, r1, c0, c1), got {bounds!r}")
        r0, r1, c0, c1 = (int(b) for b in bounds)
        if not (0 <= r0 < r1 <= n_lines and 0 <= c0 < c1 <= n_pixels):
            raise ParameterError(
                f"ROI rows [{r0}, {r1}) x cols [{c0}, {c1}) does not fit the image of {n_lines} lines x "
                f"{n_pixels} pixels; need 0 <= r0 < r1 <= {n_lines} and 0 <= c0 < c1 <= {n_pixels}"
            )
        return r0, r1, c0, c1

    def create_rect_roi(self, bounds: Any = None, *, channel: int | None = None) -> Roi:
        """Add a rectangular ROI and return it.

        Parameters
        ----------
        bounds : (r0, r1, c0, c1) or None
            Half-open rows (time) and columns (space); None = the whole image.
        channel : int or None, keyword-only
            0-based channel the ROI belongs to (informative; None = any).

        Returns
        -------
        Roi
            With a new id, one more than the largest id so far (1 for the first).
        """
        bounds = (0, self._shape[0], 0, self._shape[1]) if bounds is None else bounds
        r0, r1, c0, c1 = self._check_bounds(bounds)
        roi = Roi(max(self._rois, default=0) + 1, r0, r1, c0, c1, channel)
        self._rois[roi.roi_id] = roi
        return roi

    def add(self, roi: Roi) -> Roi:
        """Add an ROI with its own id (as read from a sidecar); the id must be new."""
        if not _is_int(roi.roi_id) or roi.roi_id in self._rois:
            raise ParameterError(f"ROI id {roi.roi_id!r} is not a new integer id; existing ids: {self.ids()}")
        self._check_bounds(roi.bounds)
        self._rois[roi.roi_id] = roi
        return roi

    def remove(self, roi_id: int) -> None:
        """Delete ROI ``roi_id``."""
        self.get(roi_id)
        del self._rois[roi_id]

    def has_roi(self, roi_id: int) -> bool:
        """True when an ROI with this id exists."""
        return roi_id in self._rois

    def ids(self) -> list[int]:
        """ROI ids in increasing order."""
        return sorted(self._rois)

    def get(self, roi_id: int) -> Roi:
        """The ROI with id ``roi_id``; ParameterError naming the existing ids if absent."""
        try:
            return self._rois[roi_id]
        except (KeyError, TypeError):
            raise ParameterError(
                f"no ROI with id {roi_id!r}; existing ids: {self.ids() or 'none'} "
                "(add one with rois.create_rect_roi())"
            ) from None

    def __len__(self) -> int:
        return len(self._rois)

    def __iter__(self) -> Iterator[Roi]:
        return iter(self._rois[i] for i in self.ids())

    def __repr__(self) -> str:
        return f"RoiSet({list(self)})"


@dataclass(frozen=True)
class AnalysisKey:
    """Identifies one analysis of an image: which analysis, on which channel and ROI."""

    analysis_name: str
    channel: int
    roi_id: int


@dataclass
class AnalysisRunContext:
    """Execution options of one run; they never change the answer.

    Attributes
    ----------
    cancel_callback : callable or None
        Zero-argument callable polled between chunks; True stops the run with
        :class:`~hpcacq.errors.AnalysisCancelled`.
    threads : int
        Threads used inside the analysis (kernels release the GIL).
    progress : callable or None
        ``progress(done, total)`` called between chunks.
    """

    cancel_callback: Callable[[], bool] | None = None
    threads: int = 1
    progress: Callable[[int, int], None] | None = None


_UNITS_HINT = {"dx_um": "--dx-um", "dt_s": "--dt-s"}


class AcqAnalysisSet:
    """The analyses requested on one image and their results, by :class:`AnalysisKey`."""

    def __init__(self, image: "AcqImage"):
        self._image = image
        self._requested: dict[AnalysisKey, dict] = {}  # key -> validated detection params
        self._results: dict[AnalysisKey, AnalysisResult] = {}

    def _check_target(self, channel: Any, roi_id: Any) -> None:
        n = self._image.n_channels
        if not _is_int(channel) or not 0 <= channel < n:
            raise ParameterError(f"channel {channel!r} does not exist; valid channels are 0..{n - 1} (0-based)")
        self._image.rois.get(roi_id)

    def _check_exclusion(self, key: AnalysisKey, group: str | None) -> None:
        if group is None:
            return
        for other in self._requested:
            if (other.channel, other.roi_id) != (key.channel, key.roi_id) or other.analysis_name == key.analysis_name:
                continue
            if get_spec(other.analysis_name).exclusive_group == group:
                raise AnalysisExclusionError(
                    f"{key.analysis_name!r} and {other.analysis_name!r} exclude each other on channel "
                    f"{key.channel}, ROI {key.roi_id} (an ROI lies either along or across a vessel); "
                    "remove the other analysis or use another ROI"
                )

    def _validated(self, name: str, detection_params: Any) -> dict:
        """Check ``detection_params`` now (with stand-in units while the real ones are unknown)."""
        dx_um, dt_s = self._image.dx_um, self._image.dt_s
        if dx_um is not None and dt_s is not None:
            params = build_params(name, detection_params, dx_um=dx_um, dt_s=dt_s)
        else:
            stand_in = {k: v for k, v in dict(detection_params or {}).items() if k not in _UNITS_HINT}
            params = build_params(name, stand_in, dx_um=1.0, dt_s=1.0)
        values = {f: getattr(params, f) for f in params.__dataclass_fields__ if f not in _UNITS_HINT}
        if detection_params is not None and not isinstance(detection_params, Mapping):  # a params object
            values.update({k: getattr(detection_params, k) for k in _UNITS_HINT})
        elif detection_params:
            values.update({k: v for k, v in detection_params.items() if k in _UNITS_HINT})
        return values

    def create(self, name: str, channel: int = 0, roi_id: int = 1, detection_params: Any = None) -> AnalysisKey:
        """Request analysis ``name`` on ``channel`` (0-based) and ROI ``roi_id``.

        ``detection_params`` (dict of scientific options) is validated now. A request with
        the same key replaces the earlier one and drops its result.

        Raises
        ------
        ParameterError
            Unknown analysis (lists the names), channel or ROI (names what exists), or
            invalid parameters.
        AnalysisExclusionError
            The other analysis of the same exclusive group is requested on this
            (channel, ROI).
        """
        spec = get_spec(name)
        self._check_target(channel, roi_id)
        key = AnalysisKey(name, int(channel), roi_id)
        self._check_exclusion(key, spec.exclusive_group)
        params = self._validated(name, detection_params)
        self._results.pop(key, None)
        self._requested[key] = params
        return key

    def remove(self, key: AnalysisKey) -> None:
        """Forget analysis ``key`` and its result."""
        self._check_key(key)
        del self._requested[key]
        self._results.pop(key, None)

    def _check_key(self, key: AnalysisKey) -> None:
        if key not in self._requested:
            raise ParameterError(f"no analysis {key}; requested: {self.keys() or 'none'} (use create() first)")

    def params(self, key: AnalysisKey) -> Any:
        """The validated params object of ``key``, with the image's current units.

        Raises MissingUnitsError naming the options when ``dx_um`` or ``dt_s`` is unknown.
        """
        self._check_key(key)
        missing = [name for name in _UNITS_HINT if getattr(self._image, name) is None]
        if missing:
            raise MissingUnitsError(
                f"{self._image.source}: unknown {' and '.join(missing)} (no header gives them); pass "
                f"{', '.join(m + '=' for m in missing)} to AcqImage.open / from_array, or "
                f"{' / '.join(_UNITS_HINT[m] for m in missing)} on the command line"
            )
        return build_params(key.analysis_name, self._requested[key], dx_um=self._image.dx_um, dt_s=self._image.dt_s)

    def run_analysis(self, key: AnalysisKey, context: AnalysisRunContext | None = None) -> AnalysisResult:
        """Run analysis ``key`` on its ROI block and store the result under ``key``.

        The ROI block ``channel[r0:r1, c0:c1]`` is passed with ``row_offset=r0`` so result
        times count from the first line of the image.

        Raises
        ------
        MissingUnitsError
            ``dx_um`` or ``dt_s`` is unknown.
        AnalysisCancelled
            The context's cancel callback returned True.
        """
        context = context or AnalysisRunContext()
        params = self.params(key)
        roi = self._image.rois.get(key.roi_id)
        block = self._image.get_channel(key.channel)[roi.r0 : roi.r1, roi.c0 : roi.c1]
        result = get_spec(key.analysis_name).run(
            block, params, row_offset=roi.r0, threads=context.threads,
            cancel=context.cancel_callback, progress=context.progress,
        )
        self._results[key] = result
        return result

    @property
    def results(self) -> Mapping[AnalysisKey, AnalysisResult]:
        """Read-only mapping key -> result of the analyses run so far."""
        return MappingProxyType(self._results)

    def keys(self) -> list[AnalysisKey]:
        """Requested analyses, in the order they were created."""
        return list(self._requested)

    def __len__(self) -> int:
        return len(self._requested)

    def __contains__(self, key: object) -> bool:
        return key in self._requested


def _check_step(name: str, value: Any, source: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
        math.isfinite(value) and value > 0
    ):
        raise ParameterError(f"{source}: {name}={value!r} must be a number > 0 (or None when unknown)")
    return float(value)


class AcqImage:
    """One acquisition: pixels (n_channels, n_lines, n_pixels), units, ROIs and analyses.

    Build with :meth:`open` (a file) or :meth:`from_array` (an array in memory).

    Attributes
    ----------
    path : Path or None
        The file the image came from.
    n_channels : int
        Number of channels (0-based in the API).
    shape : (int, int)
        ``(n_lines, n_pixels)``: time (axis 0) x space (axis 1) of each channel.
    dtype : numpy.dtype
        Pixel dtype, as in the file (e.g. uint16).
    dx_um, dt_s : float or None
        Micrometres per pixel and seconds per line; None when unknown. Assigning a new
        value is validated.
    rois : RoiSet
        ROIs, including those of a kymflow sidecar (channels converted to 0-based).
    analysis_set : AcqAnalysisSet
        Requested analyses and their results.
    header : dict
        Provenance of units and metadata (see :class:`hpcacq.io.RawAcquisition`).
    """

    def __init__(self, data: np.ndarray, *, dx_um=None, dt_s=None, path=None, rois=(), header=None):
        self.path = None if path is None else Path(path)
        self._data = as_channels(data, source=self.source)
        self.dx_um = dx_um
        self.dt_s = dt_s
        self.header = dict(header or {})
        self.rois = RoiSet(self.shape)
        for spec in rois:
            self._add_file_roi(spec)
        self.analysis_set = AcqAnalysisSet(self)

    def _add_file_roi(self, spec: Any) -> None:
        roi = spec if isinstance(spec, Roi) else Roi(spec.roi_id, spec.r0, spec.r1, spec.c0, spec.c1, spec.channel)
        try:
            self.rois.add(roi)
        except ParameterError as exc:
            raise InputError(f"{self.source}: ROI {roi.roi_id} from the sidecar: {exc}") from None

    @classmethod
    def open(cls, path: str | os.PathLike, *, dx_um: float | None = None, dt_s: float | None = None,
             transpose: bool = False, axes: str | None = None, max_memory: int | str | None = None,
             working_bytes_per_pixel: float = 0.0, cancel=None) -> "AcqImage":
        """Read ``path`` (see :func:`hpcacq.io.read_acquisition`).

        Parameters
        ----------
        path : str or path-like
            Image file; an Olympus ``<stem>.txt`` and a kymflow ``<stem>.json`` beside it
            are read too.
        dx_um, dt_s : float, keyword-only, optional
            Micrometres per pixel and seconds per line; when given they win over the
            file's headers.
        transpose, axes, max_memory, working_bytes_per_pixel, cancel : keyword-only, optional
            How to read the file: ``transpose=True`` for a file stored (pixels, lines),
            ``axes`` (e.g. ``"TYX"``) for a page stack whose metadata says nothing, the
            per-rank memory bound checked before reading, a cancel callback polled
            between blocks of a large read; see :func:`hpcacq.io.read_acquisition`.

        Raises
        ------
        InputError
            The file cannot be used (the message names it and the problem).
        ParameterError
            ``dx_um`` or ``dt_s`` is not a number > 0.
        """
        _check_step("dx_um", dx_um, str(path))
        _check_step("dt_s", dt_s, str(path))
        raw = read_acquisition(path, transpose=transpose, axes=axes, max_memory=max_memory,
                               working_bytes_per_pixel=working_bytes_per_pixel, cancel=cancel)
        return cls(
            raw.data,
            dx_um=raw.dx_um if dx_um is None else dx_um,
            dt_s=raw.dt_s if dt_s is None else dt_s,
            path=path,
            rois=raw.rois,
            header=raw.header,
        )

    @classmethod
    def from_array(cls, data: Any, *, dx_um: float | None = None, dt_s: float | None = None,
                   path: str | os.PathLike | None = None) -> "AcqImage":
        """Wrap an array (n_lines, n_pixels) or (n_channels, n_lines, n_pixels); no copy."""
        return cls(data, dx_um=dx_um, dt_s=dt_s, path=path)

    @property
    def source(self) -> str:
        """The file path as text, or ``"<array>"`` for an image made from an array."""
        return "<array>" if self.path is None else str(self.path)

    @property
    def dx_um(self) -> float | None:
        return self._dx_um

    @dx_um.setter
    def dx_um(self, value: float | None) -> None:
        self._dx_um = _check_step("dx_um", value, self.source)

    @property
    def dt_s(self) -> float | None:
        return self._dt_s

    @dt_s.setter
    def dt_s(self, value: float | None) -> None:
        self._dt_s = _check_step("dt_s", value, self.source)

    @property
    def n_channels(self) -> int:
        return self._data.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        return (self._data.shape[1], self._data.shape[2])

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    def get_channel(self, channel: int) -> np.ndarray:
        """Pixels of ``channel`` (0-based) as a (n_lines, n_pixels) view."""
        if not _is_int(channel) or not 0 <= channel < self.n_channels:
            raise ParameterError(
                f"{self.source}: channel {channel!r} does not exist; valid channels are "
                f"0..{self.n_channels - 1} (0-based)"
            )
        return self._data[channel]

    def __repr__(self) -> str:
        return (f"AcqImage({self.source!r}, channels={self.n_channels}, shape={self.shape}, "
                f"dx_um={self.dx_um}, dt_s={self.dt_s}, rois={self.rois.ids()})")
