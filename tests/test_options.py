"""Options apart from units: built once per job (per rank), one object from the CLI to the kernel,
and one wording of every number check (hpcacq/checks.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from hpcacq import checks
from hpcacq.analyses.options import Units, stored_params
from hpcacq.analyses.velocity_options import RadonOptions
from hpcacq.errors import MissingUnitsError, ParameterError


def _count_builds(monkeypatch, cls) -> list[int]:
    """Count the objects of options class ``cls`` built from now on (its __post_init__ runs once per object)."""
    built: list[int] = []
    original = getattr(cls, "__post_init__", None)

    def counting(self):
        built.append(id(self))
        if original is not None:
            original(self)

    monkeypatch.setattr(cls, "__post_init__", counting)
    return built


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Three small synthetic velocity TIFFs with Olympus headers (units from the files)."""
    from hpcacq.synth.corpus import write_corpus

    folder = tmp_path_factory.mktemp("options") / "d"
    write_corpus(folder, n_files=3, kind="velocity", n_lines=400, seed=5)
    return folder


def test_a_job_builds_its_options_once_and_every_file_gets_that_object(monkeypatch, corpus, tmp_path):
    from hpcacq.analyses import velocity
    from hpcacq.jobs.config import JobConfig
    from hpcacq.jobs.driver import run_job
    from hpcacq.jobs.inputs import expand_inputs

    built = _count_builds(monkeypatch, RadonOptions)
    reached = []
    wrapper = velocity._run_chunks  # the call into the kernel wrapper (hpcacq.kernels.radon.radon_windows)

    def spy(image, params, *args):
        reached.append(params)
        return wrapper(image, params, *args)

    monkeypatch.setattr(velocity, "_run_chunks", spy)
    config = JobConfig(inputs=expand_inputs([str(corpus)]), output=str(tmp_path / "o.h5"),
                       analysis="radon_velocity", params={"window_lines": 32}, threads=1)
    summary = run_job(config)
    assert summary.n_ok == 3 and summary.exit_code == 0
    assert len(built) == 1  # JobConfig built it; strategies, files and the warm-up reuse it
    assert len(reached) >= 3 and all(options is config.options for options in reached)
    assert config.options.window_lines == 32


def test_the_command_line_builds_the_options_once(monkeypatch, corpus, tmp_path, capsys):
    from hpcacq.cli import main

    built = _count_builds(monkeypatch, RadonOptions)
    with pytest.raises(SystemExit) as info:
        main(["run", str(corpus), "-o", str(tmp_path / "o.h5"), "--window-lines", "32", "--threads", "1"])
    assert info.value.code == 0, capsys.readouterr().err
    assert len(built) == 1
    from hpcacq.results import iter_results

    assert {result.params["window_lines"] for _, result in iter_results(tmp_path / "o.h5")} == {32}


