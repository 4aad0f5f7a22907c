"""Cancellation: signals, stop file and time limit set one event; under MPI a signal on any
rank stops every rank within about a second, finished files are kept, the rest are
CANCELLED (exit code 3), and resume completes to the numbers of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from hpcacq.jobs.cancel import CancelSource

from helpers.fake_analysis import write_images
from helpers.jobs import assert_same_numbers, launch, read_back, run, wait_for_ok_lines, write_job


def test_signal_sets_the_event_and_handlers_are_restored():
    before = signal.getsignal(signal.SIGUSR1)
    with CancelSource() as source:
        assert not source.event.is_set()
        os.kill(os.getpid(), signal.SIGUSR1)
        assert source.event.wait(2.0)
        assert source.reason == "signal SIGUSR1"
    assert signal.getsignal(signal.SIGUSR1) is before


def test_first_reason_wins_and_stop_file_is_seen(tmp_path):
    stop = tmp_path / "STOP"
    with CancelSource(stop_file=stop, poll_s=0.02, signals=False) as source:
        time.sleep(0.1)
        assert not source.event.is_set()
        stop.touch()
        assert source.event.wait(1.0)
        source.cancel("something later")
    assert source.reason.startswith("stop file") and str(stop) in source.reason


def test_time_limit(tmp_path):
    start = time.monotonic()
    with CancelSource(time_limit_s=0.2, poll_s=0.02, signals=False) as source:
        assert source.event.wait(2.0)
    assert 0.15 < time.monotonic() - start < 1.5
    assert "time limit" in source.reason


def test_signals_are_not_touched_outside_the_main_thread():
    errors = []

    def body():
        try:
            with CancelSource() as source:
                assert not source._previous
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert errors == []


@pytest.mark.mpi
@pytest.mark.parametrize("target_rank, signum", [(1, signal.SIGTERM), (0, signal.SIGUSR1), ("mpiexec", signal.SIGTERM)])
def test_signal_to_one_rank_cancels_the_mpi_job_and_resume_finishes(fakes, tmp_path, target_rank, signum):
    paths = write_images(tmp_path, 24, lines=60)
    out = tmp_path / "out.h5"
    slow = {"params": {"delay_s": 0.25}, "threads": 1}
    job = write_job(tmp_path, paths, out, progress=True, **slow)
    proc = launch(tmp_path, job, 2, env={"HPCACQ_TEST_PID_DIR": str(tmp_path)})
    wait_for_ok_lines(proc, 3)
    # mpiexec forwards SIGTERM to every rank (as scancel does through srun)
    pid = proc.pid if target_rank == "mpiexec" else int((tmp_path / f"rank{target_rank}.pid").read_text())
    os.kill(pid, signum)
    signalled = time.perf_counter()
    try:
        rest, err = proc.communicate(timeout=30)
    except Exception:
        proc.kill()
        raise
    assert time.perf_counter() - signalled < 2.5  # every rank stopped: not 24 x 0.25 s / 2 more
    assert proc.returncode == 3, err
    assert "cancelled" in rest and signal.Signals(signum).name in rest
    stored = read_back(out)
    assert set(stored) == set(paths)  # every file has a record: OK or CANCELLED
    outcomes = [stored[p][0] for p in paths]
    assert outcomes.count("OK") >= 3 and "CANCELLED" in outcomes
    assert set(outcomes) <= {"OK", "CANCELLED"}

    resumed = run(tmp_path, write_job(tmp_path, paths, out, resume=True, **slow), 2)
    assert resumed.returncode == 0, resumed.stderr
    reference = tmp_path / "reference.h5"
    full = run(tmp_path, write_job(tmp_path, paths, reference, threads=2, params={"delay_s": 0.0}), None)
    assert full.returncode == 0, full.stderr
    final, expected = read_back(out), read_back(reference)
    for result in (final, expected):  # delay_s is a parameter of the stand-in: compare values only
        for path in result:
            result[path][1].pop("time_s", None)
    assert_same_numbers(final, expected)


def test_sigint_stops_a_local_job_with_exit_code_3(fakes, tmp_path):
    paths = write_images(tmp_path, 12, lines=40)
    out = tmp_path / "out.h5"
    proc = launch(tmp_path, write_job(tmp_path, paths, out, progress=True, threads=1, params={"delay_s": 0.25}),
                  None, mpi4py_runner=False)
    wait_for_ok_lines(proc, 2)
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=30)
    assert proc.returncode == 3, err
    outcomes = [outcome for outcome, _ in read_back(out).values()]
    assert len(outcomes) == 12 and outcomes.count("OK") >= 2 and "CANCELLED" in outcomes
