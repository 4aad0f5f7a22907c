"""kymflow JSON sidecars (``<stem>.json`` beside an image): regions of interest and units.

Two ROI layouts occur in kymflow's files; both are read:

- ``{"roi_id": 1, "channel": 1, "data": {"x0", "x1", "y0", "y1"}}`` with x = columns
  (space) and y = rows (time);
- ``{"id": 1, "channel": 1, "dim0_start", "dim0_stop", "dim1_start", "dim1_stop"}`` with
  dim0 = rows (time) and dim1 = columns (space).

Bounds are half-open in both. kymflow counts channels from 1; hpcacq counts from 0, so
the channel is converted here, once. ``header.voxels`` = ``[s per line, um per pixel]``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from .limits import open_regular
from .validate import INT64_MAX, check_int, check_unit

__all__ = ["RoiSpec", "Sidecar", "parse_sidecar", "read_sidecar"]


@dataclass(frozen=True)
class RoiSpec:
    """A rectangular ROI as read from a file (no link to an image yet).

    Attributes
    ----------
    roi_id : int
        The ROI's id in the file.
    channel : int or None
        0-based channel the ROI was drawn on (None when the file does not say).
    r0, r1 : int
        Half-open row (time, axis 0) range ``[r0, r1)``.
    c0, c1 : int
        Half-open column (space, axis 1) range ``[c0, c1)``.
    """

    roi_id: int
    channel: int | None
    r0: int
    r1: int
    c0: int
    c1: int


@dataclass(frozen=True)
class Sidecar:
    """What a kymflow sidecar says: ROIs, units and the image shape it was made for."""

    rois: tuple[RoiSpec, ...]
    dx_um: float | None
    dt_s: float | None
    shape: tuple[int, ...] | None


MAX_SIDECAR_BYTES = 16 << 20  # real sidecars are a few KB
MAX_ROIS = 100_000
MAX_ROI_ID = 2**31 - 1  # ids are stored in int64 columns (-1 = none) and new ROIs take the largest + 1


def _int_field(roi: dict, name: str, where: str, *, low: int = -INT64_MAX - 1, high: int = INT64_MAX) -> int:
    """An integer field in [low, high] (by default: fits int64, as ids and bounds are stored)."""
    return check_int(roi.get(name), where, name, low=low, high=high)


def _roi_from(roi: Any, index: int, source: str) -> RoiSpec:
    where = f"{source}: rois[{index}]"
    if not isinstance(roi, dict):
        raise InputError(f"{where} must be an object, got {type(roi).__name__}")
    if "data" in roi:  # capillary1 layout: x = columns, y = rows
        data = roi["data"]
        if not isinstance(data, dict):
            raise InputError(f"{where}: field 'data' must be an object with x0, x1, y0, y1")
        roi_id = _int_field(roi, "roi_id" if "roi_id" in roi else "id", where, low=0, high=MAX_ROI_ID)
        r0, r1 = _int_field(data, "y0", f"{where}.data"), _int_field(data, "y1", f"{where}.data")
        c0, c1 = _int_field(data, "x0", f"{where}.data"), _int_field(data, "x1", f"{where}.data")
    elif "dim0_start" in roi or "id" in roi:  # a89 layout: dim0 = rows, dim1 = columns
        roi_id = _int_field(roi, "id" if "id" in roi else "roi_id", where, low=0, high=MAX_ROI_ID)
        r0, r1 = _int_field(roi, "dim0_start", where), _int_field(roi, "dim0_stop", where)
        c0, c1 = _int_field(roi, "dim1_start", where), _int_field(roi, "dim1_stop", where)
    else:
        raise InputError(
            f"{where}: unknown ROI layout (keys {sorted(map(str, roi))[:12]}); expected 'roi_id' + 'data' "
            "{x0,x1,y0,y1} or 'id' + dim0_start/dim0_stop/dim1_start/dim1_stop"
        )
    channel = None
    if roi.get("channel") is not None:
        channel = check_int(roi.get("channel"), where, "channel", low=-INT64_MAX)
        if not 1 <= channel <= 64:
            raise InputError(f"{where}: field 'channel' is {channel}; kymflow channels start at 1 (1 to 64)")
        channel -= 1
    if not (0 <= r0 < r1 and 0 <= c0 < c1):
        raise InputError(
            f"{where} (roi {roi_id}): empty or negative bounds rows [{r0}, {r1}) x cols [{c0}, {c1})"
        )
    return RoiSpec(roi_id, channel, r0, r1, c0, c1)


def _units(header: Any, source: str) -> tuple[float | None, float | None, tuple[int, ...] | None]:
    if header is None:
        return None, None, None
    if not isinstance(header, dict):
        raise InputError(f"{source}: field 'header' must be an object")
    shape = header.get("shape")
    if shape is not None:
        if not isinstance(shape, list) or len(shape) > 8:
            raise InputError(f"{source}: field 'header.shape' must be a list of integers, got {shape!r:.60}")
        shape = tuple(check_int(n, source, f"header.shape[{i}]") for i, n in enumerate(shape))
    voxels = header.get("voxels")
    if voxels is None:
        return None, None, shape
    if not isinstance(voxels, list) or len(voxels) != 2:
        raise InputError(f"{source}: field 'header.voxels' must be [s per line, um per pixel], got {voxels!r:.60}")
    units = header.get("voxels_units")
    if units is not None and units != ["s", "um"]:
        raise InputError(f"{source}: field 'header.voxels_units' is {units!r:.60}; only [\"s\", \"um\"] is understood")
    steps = []
    for index, (name, value) in enumerate(zip(("dt_s", "dx_um"), voxels, strict=True)):
        steps.append(None if value is None else check_unit(name, value, source, f"header.voxels[{index}]"))
    return steps[1], steps[0], shape


def parse_sidecar(doc: Any, *, source: str = "<sidecar>") -> Sidecar:
    """Interpret a decoded kymflow sidecar (see the module docstring for the layouts).

    Raises
    ------
    InputError
        A field has the wrong type or value; the message names the field, or two ROIs
        share an id.
    """
    if not isinstance(doc, dict):
        raise InputError(f"{source}: a kymflow sidecar must be a JSON object, got {type(doc).__name__}")
    rois_doc = doc.get("rois", [])
    if rois_doc is None:
        rois_doc = []
    if not isinstance(rois_doc, list):
        raise InputError(f"{source}: field 'rois' must be a list, got {type(rois_doc).__name__}")
    if len(rois_doc) > MAX_ROIS:
        raise InputError(f"{source}: field 'rois' lists {len(rois_doc)} ROIs, more than {MAX_ROIS}")
    rois = tuple(_roi_from(roi, i, source) for i, roi in enumerate(rois_doc))
    seen: set[int] = set()
    duplicated = sorted({roi.roi_id for roi in rois if roi.roi_id in seen or seen.add(roi.roi_id)})
    if duplicated:
        raise InputError(f"{source}: field 'rois' repeats roi id(s) {duplicated}; ids must be unique")
    dx_um, dt_s, shape = _units(doc.get("header"), source)
    return Sidecar(rois=rois, dx_um=dx_um, dt_s=dt_s, shape=shape)


def read_sidecar(path: str | os.PathLike) -> Sidecar:
    """Read the kymflow sidecar at ``path``; see :func:`parse_sidecar`."""
    path = Path(path)
    try:
        with open_regular(path, what="sidecar", max_bytes=MAX_SIDECAR_BYTES) as handle:
            text = handle.read().decode("utf-8-sig")
        doc = json.loads(text)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the sidecar ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: the sidecar is not valid JSON ({exc}); fix or delete it") from None
    except RecursionError:
        raise InputError(f"{path}: the sidecar's JSON is nested too deeply to be a kymflow sidecar; "
                         "fix or delete it") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise InputError(f"{path}: the sidecar holds a value that cannot be read ({exc}); fix or delete it") from None
    return parse_sidecar(doc, source=str(path))
