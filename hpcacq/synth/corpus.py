"""A folder of synthetic line scans with known answers, like a microscope would write them.

Each file is a uint16 TIFF (n_lines, n_pixels) with an Olympus-style ``<stem>.txt``
header giving ``dx_um`` and ``dt_s``; ``truth.json`` lists every file's true velocity
(mm/s, positive toward increasing pixel index) or vessel diameter (px and µm).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .. import checks
from ..errors import InputError, ParameterError
from ..io.readers import write_tiff_with_header

__all__ = ["KINDS", "write_corpus", "read_truth"]

KINDS = ("velocity", "diameter")
TRUTH_NAME = "truth.json"
_DEFAULT_PIXELS = {"velocity": 38, "diameter": 48}
_EDGE_MARGIN_PX = 4  # background pixels kept on each side of the widest vessel
#: What a microscope adds to a diameter scan (overridable with ``synth_options``): a Gaussian
#: PSF of 1.2 px sigma and noise of 2 % of the lumen's brightness (amplitude 1000 above 100).
DIAMETER_DEFAULTS = {"psf_sigma_px": 1.2, "noise_sd": 20.0}


def _to_uint16(image: Any) -> np.ndarray:
    """Pixels as uint16, like a microscope's file.

    Integers, and floats already spanning at least 64 counts inside 0..65535, are rounded
    and clipped (levels kept); other floats (e.g. 0..1) are rescaled to 100..4000.
    """
    if isinstance(image, tuple):  # a generator returning (image, extra truth)
        image = image[0]
    image = np.asarray(image)
    if image.dtype.kind in "ui":
        return np.clip(image, 0, 65535).astype(np.uint16, copy=False)
    lo, hi = float(np.min(image)), float(np.max(image))
    if not (lo >= 0.0 and hi <= 65535.0 and hi - lo >= 64.0):
        image = (image - lo) * (3900.0 / (hi - lo) if hi > lo else 0.0) + 100.0
    return np.clip(np.rint(image), 0, 65535).astype(np.uint16)


def _check_options(kind, n_files, n_lines, n_pixels, dx_um, dt_s) -> None:
    checks.one_of("kind", kind, KINDS)
    for name, value, low in (("n_files", n_files, 1), ("n_lines", n_lines, 16), ("n_pixels", n_pixels, 4)):
        checks.integer(name, value, low)
    for name, value in (("dx_um", dx_um), ("dt_s", dt_s)):
        checks.positive(name, value)


def _check_range(name: str, bounds: Any, low: float, high: float) -> tuple[float, float]:
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        checks.fail(name, "a pair (low, high)", bounds)
    if not (low <= lo <= hi <= high):
        checks.fail(name, f"a pair with {low} <= low <= high <= {high}", (lo, hi))
    return lo, hi


def _velocity_truths(n_files, rng, px_range, dx_um, dt_s) -> list[dict]:
    lo, hi = _check_range("px_per_line_range", px_range, 0.05, 5.0)
    magnitudes = np.linspace(lo, hi, n_files) if n_files > 1 else np.array([(lo + hi) / 2])
    signs = np.where(np.arange(n_files) % 2 == 0, 1.0, -1.0)
    px_per_line = rng.permutation(magnitudes * signs)
    return [
        {"px_per_line": float(p), "velocity_mm_s": float(p) * dx_um / dt_s / 1000.0}
        for p in px_per_line
    ]


def _diameter_truths(n_files, rng, d_range, n_pixels, dx_um) -> list[dict]:
    widest = n_pixels - 2 * _EDGE_MARGIN_PX
    if widest < float(d_range[0]):
        raise ParameterError(
            f"n_pixels={n_pixels} leaves no room for vessels of {d_range[0]} px plus "
            f"{_EDGE_MARGIN_PX} px of background each side; use n_pixels >= {d_range[0] + 2 * _EDGE_MARGIN_PX:g}"
        )
    lo, hi = _check_range("diameter_px_range", d_range, 2.0, float(widest))
    diameters = np.linspace(lo, hi, n_files) if n_files > 1 else np.array([(lo + hi) / 2])
    # sub-pixel widths and positions: edges fall anywhere between pixel centres
    diameters = np.clip(diameters + rng.uniform(-0.5, 0.5, diameters.size), lo, hi)
    centres = (n_pixels - 1) / 2.0 + rng.uniform(-0.5, 0.5, diameters.size)
    return [{"diameter_px": float(d), "diameter_um": float(d) * dx_um, "center_px": float(c)}
            for d, c in zip(rng.permutation(diameters), centres, strict=True)]


def _generator(kind: str):
    if kind == "velocity":
        from .velocity import make_velocity_kymograph

        return lambda truth, n_lines, n_pixels, rng, options: make_velocity_kymograph(
            n_lines, n_pixels, px_per_line=truth["px_per_line"], rng=rng, **options
        )
    from .diameter import make_vessel_kymograph

    return lambda truth, n_lines, n_pixels, rng, options: make_vessel_kymograph(
        n_lines, n_pixels, diameter_px=truth["diameter_px"], center_px=truth["center_px"], rng=rng,
        **{**DIAMETER_DEFAULTS, **options}
    )


def _prepare_folder(folder: Path, overwrite: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: exists and is not a folder; choose a folder path for the corpus")
    if (folder / TRUTH_NAME).exists() and not overwrite:
        raise InputError(
            f"{folder}: already holds a corpus ({TRUTH_NAME}); pass overwrite=True (--overwrite) "
            "or choose another folder"
        )
    folder.mkdir(parents=True, exist_ok=True)


def write_corpus(
    folder: str | os.PathLike,
    *,
    n_files: int = 8,
    kind: str = "velocity",
    n_lines: int = 30000,
    n_pixels: int | None = None,
    dx_um: float = 0.284,
    dt_s: float = 0.0011699667,
    seed: int = 0,
    px_per_line_range: tuple[float, float] = (0.2, 2.0),
    diameter_px_range: tuple[float, float] = (6.0, 30.0),
    synth_options: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write ``n_files`` synthetic line scans with known answers into ``folder``.

    Parameters
    ----------
    folder : str or path-like
        Created if needed; gets ``<kind>_0000.tif`` (+ ``.txt`` header), ... and ``truth.json``.
    n_files : int
        Number of files.
    kind : {"velocity", "diameter"}
        Streaks of moving cells (scan along a vessel) or a bright vessel band (across it).
    n_lines, n_pixels : int
        Image shape: lines (time, axis 0) x pixels (space, axis 1). ``n_pixels`` defaults
        to 38 for velocity and 48 for diameter (room for a 30 px vessel plus background).
    dx_um : float
        Micrometres per pixel.
    dt_s : float
        Seconds per line.
    seed : int
        Seed of everything random: the same arguments write the same files.
    px_per_line_range : (float, float)
        Range of streak slopes |px per line| (velocity); true velocities spread evenly
        over it with both signs, ``velocity_mm_s = px_per_line * dx_um / dt_s / 1000``.
        The default (0.2, 2.0) stays inside the Radon method's measurable range.
    diameter_px_range : (float, float)
        Range of vessel diameters in px (diameter); the top is lowered to keep 4 px of
        background each side (n_pixels - 8). Diameters spread evenly over it, each moved
        by up to half a pixel, and each vessel's centre is up to half a pixel off the
        line's middle (``center_px`` in truth.json), so edges fall between pixels.
    synth_options : mapping, optional
        Extra keyword options for ``make_velocity_kymograph`` / ``make_vessel_kymograph``;
        diameter scans default to :data:`DIAMETER_DEFAULTS` (PSF sigma 1.2 px, 2 % noise).
    overwrite : bool
        Allow writing into a folder that already has a ``truth.json``.

    Returns
    -------
    list of Path
        The TIFF files, in ``truth.json`` order. ``truth.json`` is written last, so a
        folder without it is an interrupted corpus.
    """
    n_pixels = _DEFAULT_PIXELS.get(kind, 38) if n_pixels is None else n_pixels
    _check_options(kind, n_files, n_lines, n_pixels, dx_um, dt_s)
    folder = Path(folder)
    seeds = np.random.SeedSequence(seed).spawn(n_files + 1)
    order_rng = np.random.default_rng(seeds[0])
    if kind == "velocity":
        truths = _velocity_truths(n_files, order_rng, px_per_line_range, dx_um, dt_s)
    else:
        d_range = (diameter_px_range[0], min(diameter_px_range[1], n_pixels - 2 * _EDGE_MARGIN_PX))
        truths = _diameter_truths(n_files, order_rng, d_range, n_pixels, dx_um)
    generate = _generator(kind)
    _prepare_folder(folder, overwrite)
    paths = []
    for index, (truth, child) in enumerate(zip(truths, seeds[1:], strict=True)):
        image = _to_uint16(generate(truth, n_lines, n_pixels, np.random.default_rng(child), dict(synth_options or {})))
        path = write_tiff_with_header(folder / f"{kind}_{index:04d}.tif", image, dx_um=dx_um, dt_s=dt_s)
        truth["file"] = path.name
        paths.append(path)
    doc = {
        "kind": kind, "n_files": n_files, "n_lines": n_lines, "n_pixels": n_pixels,
        "dx_um": dx_um, "dt_s": dt_s, "seed": seed,
        "synth_options": {**(DIAMETER_DEFAULTS if kind == "diameter" else {}), **dict(synth_options or {})},
        "files": [{"file": t.pop("file"), **t} for t in truths],
    }
    tmp = folder / f".{TRUTH_NAME}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(doc, indent=2, default=repr), encoding="utf-8")
    os.replace(tmp, folder / TRUTH_NAME)
    return paths


def read_truth(folder: str | os.PathLike) -> dict:
    """Read ``truth.json`` of a corpus folder (see :func:`write_corpus`)."""
    path = Path(folder) / TRUTH_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read the corpus truth ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
