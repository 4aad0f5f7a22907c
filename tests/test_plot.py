"""`hpcacq plot`: figures rendered from a real small run, checked on the PNG and the Figure."""

from __future__ import annotations

import json
import os
import shutil
import sys

import numpy as np
import pytest

from helpers.cli import hpcacq, run_cli

TAB_BLUE = np.array([31, 119, 180]) / 255  # the cleaned velocity / diameter line colour


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A velocity corpus of 3 files + 1 broken file, and one diameter file, through `hpcacq run`."""
    from hpcacq.synth.corpus import read_truth, write_corpus

    root = tmp_path_factory.mktemp("plot")
    velocity, diameter = root / "velocity", root / "diameter"
    write_corpus(velocity, n_files=3, kind="velocity", n_lines=1200, seed=3)
    (velocity / "broken.tif").write_bytes(b"not a tiff at all")
    write_corpus(diameter, n_files=1, kind="diameter", n_lines=1200, seed=4)
    # an ROI that does not start at pixel 0, so the edges must be drawn at the ROI's offset
    sidecar = {"rois": [{"id": 1, "channel": 1, "dim0_start": 0, "dim0_stop": 1200, "dim1_start": 2, "dim1_stop": 47}]}
    (diameter / "diameter_0000.json").write_text(json.dumps(sidecar))
    for folder, analysis, roi in ((velocity, "velocity", []), (diameter, "diameter", ["--roi", "existing", "--roi-id", "1"])):
        code = run_cli("run", folder, "-o", root / f"{analysis}.h5", "--analysis", analysis, "--threads", "1", *roi)
        assert code == (1 if analysis == "velocity" else 0)  # broken.tif FAILED
    return {"root": root, "velocity": root / "velocity.h5", "diameter": root / "diameter.h5",
            "truth": read_truth(velocity)}


def _png(path) -> np.ndarray:
    import matplotlib.image

    return matplotlib.image.imread(str(path))[..., :3]  # RGB floats 0..1


def _region(image: np.ndarray, fig, ax) -> np.ndarray:
    """The pixels of ``ax`` (its inside, 2 px in from the frame) in the PNG of ``fig``."""
    box = ax.get_window_extent(fig.canvas.get_renderer())
    height = image.shape[0]
    return image[int(height - box.y1) + 2:int(height - box.y0) - 2, int(box.x0) + 2:int(box.x1) - 2]


def _blue_pixels(region: np.ndarray) -> int:
    return int((np.abs(region - TAB_BLUE).max(axis=-1) < 0.12).sum())


def test_file_plot_png_has_kymograph_and_traces(capsys, runs, tmp_path):
    from hpcacq.plots import file_figure

    png = tmp_path / "file.png"
    code, out, _ = hpcacq(capsys, "plot", runs["velocity"], "velocity_0001.tif", "-o", png, "--size", "1000x700")
    assert code == 0 and "1000 x 700 px" in out
    image = _png(png)
    assert image.shape == (700, 1000, 3)
    fig = file_figure(runs["velocity"], "velocity_0001.tif", size=(1000, 700))  # same layout as the PNG
    kymo_ax, trace_ax, flag_ax = fig.axes
    assert kymo_ax.images and not trace_ax.images
    assert kymo_ax.get_xlim() == trace_ax.get_xlim()  # shared time axis, time horizontal
    assert kymo_ax.get_xlim()[1] == pytest.approx(1200 * 0.0011699667, rel=1e-3)  # whole file, in s
    assert kymo_ax.get_ylim()[1] == pytest.approx(38 * 0.284, rel=1e-6)  # space, in µm
    kymo, trace = _region(image, fig, kymo_ax), _region(image, fig, trace_ax)
    grey = kymo.std(axis=-1) < 0.02
    assert grey.mean() > 0.9 and kymo[grey].std() > 0.1  # a grey image with structure (streaks)
    assert kymo.mean(axis=(0, 2)).std() > 0.02  # it changes along time (columns): streaks move
    assert _blue_pixels(trace) > 300  # the cleaned velocity line
    assert trace.std() > 0.05
    labels = [t.get_text() for t in flag_ax.get_yticklabels()]
    assert [label.split(" ")[0] for label in labels] == ["theta_90", "low_separability", "clean_rejected",
                                                          "theta_0", "static_background", "angle_edge"]
    assert any("ROI 0" in t.get_text() for t in kymo_ax.texts)  # the whole image (--roi new) is ROI 0
    assert any(label.startswith("cleaned") for label in trace_ax.get_legend_handles_labels()[1])
    assert "velocity_0001.tif" in fig.get_suptitle()


def test_file_plot_trace_is_the_stored_result(runs):
    """The drawn lines are the stored columns (raw and cleaned), on the stored time axis."""
    from hpcacq.plots import file_figure
    from hpcacq.results import iter_results

    fig = file_figure(runs["velocity"], "velocity_0002.tif")
    (info, result), = [(i, r) for i, r in iter_results(runs["velocity"]) if i["file"].endswith("velocity_0002.tif")]
    lines = {line.get_label(): line for line in fig.axes[1].lines}
    raw, clean = lines["raw (velocity_mm_s)"], lines["cleaned (velocity_clean_mm_s)"]
    np.testing.assert_array_equal(raw.get_xdata(), result.columns["time_s"])
    np.testing.assert_array_equal(clean.get_ydata(), result.columns["velocity_clean_mm_s"])
    assert f"median {np.nanmedian(result.columns['velocity_clean_mm_s']):.4g}" in fig.axes[1].get_title(loc="left")


def test_diameter_plot_draws_edges_on_the_kymograph(capsys, runs, tmp_path):
    from hpcacq.plots import file_figure

    png = tmp_path / "d.png"
    code, _, _ = hpcacq(capsys, "plot", runs["diameter"], "-o", png, "--analysis", "diameter")
    assert code == 0
    image = _png(png)
    assert image.shape == (900, 1600, 3)
    fig = file_figure(runs["diameter"], analysis="diameter")
    kymo_ax, trace_ax, _ = fig.axes
    assert trace_ax.get_ylabel() == "diameter (µm)"
    trace = _region(image, fig, trace_ax)
    assert (trace.min(axis=-1) < 0.5).sum() > 300  # the diameter line and its running median
    edges = [line for line in kymo_ax.lines if line.get_color() == "tab:cyan"]
    assert len(edges) == 2
    # the drawn edges sit where the drawn image crosses half its height (within a pixel)
    profile = kymo_ax.images[0].get_array().mean(axis=1)
    half = (profile.min() + profile.max()) / 2
    centres_um = (np.arange(profile.size) + 0.5) * 0.284
    inside = np.flatnonzero(profile > half)
    crossings = []
    for a, b in ((inside[0] - 1, inside[0]), (inside[-1], inside[-1] + 1)):
        crossings.append(np.interp(half, sorted([profile[a], profile[b]]),
                                   [centres_um[a], centres_um[b]] if profile[a] < profile[b] else
                                   [centres_um[b], centres_um[a]]))
    left, right = (np.nanmedian(line.get_ydata()) for line in edges)
    assert left == pytest.approx(crossings[0], abs=0.284) and right == pytest.approx(crossings[1], abs=0.284)
    from hpcacq.synth.corpus import read_truth

    truth = read_truth(runs["root"] / "diameter")["files"][0]
    assert right - left == pytest.approx(truth["diameter_um"], rel=0.1)


def test_summary_png_and_rows(capsys, runs, tmp_path):
    from hpcacq.plots import summary_figure

    png = tmp_path / "s.png"
    code, out, _ = hpcacq(capsys, "plot", runs["velocity"], "--summary", "-o", png, "--size", "900x500")
    assert code == 0
    image = _png(png)
    assert image.shape == (500, 900, 3) and image.std() > 0.05
    fig = summary_figure(runs["velocity"])
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["broken.tif", "velocity_0000.tif", "velocity_0001.tif", "velocity_0002.tif"]
    failed = [line for line in ax.lines if line.get_label().startswith("FAILED")]
    assert len(failed) == 1 and failed[0].get_marker() == "X" and list(failed[0].get_ydata()) == [0]
    assert any("not a readable TIFF" in t.get_text() for t in ax.texts)  # the failure's reason
    ok = next(c for c in ax.containers if c.get_label().startswith("OK (3)"))
    medians = ok.lines[0].get_xdata()
    truth = {f["file"]: f["velocity_mm_s"] for f in runs["truth"]["files"]}
    for label, median in zip(labels[1:], medians, strict=True):
        assert median == pytest.approx(truth[label], rel=0.1)  # each row is its own file's velocity


def test_summary_scales_to_hundreds_of_rows(monkeypatch, tmp_path):
    import hpcacq.plots.figures as figures

    def rows(n):
        return [{"file": f"f{i:04d}.tif", "label": f"f{i:04d}.tif", "outcome": "OK" if i % 7 else "FAILED",
                 "message": "" if i % 7 else "broken", "median": float(i), "q1": i - 0.5, "q3": i + 0.5, "n": 10,
                 "column": "velocity_clean_mm_s"} for i in range(n)]

    monkeypatch.setattr(figures, "summary_rows", lambda path, **kw: ("radon_velocity", rows(300)))
    fig = figures.summary_figure(tmp_path / "x.h5")
    assert len(fig.axes[0].get_yticklabels()) == 300
    width, height = fig.get_size_inches() * fig.dpi
    assert height >= 300 * 10  # grows with the rows, so labels stay readable
    big_font = fig.axes[0].get_yticklabels()[0].get_fontsize()
    fig = figures.summary_figure(tmp_path / "x.h5", size=(800, 1200))
    assert tuple(fig.get_size_inches() * fig.dpi) == (800, 1200)
    assert fig.axes[0].get_yticklabels()[0].get_fontsize() < big_font  # fixed size: the font shrinks
    monkeypatch.setattr(figures, "summary_rows", lambda path, **kw: ("radon_velocity", rows(1000)))
    fig = figures.summary_figure(tmp_path / "x.h5")
    assert len(fig.axes[0].get_yticklabels()) == figures.MAX_SUMMARY_ROWS
    assert "first 400 of 1000" in fig.get_suptitle()


def test_missing_or_changed_input_plots_traces_only(capsys, runs, tmp_path):
    from hpcacq.plots import file_figure

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("velocity_0000.tif", "velocity_0000.txt"):
        shutil.copy(runs["root"] / "velocity" / name, folder / name)
    out_h5 = tmp_path / "o.h5"
    assert hpcacq(capsys, "run", folder / "velocity_0000.tif", "-o", out_h5, "--threads", "1")[0] == 0
    assert file_figure(out_h5).axes[0].images  # input present: kymograph

    (folder / "velocity_0000.tif").write_bytes(b"something else entirely")
    fig = file_figure(out_h5)
    assert not any(ax.images for ax in fig.axes) and len(fig.axes) == 2
    assert "changed since the run" in fig.get_suptitle()

    os.unlink(folder / "velocity_0000.tif")
    code, out, _ = hpcacq(capsys, "plot", out_h5, "-o", tmp_path / "t.png")
    assert code == 0 and "input file not found: traces only" in out
    assert _png(tmp_path / "t.png").shape == (900, 1600, 3)


def test_time_zoom_shows_every_line(runs):
    from hpcacq.plots import file_figure

    fig = file_figure(runs["velocity"], "velocity_0000.tif", time_range=(0.2, 0.5))
    kymo_ax = fig.axes[0]
    assert kymo_ax.get_xlim() == (0.2, 0.5)
    assert "every line" in kymo_ax.get_title(loc="left")
    assert kymo_ax.images[0].get_array().shape[1] == pytest.approx(0.3 / 0.0011699667, abs=2)


@pytest.mark.parametrize("raw_column, signed, row_word", [("speed", True, "windows"), (None, False, "lines")])
def test_trace_panel_follows_the_registry_line(monkeypatch, raw_column, signed, row_word):
    """A new analysis is drawn from its registry line alone: raw column under the headline,
    zero line when signed, its row word in the title; none of it keyed on a name."""
    import dataclasses

    from hpcacq.analyses import registry
    from hpcacq.analyses.base import AnalysisResult
    from hpcacq.plots.backend import new_figure
    from hpcacq.plots.data import Trace
    from hpcacq.plots.traces import draw_trace

    entry = dataclasses.replace(registry.REGISTRY["diameter"], name="flow2", label="flow", headline="speed_clean",
                                headline_unit="mm/s", raw_column=raw_column, signed=signed, row_word=row_word)
    monkeypatch.setitem(registry.REGISTRY, "flow2", entry)
    values = np.array([-2.0, -1.0, np.nan, 1.0, 2.0, 3.0])
    result = AnalysisResult("flow2", {}, {"time_s": np.arange(6.0), "speed": values, "speed_clean": values},
                            {"time_s": "s", "speed": "mm/s", "speed_clean": "mm/s"})
    ax = new_figure(400, 300).subplots()
    draw_trace(ax, Trace({"analysis": "flow2", "channel": 1, "roi_id": 2}, result))
    labels = [line.get_label() for line in ax.get_lines()]
    if raw_column:
        assert labels[:2] == ["raw (speed)", "cleaned (speed_clean)"]
    else:
        assert labels[0] == "speed_clean (NaN: gap)" and "raw (speed)" not in labels
    zero_lines = [line for line in ax.get_lines() if list(line.get_ydata()) == [0.0, 0.0]]
    assert len(zero_lines) == int(signed)
    assert ax.get_title(loc="left") == f"flow, channel 1, ROI 2: median 1 mm/s{' cleaned' if raw_column else ''}, 6 {row_word}"
    assert ax.get_ylabel() == "flow (mm/s)"


def test_block_mean_is_the_mean_of_whole_blocks():
    from hpcacq.plots.data import block_mean

    lines = np.arange(7 * 3, dtype=np.uint16).reshape(7, 3)
    means, k = block_mean(lines, 3)
    assert k == 3
    np.testing.assert_allclose(means, [lines[0:3].mean(0), lines[3:6].mean(0), lines[6:7].mean(0)])
    # a streak pattern faster than the block size averages out instead of aliasing into a slow one
    t = np.arange(3000)
    stripes = ((t % 10) < 5).astype(float)[:, None] * np.ones((1, 4))
    means, k = block_mean(stripes, 300)
    assert k == 10 and np.allclose(means, 0.5)


@pytest.mark.parametrize("args, expected", [
    (["nope.tif"], "'nope.tif' is not among the 4 input files"),
    (["broken.tif"], "has no OK analysis"),
    (["--analysis", "diameter"], "has no OK analysis diameter"),
    (["--summary", "--analysis", "diameter"], "no diameter rows"),
    (["--summary", "velocity_0000.tif"], "drop FILE"),
    (["--time", "5:1"], "--time"),
    (["--size", "12"], "WIDTHxHEIGHT"),
])
def test_user_mistakes_are_one_line_errors(capsys, runs, tmp_path, args, expected):
    code, _, err = hpcacq(capsys, "plot", runs["velocity"], *args, "-o", tmp_path / "x.png")
    assert code == 2 and expected in err.strip().splitlines()[-1], err
    if not args[0].startswith("--size") and not args[0].startswith("--time"):  # Click adds usage to bad values
        assert err.count("\n") == 1, err
    assert not (tmp_path / "x.png").exists()


def test_bad_output_name_and_missing_results(capsys, runs, tmp_path):
    code, _, err = hpcacq(capsys, "plot", runs["velocity"], "-o", tmp_path / "x.jpg")
    assert code == 2 and ".png" in err
    code, _, err = hpcacq(capsys, "plot", tmp_path / "none.h5", "-o", tmp_path / "x.png")
    assert code == 2 and "does not exist" in err and err.count("\n") == 1


def test_without_matplotlib_the_error_says_what_to_install(capsys, runs, tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    code, _, err = hpcacq(capsys, "plot", runs["velocity"], "-o", tmp_path / "x.png")
    assert code == 2 and "pip install 'hpcacq[plot]'" in err and err.count("\n") == 1
