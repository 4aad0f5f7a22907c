"""Shared fixtures: where the real data lives, hostile temporary paths, a synthetic corpus, the stand-in analysis.

Helpers (naive references, the stand-in analysis, job launchers, a local SLURM) live in
the ``tests/helpers`` package; no test module imports another."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers.realdata import find_realdata

ROOT = Path(__file__).resolve().parents[1]


REALDATA = find_realdata()


@pytest.fixture(scope="session")
def realdata() -> Path:
    """Folder of real line scans (../shared/realdata, or $HPCACQ_REALDATA)."""
    if REALDATA is None:
        pytest.skip("real data not found: set HPCACQ_REALDATA to the realdata folder")
    return REALDATA


#: The ``corpus`` fixture's shape; a test module may change it with a module-level ``CORPUS`` dict.
CORPUS = {"n_files": 3, "n_lines": 800, "seed": 5, "folder": "d"}


@pytest.fixture(scope="module")
def corpus(request, tmp_path_factory) -> Path:
    """A folder of synthetic velocity TIFFs with Olympus headers and ``truth.json``, written
    once per test module: ``velocity_0000.tif``, ... (``CORPUS``, or the module's ``CORPUS``)."""
    from hpcacq.synth.corpus import write_corpus

    shape = {**CORPUS, **getattr(request.module, "CORPUS", {})}
    folder = tmp_path_factory.mktemp("corpus") / shape["folder"]
    write_corpus(folder, n_files=shape["n_files"], kind="velocity", n_lines=shape["n_lines"], seed=shape["seed"])
    return folder


@pytest.fixture(scope="session")
def compiled_cache(tmp_path_factory) -> tuple[Path, dict]:
    """A Numba cache that ``hpcacq compile`` (every analysis) filled from empty in a fresh
    process, and the JSON report of that run. Compiling every kernel takes tens of seconds:
    the tests that need a filled cache share this one and must not write into it. Under
    pytest-xdist the workers share one too: the first to get the lock compiles, the others
    wait for it and read its report."""
    import fcntl
    import json
    import shutil
    import subprocess
    import sys

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the run's base folder, common to every worker
    folder = shared / "numba"
    cache, report, failed = folder / "numba cache", folder / "compile.json", folder / "compile.failed"
    folder.mkdir(exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if failed.exists():
            pytest.fail(f"hpcacq compile failed in another worker:\n{failed.read_text()}")
        if not report.exists():
            shutil.rmtree(cache, ignore_errors=True)  # a worker killed while compiling left it half-filled
            path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
            done = subprocess.run([sys.executable, "-m", "hpcacq", "compile", "--cache-dir", str(cache),
                                   "--json", "-"], capture_output=True, text=True,
                                  env={**os.environ, "PYTHONPATH": path}, timeout=600)
            if done.returncode != 0:
                failed.write_text(done.stderr)
            assert done.returncode == 0, done.stderr
            json.loads(done.stdout)  # a complete report, or this worker fails here and not the next
            report.write_text(done.stdout)
    return cache, json.loads(report.read_text())


@pytest.fixture
def weird_tmp_path(tmp_path: Path) -> Path:
    """A temporary folder whose name holds spaces, quotes, a semicolon, unicode and a newline."""
    weird = tmp_path / "we ird 'q\" ; echo foo µm\nline"
    weird.mkdir()
    return weird


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A skipped test is a failure: every test must run here and in CI (nothing to install
    is ever missing: .ci/run installs it). Set HPCACQ_ALLOW_SKIPS=1 to allow skips locally,
    e.g. on a machine without ../shared/realdata."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and not os.environ.get("HPCACQ_ALLOW_SKIPS"):
        report.outcome = "failed"
        report.longrepr = f"test skipped, which is not allowed (HPCACQ_ALLOW_SKIPS=1 allows it): {report.longrepr}"


@pytest.fixture
def fakes():
    """The stand-in analysis of tests/helpers/fake_analysis.py registered as both real analyses
    (known answer: mean of each line x ``scale``); calls recorded in ``FAKE_CALLS``."""
    from helpers.fake_analysis import FAKE_CALLS, install_fakes, remove_fakes

    install_fakes()
    FAKE_CALLS.clear()
    yield
    remove_fakes()
