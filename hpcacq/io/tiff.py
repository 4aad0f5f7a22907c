"""TIFF line scans: what the pages of a multi-page TIFF are, decided before reading them.

A line scan saved in several pages is one recording cut in blocks of lines; hpcacq joins
the pages in time. What each page is comes, in this order, from:

1. the ``axes`` option (``hpcacq run --axes TYX``): the user's word;
2. the file's own metadata as tifffile reads it: ImageJ hyperstacks (``frames`` = time,
   ``channels``), OME-XML (``SizeT``/``SizeC``), ScanImage (``numberOfChannelsSave``,
   frames interleaved by channel), FluoView, tifffile's shaped JSON (``axes``);
3. plain pages (axes unknown, ``I``/``Q``) of equal shape are lines when one channel is
   declared (an Olympus header's ``Channel Dimension``, ImageJ without ``channels``,
   ScanImage) or inferable (the header's or sidecar's total line count equals pages x
   lines, or there are more pages than any microscope has channels, 8); pages equal to
   the declared number of channels are channels.

Anything else (depth ``Z`` stacks, 2-8 plain pages with nothing declared, unknown axes)
is refused with a message naming the shape and the ``--axes`` option. Axes letters: ``T``
(blocks of lines, joined in time), ``C`` (channels), ``Y`` (lines), ``X`` (pixels).

The declared shape and dtype are checked against the memory bound before any pixel is
read (see :mod:`hpcacq.io.limits`); tifffile allocates exactly the declared shape, so a
compressed "bomb" cannot grow past it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import AnalysisCancelled, InputError
from .limits import READ_BLOCK_BYTES, check_cancel, open_regular

__all__ = ["MAX_CHANNELS", "PageHints", "StackPlan", "check_axes", "plan_stack", "read_tiff"]

MAX_CHANNELS = 8  # more plain pages than this cannot be channels of one microscope
_VALID_AXES = set("TCYX")


@dataclass(frozen=True)
class PageHints:
    """What files beside the TIFF (Olympus header, sidecar) say about its shape."""

    n_channels: int | None = None
    n_lines: int | None = None


@dataclass(frozen=True)
class StackPlan:
    """How to turn the stored array into (n_channels, n_lines, n_pixels).

    ``axes`` names the squeezed stored shape ``shape`` with letters T, C, Y, X;
    ``how`` says where the decision came from (for messages and the header).
    """

    shape: tuple[int, ...]
    axes: str
    how: str

    @property
    def out_shape(self) -> tuple[int, int, int]:
        size = dict(zip(self.axes, self.shape, strict=True))
        return size.get("C", 1), size.get("T", 1) * size.get("Y", 1), size["X"]

    @property
    def needs_copy(self) -> bool:
        """True when the pixels must be reordered (a second copy while reordering)."""
        return list(self.axes) != [a for a in "CTYX" if a in self.axes]

    def apply(self, data: np.ndarray) -> np.ndarray:
        data = np.asarray(data).reshape(self.shape)
        order = [self.axes.index(a) for a in "CTYX" if a in self.axes]
        data = np.transpose(data, order)
        out = self.out_shape
        return np.ascontiguousarray(data).reshape(out) if self.needs_copy else data.reshape(out)


def check_axes(axes: str, shape: tuple[int, ...], source: str) -> str:
    """Validate a user's axes string for the (squeezed) ``shape``; return it upper-case."""
    text = str(axes).strip().upper()
    if len(text) != len(shape) or set(text) - _VALID_AXES or len(set(text)) != len(text) or "X" not in text \
            or not ({"Y", "T"} & set(text)):
        raise InputError(
            f"{source}: axes {axes!r} do not fit the image of shape {shape}: give one letter per "
            "dimension from T (blocks of lines, joined in time), C (channels), Y (lines), X (pixels), "
            f"each once, with X and Y (e.g. {'TYX' if len(shape) == 3 else 'YX'})")
    return text


def _ambiguous(source: str, shape: tuple[int, ...], why: str) -> InputError:
    n = len(shape)
    examples = "--axes TYX (pages are consecutive blocks of lines) or --axes CYX (pages are channels)" if n == 3 \
        else f"--axes with {n} letters from T, C, Y, X (e.g. {'CTYX' if n == 4 else 'YX'})"
    return InputError(f"{source}: a TIFF stack of shape {shape} ({why}); cannot tell what its pages are: "
                      f"say it with {examples} (axes= in the Python API)")


def _squeeze(shape, axes) -> tuple[tuple[int, ...], str]:
    kept = [(int(n), a) for n, a in zip(shape, axes, strict=False) if int(n) != 1 or a == "X"]
    if not any(a in "YT" for _, a in kept):
        kept = [(int(n), a) for n, a in zip(shape, axes, strict=False) if int(n) != 1 or a in "XY"]
    return tuple(n for n, _ in kept), "".join(a for _, a in kept)


