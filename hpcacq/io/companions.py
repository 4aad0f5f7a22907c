"""The files beside an image that the readers take units or ROIs from.

An Olympus header ``<stem>.txt`` (``dx_um``, ``dt_s``) and a kymflow sidecar ``<stem>.json``
(ROIs) sit beside the image they describe; each suffix is looked up as written, then in
upper case (``.TXT``, ``.JSON``), and the first that exists is read. ``--resume`` compares
the content of all of them (present or absent) with what it was when a file was analysed.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["COMPANION_SUFFIXES", "companion", "companion_paths"]

#: Suffixes of the files beside an image that give its units (``.txt``) or ROIs (``.json``).
COMPANION_SUFFIXES = (".txt", ".json")


def _candidates(path: str | os.PathLike, suffix: str) -> tuple[Path, Path]:
    """``<stem><suffix>`` beside ``path``, in the order they are looked up: as written, upper case."""
    image = Path(path)
    return image.with_suffix(suffix), image.with_suffix(suffix.upper())


def companion(path: str | os.PathLike, suffix: str) -> Path | None:
    """The file ``<stem><suffix>`` beside ``path`` that the readers read (lower or upper case), if any.

    Anything that is there but not a regular file (a FIFO, a loop) is returned too: the
    reader reports it rather than skipping it.
    """
    for candidate in _candidates(path, suffix):
        if os.path.lexists(candidate):
            return candidate
    return None


def companion_paths(path: str) -> list[str]:
    """Every file beside ``path`` that could give its units or ROIs, whether it exists or not."""
    return [str(c) for suffix in COMPANION_SUFFIXES for c in _candidates(path, suffix) if c != Path(path)]
