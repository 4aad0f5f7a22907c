"""The root file OUT.h5 while a job runs: extended at each flush, rewritten when needed.

Found by a review of the streaming writer (helper session, 2026-11-28): roots bloated by
appends or by re-written files, a root replaced behind the writer's back, a failure
half-way through an update, ``done_fingerprints`` after ``close``.
"""

import os
import shutil

import h5py
import numpy as np
import pytest

from hpcacq.analyses.base import AnalysisResult
from hpcacq.results import AnalysisRecord, FileRecord, ResultsWriter, read_manifest
from hpcacq.results.store import write_linked_root
from hpcacq.results.writer import ROOT_BLOAT, _batched


def rec(path, seed, outcome="OK"):
    """A tiny one-record FileRecord; ``seed`` is its data and its fingerprint size."""
    res = None
    if outcome == "OK":
        res = AnalysisResult("diameter", {"w": 1}, {"x": np.arange(3.0) + seed}, {"x": "px"}, {}, {})
    return FileRecord(path, {"size": seed, "mtime_ns": 1, "sha256": "ab" * 32},
                      [AnalysisRecord("diameter", 0, 1, (0, 3, 0, 3), outcome, "", {"w": 1}, res, 0.0)],
                      rank=0, host="node1", timings={}, n_lines=3)


def fresh_root_size(w, tmp_path):
    fresh = str(tmp_path / "fresh.h5")
    links = ((n, f"out.h5.parts/shard-{s:05d}.h5") for n, s in w._groups.items())
    write_linked_root(fresh, links, _batched(w._stored_columns()), fsync=False, **w._root_attrs())
    return os.path.getsize(fresh)


@pytest.mark.parametrize("hot", [False, True])
def test_root_size_stays_near_a_fresh_root(tmp_path, hot):
    out = tmp_path / "out.h5"
    w = ResultsWriter(out, flush_every=1, max_flush_share=1.0, fsync=False)
    for i in range(150):
        w.write_file(rec(f"/d/f{i:05d}.tif", i))
        if hot:
            w.write_file(rec("/d/hot.tif", i))  # re-run file: a replacement in every root update
    size, fresh = os.path.getsize(out), fresh_root_size(w, tmp_path)
    w.close()
    print(f"root {size} bytes after 150 flushes, fresh root {fresh} bytes")
    assert size <= ROOT_BLOAT * fresh, f"root {size} bytes after 150 flushes, fresh root {fresh} bytes"


def test_root_replaced_behind_the_writers_back_is_rebuilt(tmp_path):
    out = tmp_path / "out.h5"
    flushed = []
    w = ResultsWriter(out, flush_every=1, max_flush_share=1.0, fsync=False, on_flush=flushed.extend)
    w.write_file(rec("/d/a.tif", 1))
    shutil.copyfile(out, tmp_path / "backup.h5")
    w.write_file(rec("/d/b.tif", 2))
    os.replace(tmp_path / "backup.h5", out)  # e.g. a restore from a backup / rsync of an older copy
    w.write_file(rec("/d/c.tif", 3))
    files = {r["file"] for r in read_manifest(out)}
    with h5py.File(out, "r") as f:
        n_files, links = int(f.attrs["n_files"]), len(f["files"])
    w.close()
    assert flushed == ["/d/a.tif", "/d/b.tif", "/d/c.tif"]
    assert files == set(flushed) and links == n_files == 3, (files, links, n_files)


def test_root_replaced_by_non_hdf5_does_not_break_the_job(tmp_path):
    out = tmp_path / "out.h5"
    w = ResultsWriter(out, flush_every=1, max_flush_share=1.0, fsync=False)
    w.write_file(rec("/d/a.tif", 1))
    out.write_bytes(b"not hdf5")
    w.write_file(rec("/d/b.tif", 2))
    w.close()
    assert {r["file"] for r in read_manifest(out)} == {"/d/a.tif", "/d/b.tif"}


