"""Where the shared real data lives: $HPCACQ_REALDATA, ../shared/realdata beside the
checkout, or /work/shared/realdata (a fresh clone elsewhere, as CI makes, finds it there)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def find_realdata() -> Path | None:
    """The realdata folder (holding ``capillary1/``), or None when it is nowhere."""
    candidates = [
        os.environ.get("HPCACQ_REALDATA"),
        ROOT.parent / "shared" / "realdata",
        Path("/work/shared/realdata"),
    ]
    for cand in candidates:
        if cand and (Path(cand) / "capillary1").is_dir():
            return Path(cand).resolve()
    return None
