"""The acquisition model, with the names users of acqstore know.

:class:`AcqImage` holds one file's pixels (n_channels, n_lines, n_pixels), its physical
steps ``dx_um`` (µm per pixel) and ``dt_s`` (s per line), its ROIs (:class:`RoiSet`) and
its analyses (:class:`AcqAnalysisSet`), keyed by :class:`AnalysisKey`. Channels are
0-based; ROIs are half-open rectangles ``rows [r0, r1)`` (time) x ``cols [c0, c1)`` (space).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import checks
from .analysis_set import (
    AcqAnalysisSet,
    AnalysisKey,
    AnalysisRunContext,
    BaseAnalysis,
    DiameterAnalysis,
    RadonVelocityAnalysis,
)
from .errors import InputError, ParameterError
from .io.readers import as_channels, read_acquisition

__all__ = ["Roi", "RoiSet", "ImageBounds", "AnalysisKey", "AnalysisRunContext", "AcqAnalysisSet", "AcqImage",
           "AcqImageAnalysisDataProvider", "BaseAnalysis", "RadonVelocityAnalysis", "DiameterAnalysis"]


@dataclass(frozen=True)
class ImageBounds:
    """acqstore's image size: ``width`` pixels (space, axis 1) x ``height`` lines (time, axis 0)."""

    width: int
    height: int
    num_slices: int = 1


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
    """The ROIs of one image of ``shape`` (n_lines, n_pixels) or :class:`ImageBounds`, by integer id."""

    def __init__(self, shape: tuple[int, int] | ImageBounds):
        if isinstance(shape, ImageBounds):
            shape = (shape.height, shape.width)
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
        """Delete ROI ``roi_id``; ParameterError naming the existing ids if absent."""
        self.require(roi_id)
        del self._rois[roi_id]

    def has_roi(self, roi_id: int) -> bool:
        """True when an ROI with this id exists."""
        return roi_id in self._rois

    def ids(self) -> list[int]:
        """ROI ids in increasing order."""
        return sorted(self._rois)

    def get_roi_ids(self) -> list[int]:
        """ROI ids in increasing order (acqstore's name)."""
        return self.ids()

    def get(self, roi_id: int) -> Roi | None:
        """The ROI with id ``roi_id``, or None (as acqstore); :meth:`require` raises instead."""
        try:
            return self._rois.get(roi_id)
        except TypeError:  # unhashable id
            return None

    def require(self, roi_id: int) -> Roi:
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


class AcqImageAnalysisDataProvider:
    """acqstore's adapter from an image to the data provider of :class:`AcqAnalysisSet`.

    Parameters
    ----------
    acq_image : object
        Has ``get_roi_image(channel=, roi_id=)`` and ``get_image_physical_units()``
        (and, optionally, ``rois`` used to check targets and offset result times).
    """

    def __init__(self, acq_image: Any):
        self.acq_image = acq_image

    def get_roi_image(self, channel: int, roi_id: int) -> np.ndarray:
        """The ROI's pixels (lines, pixels)."""
        return self.acq_image.get_roi_image(channel=channel, roi_id=roi_id)

    def get_image_physical_units(self) -> tuple[float | None, float | None]:
        """``(seconds_per_line, um_per_pixel)``."""
        return self.acq_image.get_image_physical_units()


def _check_step(name: str, value: Any, source: str) -> float | None:
    try:
        return checks.optional(checks.positive, name, value, "or None when unknown")
    except ParameterError as exc:
        raise ParameterError(f"{source}: {exc}") from None


