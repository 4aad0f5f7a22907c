"""``hpcacq`` run in the test's own process: the exit code and what it printed.

A crash here takes pytest down, so tests that provoke crashes or signals launch
``python -m hpcacq`` in a subprocess instead.
"""

from __future__ import annotations

import pytest

from hpcacq.cli import main

__all__ = ["hpcacq", "run_cli"]


def run_cli(*args) -> int:
    """Run ``hpcacq ARGS`` in this process; returns the exit code (output left to pytest's capture)."""
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    return info.value.code


def hpcacq(capsys, *args) -> tuple[int, str, str]:
    """Run ``hpcacq ARGS`` in this process; returns (exit code, stdout, stderr)."""
    code = run_cli(*args)
    out = capsys.readouterr()
    return code, out.out, out.err
