"""Issue 11: nothing lost, nothing stale, never exit 4 (writer poisoning, resume, a hard environment).

Each test is marked with the issue item it covers (``# issue 11.N``).
"""

from __future__ import annotations

import json
import os
import shutil

import h5py
import numpy as np
import pytest

from hpcacq.cli import main
from hpcacq.results import AnalysisRecord, FileRecord, ResultsWriter, iter_results, read_manifest
from hpcacq.results._bench import velocity_record

FAST = {"fsync": False}


def hpcacq(capsys, *args) -> tuple[int, str, str]:
    """Run ``hpcacq ARGS`` in this process; (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Six small synthetic velocity TIFFs with Olympus headers (truth known)."""
    from hpcacq.synth.corpus import write_corpus

    folder = tmp_path_factory.mktemp("corpus") / "d"
    write_corpus(folder, n_files=6, kind="velocity", n_lines=600, seed=11)
    return folder


def fresh_copy(corpus, tmp_path):
    target = tmp_path / "d"
    shutil.copytree(corpus, target)
    return target


def rows_by_file(path):
    out = {}
    for row in read_manifest(path):
        out.setdefault(row["file"], []).append(row)
    return out


# ----------------------------------------------------------------- 11.1 a record the writer cannot store
def _bad_records():
    good = velocity_record(0, n_rows=50)
    big_id = velocity_record(1, n_rows=50)
    big_id.records[0].roi_id = 2 ** 63  # the id kymflow's next ROI gets after 2**63 - 1
    huge_id = velocity_record(2, n_rows=50)
    huge_id.records[0].roi_id = 2 ** 70
    objects = velocity_record(3, n_rows=50)
    objects.records[0].result.columns["velocity_mm_s"] = np.array([object()] * 50, dtype=object)
    bad_param = velocity_record(4, n_rows=50)
    bad_param.records[0].params["window_lines"] = 2 ** 80
    return good, [big_id, huge_id, objects, bad_param]


def test_a_record_the_writer_cannot_store_is_a_failed_row_and_the_others_are_kept(tmp_path):  # issue 11.1
    good, bad = _bad_records()
    out = tmp_path / "out.h5"
    with ResultsWriter(out, mode="new", **FAST) as writer:
        for record in [bad[0], good, *bad[1:]]:
            writer.write_file(record)
    rows = rows_by_file(out)
    assert set(rows) == {r.file_path for r in [good, *bad]}
    assert [row["outcome"] for row in rows[good.file_path]] == ["OK"]
    for record in bad:
        (row,) = rows[record.file_path]
        assert row["outcome"] == "FAILED" and record.file_path in row["message"], row
        assert "cannot store" in row["message"]
    assert [info["file"] for info, _ in iter_results(out)] == [good.file_path]
    # resume works afterwards: the failed files are not "done", the good one is
    with ResultsWriter(out, mode="resume", **FAST) as writer:
        done = writer.done_fingerprints()
        assert good.file_path in done and not any(r.file_path in done for r in bad)


def test_sidecar_roi_id_at_int64_max_fails_that_file_only_and_resume_works(corpus, tmp_path, capsys):  # issue 11.1
    data = fresh_copy(corpus, tmp_path)
    tifs = sorted(data.glob("*.tif"))
    (data / (tifs[2].stem + ".json")).write_text(json.dumps(
        {"rois": [{"roi_id": 2 ** 63 - 1, "channel": 1, "data": {"x0": 0, "x1": 8, "y0": 0, "y1": 100}}]}))
    out = tmp_path / "out.h5"
    code, text, err = hpcacq(capsys, "run", data, "-o", out)
    assert code == 1, (text, err)
    rows = rows_by_file(out)
    assert len(rows) == 6
    failed = [f for f, r in rows.items() if r[0]["outcome"] != "OK"]
    assert len(failed) == 1 and failed[0].endswith(tifs[2].name)
    assert tifs[2].name in rows[failed[0]][0]["message"]
    code, text, _ = hpcacq(capsys, "run", data, "-o", out, "--resume")
    assert code == 1 and "5 from an earlier run" in text
    assert len(rows_by_file(out)) == 6
