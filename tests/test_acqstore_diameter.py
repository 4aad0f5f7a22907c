"""acqstore's diameter detection parameters map onto DiameterOptions with acqstore's defaults."""

from __future__ import annotations

import dataclasses

import pytest

from hpcacq.analyses.acqstore_diameter import (
    ACQSTORE_DIAMETER_DEFAULTS,
    ACQSTORE_DIAMETER_SCHEMA,
    diameter_params_from_acqstore,
)
from hpcacq.analyses.diameter import DiameterOptions
from hpcacq.errors import ParameterError

UNITS = dict(dx_um=0.5, dt_s=0.001)


def test_schema_names_and_defaults_are_acqstores():
    assert ACQSTORE_DIAMETER_DEFAULTS == {
        "window_rows_odd": 5, "stride": 1, "binning_method": "mean", "polarity": "bright_on_dark",
        "diameter_method": "threshold_width", "threshold_mode": "half_max", "threshold_value": 0.0,
        "gradient_sigma": 1.5, "gradient_kernel": "central_diff", "gradient_min_edge_strength": 0.02,
        "enable_motion_gating": True, "max_edge_shift_um": 2.0, "max_diameter_change_um": 2.0,
        "max_center_shift_um": 2.0, "post_filter_kernel_size": 3}
    fields = {f.name for f in dataclasses.fields(DiameterOptions)}
    for p in ACQSTORE_DIAMETER_SCHEMA:  # every documented target is a real field (or 'none')
        target = p.hpcacq.split(" ")[0].rstrip(":")
        assert target in fields or target == "none", p


def test_defaults_give_acqstores_threshold_width_with_a_3_line_post_filter():
    kw = diameter_params_from_acqstore({})
    p = DiameterOptions(**kw)
    assert (p.method, p.polarity, p.binning, p.window_rows, p.stride) == ("halfmax", "bright", "mean", 5, 1)
    assert p.threshold_mode == "halfmax" and p.post_filter_lines == 3
    assert p.motion_gating is False  # acqstore gates gradient_edges only


def test_every_option_translates():
    kw = diameter_params_from_acqstore({
        "window_rows_odd": 3, "stride": 4, "binning_method": "median", "polarity": "dark_on_bright",
        "diameter_method": "gradient_edges", "gradient_sigma": 2.0, "gradient_min_edge_strength": 5.0,
        "enable_motion_gating": True, "max_edge_shift_um": 1.0, "max_diameter_change_um": 1.5,
        "max_center_shift_um": 0.5, "post_filter_kernel_size": 5, "threshold_mode": "absolute"})
    assert kw == {"window_rows": 3, "stride": 4, "binning": "median", "polarity": "dark", "method": "gradient",
                  "gradient_sigma_px": 2.0, "gradient_min_strength": 5.0, "motion_gating": True,
                  "max_edge_shift_um": 1.0, "max_diameter_change_um": 1.5, "max_center_shift_um": 0.5,
                  "post_filter_lines": 5}
    DiameterOptions(**kw)
    absolute = diameter_params_from_acqstore({"threshold_mode": "absolute", "threshold_value": 550})
    assert absolute["threshold_mode"] == "absolute" and absolute["threshold_value"] == 550.0
    assert DiameterOptions(**absolute).threshold_value == 550.0


def test_unknown_name_is_a_key_error_naming_the_valid_ones():
    with pytest.raises(KeyError, match="window_rows_odd.*post_filter_kernel_size"):
        diameter_params_from_acqstore({"window_rows": 5})


@pytest.mark.parametrize("params, error", [
    ({"window_rows_odd": 4}, ParameterError), ({"window_rows_odd": 0}, ParameterError),
    ({"stride": 0}, ParameterError), ({"post_filter_kernel_size": 1}, ParameterError),
    ({"post_filter_kernel_size": 4}, ParameterError), ({"gradient_sigma": -1.0}, ParameterError),
    ({"max_edge_shift_um": -0.1}, ParameterError), ({"polarity": "bright"}, ParameterError),
    ({"diameter_method": "fit"}, ParameterError), ({"gradient_kernel": "sobel"}, ParameterError),
    ({"threshold_value": float("nan")}, ParameterError),
    ({"stride": 2.0}, TypeError), ({"enable_motion_gating": 1}, TypeError), ({"gradient_sigma": "1"}, TypeError),
])
def test_bad_values_are_rejected(params, error):
    with pytest.raises(error):
        diameter_params_from_acqstore(params)


def test_diameter_params_validate_the_new_options():
    for bad in ({"stride": 0}, {"post_filter_lines": 2}, {"gradient_sigma_px": -1}, {"motion_gating": "yes"},
                {"threshold_mode": "absolute"}, {"threshold_mode": "absolute", "threshold_value": 1.0, "method": "fit"},
                {"max_diameter_change_um": -1.0}, {"threshold_mode": "half"}, {"threshold_value": 500.0}):
        with pytest.raises(ParameterError):
            DiameterOptions(**bad)


def test_docs_map_every_acqstore_parameter():
    from pathlib import Path

    docs = Path(__file__).resolve().parents[1] / "docs"
    text = "".join(p.read_text(encoding="utf-8") for p in (docs / "ACQSTORE_DIAMETER.md", docs / "ACQSTORE.md")
                   if p.exists())
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    for p in ACQSTORE_DIAMETER_SCHEMA:
        row = next((r for r in rows if r.startswith(f"| `{p.name}` |")), None)
        assert row is not None, p.name
        target = p.hpcacq.split(" ")[0].rstrip(":")
        assert target == "none" or f"`{target}`" in row, (p.name, row)