class AcqImage:
    """One acquisition: pixels (n_channels, n_lines, n_pixels), units, ROIs and analyses.

    Build with ``AcqImage(path)`` or :meth:`open` (a file), or ``AcqImage(array)`` /
    :meth:`from_array` (an array in memory).

    Parameters
    ----------
    data : str, path-like or array
        A file to read (see :meth:`open`), or pixels (n_lines, n_pixels) or
        (n_channels, n_lines, n_pixels).
    dx_um, dt_s : float, keyword-only, optional
        Micrometres per pixel and seconds per line (win over a file's headers).
    path : str or path-like, keyword-only, optional
        Where an array came from (only with an array).

    Attributes
    ----------
    path : str or None
        The file the image came from (text, as acqstore).
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

    Examples
    --------
    An image in memory with streaks moving 2 pixels per line (1 mm/s at these units), its
    whole area as ROI 1, and a Radon velocity analysis of that ROI:

    >>> import numpy as np
    >>> lines, x = np.mgrid[0:64, 0:32]
    >>> img = AcqImage(1000 + 500 * np.cos(2 * np.pi * (x - 2 * lines) / 10), dx_um=0.5, dt_s=0.001)
    >>> img.n_channels, img.shape
    (1, (64, 32))
    >>> roi = img.rois.create_rect_roi(channel=0)  # no bounds: the whole image
    >>> analysis = img.analysis_set.create("radon_velocity", channel=0, roi_id=roi.roi_id)
    >>> result = img.analysis_set.run_analysis(analysis.key)
    >>> round(float(result.summary["median_velocity_mm_s"]), 2)
    1.0
    """

    def __init__(self, data: Any, *, dx_um=None, dt_s=None, path=None, rois=(), header=None):
        if isinstance(data, (str, os.PathLike)):
            if path is not None:
                raise ParameterError(f"AcqImage({os.fspath(data)!r}) reads that file; path= is only for an array")
            _check_step("dx_um", dx_um, os.fspath(data))
            _check_step("dt_s", dt_s, os.fspath(data))
            raw = read_acquisition(data)
            path, rois, header, data = data, raw.rois, raw.header, raw.data
            dx_um = raw.dx_um if dx_um is None else dx_um
            dt_s = raw.dt_s if dt_s is None else dt_s
        elif not isinstance(data, (np.ndarray, list, tuple)) and not hasattr(data, "__array__"):
            raise InputError(
                f"AcqImage takes a file path (str or path-like) or an array (n_lines, n_pixels) or "
                f"(n_channels, n_lines, n_pixels), got {type(data).__name__}: {data!r:.80}")
        self.path = None if path is None else os.fspath(path)
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
             working_bytes_per_pixel: float = 0.0, cancel=None) -> AcqImage:
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
        if not isinstance(path, (str, os.PathLike)):
            raise InputError(f"AcqImage.open takes a file path (str or path-like), got {type(path).__name__}")
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
                   path: str | os.PathLike | None = None) -> AcqImage:
        """Wrap an array (n_lines, n_pixels) or (n_channels, n_lines, n_pixels); no copy."""
        return cls(data, dx_um=dx_um, dt_s=dt_s, path=path)

    @property
    def source(self) -> str:
        """The file path as text, or ``"<array>"`` for an image made from an array."""
        return "<array>" if self.path is None else self.path

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

    # ------------------------------------------------------------ acqstore's data-provider methods
    def get_roi_ids(self) -> list[int]:
        """ROI ids in increasing order."""
        return self.rois.ids()

    def get_roi_image(self, channel: int, roi_id: int) -> np.ndarray:
        """Pixels of ROI ``roi_id`` on ``channel`` (0-based): a (lines, pixels) view, time on axis 0."""
        roi = self.rois.require(roi_id)
        return self.get_channel(channel)[roi.r0:roi.r1, roi.c0:roi.c1]

    def get_image_physical_units(self) -> tuple[float | None, float | None]:
        """``(seconds_per_line, um_per_pixel)`` = ``(dt_s, dx_um)``, None where unknown (acqstore's order)."""
        return self.dt_s, self.dx_um

    def save(self) -> list[str]:
        """Write each analysis' table beside the file: ``<file>.<analysis_name>.csv``.

        One CSV per analysis name, with ``channel`` and ``roi_id`` columns first, then the
        table's columns (acqstore's sidecar CSV layout; acqstore's JSON sidecar is not
        written). Analyses not run yet are left out; nothing is written for an image made
        from an array without a path.

        Returns
        -------
        list of str
            The files written.
        """
        from .acq_csv import write_analysis_csvs

        if self.path is None:
            return []
        return write_analysis_csvs(self.path, self.analysis_set.as_list())

    def __repr__(self) -> str:
        return (f"AcqImage({self.source!r}, channels={self.n_channels}, shape={self.shape}, "
                f"dx_um={self.dx_um}, dt_s={self.dt_s}, rois={self.rois.ids()})")
