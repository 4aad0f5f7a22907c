"""The hpcacq command line: help, lazy imports, one-line errors, exit codes, TOML, CSV export."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest

from hpcacq.cli import COMMANDS, EXIT_CODES, cli

from helpers.cli import hpcacq

CORPUS = {"n_files": 3, "n_lines": 800, "seed": 5, "folder": "da ta; 'q' µ"}  # the corpus fixture (conftest.py)

REPO = Path(__file__).resolve().parents[1]


def test_every_command_has_help_with_an_example():
    ctx = click.Context(cli)
    names = cli.list_commands(ctx)
    assert set(names) >= {"run", "info", "summary", "export", "synth", "slurm"}
    for name in names:
        command = cli.get_command(ctx, name)
        assert command.help and "Example" in command.help and "hpcacq " + name in command.help, name


def test_help_lists_exit_codes(capsys):
    code, out, _ = hpcacq(capsys, "--help")
    assert code == 0
    for number, text in EXIT_CODES.items():
        assert f"{number}  {text}" in out


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["slurm", "--help"], ["export", "--help"],
                                  ["params", "--help"]])
def test_help_imports_no_heavy_module(argv):
    code = ("import json, sys\nfrom hpcacq.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "print(json.dumps([m for m in ('numba', 'h5py', 'mpi4py', 'numpy') if m in sys.modules]))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert json.loads(out.stdout.splitlines()[-1]) == []


def test_docs_list_every_command_and_exit_code():
    text = (REPO / "docs" / "CLI.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^## `hpcacq (\w+)", text, flags=re.M))
    assert documented == set(COMMANDS), "docs/CLI.md and the commands disagree"
    for number in EXIT_CODES:
        assert re.search(rf"^\| {number} \|", text, flags=re.M), f"exit code {number} not in docs/CLI.md"


def test_missing_input_is_one_line_usage_error(capsys, tmp_path):
    code, out, err = hpcacq(capsys, "run", tmp_path / "nope.tif", "-o", tmp_path / "o.h5")
    assert code == 2
    assert err.count("\n") == 1 and "nope.tif" in err and "does not exist" in err and "Traceback" not in err


def test_bad_option_is_usage_error(capsys, tmp_path):
    code, _, err = hpcacq(capsys, "run", tmp_path, "--analysis", "speed")
    assert code == 2 and "speed" in err


def test_option_of_the_other_analysis_is_rejected(capsys, corpus, tmp_path):
    code, _, err = hpcacq(capsys, "run", corpus, "-o", tmp_path / "o.h5", "--window-rows", "5")
    assert code == 2 and "--window-rows applies to --analysis diameter" in err


def test_run_summary_export_end_to_end(capsys, corpus, tmp_path):
    out_h5 = tmp_path / "out.h5"
    code, out, _ = hpcacq(capsys, "run", corpus, "-o", out_h5, "--threads", "1")
    assert code == 0, out
    assert "3 files: 3 OK" in out and "lines/s" in out
    assert out.count("] OK ") == 3  # not a terminal: one plain log line per file

    code, out, _ = hpcacq(capsys, "summary", out_h5)
    assert code == 0 and "OK 3" in out and out.count("median velocity_clean_mm_s") == 3

    code, again, err = hpcacq(capsys, "run", corpus, "-o", out_h5)
    assert code == 2 and "--resume" in err and "--overwrite" in err

    code, out, _ = hpcacq(capsys, "export", out_h5, "--format", "csv", "-o", tmp_path / "csv", "--single")
    assert code == 0
    from hpcacq.results import iter_results

    with open(tmp_path / "csv" / "radon_velocity.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[:4] == ["file", "analysis", "channel", "roi_id"]
    assert {"time_s", "theta_deg", "dx_um", "dt_s", "window", "flag_theta_90"} <= set(rows[0])
    assert "velocity_mm_s" in rows[0]
    results = list(iter_results(out_h5))
    assert len(rows) == sum(r.n_rows for _, r in results)
    first_info, first = results[0]
    mine = [r for r in rows if r["file"] == first_info["file"]]
    assert mine[0]["file"].startswith(str(corpus))  # hostile folder name survived the CSV
    np.testing.assert_allclose([float(r["velocity_mm_s"]) for r in mine],
                               first.columns["velocity_mm_s"], equal_nan=True)


def test_exit_1_when_a_file_fails_and_failures_are_listed(capsys, corpus, tmp_path):
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"not a tiff")
    code, out, _ = hpcacq(capsys, "run", corpus / "velocity_0000.tif", broken, "-o", tmp_path / "o.h5")
    assert code == 1
    assert "1 failed" in out and "FAILED" in out and "broken.tif" in out
    code, out, _ = hpcacq(capsys, "summary", tmp_path / "o.h5")
    assert code == 1 and "FAILED 1" in out and "OK 1" in out and "broken.tif" in out


def test_exit_3_on_stop_file_then_resume_finishes(capsys, corpus, tmp_path):
    stop = tmp_path / "STOP"
    stop.touch()
    out_h5 = tmp_path / "o.h5"
    code, out, _ = hpcacq(capsys, "run", corpus, "-o", out_h5, "--stop-file", stop)
    assert code == 3 and "--resume" in out
    stop.unlink()
    code, out, _ = hpcacq(capsys, "run", corpus, "-o", out_h5, "--resume")
    assert code == 0 and "3 OK" in out


def test_internal_error_exits_4_with_traceback(capsys, corpus, tmp_path, monkeypatch):
    import hpcacq.jobs.driver as driver

    def boom(config, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(driver, "run_job", boom)
    code, _, err = hpcacq(capsys, "run", corpus, "-o", tmp_path / "o.h5")
    assert code == 4 and "RuntimeError: a bug" in err and "internal error" in err


def _capture_config(monkeypatch):
    import hpcacq.jobs.driver as driver
    from hpcacq.jobs.config import summarize

    seen = {}

    def fake(config, **kwargs):
        seen["config"] = config
        return summarize([], n_lines=0, elapsed_s=1.0)

    monkeypatch.setattr(driver, "run_job", fake)
    return seen


def test_toml_config_fills_options_and_cli_wins(capsys, corpus, tmp_path, monkeypatch):
    seen = _capture_config(monkeypatch)
    job = tmp_path / "job.toml"
    job.write_text(f'inputs = [{json.dumps(str(corpus))}]\noutput = "from_toml.h5"\nwindow-lines = 8\n'
                   'threads = 2\ntime_limit = "00:01:30"\n[params]\nmin_separability = 2.5\n', encoding="utf-8")
    code, _, err = hpcacq(capsys, "run", "--config", job, "--window-lines", "16")
    assert code == 0, err
    config = seen["config"]
    assert config.output == "from_toml.h5" and config.threads == 2 and config.time_limit_s == 90
    assert config.params["window_lines"] == 16  # CLI wins over the TOML's 8
    assert config.params["min_separability"] == 2.5
    assert len(config.inputs) == 3


def test_toml_unknown_key_lists_valid_ones(capsys, tmp_path):
    job = tmp_path / "job.toml"
    job.write_text('outptu = "x.h5"\n')
    code, _, err = hpcacq(capsys, "run", "--config", job)
    assert code == 2 and "outptu" in err and "output" in err and "window_lines" in err


def test_param_values_are_typed(capsys, corpus, tmp_path, monkeypatch):
    seen = _capture_config(monkeypatch)
    code, _, err = hpcacq(capsys, "run", corpus, "-o", tmp_path / "o.h5", "--analysis", "diameter",
                          "--param", "window_rows=7", "--method", "fit", "--time-limit", "120")
    assert code == 0, err
    config = seen["config"]
    assert config.analysis == "diameter" and config.params == {"window_rows": 7, "method": "fit"}
    assert config.time_limit_s == 120


def test_info_shows_shape_units_and_their_source(capsys, corpus):
    code, out, _ = hpcacq(capsys, "info", corpus / "velocity_0001.tif")
    assert code == 0
    assert "800 lines" in out and "38 pixels" in out and "uint16" in out and "from olympus" in out


def test_synth_writes_files_with_truth(capsys, tmp_path):
    code, out, _ = hpcacq(capsys, "synth", tmp_path / "s", "--n-files", "2", "--kind", "diameter", "--n-lines", "50")
    assert code == 0 and len(list((tmp_path / "s").glob("*.tif"))) == 2 and (tmp_path / "s" / "truth.json").exists()


def test_python_dash_m_hpcacq_works(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-m", "hpcacq", "summary", str(tmp_path / "none.h5")],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "none.h5" in out.stderr


def test_hostile_path_survives_run_and_export(capsys, corpus, weird_tmp_path):
    import shutil

    hostile = weird_tmp_path / "a b;'c\" µ.tif"
    shutil.copy(corpus / "velocity_0002.tif", hostile)
    shutil.copy(corpus / "velocity_0002.txt", weird_tmp_path / "a b;'c\" µ.txt")
    out_h5 = weird_tmp_path / "o u;t.h5"
    code, out, _ = hpcacq(capsys, "run", weird_tmp_path, "-o", out_h5)
    assert code == 0, out
    code, _, _ = hpcacq(capsys, "export", out_h5, "-o", weird_tmp_path / "csv", "--single")
    with open(weird_tmp_path / "csv" / "radon_velocity.csv", newline="", encoding="utf-8") as handle:
        files = {row["file"] for row in csv.DictReader(handle)}
    assert files == {str(hostile)}


def test_run_lists_the_first_failed_files_and_counts_the_rest(capsys, tmp_path, monkeypatch):
    # thousands of bad files must not be kept (or printed) one by one: the first SHOW_PROBLEMS
    # are listed, the rest counted, all of them are in the output file
    from hpcacq.cli import run as run_module

    monkeypatch.setattr(run_module, "SHOW_PROBLEMS", 2)
    for i in range(5):
        (tmp_path / f"bad_{i}.npy").write_bytes(b"garbage")
    code, out, _ = hpcacq(capsys, "run", str(tmp_path), "-o", str(tmp_path / "out.h5"), "--dx-um", "1",
                          "--dt-s", "0.001")
    assert code == 1
    assert "5 file(s) not OK:" in out and out.count("FAILED '") == 2
    assert f"... and 3 more: hpcacq summary {tmp_path / 'out.h5'}" in out
