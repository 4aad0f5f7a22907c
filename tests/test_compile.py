"""``hpcacq compile`` fills a Numba cache that later processes load without compiling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# A fresh process: run `hpcacq run`'s driver on two synthetic files, then report what
# numba compiled (cache misses) and loaded (cache hits) for every kernel.
FRESH_RUN = """
import json, sys
from hpcacq.synth.corpus import write_corpus
from hpcacq.jobs.config import JobConfig
from hpcacq.jobs.driver import execute_job
from hpcacq.jobs.precompile import analysis_modules
from hpcacq.kernels.cache import cache_stats, kernel_dispatchers
paths = write_corpus(sys.argv[1], n_files=2, n_lines=400, seed=3)
config = JobConfig(inputs=tuple(map(str, paths)), output=sys.argv[2], analysis="radon_velocity", threads=1)
summary = execute_job(config, use_mpi=False)
stats = cache_stats(kernel_dispatchers(analysis_modules()))
print(json.dumps({"ok": summary.n_ok, "compiled": sum(c for c, _ in stats.values()),
                  "loaded": sum(h for _, h in stats.values())}))
"""


def _env(**extra: str) -> dict:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


def _cache_files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.suffix in (".nbi", ".nbc")}


def test_compile_then_a_fresh_run_loads_everything_from_the_cache(compiled_cache, tmp_path):
    cache, report = compiled_cache  # `hpcacq compile --cache-dir CACHE` into an empty folder (conftest.py)
    command = [sys.executable, "-m", "hpcacq", "compile", "--cache-dir", str(cache)]
    assert report["compiled"] > 0 and not report["from_cache"] and report["cache_dir"] == str(cache)
    names = {kernel["name"] for kernel in report["kernels"]}
    assert {"radon._coarse_pass", "radon._fine_pass"} <= names
    files = _cache_files(cache)
    assert sum(name.endswith(".nbi") for name in files) == report["index_files"] > 0

    second = subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=300)
    assert second.returncode == 0, second.stderr
    assert "found the cache" in second.stdout and "nothing compiled" in second.stdout
    # the same count of cached kernels in both reports (not "N signatures of M kernels" then another M)
    assert f"found the cache ({report['index_files']} kernels cached)" in second.stdout, second.stdout
    assert len(report["kernels"]) == report["index_files"]

    fresh = subprocess.run([sys.executable, "-c", FRESH_RUN, str(tmp_path / "corpus"), str(tmp_path / "o.h5")],
                           capture_output=True, text=True, env=_env(NUMBA_CACHE_DIR=str(cache)), timeout=300)
    assert fresh.returncode == 0, fresh.stderr
    stats = json.loads(fresh.stdout.splitlines()[-1])
    assert stats == {"ok": 2, "compiled": 0, "loaded": stats["loaded"]} and stats["loaded"] > 0
    assert _cache_files(cache) == files  # nothing recompiled or rewritten


def test_precompile_refuses_a_cache_dir_numba_does_not_use(tmp_path):
    from hpcacq.errors import ParameterError
    from hpcacq.jobs.precompile import precompile
    from hpcacq.kernels.cache import current_cache_dir

    assert current_cache_dir() != str(tmp_path)
    with pytest.raises(ParameterError, match="NUMBA_CACHE_DIR"):
        precompile(tmp_path)
    with pytest.raises(ParameterError, match="choose among"):
        precompile(analyses=("speed",))