def _scanimage_channels(tif) -> int | None:
    try:
        meta = tif.scanimage_metadata or {}
    except Exception:  # noqa: BLE001 - damaged metadata: treated as absent
        return None
    state = meta.get("FrameData") or {}
    for key in ("SI.hChannels.channelSave", "scanimage.SI.hChannels.channelSave"):
        if key in state:
            value = state[key]
            return len(value) if isinstance(value, (list, tuple)) else 1
    text = tif.pages.first.description or ""
    for line in text.splitlines():
        if line.startswith("state.acq.numberOfChannelsSave="):
            try:
                return int(line.split("=", 1)[1])
            except ValueError:
                return None
    return None


def _declared_channels(tif, hints: PageHints) -> tuple[int | None, str]:
    if hints.n_channels is not None:
        return hints.n_channels, "the Olympus header's Channel Dimension"
    if tif.is_imagej:
        meta = tif.imagej_metadata or {}
        return int(meta.get("channels", 1) or 1), "ImageJ metadata"
    if tif.is_scanimage:
        n = _scanimage_channels(tif)
        if n is not None:
            return n, "ScanImage metadata"
    return None, ""


def _plain_pages(shape, axes, tif, hints: PageHints, source: str) -> StackPlan:
    """One unknown page axis (I, Q or an ImageJ non-hyperstack Z) before Y X."""
    n_pages, n_lines = shape[0], shape[axes.index("Y")] if "Y" in axes else 1
    n_channels, said = _declared_channels(tif, hints)
    if n_channels == 1:
        return StackPlan(shape, "T" + axes[1:], f"{n_pages} pages of one channel ({said}) joined in time")
    if n_channels is not None and n_channels == n_pages:
        return StackPlan(shape, "C" + axes[1:], f"{n_pages} pages = {n_channels} channels ({said})")
    if n_channels is not None and n_channels > 1 and n_pages % n_channels == 0 and tif.is_scanimage:
        new_shape = (n_pages // n_channels, n_channels) + shape[1:]
        return StackPlan(new_shape, "TC" + axes[1:], f"ScanImage frames of {n_channels} interleaved channels")
    if hints.n_lines is not None:
        if hints.n_lines == n_pages * n_lines:
            return StackPlan(shape, "T" + axes[1:], f"{n_pages} pages of {n_lines} lines = the "
                                                   f"{hints.n_lines} lines the header declares")
        if hints.n_lines == n_lines and n_pages <= MAX_CHANNELS:
            return StackPlan(shape, "C" + axes[1:], f"{n_pages} pages of the {n_lines} lines the header declares "
                                                   "= channels")
    if n_channels is None and n_pages > MAX_CHANNELS:
        return StackPlan(shape, "T" + axes[1:], f"{n_pages} plain pages (more than {MAX_CHANNELS}, so not "
                                               "channels) joined in time")
    why = f"{n_pages} pages" + (f", {n_channels} channel(s) declared by {said}" if n_channels else
                                ", no metadata saying what they are")
    raise _ambiguous(source, shape, why)


def plan_stack(series_shape, series_axes: str, tif, *, hints: PageHints, axes: str | None,
               source: str) -> StackPlan:
    """Decide what each stored axis is (see the module docstring)."""
    shape, found = _squeeze(series_shape, series_axes)
    if axes is not None:
        return StackPlan(shape, check_axes(axes, shape, source), "the axes option")
    found = found.replace("S", "C") if "C" not in found else found
    if "X" not in found:
        raise InputError(f"{source}: the TIFF has axes {series_axes!r} (shape {tuple(series_shape)}) with no "
                         "pixel axis X; it is not an image hpcacq can read")
    if len(shape) == 1 or (len(shape) == 2 and "Y" not in found and "T" not in found):
        raise InputError(f"{source}: the image has 1 dimension(s), shape {shape}; a line scan needs lines and pixels")
    if set(found) <= _VALID_AXES and len(set(found)) == len(found):
        return StackPlan(shape, found, "the file's metadata" if len(shape) > 2 else "one page")
    unknown = [a for a in found if a not in _VALID_AXES]
    plain_z = found[0] == "Z" and tif.is_imagej and not (tif.imagej_metadata or {}).get("hyperstack")
    if len(unknown) == 1 and (found[0] in "IQ" or plain_z) and set(found[1:]) <= {"Y", "X"}:
        return _plain_pages(shape, found, tif, hints, source)
    if len(shape) > 3:
        raise InputError(f"{source}: the image has {len(shape)} dimension(s), shape {shape}, axes {found!r}; "
                         "a line scan is (lines, pixels) or (channels, lines, pixels): say what the axes are "
                         "with --axes (letters T, C, Y, X; axes= in the Python API)")
    raise _ambiguous(source, shape, f"axes {found!r} from the file's metadata")


DECODE_COPIES = 2.5  # a compressed segment is held decoded (and once more while it is copied out)


def _decode_bytes(series, dtype: np.dtype) -> int:
    """Memory tifffile needs beside the output to decode one compressed strip or tile (bytes)."""
    page = series.keyframe
    if getattr(page, "compression", 1) in (1, None):
        return 0
    samples = int(getattr(page, "samplesperpixel", 1) or 1)
    if page.is_tiled:
        segment = int(page.tilewidth) * int(page.tilelength) * max(1, int(getattr(page, "tiledepth", 1) or 1))
    else:
        segment = int(min(page.rowsperstrip or page.imagelength, page.imagelength)) * int(page.imagewidth)
    segment = min(segment * samples * dtype.itemsize, math.prod(page.shape) * dtype.itemsize)
    return int(DECODE_COPIES * segment)


def _blocked(series, dtype: np.dtype) -> bool:
    n_pages, total = len(series.pages), math.prod(series.shape)
    return n_pages >= 2 and total % n_pages == 0 and total * dtype.itemsize > READ_BLOCK_BYTES


def _block_bytes(series, dtype: np.dtype) -> int:
    """The block of pages held beside the output while reading in blocks (bytes)."""
    return READ_BLOCK_BYTES + math.prod(series.shape) * dtype.itemsize // len(series.pages) \
        if _blocked(series, dtype) else 0


def _read_pages(tif, series, dtype: np.dtype, cancel, source: str) -> np.ndarray:
    """The series' pixels, read a block of pages at a time (cancellation polled between blocks)."""
    n_pages, total = len(series.pages), math.prod(series.shape)
    page_bytes = total * dtype.itemsize // max(1, n_pages)
    if not _blocked(series, dtype):
        check_cancel(cancel, source)
        return series.asarray(maxworkers=1)
    index = tif.series.index(series)
    out = np.empty(series.shape, dtype)
    flat = out.reshape(n_pages, -1)
    step = max(1, READ_BLOCK_BYTES // max(1, page_bytes))
    for first in range(0, n_pages, step):
        check_cancel(cancel, source)
        last = min(n_pages, first + step)
        flat[first:last] = tif.asarray(key=slice(first, last), series=index, maxworkers=1).reshape(last - first, -1)
    return out


def read_tiff(path, *, hints: PageHints, axes: str | None, check, cancel=None) -> tuple[np.ndarray, dict]:
    """Read a TIFF line scan as (n_channels, n_lines, n_pixels).

    ``check(plan, itemsize, copies, extra_bytes=)`` is called with the declared layout
    before any pixel is read (it raises to refuse the file: orientation, memory bound);
    ``extra_bytes`` is what decoding one compressed strip or tile needs. Segments are
    decoded one at a time (``maxworkers=1``), so the peak is the output plus one segment.
    """
    import tifffile

    source = str(path)
    with open_regular(path) as handle:
        try:
            with tifffile.TiffFile(handle, name=source) as tif:
                series_list = [s for s in tif.series if len(s.shape) >= 2]
                if not series_list:
                    raise InputError(f"{source}: the TIFF holds no image")
                if len(series_list) > 1:
                    shapes = [tuple(s.shape) for s in series_list[:5]]
                    raise InputError(f"{source}: the TIFF holds {len(series_list)} images of different shapes "
                                     f"{shapes}; hpcacq reads one line scan per file: save each scan on its own")
                series = series_list[0]
                plan = plan_stack(tuple(series.shape), series.axes, tif, hints=hints, axes=axes, source=source)
                dtype = np.dtype(series.dtype)
                if math.prod(plan.shape) != math.prod(series.shape):
                    raise InputError(f"{source}: inconsistent TIFF shape {series.shape}")
                check(plan, dtype.itemsize, 2.0 if plan.needs_copy else 1.0,
                      extra_bytes=_decode_bytes(series, dtype) + _block_bytes(series, dtype))
                raw = _read_pages(tif, series, dtype, cancel, source)
        except (InputError, AnalysisCancelled):
            raise
        except Exception as exc:  # noqa: BLE001 - tifffile raises anything on damaged files
            kind = "not a readable TIFF file" if isinstance(exc, tifffile.TiffFileError) else \
                "the TIFF is truncated or corrupt"
            raise InputError(f"{source}: {kind} ({type(exc).__name__}: {exc}); re-export the file") from None
    data = plan.apply(raw)
    return data, {"tiff_axes": plan.axes, "tiff_pages": plan.how}
