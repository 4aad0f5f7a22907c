"""The synthetic corpus: files a microscope could have written, with truths that match them.

The corpus writer calls ``make_velocity_kymograph`` / ``make_vessel_kymograph`` (written by
other team members). ``standin_generators`` replaces them with small, obviously-correct
stand-ins so these tests do not depend on them; the ``real`` cases use the real ones and
skip while they do not exist yet. The truths are checked against the pixels written, by
estimators independent of the project's analyses.
"""

from __future__ import annotations

import importlib
import json
import sys
import types

import numpy as np
import pytest

from hpcacq.errors import InputError, ParameterError
from hpcacq.io import read_acquisition
from hpcacq.synth.corpus import read_truth, write_corpus

DX_UM, DT_S = 0.284, 0.0011699667


def _standin_velocity(n_lines, n_pixels, *, px_per_line, rng=None):
    """A smooth random texture advected by px_per_line per line (no aliasing)."""
    rng = np.random.default_rng(rng)
    span = int(abs(px_per_line) * n_lines) + n_pixels + 8
    tape = np.convolve(rng.normal(size=span + 8), np.ones(3) / 3, mode="same")
    x = np.arange(n_pixels)[None, :] - px_per_line * np.arange(n_lines)[:, None]
    x = x - x.min() + 4
    return 500.0 + 200.0 * np.interp(x, np.arange(tape.size), tape)


def _standin_vessel(n_lines, n_pixels, *, diameter_px, center_px=None, rng=None, **_options):
    """A sharp bright band of width diameter_px centred at center_px, plus noise."""
    x = np.arange(n_pixels) - ((n_pixels - 1) / 2 if center_px is None else center_px)
    frac = np.clip(diameter_px / 2 - np.abs(x) + 0.5, 0, 1)
    noise = np.random.default_rng(rng).normal(0, 5, size=(n_lines, n_pixels))
    return 100.0 + 1000.0 * frac[None, :] + noise


@pytest.fixture
def standin_generators(monkeypatch):
    for name, func_name, func in [("velocity", "make_velocity_kymograph", _standin_velocity),
                                  ("diameter", "make_vessel_kymograph", _standin_vessel)]:
        module = types.ModuleType(f"hpcacq.synth.{name}")
        setattr(module, func_name, func)
        monkeypatch.setitem(sys.modules, module.__name__, module)


@pytest.fixture(params=["standin", "real"])
def generators(request):
    """Returns ``require(kind)``: skips a "real" case whose generator module is not there yet."""
    if request.param == "standin":
        request.getfixturevalue("standin_generators")

    def require(kind: str) -> None:
        if request.param == "real":
            try:
                importlib.import_module(f"hpcacq.synth.{kind}")
            except ImportError as exc:
                pytest.skip(f"hpcacq.synth.{kind} not written yet ({exc})")

    return require


