"""render_sbatch: stable, quoted text; signals forwarded; hostile paths reach hpcacq intact."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hpcacq.cli import cli
from hpcacq.errors import ParameterError
from hpcacq.jobs.slurm import render_sbatch, render_sbatch_from_mapping, sbatch_options

REPO = Path(__file__).resolve().parents[1]
# A fake `srun` (an exported bash function, found before PATH) that prints its arguments.
FAKE_SRUN = '() { "$PYTHON_FOR_TEST" -c "import json, sys; print(json.dumps(sys.argv[1:]))" "$@"; }'


def _run_script(text: str, folder: Path, extra_env: dict | None = None) -> list[str]:
    script = folder / "job.sbatch"
    script.write_text(text, encoding="utf-8")
    env = {**os.environ, "BASH_FUNC_srun%%": FAKE_SRUN, "PYTHON_FOR_TEST": sys.executable, **(extra_env or {})}
    out = subprocess.run(["bash", str(script)], env=env, cwd=folder, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[0])


def test_sbatch_lines_sorted_and_launch_line():
    text = render_sbatch(job_name="vel", nodes=2, ntasks_per_node=4, cpus_per_task=3, time="02:00:00",
                         partition="compute", account="lab", run_args=["data", "-o", "out.h5"], python="/opt/py/bin/python")
    sbatch = [line for line in text.splitlines() if line.startswith("#SBATCH")]
    assert sbatch == sorted(sbatch)
    for expected in ("--nodes=2", "--ntasks-per-node=4", "--cpus-per-task=3", "--time=02:00:00",
                     "--partition=compute", "--account=lab", "--signal=B:USR1@120", "--job-name=vel"):
        assert f"#SBATCH {expected}" in sbatch
    assert "srun --mpi=pmi2 --kill-on-bad-exit=1 /opt/py/bin/python -m mpi4py -m hpcacq run data -o out.h5" in text
    assert "export PATH=/opt/py/bin:" in text
    assert "trap 'forward USR1' USR1" in text and "trap 'forward TERM' TERM" in text
    assert text == render_sbatch(job_name="vel", nodes=2, ntasks_per_node=4, cpus_per_task=3, time="02:00:00",
                                 partition="compute", account="lab", run_args=["data", "-o", "out.h5"],
                                 python="/opt/py/bin/python")
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)


def test_default_python_is_this_interpreter():
    assert f"{shlex.quote(sys.executable)} -m mpi4py -m hpcacq run" in render_sbatch(job_name="x")


def test_hostile_run_args_reach_srun_unchanged(weird_tmp_path):
    args = [str(weird_tmp_path / "in put.tif"), "-o", str(weird_tmp_path / "o'ut; rm -rf x.h5"), "--param", 'name="$HOME"']
    text = render_sbatch(job_name="hostile", run_args=args, python="/usr/bin/python3", numba_cache_dir=str(weird_tmp_path))
    got = _run_script(text, weird_tmp_path)
    assert got[got.index("run") + 1:] == args


def test_array_task_takes_its_slice_and_writes_its_own_output(tmp_path):
    folder = tmp_path / "a b"
    folder.mkdir()
    listing = folder / "files;x.txt"
    listing.write_text("".join(f"/data/f{i}.tif\n" for i in range(7)))
    text = render_sbatch(job_name="arr", array="3-5", list_file=str(listing), results=str(folder / "out put.h5"),
                         run_args=["--analysis", "velocity"], python="/usr/bin/python3")
    assert "#SBATCH --array=3-5" in text
    env = {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "3", "SLURM_ARRAY_TASK_COUNT": "3"}
    got = _run_script(text, tmp_path, env)
    run = got[got.index("run") + 1:]
    assert run[0] == "@" + str(folder / "out put_4.list")
    assert run[1:] == ["-o", str(folder / "out put_4.h5"), "--analysis", "velocity"]
    assert (folder / "out put_4.list").read_text().split() == ["/data/f1.tif", "/data/f4.tif"]


@pytest.mark.parametrize("options, message", [
    ({"nodes": 0}, "nodes"),
    ({"time": "soon"}, "time"),
    ({"array": "0-9"}, "list_file"),
    ({"array": "1,3,5", "list_file": "x"}, "contiguous"),
    ({"output": "log\nfile"}, "newline"),
    ({"cpus_per_task": True}, "cpus_per_task"),
])
def test_bad_options_raise_parameter_error(options, message):
    with pytest.raises(ParameterError, match=message):
        render_sbatch(job_name="x", **options)


def test_mapping_rejects_unknown_options_listing_valid_ones():
    with pytest.raises(ParameterError) as info:
        render_sbatch_from_mapping({"job-name": "x", "ntasks": 4})
    assert "ntasks" in str(info.value) and "ntasks_per_node" in str(info.value)
    assert render_sbatch_from_mapping({"job-name": "x", "python": "p"}) == render_sbatch(job_name="x", python="p")
    assert set(sbatch_options()) >= {"job_name", "nodes", "ntasks_per_node", "time", "array", "run_args"}


def _readme_recipes() -> list[tuple[list[str], str]]:
    text = (REPO / "slurm" / "README.md").read_text(encoding="utf-8")
    recipes = []
    for line in text.splitlines():
        match = re.match(r"^python -m hpcacq slurm (.*) > (slurm/\S+\.sbatch)$", line)
        if match:
            recipes.append((shlex.split(match.group(1)), match.group(2)))
    return recipes


def test_checked_in_examples_equal_renderer_output():
    recipes = _readme_recipes()
    assert sorted(target for _, target in recipes) == sorted(
        f"slurm/{p.name}" for p in (REPO / "slurm").glob("*.sbatch")), "every example needs a recipe in README"
    for argv, target in recipes:
        result = CliRunner().invoke(cli, ["slurm", *argv])
        assert result.exit_code == 0, result.output
        assert result.output == (REPO / target).read_text(encoding="utf-8"), f"{target} is stale: regenerate it"


def test_slurm_command_reads_toml_and_cli_wins(tmp_path):
    config = tmp_path / "job.toml"
    config.write_text('job_name = "fromtoml"\nnodes = 3\ntime = "00:30:00"\n')
    result = CliRunner().invoke(cli, ["slurm", "--config", str(config), "--nodes", "2", "--", "d", "-o", "o.h5"])
    assert result.exit_code == 0, result.output
    assert "#SBATCH --nodes=2" in result.output and "#SBATCH --job-name=fromtoml" in result.output
    config.write_text('job_name = "x"\nbogus = 1\n')
    result = CliRunner().invoke(cli, ["slurm", "--config", str(config)])
    assert result.exit_code == 2 and "bogus" in result.output and "ntasks_per_node" in result.output


def test_no_options_but_the_run_args_render_a_full_node_job(tmp_path):
    """`hpcacq slurm -- data/ -o out.h5`: job named after the results, a node filled with ranks."""
    result = subprocess.run([sys.executable, "-m", "hpcacq", "slurm", "--", "data/", "-o", "results/out.h5"],
                            capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "#SBATCH --job-name=hpcacq-out" in text
    cpus = len(os.sched_getaffinity(0))
    assert f"#SBATCH --ntasks-per-node={cpus}" in text and "#SBATCH --cpus-per-task=1" in text
    assert "hpcacq run data/ -o results/out.h5" in text
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)
    wide = render_sbatch(run_args=["d", "-o", "x.h5"], cpus_per_task=cpus, python="p")
    assert "#SBATCH --ntasks-per-node=1" in wide and "#SBATCH --job-name=hpcacq-x" in wide


def test_layout_from_sinfo_when_slurm_answers(tmp_path):
    fake = tmp_path / "sinfo"
    fake.write_text("#!/bin/sh\necho \"$@\" > \"$(dirname \"$0\")/args\"\necho 48\necho 64\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    result = subprocess.run([sys.executable, "-m", "hpcacq", "slurm", "--partition", "big", "--cpus-per-task", "4",
                             "--", "d", "--output=v.h5"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "#SBATCH --ntasks-per-node=12" in result.stdout  # min(48, 64) CPUs / 4 per rank
    assert "from sinfo" in result.stdout and (tmp_path / "args").read_text().split() == ["-h", "-o", "%c", "-p", "big"]


@pytest.mark.parametrize("run_args, results, name", [
    (["d", "-o", "/x/velocity.h5"], None, "hpcacq-velocity"),
    (["d", "--output=diam.h5"], None, "hpcacq-diam"),
    (["d", "-o", "my run;1.h5"], None, "hpcacq-my_run_1"),
    (["--analysis", "velocity"], "arr.h5", "hpcacq-arr"),
    ([], None, "hpcacq"),
])
def test_job_name_from_results_file(run_args, results, name):
    from hpcacq.jobs.slurm import job_name_from_run_args

    assert job_name_from_run_args(run_args, results) == name


def test_error_leaves_no_empty_script(tmp_path):
    """`hpcacq slurm -- data/ > job.sbatch` without a results file: an error, and no empty job.sbatch."""
    script = tmp_path / "job.sbatch"
    with open(script, "w") as handle:
        result = subprocess.run([sys.executable, "-m", "hpcacq", "slurm", "--", "data/"], stdout=handle,
                                stderr=subprocess.PIPE, text=True)
    assert result.returncode == 2 and "-o out.h5" in result.stderr
    assert not script.exists(), "an empty job.sbatch was left behind"
    with open(script, "w") as handle:
        result = subprocess.run([sys.executable, "-m", "hpcacq", "slurm", "--nodes", "0", "--", "d", "-o", "o.h5"],
                                stdout=handle, stderr=subprocess.PIPE, text=True)
    assert result.returncode == 2 and "nodes" in result.stderr and not script.exists()


def test_help_explains_every_option_with_its_default():
    from hpcacq.cli.tools import SLURM_HELP

    assert set(SLURM_HELP) == set(sbatch_options()) - {"run_args"}, "every render_sbatch option needs help text"
    text = CliRunner().invoke(cli, ["slurm", "--help"], terminal_width=200).output
    for name, words in SLURM_HELP.items():
        assert "Default:" in words and words.split("Default:")[0][:30] in text, name
    assert "sbatch/script option" not in text
