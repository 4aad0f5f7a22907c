"""Read one line-scan file into a :class:`RawAcquisition`: pixels, physical steps, ROIs.

Formats (chosen by suffix): TIFF (``.tif``/``.tiff``, via tifffile), NumPy ``.npy`` and
HDF5 (``.h5``/``.hdf5``: dataset ``data``, or the only dataset; attributes ``dx_um``,
``dt_s`` on the dataset or the file). Beside any image, an Olympus header ``<stem>.txt``
gives ``dx_um``/``dt_s`` and a kymflow sidecar ``<stem>.json`` gives ROIs (and
``dt_s``/``dx_um`` when nothing else does). Units are never guessed: unknown is None.

Memory: each file is read once into one array of its own dtype; a 2-D image gains its
channel axis as a view, so the peak is about one copy of the file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .arrays import read_hdf5, read_npy
from .companions import companion
from .limits import check_memory, open_regular, resolve_memory_bound
from .olympus import format_olympus_header, read_olympus_header
from .sidecar import RoiSpec, read_sidecar
from .tiff import PageHints, StackPlan, read_tiff
from .validate import check_unit

__all__ = [
    "SUPPORTED_SUFFIXES",
    "RawAcquisition",
    "RoiSpec",
    "as_channels",
    "check_orientation",
    "read_acquisition",
    "write_tiff_with_header",
]

SUPPORTED_SUFFIXES = (".tif", ".tiff", ".npy", ".h5", ".hdf5")


@dataclass(frozen=True)
class RawAcquisition:
    """The content of one acquisition file, before any analysis.

    Attributes
    ----------
    data : ndarray, shape (n_channels, n_lines, n_pixels)
        Pixels in the file's dtype; axis 1 = time (lines), axis 2 = space (pixels).
    dx_um : float or None
        Micrometres per pixel; None when no header gives it.
    dt_s : float or None
        Seconds per line; None when no header gives it.
    rois : tuple of RoiSpec
        ROIs from the kymflow sidecar (0-based channels), empty without a sidecar.
    source : str
        The file path.
    header : dict
        Where things came from: ``units_source`` (``"hdf5"``, ``"olympus"``,
        ``"sidecar"`` or None), ``olympus`` (all header fields) when a ``.txt`` was read,
        ``sidecar`` (its path) when a ``.json`` was read.
    """

    data: np.ndarray
    dx_um: float | None
    dt_s: float | None
    rois: tuple[RoiSpec, ...] = ()
    source: str = ""
    header: dict[str, Any] = field(default_factory=dict)


def as_channels(array: Any, *, source: str) -> np.ndarray:
    """Check ``array`` is a usable image and return it shaped (n_channels, n_lines, n_pixels).

    A 2-D array (n_lines, n_pixels) becomes one channel (a view, no copy).

    Raises
    ------
    InputError
        Not 2-D or 3-D, zero-size, or not a real numeric dtype.
    """
    array = np.asarray(array)
    if array.ndim not in (2, 3):
        raise InputError(
            f"{source}: the image has {array.ndim} dimension(s), shape {array.shape}; expected 2-D "
            "(n_lines, n_pixels) or 3-D (n_channels, n_lines, n_pixels)"
        )
    if array.size == 0:
        raise InputError(f"{source}: the image is empty (shape {array.shape}); it needs lines and pixels")
    if array.dtype.kind not in "uif":
        raise InputError(
            f"{source}: pixels of dtype {array.dtype} cannot be analysed; use integer or float "
            "pixels (e.g. `.astype(np.float32)`)"
        )
    return array[np.newaxis] if array.ndim == 2 else array


ORIENTATION_RATIO = 8  # more pixels per line than this many times the lines: no scanner writes that
ORIENTATION_MIN_PIXELS = 128


def check_orientation(n_lines: int, n_pixels: int, *, source: str, transposed: bool) -> None:
    """Refuse a shape no line scanner writes (many more pixels per line than lines).

    Line scans hold many more lines (time) than pixels per line (space); an image of
    38 lines x 30000 pixels is a 30000-line scan stored pixels x lines.
    """
    if n_pixels >= ORIENTATION_MIN_PIXELS and n_pixels > ORIENTATION_RATIO * n_lines:
        fix = ("it was read with --transpose: drop --transpose (transpose=False)" if transposed else
               "the file is probably stored transposed (pixels x lines): run again with --transpose "
               "(JobConfig(transpose=True), AcqImage.open(..., transpose=True))")
        raise InputError(
            f"{source}: the image is {n_lines} lines x {n_pixels} pixels per line, {n_pixels / max(n_lines, 1):.0f} "
            f"times more pixels per line than lines, which no line scanner writes (rows must be lines = time, "
            f"columns pixels = space); {fix}")


def _read_tif(path: Path, *, axes, check, hints, cancel=None) -> tuple[np.ndarray, dict]:
    return read_tiff(path, hints=hints, axes=axes, check=check, cancel=cancel)


_READERS: dict[str, Callable[..., tuple[np.ndarray, dict]]] = {".tif": _read_tif, ".tiff": _read_tif, ".npy": read_npy, ".h5": read_hdf5, ".hdf5": read_hdf5}


def _olympus_header(path: Path):
    txt = companion(path, ".txt")
    return (txt, None) if txt is None else (txt, read_olympus_header(txt))


def _olympus_units(path: Path, txt, header, data: np.ndarray) -> tuple[float | None, float | None, dict | None]:
    if header is None:
        return None, None, None
    n_lines, n_pixels = data.shape[-2:]
    if header.n_lines not in (None, n_lines) or header.n_pixels not in (None, n_pixels):
        raise InputError(
            f"{txt}: header says {header.n_pixels} pixels x {header.n_lines} lines but {path.name} "
            f"holds {n_pixels} x {n_lines}; the header belongs to another image: fix or delete it"
        )
    dt_s = header.dt_s(n_lines)
    if dt_s is not None:
        dt_s = check_unit("dt_s", dt_s, str(txt), "T Dimension / lines")
    return header.dx_um, dt_s, header.fields


def _check_rois(rois, data: np.ndarray, sidecar_path: Path) -> None:
    n_channels, n_lines, n_pixels = data.shape
    for roi in rois:
        if roi.r1 > n_lines or roi.c1 > n_pixels:
            raise InputError(
                f"{sidecar_path}: roi {roi.roi_id} (rows [{roi.r0}, {roi.r1}) x cols [{roi.c0}, {roi.c1})) "
                f"lies outside the image of {n_lines} lines x {n_pixels} pixels"
            )
        if roi.channel is not None and roi.channel >= n_channels:
            raise InputError(
                f"{sidecar_path}: roi {roi.roi_id} is on channel {roi.channel + 1} (1-based) "
                f"but the image has {n_channels} channel(s)"
            )


def _make_check(source: str, *, transpose: bool, bound: int, working_per_pixel: float):
    def check(plan: StackPlan, itemsize: int, copies: float, *, extra_bytes: int = 0) -> None:
        if math.prod(plan.shape) == 0:
            raise InputError(f"{source}: the image is empty (shape {plan.shape}); it needs lines and pixels")
        n_channels, n_lines, n_pixels = plan.out_shape
        if transpose:
            n_lines, n_pixels = n_pixels, n_lines
        check_orientation(n_lines, n_pixels, source=source, transposed=transpose)
        check_memory(source, shape=plan.shape, itemsize=itemsize, copies=copies + (1.0 if transpose else 0.0),
                     channel_pixels=n_lines * n_pixels, working_per_pixel=working_per_pixel, bound=bound,
                     extra_bytes=extra_bytes)
    return check


def read_acquisition(path: str | os.PathLike, *, transpose: bool = False, axes: str | None = None,
                     max_memory: int | str | None = None, working_bytes_per_pixel: float = 0.0,
                     cancel: Callable[[], bool] | None = None) -> RawAcquisition:
    """Read one line-scan file with its Olympus header and kymflow sidecar, if present.

    Parameters
    ----------
    path : str or path-like
        A ``.tif``/``.tiff``, ``.npy``, ``.h5`` or ``.hdf5`` file. 2-D images are
        (n_lines, n_pixels); 3-D are (n_channels, n_lines, n_pixels); multi-page TIFFs
        are joined in time or read as channels as their metadata says (see
        :mod:`hpcacq.io.tiff`).
    transpose : bool, keyword-only
        The file stores (n_pixels, n_lines): swap the two axes after reading.
    axes : str, keyword-only, optional
        What the stored dimensions are, letters T (blocks of lines joined in time), C
        (channels), Y (lines), X (pixels), e.g. ``"TYX"`` for a stack of line blocks.
    max_memory : int or str, keyword-only, optional
        Per-rank memory bound (bytes or ``"4G"``); default ``$HPCACQ_MAX_MEMORY`` or half
        the node's memory per rank (:mod:`hpcacq.io.limits`). Checked before reading.
    working_bytes_per_pixel : float, keyword-only
        Extra bytes per pixel of one channel the analysis will need (counted in the check).
    cancel : callable, keyword-only, optional
        Polled between blocks of 64 MiB while reading; when it returns True the read stops
        with :class:`hpcacq.errors.AnalysisCancelled`.

    Returns
    -------
    RawAcquisition
        Units come from the HDF5 attributes, else the Olympus ``<stem>.txt`` header, else
        the sidecar's ``header.voxels``; each is None when nothing gives it.

    Raises
    ------
    InputError
        Missing, not a regular file, unreadable, empty, truncated or mis-named file,
        unsupported suffix, wrong number of dimensions, ambiguous page stack, transposed
        shape, more memory needed than the bound, implausible value in a header or
        sidecar, sidecar ROI outside the image. The message names the file and the problem.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _READERS:
        raise InputError(
            f"{path}: unsupported file type {path.suffix or '(no suffix)'!r}; "
            f"supported: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    bound = resolve_memory_bound(max_memory)
    open_regular(path).close()  # a clear message for FIFOs, loops, dangling links, empty files
    txt, olympus = _olympus_header(path) if suffix in (".tif", ".tiff", ".npy") else (None, None)
    json_path = companion(path, ".json")
    sidecar = read_sidecar(json_path) if json_path is not None else None
    check = _make_check(str(path), transpose=bool(transpose), bound=bound,
                        working_per_pixel=float(working_bytes_per_pixel))
    if suffix in (".tif", ".tiff"):
        hints = PageHints(n_channels=None if olympus is None else olympus.n_channels,
                          n_lines=(olympus.n_lines if olympus is not None and olympus.n_lines is not None else
                                   (sidecar.shape[0] if sidecar is not None and sidecar.shape
                                    and len(sidecar.shape) == 2 else None)))
        raw, units = _read_tif(path, axes=axes, check=check, hints=hints, cancel=cancel)
    else:
        raw, units = _READERS[suffix](path, axes=axes, check=check, cancel=cancel)
    if transpose:
        raw = np.ascontiguousarray(np.swapaxes(raw, -1, -2))
    data = as_channels(raw, source=str(path))
    header: dict[str, Any] = {"units_source": "hdf5" if any(units.get(k) for k in ("dx_um", "dt_s")) else None}
    header.update({k: v for k, v in units.items() if k not in ("dx_um", "dt_s")})
    if transpose:
        header["transposed"] = True
    dx_um, dt_s = units.get("dx_um"), units.get("dt_s")
    if dx_um is None or dt_s is None:
        if suffix not in (".tif", ".tiff", ".npy"):  # HDF5 without units: its header is read now
            txt, olympus = _olympus_header(path)
        ol_dx, ol_dt, fields = _olympus_units(path, txt, olympus, data)
        if fields is not None:
            header["olympus"] = fields
            if ol_dx is not None or ol_dt is not None:
                header["units_source"] = header["units_source"] or "olympus"
            dx_um, dt_s = dx_um if dx_um is not None else ol_dx, dt_s if dt_s is not None else ol_dt
    rois: tuple[RoiSpec, ...] = ()
    if sidecar is not None and json_path is not None:  # a sidecar is read from json_path
        _check_rois(sidecar.rois, data, json_path)
        rois = sidecar.rois
        header["sidecar"] = str(json_path)
        if (dx_um is None and sidecar.dx_um) or (dt_s is None and sidecar.dt_s):
            header["units_source"] = header["units_source"] or "sidecar"
        dx_um = dx_um if dx_um is not None else sidecar.dx_um
        dt_s = dt_s if dt_s is not None else sidecar.dt_s
    return RawAcquisition(data=data, dx_um=dx_um, dt_s=dt_s, rois=rois, source=str(path), header=header)


def _atomic_write(target: Path, write) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_tiff_with_header(path: str | os.PathLike, data: Any, *, dx_um: float, dt_s: float) -> Path:
    """Write ``data`` as a TIFF plus an Olympus-style ``<stem>.txt`` header beside it.

    Parameters
    ----------
    path : str or path-like
        Target ``.tif``/``.tiff`` file; the header goes to ``path.with_suffix(".txt")``.
    data : array, shape (n_lines, n_pixels) or (n_channels, n_lines, n_pixels)
        Pixels, written in their dtype (use uint16 for microscope-like files).
    dx_um : float, keyword-only
        Micrometres per pixel.
    dt_s : float, keyword-only
        Seconds per line.

    Returns
    -------
    Path
        The TIFF path. Both files are written to temporary names and then renamed, so a
        crash never leaves a half-written file under the final name.
    """
    import tifffile

    path = Path(path)
    if path.suffix.lower() not in (".tif", ".tiff"):
        raise InputError(f"{path}: write_tiff_with_header writes .tif/.tiff files only")
    for name, value in (("dx_um", dx_um), ("dt_s", dt_s)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
            raise InputError(f"{path}: {name} = {value!r} must be a number > 0")
    data = as_channels(data, source=str(path))
    n_channels, n_lines, n_pixels = data.shape
    text = format_olympus_header(n_lines=n_lines, n_pixels=n_pixels, dx_um=dx_um, dt_s=dt_s, n_channels=n_channels)
    image = data[0] if n_channels == 1 else data
    metadata = {"axes": "YX" if n_channels == 1 else "CYX"}
    _atomic_write(path, lambda tmp: tifffile.imwrite(tmp, image, photometric="minisblack", metadata=metadata))
    _atomic_write(path.with_suffix(".txt"), lambda tmp: tmp.write_bytes(text.encode("latin-1")))
    return path