def test_a_bad_option_is_a_usage_error_before_any_file_is_read(monkeypatch, corpus, tmp_path, capsys):
    from hpcacq.cli import main
    from hpcacq.io import readers

    def no_reading(*args, **kwargs):
        raise AssertionError("a file was read")

    monkeypatch.setattr(readers, "read_acquisition", no_reading)
    with pytest.raises(SystemExit) as info:
        main(["run", str(corpus), "-o", str(tmp_path / "o.h5"), "--param", "clean_sd=-1"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "--param clean_sd must be a finite number > 0, got -1" in err
    assert not (tmp_path / "o.h5").exists()


RANK_SCRIPT = textwrap.dedent("""
    import json, os, sys
    sys.path.insert(0, {tests!r})
    from helpers.fake_analysis import FakeOptions, install_fakes
    install_fakes()
    built = []
    FakeOptions.__post_init__, original = (lambda self: (built.append(1), original(self))), FakeOptions.__post_init__
    from hpcacq.jobs import driver, resources
    code = driver.main(sys.argv[1:])
    with open(os.path.join({folder!r}, f"built_rank{{resources.mpi_world_rank()}}.json"), "w") as f:
        json.dump(len(built), f)
    sys.exit(code)
""")


@pytest.mark.mpi
def test_two_ranks_build_the_options_once_each(tmp_path):
    from helpers.fake_analysis import write_images
    from helpers.jobs import MPIEXEC, ROOT, write_job

    if MPIEXEC is None:
        pytest.skip("mpiexec not found (pip install mpich)")
    paths = write_images(tmp_path, 6, lines=100, pixels=8)
    job = write_job(tmp_path, paths, tmp_path / "o.h5", threads=1, params={"scale": 2.0})
    script = tmp_path / "count.py"
    script.write_text(RANK_SCRIPT.format(tests=os.path.dirname(os.path.abspath(__file__)), folder=str(tmp_path)))
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-m", "mpi4py", str(script), str(job)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "6 files: 6 OK" in done.stdout
    counts = {rank: json.loads((tmp_path / f"built_rank{rank}.json").read_text()) for rank in (0, 1)}
    assert counts == {0: 1, 1: 1}


# ---------------------------------------------------------------- units and checks

@pytest.mark.parametrize("unit", ["dx_um", "dt_s"])
def test_every_analysis_reports_a_missing_unit_the_same_way(unit):
    from hpcacq import radon_velocity, vessel_diameter
    from hpcacq.analyses.sum_intensity import sum_intensity

    image = np.ones((64, 32))
    messages = set()
    for func in (radon_velocity, vessel_diameter, sum_intensity):
        units = {"dx_um": 0.5, "dt_s": 0.001, unit: None}
        with pytest.raises(MissingUnitsError) as info:
            func(image, **units)
        messages.add(str(info.value))
    flag = "--" + unit.replace("_", "-")
    assert len(messages) == 1 and messages.pop().startswith(f"{unit} is unknown: pass {unit}= (Python) or {flag} (CLI)")


def test_units_are_checked_and_stored_with_the_options():
    units = Units(dx_um=0.5, dt_s=0.001)
    assert stored_params(RadonOptions(window_lines=8), units) == {
        "dx_um": 0.5, "dt_s": 0.001, **{name: getattr(RadonOptions(window_lines=8), name)
                                        for name in RadonOptions.__dataclass_fields__}}
    assert list(stored_params(RadonOptions(), units))[:3] == ["dx_um", "dt_s", "window_lines"]
    with pytest.raises(ParameterError, match="dt_s must be a finite number > 0, got -1"):
        Units(dx_um=0.5, dt_s=-1)


@pytest.mark.parametrize("call, message", [
    (lambda: checks.positive("clean_sd", 0), "clean_sd must be a finite number > 0, got 0"),
    (lambda: checks.positive("dt_s", "1", "in seconds"), "dt_s must be a finite number > 0, got '1'; in seconds"),
    (lambda: checks.positive("dt_s", True), "dt_s must be a finite number > 0, got True"),
    (lambda: checks.non_negative("edge_deg", float("nan")), "edge_deg must be a finite number >= 0, got nan"),
    (lambda: checks.number("q", float("inf")), "q must be a finite number, got inf"),
    (lambda: checks.integer("threads", 0, 1), "threads must be an integer >= 1, got 0"),
    (lambda: checks.integer("stride", 2.0, 1), "stride must be an integer >= 1, got 2.0"),
    (lambda: checks.one_of("score", "radon", ("variance", "path_normalized")),
     "score must be one of 'variance', 'path_normalized', got 'radon'"),
    (lambda: checks.flag("motion_gating", "yes"), "motion_gating must be True or False, got 'yes'"),
])
def test_checks_say_name_requirement_value_and_hint(call, message):
    with pytest.raises(ParameterError) as info:
        call()
    assert str(info.value) == message


def test_checks_return_converted_values_and_pass_numpy_numbers():
    assert checks.positive("x", np.float32(0.5)) == 0.5 and type(checks.positive("x", 2)) is float
    assert checks.integer("n", np.int64(3), 1) == 3 and type(checks.integer("n", np.int64(3))) is int
    assert checks.optional(checks.positive, "dx_um", None) is None
    assert checks.flag("f", np.bool_(True)) is True
