"""Rank 0 keeps nothing per file in memory: on-disk indexes against plain-dict references,
the lazy to-do list, and the driver's own memory over thousands of files."""

from __future__ import annotations

import hashlib
import os
import random
import tempfile
import time
import tracemalloc
from array import array
from collections import Counter

import pytest

from hpcacq.jobs.config import JobConfig
from hpcacq.jobs.driver import CANCEL_BLOCK, execute_job
from hpcacq.jobs.inputs import InputList
from hpcacq.jobs.plan import Todo, _spooled
from hpcacq.jobs.resume import job_options, stamp
from hpcacq.results.index import DoneIndex, GroupIndex
from hpcacq.results.records import AnalysisRecord, FileRecord, file_fingerprint


# ----------------------------------------------------------------- GroupIndex
def test_group_index_behaves_like_the_dict_it_replaced():
    # reference: the writer's former dict name -> (shard, rows), a re-placed name moved to the end
    rng = random.Random(4)
    index, ref = GroupIndex(), {}
    for shard in range(1, 60):
        entries = [(f"g{rng.randrange(300):04d}", shard, rng.randrange(1, 4)) for _ in range(rng.randrange(1, 12))]
        entries = list({name: (name, s, n) for name, s, n in entries}.values())  # one per name and flush
        expected_replaced = {name for name, _, _ in entries if name in ref}
        assert index.place(entries) == expected_replaced
        for name, s, n in entries:
            ref.pop(name, None)
            ref[name] = (s, n)
        assert len(index) == len(ref) and index.n_rows == sum(n for _, n in ref.values())
    assert list(index.items()) == [(name, s) for name, (s, _) in ref.items()]
    assert list(index.shards()) == sorted({s for s, _ in ref.values()})
    some = rng.sample(sorted(ref), 40) + ["absent"]
    for shard in index.shards():
        assert index.latest_in(shard, some) == {name for name in some if ref.get(name, (None,))[0] == shard}
    assert all(index.get(name) == value for name, value in ref.items()) and index.get("absent") is None
    assert "absent" not in index and next(iter(ref)) in index
    index.move_all(0)
    assert list(index.shards()) == [0] and index.latest_in(0, list(ref)) == set(ref)


def test_group_index_adds_rows_of_a_group_seen_again_in_the_same_shard():
    index = GroupIndex()
    index.place([("a", 1, 2), ("b", 1, 1)])
    assert index.place([("a", 1, 3)]) == set()  # same shard (read a slice at a time): rows add up
    assert index.get("a") == (1, 5) and index.n_rows == 6
    assert index.place([("a", 2, 1)]) == {"a"}  # a later shard replaces
    assert index.get("a") == (2, 1) and index.n_rows == 2 and len(index) == 2


# ----------------------------------------------------------------- DoneIndex
def _row(group, path, outcome, k):
    return {"group": group, "file": path, "outcome": outcome, "k": k}


def test_done_index_equals_the_naive_dict_with_groups_split_across_chunks():
    rng = random.Random(7)
    rows = []
    for g in range(500):
        outcome_of = ["OK"] * rng.randrange(1, 4) + (["FAILED"] if g % 7 == 0 else [])
        outcome_of = ["FAILED"] * len(outcome_of) if g % 7 == 0 and g % 2 == 0 else outcome_of
        rows += [_row(f"g{g}", f"/data/f{g}.tif", outcome, k) for k, outcome in enumerate(outcome_of)]
    rng.shuffle(rows)  # a group's rows anywhere, in any chunk
    chunks = [rows[i:i + 37] for i in range(0, len(rows), 37)]

    def entry(name, group_rows):
        return {"group": name, "ks": sorted(row["k"] for row in group_rows)}

    naive: dict[str, list] = {}
    for row in rows:
        naive.setdefault(row["group"], []).append(row)
    # a file is in the index when at least one of its analyses is OK (several analyses per input)
    want = {grp[0]["file"]: entry(name, grp) for name, grp in naive.items() if any(r["outcome"] == "OK" for r in grp)}
    done = DoneIndex.build(chunks, entry)
    assert done == want and len(done) == len(want) == 500 - 36
    assert done.get("/data/f0.tif") is None and done["/data/f1.tif"] == want["/data/f1.tif"]
    assert "/data/f14.tif" not in done and "/data/f7.tif" in done and 3 not in done
    with pytest.raises(KeyError):
        done["/absent"]


