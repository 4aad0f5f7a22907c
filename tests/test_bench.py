"""``hpcacq bench`` on a tiny corpus: every documented JSON field exists, with sane values.

Runs the real pipeline for layouts 1x1 and 2x1 (so MPI is exercised through mpiexec) and
the scikit-image reference. No speed is asserted (the machine is shared): only that the
figures are consistent with each other and with the corpus.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.mpi


def _flatten(value, prefix=""):
    """Dotted field paths of a JSON record; lists of objects become ``name[].field``."""
    if isinstance(value, dict) and value:
        out = set()
        for key, item in value.items():
            out |= _flatten(item, f"{prefix}.{key}" if prefix else key)
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = set()
        for item in value:
            out |= _flatten(item, prefix + "[]")
        return out
    return {prefix}


def _documented_fields() -> set[str]:
    text = (REPO / "docs" / "BENCH.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| `([^`]+)` \|", text, flags=re.M))


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    out = folder / "bench.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "hpcacq", "bench", "--n-files", "4", "--lines", "2000",
                           "--layout", "1x1", "--layout", "2x1", "--reference", "--reference-windows", "12",
                           "--workdir", str(folder / "work"), "--json", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(out.read_text(encoding="utf-8")), done.stdout, folder / "work"


def test_docs_list_exactly_the_fields_produced(record):
    data, _, _ = record
    assert data["reference"] is not None
    assert _flatten(data) == _documented_fields()


def test_layout_figures_are_consistent(record):
    data, _, _ = record
    assert [lay["layout"] for lay in data["layouts"]] == ["1x1", "2x1"]
    limit = data["memory_limit_mib"]
    assert limit == pytest.approx((3 * data["parameters"]["largest_file_bytes"] + 300e6) / 2**20)
    for lay in data["layouts"]:
        assert lay["files"] == lay["files_ok"] == 4 and lay["lines"] == 4 * 2000
        assert lay["workers"] == lay["ranks"] * lay["threads_per_rank"]
        assert lay["files_per_s"] > 0 and lay["lines_per_s"] == pytest.approx(2000 * lay["files_per_s"])
        assert lay["files_per_s"] == pytest.approx(4 / lay["wall_s"])
        assert lay["process_s"] > lay["wall_s"] > 0
        assert 0 < lay["efficiency"] <= 1.5
        stages = lay["stages_s"]
        assert stages["kernel"] > 0 and stages["read"] > 0 and stages["write"] > 0
        assert stages["other"] >= 0 and stages["write"] >= lay["write_close_s"] > 0
        # no more files ran at once than the layout has workers
        assert stages["waiting"] >= -0.05 * lay["wall_s"]
        total = stages["read"] + stages["kernel"] + stages["other"] + stages["waiting"]
        assert total == pytest.approx(lay["wall_s"], rel=0.02)
        assert [r["rank"] for r in lay["per_rank"]] == list(range(lay["ranks"]))
        assert sum(r["files"] for r in lay["per_rank"]) == 4
        assert all(r["peak_rss_mib"] > 50 for r in lay["per_rank"])
        assert lay["peak_rss_mib"] == max(r["peak_rss_mib"] for r in lay["per_rank"])
        assert lay["output_bytes"] > 0 and len(lay["runs_files_per_s"]) == 1
    one, two = data["layouts"]
    assert one["efficiency"] == 1.0
    assert two["efficiency"] == pytest.approx(two["files_per_s"] / (2 * one["files_per_s"]))


def test_outputs_are_real_hdf5_results(record):
    # --workdir keeps the outputs: the benchmark wrote what `hpcacq run` writes
    data, _, work = record
    from hpcacq.results import read_manifest

    for lay in data["layouts"]:
        path = work / f"bench_{lay['layout']}.h5"
        rows = read_manifest(path)
        assert len(rows) == 4 and all(row["outcome"] == "OK" for row in rows)
        assert {row["rank"] for row in rows} <= set(range(lay["ranks"]))
        with h5py.File(path, "r") as handle:
            assert handle.attrs["job_mpi_size"] == lay["ranks"]


def test_compile_versions_machine_and_reference(record):
    data, stdout, _ = record
    c = data["compile"]
    assert c["cold_s"] > c["warm_s"] > 0 and c["n_signatures"] > 0 and c["compiled_warm"] == 0
    v = data["versions"]
    for name in ("python", "numpy", "numba", "h5py", "hdf5", "mpi4py", "hpcacq"):
        assert v[name], name
    assert v["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", v["git_commit"])
    m = data["machine"]
    assert m["n_cpus"] >= m["n_cpus_usable"] >= 1 and m["mem_total_gib"] > 0 and m["hostname"]
    p = data["parameters"]
    assert (p["n_files"], p["n_lines"], p["n_pixels"], p["dtype"], p["corpus"]) == (4, 2000, 38, "uint16", "synthetic")
    ref = data["reference"]
    assert ref["windows"] == 12 and ref["n_windows"] == 2000 // 4 - 3
    assert ref["speed_ratio"] > 1 and ref["kernel_s_per_window"] > 0
    # the kernel reproduces the scikit-image reference on synthetic streaks
    assert ref["fraction_within_1e-3"] >= 0.9 and ref["max_abs_dv_mm_s"] < 0.05
    assert math.isfinite(ref["max_abs_dv_mm_s"])
    assert data["command"][:2] == ["hpcacq", "bench"] and "--reference" in data["command"]
    # the terminal table has one row per layout and the reference line
    assert re.search(r"^1x1\s+1\s", stdout, flags=re.M) and re.search(r"^2x1\s+2\s", stdout, flags=re.M)
    assert "reference (scikit-image" in stdout


def test_bad_layout_is_a_one_line_usage_error(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "hpcacq", "bench", "--layout", "2by1"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 2 and "2by1" in done.stderr and done.stderr.count("\n") == 1
