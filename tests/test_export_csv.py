"""`hpcacq export --format csv`: tables that load with pandas and explain themselves."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from helpers.cli import hpcacq, run_cli


@pytest.fixture(scope="module")
def velocity_run(tmp_path_factory):
    """3 synthetic velocity files (one with a kymflow sidecar holding ROIs 1-3) run with --roi new."""
    from hpcacq.synth.corpus import write_corpus

    folder = tmp_path_factory.mktemp("export")
    data = folder / "data"
    paths = write_corpus(data, n_files=3, kind="velocity", n_lines=1200, seed=3)
    rois = [{"id": i, "channel": 1, "dim0_start": 0, "dim0_stop": 600, "dim1_start": 2 * i, "dim1_stop": 30}
            for i in (1, 2, 3)]
    Path(paths[1]).with_suffix(".json").write_text(json.dumps({"rois": rois}))
    out = folder / "velocity.h5"
    assert run_cli("run", data, "-o", out, "--threads", "1") == 0
    return out, [str(p) for p in paths]


def _stored(out: Path) -> dict[str, dict]:
    """file -> {"flags": int array, "flag_bits": dict, "velocity_mm_s": array} read with h5py."""
    from hpcacq.results import iter_results

    return {meta["file"]: {"flags": r.columns["flags"], "flag_bits": r.flag_bits,
                           "velocity_mm_s": r.columns["velocity_mm_s"], "bounds": meta["roi_bounds"],
                           "params": r.params} for meta, r in iter_results(out)}


def test_one_csv_per_file_reads_back_with_units_and_decoded_flags(capsys, velocity_run, tmp_path):
    out, paths = velocity_run
    code, text, _ = hpcacq(capsys, "export", out, "--format", "csv", "-o", tmp_path / "csv")
    assert code == 0 and "columns.json" in text
    tables = sorted((tmp_path / "csv").glob("*.csv"))
    assert [t.name for t in tables] == [f"velocity_{i:04d}.radon_velocity.csv" for i in range(3)]
    dictionary = json.loads((tmp_path / "csv" / "columns.json").read_text())["columns"]
    stored = _stored(out)
    assert set(stored) == set(paths)
    for table in tables:
        frame = pd.read_csv(table)
        shadowing = [c for c in frame.columns if hasattr(pd.DataFrame, c)]
        assert not shadowing, f"columns shadowing DataFrame attributes: {shadowing}"
        for column in frame.columns:  # the data dictionary documents every column
            assert dictionary[column]["meaning"], column
        assert dictionary["velocity_mm_s"]["unit"] == "mm/s" and dictionary["time_s"]["unit"] == "s"
        assert dictionary["dx_um"]["unit"] == "um/px" and dictionary["dt_s"]["unit"] == "s/line"
        (file,) = set(frame["file"])
        truth = stored[file]
        assert len(frame) == len(truth["flags"])
        np.testing.assert_allclose(frame["velocity_mm_s"], truth["velocity_mm_s"], equal_nan=True)
        for name, bit in truth["flag_bits"].items():
            assert frame[f"flag_{name}"].dtype == bool, name
            np.testing.assert_array_equal(frame[f"flag_{name}"].to_numpy(), (truth["flags"] & bit) != 0)
        assert "theta_90" in dictionary["flag_theta_90"]["meaning"]
        assert "flags" not in frame.columns
        # the context of every row
        assert set(frame["roi_id"]) == {0}, "the whole image is ROI 0 in every file"
        r0, r1, c0, c1 = truth["bounds"]
        assert (frame["roi_first_line"].iloc[0], frame["roi_stop_line"].iloc[0]) == (r0, r1)
        assert (frame["roi_first_pixel"].iloc[0], frame["roi_stop_pixel"].iloc[0]) == (c0, c1)
        assert set(frame["dx_um"]) == {truth["params"]["dx_um"]} and set(frame["dt_s"]) == {truth["params"]["dt_s"]}
        assert list(frame["window"]) == list(range(len(frame)))
        step = truth["params"]["window_lines"] // 4
        np.testing.assert_array_equal(frame["window_first_line"], r0 + step * np.arange(len(frame)))
        # time_s is the window centre: first line + half a window, in seconds
        np.testing.assert_allclose(frame["time_s"], (frame["window_first_line"] + frame["window_lines"] / 2)
                                   * frame["dt_s"], rtol=1e-9)


def test_single_table_and_kymflow_columns(capsys, velocity_run, tmp_path):
    out, paths = velocity_run
    code, _, _ = hpcacq(capsys, "export", out, "-o", tmp_path / "one", "--single", "--kymflow-columns")
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["columns.json", "radon_velocity.csv"]
    frame = pd.read_csv(tmp_path / "one" / "radon_velocity.csv")
    assert sorted(set(frame["file"])) == sorted(paths)
    assert (frame["delx"] == frame["dx_um"]).all() and (frame["delt"] == frame["dt_s"]).all()
    assert set(frame["numLines"]) == {1200} and set(frame["pntsPerLine"]) == {38}
    dictionary = json.loads((tmp_path / "one" / "columns.json").read_text())["columns"]
    assert dictionary["delx"]["unit"] == "um/px" and "kymflow" in dictionary["numLines"]["meaning"]


def test_flag_names_come_from_the_file(capsys, velocity_run, tmp_path):
    """A flag added later (by a newer analysis) becomes its own column, named from the stored bits."""
    import shutil

    out, _ = velocity_run
    copy = tmp_path / "copy.h5"
    shutil.copy(out, copy)
    with h5py.File(copy, "r+") as handle:
        for name in handle["files"]:
            group = handle["files"][name]["roi_0"]["radon_velocity_ch0"]
            bits = json.loads(group.attrs["flag_bits_json"])
            group.attrs["flag_bits_json"] = json.dumps({**bits, "new-kind of doubt": 64})
            flags = group["flags"][()]
            flags[::2] |= 64
            del group["flags"]
            group["flags"] = flags
    code, _, _ = hpcacq(capsys, "export", copy, "-o", tmp_path / "csv")
    assert code == 0
    frame = pd.read_csv(tmp_path / "csv" / "velocity_0000.radon_velocity.csv")
    assert list(frame["flag_new_kind_of_doubt"]) == [i % 2 == 0 for i in range(len(frame))]
    dictionary = json.loads((tmp_path / "csv" / "columns.json").read_text())["columns"]
    assert "bit 64" in dictionary["flag_new_kind_of_doubt"]["meaning"]


def test_same_base_name_in_two_folders_gets_two_tables(capsys, tmp_path):
    from hpcacq.synth.corpus import write_corpus

    for sub in ("a", "b"):
        write_corpus(tmp_path / sub, n_files=1, kind="velocity", n_lines=400, seed=1)
    code, _, _ = hpcacq(capsys, "run", tmp_path / "a", tmp_path / "b", "-o", tmp_path / "o.h5")
    assert code == 0
    code, text, _ = hpcacq(capsys, "export", tmp_path / "o.h5", "-o", tmp_path / "csv")
    assert code == 0
    tables = sorted((tmp_path / "csv").glob("*.csv"))
    assert len(tables) == 2
    files = {pd.read_csv(t)["file"].iloc[0] for t in tables}
    assert files == {os.path.join(str(tmp_path / s), "velocity_0000.tif") for s in ("a", "b")}


def test_whole_image_roi_is_id_0_unless_the_file_uses_0(tmp_path):
    from hpcacq.jobs.strategies import WHOLE_IMAGE_ROI_ID, RadonVelocityBatchStrategy
    from hpcacq.model import AcqImage, Roi
    from hpcacq.synth.corpus import write_corpus

    (path,) = write_corpus(tmp_path, n_files=1, kind="velocity", n_lines=400, seed=2)
    library = RadonVelocityBatchStrategy()  # acqstore's rule: a new ROI with the next id
    assert library.run_file(path).roi_id == 1
    strategy = RadonVelocityBatchStrategy(whole_image_roi_id=WHOLE_IMAGE_ROI_ID)  # what `hpcacq run` uses
    assert WHOLE_IMAGE_ROI_ID == 0 and strategy.run_file(path).roi_id == 0
    image = AcqImage.open(path)
    first, again = strategy.run_file(image), strategy.run_file(image)
    assert first.roi_id == again.roi_id == 0 and image.rois.ids() == [0]  # the same ROI, not a new one each time
    taken = AcqImage.open(path)
    taken.rois.add(Roi(0, 0, 100, 0, 10))  # ROI 0 is something else in this file: the next free id
    assert strategy.run_file(taken).roi_id == 1 and taken.rois.get(1).bounds == (0, 400, 0, 38)


def test_summary_csv_has_outcomes_and_every_stored_figure(capsys, velocity_run, tmp_path):
    import shutil

    from hpcacq.results import iter_results

    out, paths = velocity_run
    data = tmp_path / "data"
    data.mkdir()
    for path in paths[:2]:
        for suffix in (".tif", ".txt"):
            shutil.copy(Path(path).with_suffix(suffix), data)
    (data / "broken.tif").write_bytes(b"not a tiff")
    results = tmp_path / "r.h5"
    code, _, _ = hpcacq(capsys, "run", data, "-o", results)
    assert code == 1
    code, text, _ = hpcacq(capsys, "summary", results, "--csv", "-")
    assert code == 1 and not text.startswith("results ")  # '-': only the table, on stdout
    frame = pd.read_csv(io.StringIO(text))
    assert sorted(frame["outcome"]) == ["FAILED", "OK", "OK"]
    assert not [c for c in frame.columns if hasattr(pd.DataFrame, c)]
    stored = {meta["file"]: r.summary for meta, r in iter_results(results)}
    for _, row in frame.iterrows():
        if row["outcome"] == "OK":
            for name, value in stored[row["file"]].items():
                assert row[name] == pytest.approx(value, nan_ok=True), name
            assert row["roi_id"] == 0
        else:
            assert "broken.tif" in row["file"] and "TIFF" in row["message"]
            assert np.isnan(row["median_velocity_mm_s"])
    code, text, err = hpcacq(capsys, "summary", results, "--csv", tmp_path / "s.csv")
    assert code == 1 and text.startswith("results ") and "3 row(s)" in err
    assert len(pd.read_csv(tmp_path / "s.csv")) == 3


def test_tables_are_closed_between_files_and_rows_of_a_file_come_back_to_its_table(velocity_run, tmp_path,
                                                                                   monkeypatch):
    """No open file per table (100,000 inputs = 100,000 tables); a file met again appends to its table."""
    from hpcacq.results import csv_export, iter_results

    out, _ = velocity_run
    (a, ra), (b, rb) = list(iter_results(out))[:2]
    again = {**a, "roi_id": 5, "roi_bounds": (0, 600, 2, 30)}
    monkeypatch.setattr(csv_export, "iter_results", lambda path: iter([(a, ra), (b, rb), (again, ra)]))
    opened = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda *args, **kw: opened.append(args[0]) or real_open(*args, **kw))
    written = csv_export.export_tables(out, tmp_path / "csv")
    mine = [str(p) for p in opened if str(p).startswith(str(tmp_path))]
    assert len(mine) == 4  # a, b, a again (append), columns.json: each closed after its rows
    assert len(written) == 2
    frame = pd.read_csv(tmp_path / "csv" / f"{Path(a['file']).stem}.radon_velocity.csv")  # manifest order
    assert list(frame.columns).count("file") == 1 and sorted(set(frame["roi_id"])) == [0, 5]
    assert len(frame) == 2 * ra.n_rows and (frame["roi_first_pixel"] == 2).sum() == ra.n_rows