# ----------------------------------------------------------------- lazy to-do list
def test_todo_takes_in_order_and_counts_down():
    todo = Todo(enumerate("abcdefg"), 7)
    assert todo.take(3) == [(0, "a"), (1, "b"), (2, "c")] and len(todo) == 4
    assert todo.take(10) == [(3, "d"), (4, "e"), (5, "f"), (6, "g")] and len(todo) == 0 and todo.take(1) == []
    short = Todo(enumerate("ab"), 5)  # the list ended before its count: nothing left, no hang
    assert short.take(4) == [(0, "a"), (1, "b")] and len(short) == 0


def test_spooled_indices_select_the_files_to_resume():
    keep = [0, 5, 4095, 4096, 4097, 8191, 9999]
    spool = tempfile.TemporaryFile()
    array("q", keep).tofile(spool)
    names = [f"f{i}" for i in range(10000)]
    assert list(_spooled(spool, iter(names))) == [(i, names[i]) for i in keep]
    assert spool.closed


# ----------------------------------------------------------------- the driver
class _CountingWriter:
    """Counts outcomes and sums a hash of each path (keeps nothing per file itself). The sum
    does not depend on the order: files run two at a time finish in either order."""

    n, outcomes, digest = 0, Counter(), 0

    def __init__(self, path, *, mode, job_attrs):
        _CountingWriter.n, _CountingWriter.outcomes, _CountingWriter.digest = 0, Counter(), 0

    def write_file(self, record):
        _CountingWriter.n += 1
        _CountingWriter.outcomes[record.records[0].outcome] += 1
        _CountingWriter.digest += _path_hash(record.file_path)

    def done_fingerprints(self):
        return {}

    def close(self):
        pass


def _path_hash(path: str) -> int:
    return int.from_bytes(hashlib.sha1(path.encode()).digest()[:8], "little")


def _digest(paths) -> int:
    return sum(_path_hash(path) for path in paths)


class _NoopJob:
    def __init__(self, strategy, event, *, rank, host):
        self.strategy, self.cancel_event, self.rank, self.host = strategy, event, rank, host

    def _record(self, path, outcome):
        analysis = AnalysisRecord(analysis="radon_velocity", channel=0, roi_id=1, roi_bounds=None, outcome=outcome,
                                  message="", params={}, result=None, elapsed_s=0.0)
        return FileRecord(file_path=path, fingerprint={}, records=[analysis], rank=self.rank, host=self.host,
                          timings={}, n_lines=0)

    def run(self, index, path):
        return self._record(path, "OK")

    def cancelled(self, path):
        return self._record(path, "CANCELLED")

    def failed(self, path, exc):
        return self._record(path, "FAILED")


@pytest.fixture(scope="module")
def many_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("many")
    for i in range(10000):
        (folder / f"scan_{i:05d}.npy").touch()
    return folder


