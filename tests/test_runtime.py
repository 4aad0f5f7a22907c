"""The shared run time of the analyses: chunks, threads, cancel, progress, missing units."""

from __future__ import annotations

import numpy as np
import pytest

from hpcacq.analyses.diameter import vessel_diameter
from hpcacq.analyses.runtime import chunk_bounds, run_chunks
from hpcacq.analyses.sum_intensity import sum_intensity
from hpcacq.analyses.velocity import radon_velocity
from hpcacq.errors import AnalysisCancelled, MissingUnitsError


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_chunks_come_back_in_order_whatever_the_threads(threads):
    seen = []
    parts = run_chunks(lambda a, b: list(range(a, b)), chunk_bounds(10, 3), threads=threads, cancel=None,
                       progress=lambda done, total: seen.append((done, total)), what="x", unit="lines")
    assert [v for part in parts for v in part] == list(range(10))
    assert seen[0] == (0, 10) and seen[-1] == (10, 10) and seen == sorted(seen)  # threads may report together


def test_cancel_names_the_analysis_and_how_far_it_got():
    answers = iter([False, False, True])
    with pytest.raises(AnalysisCancelled, match=r"^x cancelled after 6 of 10 lines$"):
        run_chunks(lambda a, b: b - a, chunk_bounds(10, 3), threads=1, cancel=lambda: next(answers),
                   progress=None, what="x", unit="lines")


@pytest.mark.parametrize("unit", ["dx_um", "dt_s"])
def test_every_analysis_reports_a_missing_unit_the_same_way(unit):
    block = np.ones((64, 40))
    messages = set()
    for func in (radon_velocity, vessel_diameter, sum_intensity):
        units = {"dx_um": 0.3, "dt_s": 0.001, unit: None}
        with pytest.raises(MissingUnitsError) as info:
            func(block, **units)
        messages.add(str(info.value).split(";")[0])
    assert messages == {f"{unit} is unknown: pass {unit}= (Python) or --{unit.replace('_', '-')} (CLI)"}
