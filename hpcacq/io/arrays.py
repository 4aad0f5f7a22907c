"""NumPy ``.npy`` and HDF5 line scans: declared shape checked first, then read in blocks.

Both formats declare shape and dtype before their pixels: the declaration is checked
(dtype, a ``.npy`` that holds less than it declares, an HDF5 dataset that stores nothing,
orientation and the memory bound through the caller's ``check``) before anything is
allocated, and large arrays are read in blocks of 64 MiB with cancellation polled
between blocks. 2-D arrays are (n_lines, n_pixels), 3-D (n_channels, n_lines,
n_pixels), unless ``axes`` says otherwise.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..errors import AnalysisCancelled, InputError
from .limits import READ_BLOCK_BYTES, check_cancel, format_bytes, open_regular
from .tiff import StackPlan, check_axes
from .validate import check_unit

__all__ = ["RESULTS_FORMAT", "read_hdf5", "read_npy"]

RESULTS_FORMAT = "hpcacq-results"  # the ``format`` attribute of hpcacq's own results files


def _default_plan(shape: tuple[int, ...], axes: str | None, source: str) -> StackPlan:
    """Axes of a .npy/HDF5 array: (lines, pixels) or (channels, lines, pixels) unless ``axes`` says."""
    if axes is not None:
        return StackPlan(shape, check_axes(axes, shape, source), "the axes option")
    if len(shape) not in (2, 3):
        raise InputError(
            f"{source}: the image has {len(shape)} dimension(s), shape {shape}; expected 2-D "
            "(n_lines, n_pixels) or 3-D (n_channels, n_lines, n_pixels) (or say the axes with --axes)")
    return StackPlan(shape, "YX" if len(shape) == 2 else "CYX", "default")


def _check_dtype(dtype: np.dtype, source: str) -> None:
    if dtype.kind not in "uif" or dtype.itemsize > 8:
        raise InputError(f"{source}: pixels of dtype {dtype} cannot be analysed; use integer or float "
                         "pixels (e.g. `.astype(np.float32)`)")


def _read_into(handle, out: np.ndarray, cancel, source: str) -> None:
    """Fill ``out`` from ``handle`` a block at a time (cancellation polled between blocks)."""
    view = memoryview(out.reshape(-1, order="A").view(np.uint8))
    for start in range(0, len(view), READ_BLOCK_BYTES):
        check_cancel(cancel, source)
        stop = min(len(view), start + READ_BLOCK_BYTES)
        while start < stop:
            n = handle.readinto(view[start:stop])
            if not n:
                raise InputError(f"{source}: the file ends before its pixels do (truncated); re-save it")
            start += n


def read_npy(path: Path, *, axes, check, cancel=None) -> tuple[np.ndarray, dict]:
    """Read a ``.npy`` file (no pickles) as (n_channels, n_lines, n_pixels); ``check(plan, itemsize, copies)``
    is called before the pixels are allocated."""
    from numpy.lib import format as npy_format

    source = str(path)
    with open_regular(path) as handle:
        try:
            version = npy_format.read_magic(handle)
            reader = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
            shape, fortran, dtype = reader(handle)
            if dtype.hasobject:
                raise InputError(f"{source}: holds Python objects, not pixels; save a numeric array with np.save")
            shape = tuple(int(n) for n in shape)
            _check_dtype(dtype, source)
            plan = _default_plan(shape, axes, source)
            declared = math.prod(shape) * dtype.itemsize
            left = os.fstat(handle.fileno()).st_size - handle.tell()
            if declared > left:
                raise InputError(f"{source}: the .npy header declares shape {shape} of {dtype} ({format_bytes(declared)}) "
                                 f"but the file holds {format_bytes(left)} of pixels: truncated; re-save it")
            check(plan, dtype.itemsize, 2.0 if (plan.needs_copy or fortran) else 1.0)
            data = np.empty(shape, dtype, order="F" if fortran else "C")
            _read_into(handle, data, cancel, source)
        except (InputError, AnalysisCancelled):
            raise
        except Exception as exc:  # noqa: BLE001 - any damage becomes the file's message
            raise InputError(f"{source}: not a readable .npy file ({type(exc).__name__}: {exc})") from None
    return plan.apply(data), {}


def _pick_dataset(h5file, path: Path):
    import h5py

    if h5file.attrs.get("format") == RESULTS_FORMAT:
        raise InputError(f"{path}: is an hpcacq results file, not an image; results are never inputs")
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
                value = np.asarray(value).reshape(()).item()
            except (TypeError, ValueError):
                raise InputError(f"{path}: attribute {name!r} = {value!r:.60} is not a number") from None
            return check_unit(name, value, str(path), f"attribute {name}")
    return None


def _read_dataset(dataset, cancel, source: str) -> np.ndarray:
    """The dataset's pixels, read a block of its longest leading axis at a time (cancel polled)."""
    shape, dtype = dataset.shape, np.dtype(dataset.dtype)
    total = math.prod(shape) * dtype.itemsize
    if total <= READ_BLOCK_BYTES:
        check_cancel(cancel, source)
        return dataset[()]
    out = np.empty(shape, dtype)
    axis = int(np.argmax(shape[:-1]))
    per_index = total // shape[axis]
    step = max(1, READ_BLOCK_BYTES // max(1, per_index))
    for first in range(0, shape[axis], step):
        check_cancel(cancel, source)
        block = tuple(slice(first, first + step) if i == axis else slice(None) for i in range(len(shape)))
        dataset.read_direct(out, source_sel=block, dest_sel=block)
    return out


def read_hdf5(path: Path, *, axes, check, cancel=None) -> tuple[np.ndarray, dict]:
    """Read dataset ``data`` (or the only dataset) and the ``dx_um``/``dt_s`` attributes of an HDF5 file."""
    import h5py

    source = str(path)
    open_regular(path).close()  # refuses FIFOs, devices, loops without blocking
    try:
        with h5py.File(path, "r") as h5file:
            dataset = _pick_dataset(h5file, path)
            shape, dtype = tuple(int(n) for n in dataset.shape), np.dtype(dataset.dtype)
            _check_dtype(dtype, source)
            plan = _default_plan(shape, axes, source)
            if math.prod(shape) and dataset.id.get_storage_size() == 0:
                raise InputError(f"{source}: dataset {dataset.name!r} declares shape {shape} of {dtype} but stores "
                                 "no pixels (it was never written); re-export the file")
            attrs = [dataset.attrs, h5file.attrs]
            units = {"dx_um": _h5_step(attrs, "dx_um", path), "dt_s": _h5_step(attrs, "dt_s", path)}
            chunk = math.prod(dataset.chunks) * dtype.itemsize if dataset.chunks and dataset.compression else 0
            check(plan, dtype.itemsize, 2.0 if plan.needs_copy else 1.0, extra_bytes=2 * chunk)
            data = _read_dataset(dataset, cancel, source)
    except (InputError, AnalysisCancelled):
        raise
    except Exception as exc:  # noqa: BLE001 - h5py raises OSError, RuntimeError, ... on damaged files
        raise InputError(f"{source}: not a readable HDF5 file ({type(exc).__name__}: {exc})") from None
    return plan.apply(data), units
