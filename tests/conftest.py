"""Shared fixtures: where the real data lives, hostile temporary paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _find_realdata() -> Path | None:
    candidates = [
        os.environ.get("HPCACQ_REALDATA"),
        ROOT.parent / "shared" / "realdata",
        Path("/work/shared/realdata"),
    ]
    for cand in candidates:
        if cand and (Path(cand) / "capillary1").is_dir():
            return Path(cand)
    return None


REALDATA = _find_realdata()


@pytest.fixture(scope="session")
def realdata() -> Path:
    """Folder of real line scans (../shared/realdata, or $HPCACQ_REALDATA)."""
    if REALDATA is None:
        pytest.skip("real data not found: set HPCACQ_REALDATA to the realdata folder")
    return REALDATA


@pytest.fixture
def weird_tmp_path(tmp_path: Path) -> Path:
    """A temporary folder whose name holds spaces, quotes, a semicolon, unicode and a newline."""
    weird = tmp_path / "we ird 'q\" ; echo foo µm\nline"
    weird.mkdir()
    return weird
