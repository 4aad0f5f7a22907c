"""The Olympus (FluoView / FVMPE-RS) ``.txt`` header exported beside a line-scan TIFF.

The header is latin-1 text, one ``"key"<TAB>"value"`` pair per line, grouped under
``"[Section]"`` lines. Two fields give the physical steps of a line scan:

- ``"X Dimension"  "38, 0.0 - 10.796 [um], 0.284 [um/pixel]"``: the pixel size in µm
  (the last number, before ``[um/pixel]``);
- ``"T Dimension"  "1, 0.000 - 35.099 [s], Interval FreeRun"``: the duration of the scan
  in seconds (the end of the range), so seconds per line = duration / number of lines.

The ``[Image]`` section's ``"Image Size"  "38 * 30000 [pixel]"`` gives (pixels, lines) and
is used to check that the header belongs to the image beside it.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from .limits import open_regular
from .validate import check_unit

__all__ = ["OlympusHeader", "parse_olympus_header", "read_olympus_header", "format_olympus_header"]

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_X_RE = re.compile(rf"^\s*(\d{{1,12}})\s*,\s*({_NUMBER})\s*-\s*({_NUMBER})\s*\[um\]\s*,\s*({_NUMBER})\s*\[um/pixel\]")
_T_RE = re.compile(rf"^\s*(\d{{1,12}})\s*,\s*({_NUMBER})\s*-\s*({_NUMBER})\s*\[(s|ms)\]")
MAX_HEADER_BYTES = 4 << 20  # real headers are ~1.5 KB
_SIZE_RE = re.compile(r"^\s*(\d{1,12})\s*\*\s*(\d{1,12})\s*\[pixel\]")


@dataclass(frozen=True)
class OlympusHeader:
    """The physical facts of one Olympus header.

    Attributes
    ----------
    dx_um : float or None
        Micrometres per pixel (``"X Dimension"``), None when the field is absent.
    duration_s : float or None
        End of the ``"T Dimension"`` range in seconds, None when absent.
    n_pixels, n_lines : int or None
        ``[Image]`` ``"Image Size"`` (pixels x lines; pixels also from the count in
        ``"X Dimension"``), None when absent.
    n_channels : int or None
        ``"Channel Dimension"`` (``"2 [Ch]"``), None when absent.
    fields : dict
        Every ``"key"`` -> ``"value"``; keys of later sections are prefixed with the
        section name (``"Reference Image/Image Size"``) when they repeat.
    """

    dx_um: float | None
    duration_s: float | None
    n_pixels: int | None = None
    n_lines: int | None = None
    fields: dict = field(default_factory=dict)
    n_channels: int | None = None

    def dt_s(self, n_lines: int) -> float | None:
        """Seconds per line for an image of ``n_lines`` lines (duration / n_lines)."""
        if self.duration_s is None or n_lines <= 0:
            return None
        return self.duration_s / n_lines


def _unquote(token: str) -> str:
    token = token.strip()
    if len(token) >= 2 and token[0] == token[-1] == '"':
        return token[1:-1]
    return token


def _split_sections(text: str, source: str) -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {"": {}}
    current = ""
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        key = _unquote(parts[0])
        if len(parts) < 2 and not (key.startswith("[") and key.endswith("]")):
            raise InputError(
                f"{source}: malformed Olympus header at line {lineno} ({line[:60]!r}): "
                'expected "key"<TAB>"value"; fix or delete the .txt file'
            )
        if key.startswith("[") and key.endswith("]"):
            current = key[1:-1]
            sections.setdefault(current, {})
            continue
        sections.setdefault(current, {})[key] = _unquote("\t".join(parts[1:]))
    return sections


def _find(sections: dict[str, dict[str, str]], key: str, prefer: str) -> str | None:
    if key in sections.get(prefer, {}):
        return sections[prefer][key]
    for name, values in sections.items():
        if key in values and name in ("", "Dimensions", "Image"):
            return values[key]
    return None


def _parse_x(value: str, source: str) -> float:
    match = _X_RE.match(value)
    if not match:
        raise InputError(
            f'{source}: malformed "X Dimension" field {value[:80]!r}: expected like '
            '"38, 0.0 - 10.796 [um], 0.284 [um/pixel]"'
        )
    return check_unit("dx_um", float(match.group(4)), source, "X Dimension")


def _parse_t(value: str, source: str) -> float:
    match = _T_RE.match(value)
    if not match:
        raise InputError(
            f'{source}: malformed "T Dimension" field {value[:80]!r}: expected like '
            '"1, 0.000 - 35.099 [s], Interval FreeRun"'
        )
    duration = float(match.group(3)) - float(match.group(2))
    if match.group(4) == "ms":
        duration /= 1000.0
    if not (math.isfinite(duration) and duration > 0):
        raise InputError(f'{source}: "T Dimension" gives a duration of {duration} s; it must be > 0')
    return duration


def parse_olympus_header(text: str, *, source: str = "<header>") -> OlympusHeader:
    """Parse the text of an Olympus header.

    Parameters
    ----------
    text : str
        The decoded header text.
    source : str, keyword-only
        Name used in error messages (usually the file path).

    Raises
    ------
    InputError
        A line is not ``"key"<TAB>"value"``, or a present dimension field cannot be read.
        A missing field is not an error: its value is None (units are never guessed).
    """
    sections = _split_sections(text, source)
    flat: dict[str, str] = {}
    for name, values in sections.items():
        for key, value in values.items():
            flat[key if key not in flat else f"{name}/{key}"] = value
    x_value = _find(sections, "X Dimension", "Dimensions")
    t_value = _find(sections, "T Dimension", "Dimensions")
    size_value = _find(sections, "Image Size", "Image")
    n_pixels = n_lines = None
    if size_value is not None:
        match = _SIZE_RE.match(size_value)
        if not match:
            raise InputError(
                f'{source}: malformed "Image Size" field {size_value[:80]!r}: expected like "38 * 30000 [pixel]"'
            )
        n_pixels, n_lines = int(match.group(1)), int(match.group(2))
    if n_pixels is None and x_value is not None and _X_RE.match(x_value):
        n_pixels = int(_X_RE.match(x_value).group(1))
    channel_value = _find(sections, "Channel Dimension", "Dimensions")
    n_channels = None
    if channel_value is not None:
        match = re.match(r"^\s*(\d{1,12})\b", channel_value)
        if match and not 1 <= int(match.group(1)) <= 64:
            raise InputError(f'{source}: field "Channel Dimension" = {channel_value!r:.60}: expected 1 to 64 '
                             'channels, like "1 [Ch]"')
        n_channels = int(match.group(1)) if match else None
    return OlympusHeader(
        dx_um=None if x_value is None else _parse_x(x_value, source),
        duration_s=None if t_value is None else _parse_t(t_value, source),
        n_pixels=n_pixels,
        n_lines=n_lines,
        fields=flat,
        n_channels=n_channels,
    )


def read_olympus_header(path: str | os.PathLike) -> OlympusHeader:
    """Read an Olympus ``.txt`` header (latin-1) from ``path``; see :func:`parse_olympus_header`."""
    path = Path(path)
    try:
        with open_regular(path, what="Olympus header", max_bytes=MAX_HEADER_BYTES) as handle:
            text = handle.read().decode("latin-1")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the Olympus header ({exc.strerror or exc})") from None
    return parse_olympus_header(text, source=str(path))


def format_olympus_header(*, n_lines: int, n_pixels: int, dx_um: float, dt_s: float, n_channels: int = 1) -> str:
    """The text of a minimal Olympus-style header for a line scan (CRLF line ends).

    Parameters
    ----------
    n_lines, n_pixels : int
        Image shape: lines (time, axis 0) and pixels (space, axis 1).
    dx_um : float
        Micrometres per pixel.
    dt_s : float
        Seconds per line; the header stores the duration ``n_lines * dt_s``.
    """
    duration = n_lines * dt_s
    rows = [
        ("[General]", ""),
        ("Scan Mode", "XT"),
        ("System Name", "hpcacq synthetic"),
        ("[Dimensions]", ""),
        ("X Dimension", f"{n_pixels}, 0.0 - {n_pixels * dx_um:.12g} [um], {dx_um:.12g} [um/pixel]"),
        ("Channel Dimension", f"{n_channels} [Ch]"),
        ("T Dimension", f"1, 0.000 - {duration:.12g} [s], Interval FreeRun"),
        ("[Image]", ""),
        ("Primary Dimensions", "X * T"),
        ("Image Size", f"{n_pixels} * {n_lines} [pixel]"),
    ]
    return "".join(f'"{key}"\t"{value}"\r\n' for key, value in rows)