def _shift_px_per_line(image: np.ndarray, lag: int) -> float:
    """Pixels per line by which line t + lag is line t shifted (best integer shift / lag)."""
    image = image.astype(float)
    image -= image.mean(axis=1, keepdims=True)
    a, b = image[:-lag], image[lag:]
    n = image.shape[1]
    shifts = range(-(n // 2), n // 2 + 1)
    scores = [np.mean(a[:, max(0, -s): n - max(0, s)] * b[:, max(0, s): n - max(0, -s)]) for s in shifts]
    return shifts[int(np.argmax(scores))] / lag


def _half_max_width(image: np.ndarray) -> float:
    """Width in px of the mean profile above half its range (linear interpolation at the crossings)."""
    profile = image.astype(float).mean(axis=0)
    half = (profile.min() + profile.max()) / 2
    above = np.flatnonzero(profile >= half)
    i, j = above[0], above[-1]
    left = i - (profile[i] - half) / (profile[i] - profile[i - 1])
    right = j + (profile[j] - half) / (profile[j] - profile[j + 1])
    return right - left


def test_velocity_corpus_files_units_and_truth_match_pixels(tmp_path, generators):
    generators("velocity")
    paths = write_corpus(tmp_path / "c", n_files=6, kind="velocity", n_lines=600, seed=3)
    truth = read_truth(tmp_path / "c")
    assert [p.name for p in paths] == [f["file"] for f in truth["files"]]
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == sorted(
        [p.name for p in paths] + [p.with_suffix(".txt").name for p in paths] + ["truth.json"])
    assert (truth["kind"], truth["dx_um"], truth["dt_s"], truth["n_pixels"]) == ("velocity", DX_UM, DT_S, 38)
    px = np.array([f["px_per_line"] for f in truth["files"]])
    assert (px > 0).sum() == 3 and (px < 0).sum() == 3  # both directions
    assert np.all((np.abs(px) >= 0.2) & (np.abs(px) <= 2.0)) and len(set(np.abs(px))) == 6
    for path, entry in zip(paths, truth["files"], strict=True):
        assert entry["velocity_mm_s"] == pytest.approx(entry["px_per_line"] * DX_UM / DT_S / 1000)
        raw = read_acquisition(path)
        assert raw.data.shape == (1, 600, 38) and raw.data.dtype == np.uint16
        assert raw.dx_um == pytest.approx(DX_UM, rel=1e-12) and raw.dt_s == pytest.approx(DT_S, rel=1e-10)
        # positive velocity = cells move toward increasing pixel index
        assert _shift_px_per_line(raw.data[0], lag=8) == pytest.approx(entry["px_per_line"], abs=0.1)


def test_diameter_corpus_truth_matches_pixels(tmp_path, generators):
    generators("diameter")
    paths = write_corpus(tmp_path, n_files=5, kind="diameter", n_lines=50, seed=1)
    truth = read_truth(tmp_path)
    assert truth["n_pixels"] == 48
    diameters = [f["diameter_px"] for f in truth["files"]]
    assert sorted(diameters) == pytest.approx([6.0, 12.0, 18.0, 24.0, 30.0], abs=0.5)
    assert all(d % 1 not in (0.0, 0.5) for d in diameters), "sub-pixel widths expected"
    assert all(abs(f["center_px"] - 23.5) <= 0.5 for f in truth["files"])
    assert truth["synth_options"]["psf_sigma_px"] > 0 and truth["synth_options"]["noise_sd"] > 0
    for path, entry in zip(paths, truth["files"], strict=True):
        assert entry["diameter_um"] == pytest.approx(entry["diameter_px"] * DX_UM)
        raw = read_acquisition(path)
        assert raw.data.shape == (1, 50, 48) and raw.data.dtype == np.uint16
        assert _half_max_width(raw.data[0]) == pytest.approx(entry["diameter_px"], abs=1.0)


def test_same_seed_same_files_other_seed_other_files(tmp_path, standin_generators):
    first = write_corpus(tmp_path / "a", n_files=3, n_lines=100, seed=7)
    again = write_corpus(tmp_path / "b", n_files=3, n_lines=100, seed=7)
    other = write_corpus(tmp_path / "c", n_files=3, n_lines=100, seed=8)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in again]
    assert [p.read_bytes() for p in first] != [p.read_bytes() for p in other]
    assert read_truth(tmp_path / "a")["files"] == read_truth(tmp_path / "b")["files"]


def test_refuses_to_overwrite_a_corpus_unless_asked(weird_tmp_path, standin_generators):
    write_corpus(weird_tmp_path, n_files=2, n_lines=40, seed=0)
    with pytest.raises(InputError, match="already holds a corpus.*overwrite=True"):
        write_corpus(weird_tmp_path, n_files=2, n_lines=40, seed=1)
    paths = write_corpus(weird_tmp_path, n_files=1, n_lines=40, seed=1, overwrite=True)
    assert json.loads((weird_tmp_path / "truth.json").read_text())["seed"] == 1 and len(paths) == 1
    (weird_tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is not a folder"):
        write_corpus(weird_tmp_path / "file", n_files=1, n_lines=40)


@pytest.mark.parametrize("options, message", [
    ({"kind": "flow"}, "kind must be one of 'velocity', 'diameter', got 'flow'"),
    ({"n_files": 0}, "n_files must be an integer >= 1, got 0"),
    ({"dt_s": 0.0}, "dt_s must be a finite number > 0, got 0.0"),
    ({"px_per_line_range": (0.0, 2.0)}, "px_per_line_range"),
    ({"kind": "diameter", "n_pixels": 12}, "n_pixels=12 leaves no room"),
])
def test_bad_options_are_refused_before_writing(tmp_path, standin_generators, options, message):
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        write_corpus(tmp_path / "out", n_lines=40, **options)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("kind, analysis, params, column, tolerance", [
    ("velocity", "radon_velocity", {}, "velocity_mm_s", dict(rel=0.1)),
    ("diameter", "diameter", {"method": "fit"}, "diameter_px", dict(abs=0.1)),
    ("diameter", "diameter", {"method": "halfmax"}, "diameter_px", dict(abs=0.25)),
])
def test_corpus_answers_come_back_through_the_analyses(tmp_path, kind, analysis, params, column, tolerance):
    """End to end with the real generators and analyses: file -> AcqImage -> analysis ~ truth."""
    from hpcacq.model import AcqImage

    pytest.importorskip(f"hpcacq.synth.{kind}", reason=f"hpcacq.synth.{kind} not written yet")
    pytest.importorskip(f"hpcacq.analyses.{kind}", reason=f"hpcacq.analyses.{kind} not written yet")
    paths = write_corpus(tmp_path, n_files=2, kind=kind, n_lines=1200, seed=5)
    for path, entry in zip(paths, read_truth(tmp_path)["files"], strict=True):
        img = AcqImage.open(path)
        roi = img.rois.create_rect_roi()
        key = img.analysis_set.create(analysis, roi_id=roi.roi_id, detection_params=params)
        measured = np.nanmedian(img.analysis_set.run_analysis(key).columns[column])
        assert measured == pytest.approx(entry[column], **tolerance), (path.name, entry)
