"""Help that teaches: defaults and ranges in `run --help`, `hpcacq params`, errors in CLI words."""

from __future__ import annotations

import dataclasses
import re

import pytest
from click.testing import CliRunner

from hpcacq.cli import cli, main
from hpcacq.cli.params import parameter_table
from hpcacq.cli.run import HELP_DEFAULTS

CORPUS = {"n_files": 1, "n_lines": 200, "seed": 1, "folder": "data"}  # the corpus fixture (conftest.py)

PYTHON_SPEAK = re.compile(r"RoiBatchMode|ADD_NEW_ROI|ANALYZE_EXISTING|mode='|detection_params|roi_mode|\w+Params\b|"
                          r"=None|strategy")


def _options_classes():
    from hpcacq.analyses.diameter_options import DiameterOptions
    from hpcacq.analyses.velocity_options import RadonOptions

    return {"velocity": RadonOptions, "diameter": DiameterOptions}


def test_run_help_shows_defaults_and_ranges_of_the_analysis_options():
    text = " ".join(CliRunner().invoke(cli, ["run", "--help"], terminal_width=200).output.split())
    for option, name in (("--window-lines", "window_lines"), ("--window-rows", "window_rows"),
                         ("--method", "method"), ("--polarity", "polarity")):
        chunk = text[text.rindex(option + " "):][:400]
        assert f"[default: {HELP_DEFAULTS[name]}]" in chunk, option
    assert "multiple of 4 (>= 4)" in text and "odd (>= 1)" in text and "x>0" in text
    assert "--param help" in text and "hpcacq params" in text
    # the defaults written in the help are the analyses' own
    classes = _options_classes()
    defaults = {f.name: f.default for cls in classes.values() for f in dataclasses.fields(cls)}
    assert {name: defaults[name] for name in HELP_DEFAULTS} == HELP_DEFAULTS


@pytest.mark.parametrize("analysis", ["velocity", "diameter"])
def test_params_lists_every_parameter_with_default_unit_and_meaning(analysis):
    result = CliRunner().invoke(cli, ["params", analysis], terminal_width=120)
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in parameter_table(analysis)}
    from hpcacq.analyses.options import Units

    for field in dataclasses.fields(Units) + dataclasses.fields(_options_classes()[analysis]):
        row = rows.pop(field.name)
        assert row["meaning"] and "not documented" not in row["meaning"], field.name
        assert f"{field.name}  [" in result.output
        if field.default is not dataclasses.MISSING:
            default = repr(field.default) if isinstance(field.default, str) else str(field.default)
            assert row["default"] == default and f"default {default};" in result.output
    assert not rows
    assert rows == {} and "unit um per pixel" in result.output and "unit lines" in result.output


def test_a_new_parameter_appears_by_itself(monkeypatch):
    from hpcacq.analyses import registry
    from hpcacq.analyses.options import option

    @dataclasses.dataclass(frozen=True)
    class NewOptions:
        gap_s: float = option(0.5, "Longest pause tolerated, seconds.")
        mode: str = option("a", "How.", cli=True, choices=("a", "b"))

    spec = registry.AnalysisSpec(name="new", options_cls=NewOptions, run=lambda *a, **k: None)
    monkeypatch.setattr(registry, "get_spec", lambda name: spec)
    rows = {row["name"]: row for row in parameter_table("new")}
    assert rows["gap_s"] == {"name": "gap_s", "option": "--param gap_s=VALUE", "type": "float", "default": "0.5",
                             "unit": "s", "meaning": "Longest pause tolerated, seconds."}
    assert rows["mode"]["option"] == "--mode" and rows["mode"]["type"] == "{'a', 'b'}"
    assert list(rows)[:2] == ["dx_um", "dt_s"] and rows["dx_um"]["option"] == "--dx-um"


def test_param_help_prints_the_list_and_exits_0(capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["run", str(tmp_path), "-o", str(tmp_path / "o.h5"), "--analysis", "diameter", "--param", "help"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and "Parameters of --analysis diameter" in out and "peak_percentile" in out


@pytest.mark.parametrize("args, words", [
    (["--roi", "existing"], "--roi existing needs --roi-id"),
    (["--roi-id", "3"], "--roi-id 3 is only used with --roi existing"),
    (["--window-lines", "10"], "--window-lines must be"),
    (["--param", "foo=1"], "unknown --param 'foo'"),
    (["--param", "score=bad"], "--param score must be one of"),
    (["--param", "dx_um=0.3"], "give --dx-um VALUE instead of --param dx_um=VALUE"),
    (["--resume", "--overwrite"], "--resume and --overwrite exclude each other"),
    (["--analysis", "diameter", "--window-rows", "4"], "--window-rows must be odd"),
    (["--analysis", "diameter", "--param", "peak_percentile=5"], "peak_percentile"),
    (["--dx-um", "0"], "--dx-um"),
])
def test_errors_name_command_line_options(capsys, corpus, tmp_path, args, words):
    with pytest.raises(SystemExit) as info:
        main(["run", str(corpus), "-o", str(tmp_path / "o.h5"), *args])
    err = capsys.readouterr().err
    assert info.value.code == 2 and words in err, err
    assert not PYTHON_SPEAK.search(err), err


def test_existing_output_error_names_the_options(capsys, corpus, tmp_path):
    out = tmp_path / "o.h5"
    out.write_bytes(b"")
    with pytest.raises(SystemExit) as info:
        main(["run", str(corpus), "-o", str(out)])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "pass --resume" in err and "--overwrite" in err
    assert not PYTHON_SPEAK.search(err), err
