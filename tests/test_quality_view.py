"""`hpcacq summary` and `hpcacq plot` show each file's quality and warn on doubtful files."""

from __future__ import annotations

import numpy as np
import pytest

from hpcacq.cli.quality_view import doubtful_reason, quality_line
from hpcacq.synth.flow import make_flow_kymograph

from helpers.cli import hpcacq, run_cli

tifffile = pytest.importorskip("tifffile")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("quality")
    data = folder / "data"
    data.mkdir()
    moving = make_flow_kymograph(np.full(2000, 1.0), 24, rng=1, walls=0.5)
    static = make_flow_kymograph(np.zeros(2000), 24, rng=2, contrast=0.0, walls=1.5, spots=3.0)
    tifffile.imwrite(data / "good.tif", np.clip(moving, 0, 65535).astype(np.uint16))
    tifffile.imwrite(data / "static.tif", np.clip(static, 0, 65535).astype(np.uint16))
    out = folder / "out.h5"
    assert run_cli("run", data, "-o", out, "--dx-um", "0.5", "--dt-s", "0.001", "--threads", "1") == 0
    return out


def test_summary_shows_quality_and_warns_on_the_doubtful_file(capsys, run):
    code, out, _ = hpcacq(capsys, "summary", run)
    assert code == 0  # doubtful files stay OK: the data are kept
    assert out.count("quality: trusted ") == 2
    files = out.split("  '")[1:]  # one block per file, listed by name whatever order they finished in
    assert [block.split("'")[0].rsplit("/", 1)[-1] for block in files] == ["good.tif", "static.tif"]
    assert "WARNING doubtful" not in files[0]
    assert "WARNING doubtful: " in files[1]
    assert "doubtful  1 OK result(s)" in out


def test_plot_shows_the_warning(capsys, run, tmp_path):
    pytest.importorskip("matplotlib")
    code, out, err = hpcacq(capsys, "plot", run, "static.tif", "-o", tmp_path / "s.png")
    assert code == 0 and "DOUBTFUL radon_velocity" in out + err
    code, out, err = hpcacq(capsys, "plot", run, "good.tif", "-o", tmp_path / "g.png")
    assert code == 0 and "DOUBTFUL" not in out + err


def test_quality_line_and_reason():
    line = quality_line({"fraction_trusted": 0.9, "fraction_nan": 0.1, "fraction_theta_90": 0.05,
                         "fraction_low_separability": 0.0}, ["theta_90", "low_separability"])
    assert line == "trusted 90.0%, NaN 10.0%; flagged: theta_90 5.0%"
    assert quality_line({"fraction_flagged": 0.0, "fraction_nan": 0.0}) == "NaN 0.0%, any flag 0.0%; no flag"
    assert quality_line({"fraction_flagged": 0.25, "fraction_nan": 0.2}, ["no_edge"]) == "NaN 20.0%, any flag 25.0%"
    assert quality_line({"median_velocity_mm_s": 1.0}) is None
    assert doubtful_reason("ok; doubtful: only 3% trusted") == "only 3% trusted"
    assert doubtful_reason("ok") is None and doubtful_reason(None) is None
