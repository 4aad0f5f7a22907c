"""The examples in the public functions' docstrings run and print what they say.

Each example builds a small image with a known answer (streaks at a known speed, a lumen of
a known width), so these are also end-to-end checks of the public API (~1 s after the
kernels are compiled).
"""

from __future__ import annotations

import doctest
import importlib
import io
from contextlib import redirect_stdout

import pytest

#: module -> public names whose docstrings must hold an example
DOCUMENTED = {
    "hpcacq.analyses.velocity": ["radon_velocity"],
    "hpcacq.analyses.narrow_velocity": ["lag_velocity"],
    "hpcacq.analyses.line_velocity": ["line_velocity"],
    "hpcacq.kernels.line_correlation": ["lag_correlation"],
    "hpcacq.analyses.diameter": ["vessel_diameter"],
    "hpcacq.model": ["AcqImage"],
    "hpcacq.jobs.batch": ["AcqAnalysisBatch"],
}


@pytest.mark.parametrize("module_name", sorted(DOCUMENTED))
def test_docstring_examples_run(module_name):
    module = importlib.import_module(module_name)
    tests = {test.name.rsplit(".", 1)[-1]: test for test in doctest.DocTestFinder().find(module) if test.examples}
    missing = [name for name in DOCUMENTED[module_name] if name not in tests]
    assert not missing, f"{module_name}: no docstring example for {missing}"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = io.StringIO()
    for test in tests.values():
        with redirect_stdout(report):
            runner.run(test, out=report.write)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, report.getvalue()
    assert results.attempted >= 4 * len(DOCUMENTED[module_name])
