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
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .olympus import format_olympus_header, read_olympus_header
from .sidecar import RoiSpec, read_sidecar

__all__ = [
    "SUPPORTED_SUFFIXES",
    "RawAcquisition",
    "RoiSpec",
    "as_channels",
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


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an image file")
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        raise InputError(f"{path}: permission denied; make the file readable (chmod +r)") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot open the file ({exc.strerror or exc})") from None
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty (0 bytes); re-export or remove it")


def _read_tiff(path: Path) -> tuple[np.ndarray, dict]:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            data = series.asarray()
            axes = series.axes
    except tifffile.TiffFileError as exc:
        raise InputError(f"{path}: not a readable TIFF file ({exc})") from None
    except (ValueError, OSError, EOFError, IndexError, KeyError, struct.error) as exc:
        # struct.error: a file cut inside its 8-byte header (tifffile unpacks it unchecked)
        raise InputError(f"{path}: the TIFF is truncated or corrupt ({exc}); re-export the file") from None
    if data.ndim == 3 and axes.endswith("S"):  # RGB-like samples last -> channels first (a view)
        data = np.moveaxis(data, -1, 0)
    return data, {}


def _read_npy(path: Path) -> tuple[np.ndarray, dict]:
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{path}: not a readable .npy file ({exc})") from None
    if not isinstance(data, np.ndarray):
        raise InputError(f"{path}: holds {type(data).__name__}, not one array; save with np.save")
    return data, {}


def _pick_dataset(h5file, path: Path):
    import h5py

    if isinstance(h5file.get("data"), h5py.Dataset):
        return h5file["data"]
    found: list = []
    h5file.visititems(lambda name, obj: found.append(obj) if isinstance(obj, h5py.Dataset) else None)
    if len(found) != 1:
        names = [obj.name for obj in found]
        raise InputError(
            f"{path}: holds {len(found)} datasets {names[:10]} and none named 'data'; "
            "name the image dataset 'data'"
        )
    return found[0]


def _h5_step(attrs_list, name: str, path: Path) -> float | None:
    for attrs in attrs_list:
        if name in attrs:
            value = attrs[name]
            try:
                value = float(np.asarray(value).reshape(()))
            except (TypeError, ValueError):
                raise InputError(f"{path}: attribute {name!r} = {value!r} is not a number") from None
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"{path}: attribute {name!r} = {value} must be a number > 0")
            return value
    return None


def _read_hdf5(path: Path) -> tuple[np.ndarray, dict]:
    import h5py

    try:
        with h5py.File(path, "r") as h5file:
            dataset = _pick_dataset(h5file, path)
            data = dataset[()]
            attrs = [dataset.attrs, h5file.attrs]
            units = {"dx_um": _h5_step(attrs, "dx_um", path), "dt_s": _h5_step(attrs, "dt_s", path)}
    except InputError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a readable HDF5 file ({exc})") from None
    return data, units


_READERS = {".tif": _read_tiff, ".tiff": _read_tiff, ".npy": _read_npy, ".h5": _read_hdf5, ".hdf5": _read_hdf5}


def _beside(path: Path, suffix: str) -> Path | None:
    """The file ``<stem><suffix>`` next to ``path`` (lower or upper case suffix), if any."""
    for candidate in (path.with_suffix(suffix), path.with_suffix(suffix.upper())):
        if candidate.is_file():
            return candidate
    return None


def _olympus_units(path: Path, data: np.ndarray) -> tuple[float | None, float | None, dict | None]:
    txt = _beside(path, ".txt")
    if txt is None:
        return None, None, None
    header = read_olympus_header(txt)
    n_lines, n_pixels = data.shape[-2:]
    if header.n_lines not in (None, n_lines) or header.n_pixels not in (None, n_pixels):
        raise InputError(
            f"{txt}: header says {header.n_pixels} pixels x {header.n_lines} lines but {path.name} "
            f"holds {n_pixels} x {n_lines}; the header belongs to another image: fix or delete it"
        )
    return header.dx_um, header.dt_s(n_lines), header.fields


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


def read_acquisition(path: str | os.PathLike) -> RawAcquisition:
    """Read one line-scan file with its Olympus header and kymflow sidecar, if present.

    Parameters
    ----------
    path : str or path-like
        A ``.tif``/``.tiff``, ``.npy``, ``.h5`` or ``.hdf5`` file. 2-D images are
        (n_lines, n_pixels); 3-D are (n_channels, n_lines, n_pixels).

    Returns
    -------
    RawAcquisition
        Units come from the HDF5 attributes, else the Olympus ``<stem>.txt`` header, else
        the sidecar's ``header.voxels``; each is None when nothing gives it.

    Raises
    ------
    InputError
        Missing, unreadable, empty, truncated or mis-named file, unsupported suffix,
        wrong number of dimensions, zero size, malformed header or sidecar, sidecar ROI
        outside the image. The message names the file and the problem.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _READERS:
        raise InputError(
            f"{path}: unsupported file type {path.suffix or '(no suffix)'!r}; "
            f"supported: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    _check_file(path)
    raw, units = _READERS[suffix](path)
    data = as_channels(raw, source=str(path))
    header: dict[str, Any] = {"units_source": "hdf5" if any(units.values()) else None}
    dx_um, dt_s = units.get("dx_um"), units.get("dt_s")
    if dx_um is None or dt_s is None:
        ol_dx, ol_dt, fields = _olympus_units(path, data)
        if fields is not None:
            header["olympus"] = fields
            if ol_dx is not None or ol_dt is not None:
                header["units_source"] = header["units_source"] or "olympus"
            dx_um, dt_s = dx_um if dx_um is not None else ol_dx, dt_s if dt_s is not None else ol_dt
    rois: tuple[RoiSpec, ...] = ()
    json_path = _beside(path, ".json")
    if json_path is not None:
        sidecar = read_sidecar(json_path)
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
    _atomic_write(path, lambda tmp: tifffile.imwrite(tmp, image, photometric="minisblack"))
    _atomic_write(path.with_suffix(".txt"), lambda tmp: tmp.write_bytes(text.encode("latin-1")))
    return path
