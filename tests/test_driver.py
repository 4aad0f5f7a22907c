"""The local driver (no MPI): JobConfig checks, summary, exit codes, resume, resources."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from hpcacq.errors import ParameterError
from hpcacq.jobs.config import JobConfig, summarize
from hpcacq.jobs.driver import execute_job, run_job
from hpcacq.jobs.resources import (
    Backoff,
    cores_per_rank,
    launched_under_mpi,
    mpi_world_rank,
    mpi_world_size,
    plan_threads,
)
from hpcacq.jobs.strategies import RoiBatchMode

from helpers.fake_analysis import FAKE_CALLS, write_images
from helpers.jobs import read_back

UNITS = {"dx_um": 0.5, "dt_s": 0.001}


def make_config(paths, output, **options) -> JobConfig:
    values = {"analysis": "radon_velocity", **UNITS, **options}
    return JobConfig(inputs=tuple(paths), output=str(output), **values)


def test_local_job_writes_every_file_with_known_values(fakes, tmp_path):
    paths = write_images(tmp_path, 5)
    logged = []
    summary = run_job(make_config(paths, tmp_path / "out.h5", params={"scale": 3.0}, progress=True),
                      log=logged.append)
    assert (summary.n_files, summary.n_ok, summary.exit_code, summary.cancelled) == (5, 5, 0, False)
    assert summary.n_lines == sum(np.load(p).shape[0] for p in paths)
    stored = read_back(tmp_path / "out.h5")
    assert set(stored) == set(paths)
    for path in paths:
        outcome, columns = stored[path]
        assert outcome == "OK"
        np.testing.assert_allclose(columns["value"], np.load(path).mean(axis=1) * 3.0)
    assert sum("OK" in line for line in logged) == 5


def test_failed_and_skipped_files_give_exit_code_1(fakes, tmp_path):
    paths = write_images(tmp_path, 2)
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"garbage")
    logged = []
    summary = run_job(make_config([*paths, str(bad)], tmp_path / "out.h5"), log=logged.append)
    assert (summary.n_ok, summary.n_failed, summary.exit_code) == (2, 1, 1)
    assert any("FAILED" in line and "bad.npy" in line for line in logged)
    skipped = run_job(make_config(paths, tmp_path / "out2.h5", roi_mode=RoiBatchMode.ANALYZE_EXISTING_ROI,
                                  roi_id=4))
    assert (skipped.n_skipped, skipped.exit_code) == (2, 1)


@pytest.mark.parametrize("options, expected", [
    ({"analysis": "speed"}, "radon_velocity"),
    ({"channel": -1}, "channel"),
    ({"roi_mode": "existing"}, "roi_id"),
    ({"params": {"bogus": 1}}, "bogus"),
    ({"threads": 0}, "threads"),
    ({"resume": True, "overwrite": True}, "resume"),
    ({"time_limit_s": -5}, "time_limit_s"),
])
def test_bad_config_fails_before_any_file_is_read(fakes, tmp_path, options, expected):
    with pytest.raises(ParameterError, match=expected):
        make_config([str(tmp_path / "never-read.npy")], tmp_path / "out.h5", **options)


def test_existing_output_needs_resume_or_overwrite(fakes, tmp_path):
    paths = write_images(tmp_path, 1)
    run_job(make_config(paths, tmp_path / "out.h5"))
    with pytest.raises(Exception) as info:
        run_job(make_config(paths, tmp_path / "out.h5"))
    assert "out.h5" in str(info.value)
    assert run_job(make_config(paths, tmp_path / "out.h5", overwrite=True)).exit_code == 0


def test_stop_file_cancels_with_exit_code_3_and_resume_finishes(fakes, tmp_path):
    paths = write_images(tmp_path, 8, lines=20)
    stop = tmp_path / "STOP"
    slow = {"params": {"delay_s": 0.15}, "threads": 1}

    def touch_after_two(record, seen=[]):  # noqa: B006 - counter local to this test
        seen.append(record)
        if len(seen) == 2:
            stop.touch()

    out = tmp_path / "out.h5"
    first = run_job(make_config(paths, out, stop_file=str(stop), **slow), on_file_result=touch_after_two)
    assert first.cancelled and first.exit_code == 3 and "stop file" in first.cancel_reason
    assert 2 <= first.n_ok < 8 and first.n_ok + first.n_cancelled == 8
    stop.unlink()
    second = run_job(make_config(paths, out, resume=True, **slow))
    assert (second.exit_code, second.n_ok, second.n_resumed) == (0, 8, first.n_ok)
    reference = tmp_path / "ref.h5"
    run_job(make_config(paths, reference, **slow))
    resumed, full = read_back(out), read_back(reference)
    assert set(resumed) == set(full) == set(paths)
    for path in paths:
        assert resumed[path][0] == "OK"
        np.testing.assert_array_equal(resumed[path][1]["value"], full[path][1]["value"])


def test_resume_redoes_a_file_that_changed(fakes, tmp_path):
    paths = write_images(tmp_path, 3)
    out = tmp_path / "out.h5"
    run_job(make_config(paths, out))
    np.save(paths[1], np.ones((50, 16), dtype=np.uint16))
    os.utime(paths[1], ns=(time.time_ns(), time.time_ns() + 10**9))
    summary = run_job(make_config(paths, out, resume=True))
    assert (summary.n_resumed, summary.n_ok) == (2, 3)
    assert read_back(out)[paths[1]][1]["value"].shape == (50,)


def test_time_limit_cancels(fakes, tmp_path):
    paths = write_images(tmp_path, 6, lines=20)
    start = time.perf_counter()
    summary = run_job(make_config(paths, tmp_path / "out.h5", time_limit_s=0.3, threads=1,
                                  params={"delay_s": 1.0}))
    assert time.perf_counter() - start < 2.5
    assert summary.exit_code == 3 and summary.n_cancelled == 6 and "time limit" in summary.cancel_reason


def test_summary_exit_codes():
    assert summarize(["OK", "OK"], n_lines=10, elapsed_s=1.0).exit_code == 0
    assert summarize(["OK", "SKIPPED_CONFLICT"], n_lines=10, elapsed_s=1.0).exit_code == 1
    assert summarize(["OK", "FAILED"], n_lines=10, elapsed_s=1.0).exit_code == 1
    assert summarize(["OK", "CANCELLED", "FAILED"], n_lines=1, elapsed_s=1.0).exit_code == 3
    assert summarize([], n_lines=0, elapsed_s=1.0, cancelled=True).exit_code == 3


@pytest.mark.parametrize("environ, size, rank", [
    ({}, 1, 0),
    ({"SLURM_NTASKS": "4", "SLURM_PROCID": "0", "SLURM_CPUS_PER_TASK": "2"}, 1, 0),  # sbatch, no srun
    ({"PMI_SIZE": "4", "PMI_RANK": "2"}, 4, 2),  # MPICH Hydra, srun --mpi=pmi2
    ({"OMPI_COMM_WORLD_SIZE": "3", "OMPI_COMM_WORLD_RANK": "1"}, 3, 1),
    ({"PMIX_RANK": "1"}, 2, 1),
    ({"PMI_SIZE": "1", "PMI_RANK": "0"}, 1, 0),
])
def test_launcher_detection(environ, size, rank):
    assert mpi_world_size(environ) == size and mpi_world_rank(environ) == rank
    assert launched_under_mpi(environ) is (size > 1)


def test_cores_per_rank(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert cores_per_rank(environ={"SLURM_CPUS_PER_TASK": "3"}, ranks_on_node=8) == 3
    assert cores_per_rank(environ={}) == 4
    assert cores_per_rank(environ={}, ranks_on_node=2) == 2
    assert cores_per_rank(environ={}, ranks_on_node=32) == 1  # oversubscribed: never 0
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {2})
    assert cores_per_rank(environ={}, ranks_on_node=4) == 1  # launcher bound one core to us


@pytest.mark.parametrize("cores, threads, n_files, expected", [
    (4, None, 100, (4, 1)), (4, None, 1, (1, 4)), (4, None, 2, (2, 2)), (4, 2, 100, (2, 2)), (1, 4, 10, (1, 4)),
])
def test_plan_threads(cores, threads, n_files, expected):
    assert plan_threads(cores, threads_per_file=threads, n_files=n_files) == expected


def test_threads_option_reaches_the_analysis_through_the_job(fakes, tmp_path):
    paths = write_images(tmp_path, 2)
    run_job(make_config(paths, tmp_path / "out.h5", threads=2))
    assert [c["threads"] for c in FAKE_CALLS] == [2, 2]


def test_backoff_grows_and_resets():
    backoff = Backoff(min_s=0.001, max_s=0.004)
    assert [backoff.next() for _ in range(4)] == [0.001, 0.002, 0.004, 0.004]
    backoff.reset()
    assert backoff.next() == 0.001


def test_custom_writer_and_job(fakes, tmp_path):
    written = []

    class ListWriter:
        def __init__(self, path, *, mode, job_attrs):
            assert mode == "new" and job_attrs["analysis"] == "radon_velocity"

        def write_file(self, record):
            written.append(record)

        def close(self):
            pass

    paths = [str(tmp_path / f"f{i}") for i in range(20)]  # never opened by the fake job
    summary = execute_job(make_config(paths, tmp_path / "out"), writer_factory=ListWriter,
                          job_factory=_NoopJob, use_mpi=False)
    assert summary.n_ok == 20 and sorted(r.file_path for r in written) == sorted(paths)


class _NoopJob:
    def __init__(self, strategy, event, *, rank, host):
        from hpcacq.jobs.batch import FileJob

        self._real = FileJob(strategy, event, rank=rank, host=host)
        self.strategy, self.cancel_event = strategy, event

    def run(self, index, path):
        from hpcacq.jobs.batch import to_file_record
        from hpcacq.jobs.strategies import BatchFileOutcome

        return to_file_record(self.strategy._result(path, BatchFileOutcome.OK), fingerprint={})

    def cancelled(self, path):
        return self._real.cancelled(path)

    def failed(self, path, exc):
        return self._real.failed(path, exc)


def test_local_job_never_imports_mpi4py(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; sys.path.insert(0, 'tests')\n"
        "from helpers.fake_analysis import install_fakes, write_images\n"
        "install_fakes()\n"
        "from pathlib import Path\n"
        "from hpcacq.jobs.config import JobConfig\n"
        "from hpcacq.jobs.driver import run_job\n"
        f"paths = write_images(Path({str(tmp_path)!r}), 2)\n"
        f"s = run_job(JobConfig(inputs=paths, output={str(tmp_path / 'o.h5')!r}, analysis='radon_velocity', "
        "dx_um=1.0, dt_s=1.0))\n"
        "assert s.exit_code == 0, s\n"
        "assert 'mpi4py' not in sys.modules, 'mpi4py imported without an MPI launcher'\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_"))}
    env["SLURM_NTASKS"] = "4"  # inside sbatch without srun: still no MPI
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, env={**env, "PYTHONPATH": str(root)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_resume_with_other_parameters_redoes_every_file(fakes, tmp_path):
    paths = write_images(tmp_path, 3)
    out = tmp_path / "out.h5"
    run_job(make_config(paths, out, params={"scale": 1.0}))
    summary = run_job(make_config(paths, out, resume=True, params={"scale": 2.0}))
    assert (summary.n_resumed, summary.n_ok) == (0, 3)
    again = run_job(make_config(paths, out, resume=True, params={"scale": 2.0}))
    assert (again.n_resumed, again.n_ok) == (3, 3)
    np.testing.assert_allclose(read_back(out)[paths[0]][1]["value"], np.load(paths[0]).mean(axis=1) * 2.0)
