"""Rendered sbatch scripts on a real one-node SLURM: MPI over srun, scancel, resume.

The cluster (tests/helpers/slurm_cluster.py) is started once per session; slurm-wlm is installed
with apt-get if missing (these tests must not be skipped in CI).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hpcacq.jobs.slurm import render_sbatch

from helpers.slurm_cluster import LocalSlurm, ensure_slurm_installed

pytestmark = [pytest.mark.slurm, pytest.mark.mpi, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("starting slurmctld/slurmd needs root (CI runs as root)")
    ensure_slurm_installed()
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm"), cpus=2).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def numba_cache(tmp_path_factory, compiled_cache) -> Path:
    """One Numba cache for every job of the session, a copy of the session's filled cache
    (conftest ``compiled_cache``, compiled from empty there): each job's ``hpcacq compile``
    finds it filled, as on a cluster whose shared cache was filled once."""
    import shutil

    copy = tmp_path_factory.mktemp("numba_cache") / "cache"
    shutil.copytree(compiled_cache[0], copy)
    return copy


def _job_env(numba_cache: Path) -> dict:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))
    return {"PYTHONPATH": path, "NUMBA_CACHE_DIR": str(numba_cache)}


def _corpus(folder: Path, n_files: int, n_lines: int) -> list[str]:
    from hpcacq.synth.corpus import write_corpus

    return [str(p) for p in write_corpus(folder, n_files=n_files, kind="velocity", n_lines=n_lines, seed=11)]


def _submit(cluster, tmp_path: Path, name: str, run_args: list[str], numba_cache: Path) -> tuple[str, Path]:
    log = tmp_path / f"{name}.log"
    script = tmp_path / f"{name}.sbatch"
    script.write_text(render_sbatch(job_name=name, ntasks_per_node=2, cpus_per_task=1, time="00:15:00",
                                    output=str(log), run_args=run_args, signal_seconds=60,
                                    numba_cache_dir=str(numba_cache)))
    return cluster.submit(script, env=_job_env(numba_cache), cwd=tmp_path), log


def _columns(path) -> dict:
    from hpcacq.results import iter_results

    return {(os.path.basename(m["file"])): r.columns for m, r in iter_results(path)}


def test_two_rank_job_matches_local_run(slurm_cluster, numba_cache, tmp_path, weird_tmp_path):
    data = weird_tmp_path / "data"
    _corpus(data, n_files=4, n_lines=1500)
    out = weird_tmp_path / "out.h5"
    args = [str(data), "-o", str(out), "--threads", "1"]
    job, log = _submit(slurm_cluster, tmp_path, "two_ranks", args, numba_cache)
    state = slurm_cluster.wait(job, timeout_s=300)
    text = log.read_text(errors="replace")
    assert state["JobState"] == "COMPLETED", f"{state}\n{text}\n{slurm_cluster.logs()}"
    assert "hpcacq exit code: 0" in text

    from hpcacq.results import read_job_attrs, read_manifest

    rows = read_manifest(out)
    assert [r["outcome"] for r in rows] == ["OK"] * 4
    assert read_job_attrs(out)["job"].get("mpi_size") == 2, "the job did not run on 2 MPI ranks"
    local = tmp_path / "local.h5"
    subprocess.run([sys.executable, "-m", "hpcacq", "run", str(data), "-o", str(local)], check=True,
                   env={**os.environ, **_job_env(numba_cache)}, capture_output=True)
    got, want = _columns(out), _columns(local)
    assert sorted(got) == sorted(want)
    for name in want:
        for column in want[name]:
            np.testing.assert_array_equal(got[name][column], want[name][column], err_msg=f"{name}:{column}")


def _wait_for_ok_lines(log: Path, n: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = len(re.findall(r"\] OK ", log.read_text(errors="replace"))) if log.exists() else 0
        if found >= n:
            return found
        time.sleep(0.2)
    raise TimeoutError(f"fewer than {n} files finished within {timeout_s} s:\n"
                       + (log.read_text(errors="replace") if log.exists() else "(no log)"))


def test_scancel_keeps_finished_files_and_resume_completes(slurm_cluster, numba_cache, tmp_path):
    data = tmp_path / "slow data"
    n_files = 12
    _corpus(data, n_files=n_files, n_lines=16000)
    out = tmp_path / "out slow.h5"
    args = [str(data), "-o", str(out), "--threads", "1"]
    job, log = _submit(slurm_cluster, tmp_path, "slow", args, numba_cache)
    _wait_for_ok_lines(log, 2, timeout_s=240)
    slurm_cluster.run("scancel", job)
    state = slurm_cluster.wait(job, timeout_s=120)
    text = log.read_text(errors="replace")
    assert state["JobState"] == "CANCELLED", text
    assert "cancelled (signal SIGTERM): run again with --resume" in text, text

    from hpcacq.results import read_manifest

    ok = [r["file"] for r in read_manifest(out) if r["outcome"] == "OK"]
    assert 2 <= len(ok) < n_files, f"{len(ok)} OK files after scancel\n{text}"

    job2, log2 = _submit(slurm_cluster, tmp_path, "resume", [*args, "--resume"], numba_cache)
    state2 = slurm_cluster.wait(job2, timeout_s=300)
    text2 = log2.read_text(errors="replace")
    assert state2["JobState"] == "COMPLETED", text2
    rows = read_manifest(out)
    assert sorted(r["outcome"] for r in rows) == ["OK"] * n_files, text2
    assert f"({len(ok)} from an earlier run)" in text2, text2


def test_usr1_before_time_limit_stops_cleanly_with_exit_3(slurm_cluster, numba_cache, tmp_path):
    """SLURM's --signal=B:USR1@N reaches only the batch shell: it must forward it to the ranks."""
    data = tmp_path / "data"
    _corpus(data, n_files=8, n_lines=16000)
    out = tmp_path / "out.h5"
    args = [str(data), "-o", str(out), "--threads", "1"]
    job, log = _submit(slurm_cluster, tmp_path, "usr1", args, numba_cache)
    _wait_for_ok_lines(log, 1, timeout_s=240)
    slurm_cluster.run("scancel", "--batch", "--signal=USR1", job)  # what SLURM sends before the time limit
    state = slurm_cluster.wait(job, timeout_s=120)
    text = log.read_text(errors="replace")
    assert "got SIGUSR1" in text and "cancelled (signal SIGUSR1)" in text, text
    assert "hpcacq exit code: 3" in text, text
    assert state["ExitCode"].startswith("3:"), f"{state}\n{text}"

    from hpcacq.results import read_manifest

    outcomes = [r["outcome"] for r in read_manifest(out)]
    assert 1 <= outcomes.count("OK") < 8 and set(outcomes) <= {"OK", "CANCELLED"}, outcomes


def test_script_from_run_args_alone_is_accepted_by_sbatch(slurm_cluster, numba_cache, tmp_path):
    """`hpcacq slurm -- data/ -o out.h5` (no other option): sbatch --test-only accepts it, a node filled."""
    out = subprocess.run([sys.executable, "-m", "hpcacq", "slurm", "--", "data/", "-o", "out.h5"],
                         capture_output=True, text=True, env={**slurm_cluster.env, **_job_env(numba_cache)},
                         check=True)
    assert f"#SBATCH --ntasks-per-node={slurm_cluster.cpus}" in out.stdout  # from sinfo of the cluster
    assert "#SBATCH --job-name=hpcacq-out" in out.stdout
    script = tmp_path / "job.sbatch"
    script.write_text(out.stdout)
    check = subprocess.run(["sbatch", "--test-only", str(script)], env=slurm_cluster.env, capture_output=True,
                           text=True, timeout=60, cwd=tmp_path)
    assert check.returncode == 0 and "to start at" in check.stderr, check.stderr
