"""One collection of software versions: what results store and what bench records."""

from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path

import h5py
import numpy as np

import hpcacq
from hpcacq import __version__
from hpcacq.bench.records import velocity_record
from hpcacq.results import ResultsWriter, read_job_attrs
from hpcacq.versions import software_versions


def test_results_store_the_versions(tmp_path):
    stored = software_versions()
    assert set(stored) == {"hpcacq", "numpy", "numba", "h5py", "hdf5", "python"}
    assert stored["hpcacq"] == __version__ and stored["numpy"] == np.__version__
    assert stored["h5py"] == h5py.version.version and stored["python"] == platform.python_version()
    out = tmp_path / "o.h5"
    with ResultsWriter(out, mode="new", job_attrs={}, fsync=False) as writer:
        writer.write_file(velocity_record(0, n_rows=10))
    assert read_job_attrs(out)["versions"] == stored
    with h5py.File(out, "r") as f:
        group = next(iter(f["files"].values()))
        assert json.loads(group.attrs["versions_json"]) == stored


def test_full_versions_add_mpi_and_the_git_commit():
    full = software_versions(full=True)
    assert {k: full[k] for k in software_versions()} == software_versions()
    assert set(full) - set(software_versions()) == {"mpi4py", "mpich", "git_commit", "git_dirty"}
    import mpi4py

    assert full["mpi4py"] == mpi4py.__version__
    root = Path(hpcacq.__file__).resolve().parents[1]
    if (root / ".git").exists():  # a git checkout (development): its HEAD
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
        assert full["git_commit"] == head.strip() and isinstance(full["git_dirty"], bool)
    else:  # an installed copy: no commit to report
        assert full["git_commit"] is None and full["git_dirty"] is None
