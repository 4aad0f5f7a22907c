"""Running the driver as a job: one plain process or MPI ranks under MPICH's mpiexec, and
reading the job's output back.

:func:`launch` starts a small script that registers the stand-in analysis of
:mod:`helpers.fake_analysis` (unless ``HPCACQ_TEST_FAKE=0``) and calls ``driver.main`` on a
job file written by :func:`write_job`; ``HPCACQ_TEST_PID_DIR`` makes every rank write its
pid, ``HPCACQ_TEST_EXPLODE_RANK`` makes one rank raise after a few steps.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

__all__ = ["ROOT", "MPIEXEC", "write_job", "launch", "run", "read_back", "assert_same_numbers", "wait_for_ok_lines"]

ROOT = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parents[1]
MPIEXEC = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")

SCRIPT = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {tests!r})
    from helpers.fake_analysis import install_fakes
    if os.environ.get("HPCACQ_TEST_FAKE", "1") == "1":
        install_fakes()
    from hpcacq.jobs import driver, resources
    rank = resources.mpi_world_rank()
    pid_dir = os.environ.get("HPCACQ_TEST_PID_DIR")
    if pid_dir:
        open(os.path.join(pid_dir, f"rank{{rank}}.pid"), "w").write(str(os.getpid()))
    if os.environ.get("HPCACQ_TEST_EXPLODE_RANK") == str(rank):
        original = driver._RankPool.step
        def step(self, timeout=0.0, _n=[0]):
            _n[0] += 1
            if _n[0] > 3:
                raise RuntimeError("rank {{}} exploded on purpose".format(rank))
            return original(self, timeout)
        driver._RankPool.step = step
    sys.exit(driver.main(sys.argv[1:]))
""")


def write_job(folder: Path, paths, output, **options) -> Path:
    job = {"inputs": list(paths), "output": str(output), "analysis": "radon_velocity", "dx_um": 0.5,
           "dt_s": 0.001, **options}
    path = folder / f"job_{Path(output).stem}.json"
    path.write_text(json.dumps(job))
    return path


def launch(folder: Path, job: Path, n_ranks: int | None, *, mpi4py_runner=True, env=None, **popen):
    """Start the driver script under ``mpiexec -n N`` (None: one plain process)."""
    script = folder / "run_driver.py"
    script.write_text(SCRIPT.format(tests=str(TESTS)))
    python = [sys.executable, "-m", "mpi4py"] if mpi4py_runner else [sys.executable]
    command = python + [str(script), str(job)]
    if n_ranks is not None:
        if MPIEXEC is None:
            pytest.skip("mpiexec not found (pip install mpich)")
        command = [MPIEXEC, "-n", str(n_ranks)] + command
    full_env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
                **(env or {})}
    for name in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK"):
        if n_ranks is None:
            full_env.pop(name, None)
    return subprocess.Popen(command, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **popen)


def run(folder: Path, job: Path, n_ranks: int | None, *, timeout=90, **kw) -> subprocess.CompletedProcess:
    proc = launch(folder, job, n_ranks, **kw)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"job hung for {timeout} s\nstdout:\n{out}\nstderr:\n{err}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def read_back(path) -> dict[str, tuple[str, dict]]:
    """file -> (outcome, columns) from a job's output."""
    from hpcacq.results import iter_results, read_manifest

    out = {row["file"]: (row["outcome"], {}) for row in read_manifest(path)}
    for info, result in iter_results(path):
        out[info["file"]] = (out[info["file"]][0], {k: np.asarray(v) for k, v in result.columns.items()})
    return out


def assert_same_numbers(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for path in a:
        assert a[path][0] == b[path][0] == "OK", (path, a[path][0], b[path][0])
        assert set(a[path][1]) == set(b[path][1])
        for name in a[path][1]:
            np.testing.assert_array_equal(a[path][1][name], b[path][1][name])


def wait_for_ok_lines(proc, count: int, *, timeout: float = 60.0, marker: str = " OK ",
                      on_timeout=None) -> list[str]:
    """Read rank 0's progress lines until ``count`` of them hold ``marker`` (files OK).

    After ``timeout`` seconds ``on_timeout()`` (default ``proc.kill``) ends the job and the
    test fails with what it printed.
    """
    timer = threading.Timer(timeout, on_timeout or proc.kill)
    timer.start()
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if sum(marker in text for text in lines) >= count:
                return lines
    finally:
        timer.cancel()
    pytest.fail(f"job ended before {count} files were done:\n{''.join(lines)}\n{proc.stderr.read()}")
