"""The synthetic kymograph generators (hpcacq.synth.velocity, hpcacq.synth.flow) on narrow lines.

A generated line is a window on a longer vessel: the blur at its end pixels sees the cells
just beyond them, as a microscope's does (no mirrored ends). Known answer: a 7-pixel line is
the middle of a wider scan of the same cells, pixel for pixel.
"""

from __future__ import annotations

import numpy as np
import pytest

from hpcacq.analyses.narrow_velocity import lag_velocity
from hpcacq.synth.flow import make_flow_kymograph, window_truth_px_per_line
from hpcacq.synth.velocity import make_velocity_kymograph


@pytest.mark.parametrize("px_per_line", [1.0, -0.5])
@pytest.mark.parametrize("psf_sigma_px", [0.7, 2.0])
def test_a_narrow_line_is_the_middle_of_a_wider_scan(px_per_line, psf_sigma_px):
    """Same seed, same speed: the cells ride the same tape; pixel 10 of a 27-pixel scan is
    pixel 0 of a 7-pixel one ``10 / px_per_line`` lines later (earlier when moving left).
    With mirrored ends (the generator up to 0.1.0) the end pixels differ."""
    speed = np.full(400, px_per_line)
    shift = int(round(10 / abs(px_per_line)))
    for make in (lambda n: make_flow_kymograph(speed, n, rng=5, noise_sd=0, psf_sigma_px=psf_sigma_px),
                 lambda n: make_velocity_kymograph(400, n, px_per_line=px_per_line, rng=5, noise_sd=0,
                                                   psf_sigma_px=psf_sigma_px)):
        narrow, cut = make(7), make(27)[:, 10:17]
        assert narrow.std() > 50  # cells are there
        if px_per_line > 0:  # cut[t] = narrow[t - shift]
            np.testing.assert_allclose(cut[shift:], narrow[:-shift], rtol=0, atol=1e-9)
        else:  # cut[t] = narrow[t + shift]
            np.testing.assert_allclose(cut[:-shift], narrow[shift:], rtol=0, atol=1e-9)


# Measured (these 2 seeds x 3000 lines): median |error| per window 0.7-0.8 % at W = 32, 0.4-0.5 % at
# W = 64, signed -0.1 to +0.4 %, as on lines cut from a wider scan; with the mirrored ends +9.3-9.5 %.
@pytest.mark.parametrize("window_lines", [32, 64])
@pytest.mark.parametrize("px_per_line", [0.5, -1.2])
def test_line_correlation_reads_the_generators_seven_pixel_lines_within_two_percent(px_per_line, window_lines):
    speed = np.full(3000, px_per_line)
    errors = []
    for seed in (1, 2):
        out = lag_velocity(make_flow_kymograph(speed, 7, rng=seed), dx_um=0.5, dt_s=0.001, window_lines=window_lines)
        errors.append(out["px_per_line"] / window_truth_px_per_line(speed, window_lines) - 1.0)
    e = np.concatenate(errors)
    assert abs(np.nanmedian(e)) <= 0.02 and np.nanmedian(np.abs(e)) <= 0.02