def test_done_fingerprints_after_close(tmp_path):
    out = tmp_path / "out.h5"
    w = ResultsWriter(out, flush_every=1, fsync=False)
    w.write_file(rec("/d/a.tif", 1))
    w.close()
    assert set(w.done_fingerprints()) == {"/d/a.tif"}  # read from the consolidated file


def test_extend_failing_half_way_keeps_root_and_next_flush_rebuilds(tmp_path, monkeypatch):
    import hpcacq.results.store as store
    out = tmp_path / "out.h5"
    flushed = []
    w = ResultsWriter(out, flush_every=1, max_flush_share=1.0, fsync=False, on_flush=flushed.extend)
    w.write_file(rec("/d/a.tif", 1))
    w.write_file(rec("/d/b.tif", 2))
    real = store.append_manifest_columns
    def boom(*a, **k):
        raise OSError("No space left on device")
    monkeypatch.setattr(store, "append_manifest_columns", boom)
    with pytest.raises(OSError):
        w.write_file(rec("/d/a.tif", 3))  # replacement + failure after links were changed in the copy
    monkeypatch.setattr(store, "append_manifest_columns", real)
    assert w._root_stat is None
    assert [r["size"] for r in read_manifest(out)] == [1, 2]  # old root untouched
    w.write_file(rec("/d/c.tif", 4))  # rebuilt from the shards
    assert [(r["file"], r["size"]) for r in read_manifest(out)] == [("/d/b.tif", 2), ("/d/a.tif", 3), ("/d/c.tif", 4)]
    w.close()
    assert [(r["file"], r["size"]) for r in read_manifest(out)] == [("/d/b.tif", 2), ("/d/a.tif", 3), ("/d/c.tif", 4)]
    assert flushed == ["/d/a.tif", "/d/b.tif", "/d/c.tif"]  # the failed batch is never reported (as before)


def test_root_deleted_during_run_is_rebuilt(tmp_path):
    out = tmp_path / "out.h5"
    w = ResultsWriter(out, flush_every=1, max_flush_share=1.0, fsync=False)
    w.write_file(rec("/d/a.tif", 1))
    os.remove(out)
    w.write_file(rec("/d/b.tif", 2))
    assert [r["file"] for r in read_manifest(out)] == ["/d/a.tif", "/d/b.tif"]
    w.close()


def test_flushes_of_many_files_extend_the_root_without_full_rewrites(tmp_path, monkeypatch):
    # a full rewrite costs transient memory in proportion to the files stored: with the
    # usual 16-file flushes only the first root is written in full, the rest are extended
    import hpcacq.results.writer as writer_module

    full = []
    real = writer_module.write_linked_root
    monkeypatch.setattr(writer_module, "write_linked_root", lambda *a, **k: (full.append(1), real(*a, **k)))
    out = tmp_path / "out.h5"
    with ResultsWriter(out, flush_every=16, max_flush_share=1.0, fsync=False) as w:
        for i in range(1600):
            w.write_file(rec(f"/d/f{i:05d}.tif", i))
        assert len(full) == 1
        assert read_manifest(out)[-1]["file"] == "/d/f01599.tif"
    assert len(read_manifest(out)) == 1600


def test_shards_never_hold_more_than_max_shard_files(tmp_path):
    # the flush-share rule would wait for ever (a tiny share, no timer): the cap still flushes,
    # so the open shard (whose HDF5 memory grows with its groups) stays bounded
    out = tmp_path / "out.h5"
    w = ResultsWriter(out, flush_every=2, max_flush_share=1e-9, flush_seconds=1e6, max_shard_files=8, fsync=False)
    sizes = []
    w.on_flush = lambda paths: sizes.append(len(paths))
    for i in range(50):
        w.write_file(rec(f"/d/f{i:03d}.tif", i))
    w.close()
    assert sizes[:-1] and max(sizes) == 8 and sum(sizes) == 50
    assert len(read_manifest(out)) == 50
    with pytest.raises(Exception, match="max_shard_files"):
        ResultsWriter(tmp_path / "bad.h5", flush_every=16, max_shard_files=8)
