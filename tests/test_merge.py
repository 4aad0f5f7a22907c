"""`hpcacq merge`: job-array outputs joined into one file equal one run over every file."""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from hpcacq.bench.records import velocity_record
from hpcacq.cli import cli
from hpcacq.errors import ParameterError
from hpcacq.results import ResultsWriter, iter_results, read_manifest


class _Outcome:
    def __init__(self, result):
        error = result.exception
        self.exit_code = result.return_value if error is None else getattr(error, "exit_code", 4)
        self.output = result.output + ("" if error is None else str(error))


def _invoke(*args):
    """Run a command in-process with the exit codes of `hpcacq` (the return value or the error's)."""
    return _Outcome(CliRunner().invoke(cli, [str(a) for a in args], standalone_mode=False))


def _tables(path):
    return {(info["file"], info["dataset"]): result.columns for info, result in iter_results(path)}


def test_merged_job_array_equals_one_run(weird_tmp_path):
    data = weird_tmp_path / "data"
    assert _invoke("synth", data, "--n-files", 3, "--kind", "velocity", "--n-lines", 600).exit_code == 0
    files = sorted(p for p in data.iterdir() if p.suffix == ".tif")
    (data / "broken.tif").write_text("not a tiff")
    whole, part_a, part_b, merged = (weird_tmp_path / n for n in ("all.h5", "a.h5", "b.h5", "merged.h5"))
    assert _invoke("run", *files, data / "broken.tif", "-o", whole, "--analysis", "velocity").exit_code == 1
    assert _invoke("run", *files[:2], "-o", part_a, "--analysis", "velocity").exit_code == 0
    assert _invoke("run", files[2], data / "broken.tif", "-o", part_b, "--analysis", "velocity").exit_code == 1

    out = _invoke("merge", part_a, part_b, "-o", merged)
    assert out.exit_code == 0, out.output
    assert "4 input files" in out.output

    assert sorted(r["file"] for r in read_manifest(merged)) == sorted(r["file"] for r in read_manifest(whole))
    outcomes = {r["file"]: r["outcome"] for r in read_manifest(merged)}
    assert outcomes[str(data / "broken.tif")] == "FAILED"
    expected, got = _tables(whole), _tables(merged)
    assert got.keys() == expected.keys() and len(got) == 3
    for key, columns in expected.items():
        for name, values in columns.items():
            np.testing.assert_array_equal(got[key][name], values)
    with h5py.File(merged, "r") as handle:
        assert handle["files"][read_manifest(merged)[0]["group"]]["roi_0"] is not None

    again = _invoke("merge", part_a, part_b, "-o", merged)
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert _invoke("merge", part_a, "-o", part_a).exit_code == 2
    missing = _invoke("merge", weird_tmp_path / "nope.h5", "-o", weird_tmp_path / "x.h5")
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_ok_result_is_never_replaced_by_a_later_failure(tmp_path):
    good = velocity_record(1, n_rows=50)
    bad = dataclasses.replace(good, records=[dataclasses.replace(good.records[0], outcome="FAILED",
                                                                 message="boom", result=None)])
    newer = velocity_record(1, n_rows=50, rng=np.random.default_rng(99))
    for name, record in (("a.h5", good), ("b.h5", bad), ("c.h5", newer)):
        with ResultsWriter(tmp_path / name, job_attrs={"analysis": "radon_velocity"}, fsync=False) as writer:
            writer.write_file(record)

    from hpcacq.results.merge import merge_results

    report = merge_results([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "ab.h5", fsync=False)
    assert report["kept_ok"] and not report["replaced"]
    [(_, result)] = list(iter_results(tmp_path / "ab.h5"))
    np.testing.assert_array_equal(result.columns["velocity_mm_s"], good.records[0].result.columns["velocity_mm_s"])

    # different OK answers for the same file and analysis: a conflict, refused unless asked (issue 11.2)
    with pytest.raises(ParameterError, match="differ"):
        merge_results([tmp_path / "a.h5", tmp_path / "c.h5"], tmp_path / "ac.h5", fsync=False)
    assert not (tmp_path / "ac.h5").exists()
    report = merge_results([tmp_path / "a.h5", tmp_path / "c.h5"], tmp_path / "ac.h5", fsync=False,
                           on_conflict="later")
    assert len(report["replaced"]) == 1
    [(_, result)] = list(iter_results(tmp_path / "ac.h5"))
    np.testing.assert_array_equal(result.columns["velocity_mm_s"], newer.records[0].result.columns["velocity_mm_s"])


def test_merge_reads_a_linked_results_file_of_a_killed_job(tmp_path):
    """A job killed before closing leaves a linked root + shards: merge follows the links."""
    writer = ResultsWriter(tmp_path / "killed.h5", job_attrs={}, fsync=False)
    records = [velocity_record(i, n_rows=20) for i in range(3)]
    for record in records:
        writer.write_file(record)
    writer.flush()
    with h5py.File(tmp_path / "killed.h5", "r") as handle:
        assert handle.attrs["layout"] == "linked"
    from hpcacq.results.merge import merge_results

    merge_results([tmp_path / "killed.h5"], tmp_path / "m.h5", fsync=False)
    writer.close()
    assert len(list(iter_results(tmp_path / "m.h5"))) == 3
    with h5py.File(tmp_path / "m.h5", "r") as handle:
        assert handle.attrs["layout"] == "consolidated"
        assert not any(isinstance(handle["files"].get(n, getlink=True), h5py.ExternalLink) for n in handle["files"])


@pytest.mark.parametrize("bad", ["", "x"])
def test_merge_refuses_non_results_files(tmp_path, bad):
    path = tmp_path / "plain.h5"
    if bad:
        with h5py.File(path, "w") as handle:
            handle["x"] = 1
    else:
        path.write_bytes(b"")
    from hpcacq.errors import InputError
    from hpcacq.results.merge import merge_results

    with pytest.raises(InputError, match="plain.h5"):
        merge_results([path], tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists() and not (tmp_path / "out.h5.tmp").exists()


def test_validate_compares_results_with_the_corpus_truth(tmp_path):
    """`hpcacq validate`: medians within tolerance pass; a wrong truth or a missing file fails."""
    import json

    data = tmp_path / "data"
    assert _invoke("synth", data, "--n-files", 3, "--kind", "velocity", "--n-lines", 1200).exit_code == 0
    out_h5 = tmp_path / "out.h5"
    assert _invoke("run", data, "-o", out_h5, "--analysis", "velocity", "--window-lines", 32).exit_code == 0
    good = _invoke("validate", out_h5, "--truth", data)
    assert good.exit_code == 0, good.output
    assert "3 of 3 files within 5%" in good.output

    truth = json.loads((data / "truth.json").read_text())
    truth["files"][0]["velocity_mm_s"] *= 1.2
    truth["files"].append({"file": "not_run.tif", "px_per_line": 1.0, "velocity_mm_s": 0.3})
    (data / "truth.json").write_text(json.dumps(truth))
    bad = _invoke("validate", out_h5, "--truth", data / "truth.json")
    assert bad.exit_code == 1
    assert "2 of 4 files" in bad.output and "MISSING" in bad.output