def test_driver_memory_does_not_grow_with_the_number_of_files(many_files, tmp_path):
    # Python objects kept by rank 0 between file 1000 and file 5000 (both inside a full block
    # of 4096 paths read from the on-disk input list); the writer's share is in test_results
    inputs = InputList.from_specs([str(many_files)])
    traced = {}

    def on_file(record):
        if _CountingWriter.n in (1000, 5000):
            traced[_CountingWriter.n] = tracemalloc.get_traced_memory()[0]

    config = JobConfig(inputs=inputs, output=str(tmp_path / "o.h5"), analysis="radon_velocity", dx_um=1.0, dt_s=1.0,
                       threads=1)
    tracemalloc.start()
    try:
        summary = execute_job(config, job_factory=_NoopJob, writer_factory=_CountingWriter, use_mpi=False,
                              on_file_result=on_file)
    finally:
        tracemalloc.stop()
    assert summary.n_ok == 10000 and _CountingWriter.digest == _digest(inputs)  # each once
    per_file = (traced[5000] - traced[1000]) / 4000
    print(f"{per_file:.1f} bytes kept per file by the driver")
    assert per_file < 16, f"{per_file:.1f} bytes kept per file"  # ~200 with the paths and outcomes in lists


def test_cancel_turns_every_unstarted_file_into_one_cancelled_record(many_files, tmp_path):
    # thousands of unstarted files are cancelled a block at a time, none lost or doubled
    inputs = InputList.from_specs([str(many_files)])
    stop = tmp_path / "STOP"

    def on_file(record):
        if _CountingWriter.n == 50:
            stop.touch()

    config = JobConfig(inputs=inputs, output=str(tmp_path / "o.h5"), analysis="radon_velocity", dx_um=1.0, dt_s=1.0,
                       threads=1, stop_file=str(stop))
    class SlowJob(_NoopJob):
        def run(self, index, path):
            time.sleep(0.002)  # the stop file is seen while most files are still unstarted
            return self._record(path, "OK")

    summary = execute_job(config, job_factory=SlowJob, writer_factory=_CountingWriter, use_mpi=False,
                          on_file_result=on_file)
    assert summary.cancelled and summary.exit_code == 3
    assert summary.n_cancelled > CANCEL_BLOCK and summary.n_ok + summary.n_cancelled == 10000 == _CountingWriter.n
    assert _CountingWriter.outcomes == {"OK": summary.n_ok, "CANCELLED": summary.n_cancelled}


def test_done_index_takes_undecodable_file_names():
    name = "/data/b\udcff.npy"  # os.listdir's str for the bytes b"b\xff.npy"
    done = DoneIndex.build([[_row("g1", name, "OK", 0), _row("g2", "/data/a.npy", "OK", 0)]],
                           lambda group, rows: {"group": group})
    assert done[name] == {"group": "g1"} and name in done and sorted(done) == sorted([name, "/data/a.npy"])
    assert done.get("/data/b\udcfe.npy") is None


def test_resume_skips_files_with_undecodable_names(tmp_path):
    # real writer, no-op analysis: the second run finds both files done
    folder = os.fsencode(tmp_path / "data")
    os.mkdir(folder)
    for name in (b"a.npy", b"b\xff.npy"):
        with open(os.path.join(folder, name), "wb") as handle:
            handle.write(b"x")
    inputs = InputList.from_specs([os.fsdecode(folder)])
    options = {"output": str(tmp_path / "o.h5"), "analysis": "radon_velocity", "dx_um": 1.0, "dt_s": 1.0}

    class Job(_NoopJob):
        def run(self, index, path):
            record = self._record(path, "OK")
            record.fingerprint = file_fingerprint(path)
            record.records[0].params = self.strategy.reference_params()  # resume compares the full set
            return stamp(record, path, job_options(self.strategy))  # what resume compares

    first = execute_job(JobConfig(inputs=inputs, **options), job_factory=Job, use_mpi=False)
    again = execute_job(JobConfig(inputs=inputs, resume=True, **options), job_factory=Job, use_mpi=False)
    assert (first.n_ok, again.n_ok, again.n_resumed) == (2, 2, 2)


def test_group_index_pages_through_many_shards_and_groups():
    index = GroupIndex()
    index.place((f"g{i}", 1 + i // 2, 1) for i in range(10000))  # 5000 shards, more than a page
    assert list(index.shards()) == list(range(1, 5001))
    assert [name for name, _ in index.items()] == [f"g{i}" for i in range(10000)]
