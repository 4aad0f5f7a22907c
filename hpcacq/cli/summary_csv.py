"""``hpcacq summary --csv``: the per-file summary as a machine-readable table."""

from __future__ import annotations

import sys

import click

from ._common import library_errors

__all__ = ["summary_csv"]


def summary_csv(results: str, path: str) -> int:
    """Write the summary table of ``results`` to ``path`` ('-': stdout).

    Returns the exit code of ``summary``: 1 when some file is not OK, else 0.
    """
    from ..results.csv_export import write_summary_csv

    with library_errors():
        if path == "-":
            rows = write_summary_csv(results, sys.stdout)
            sys.stdout.flush()
        else:
            with open(path, "w", newline="", encoding="utf-8") as handle:
                rows = write_summary_csv(results, handle)
            click.echo(f"summary table: {len(rows)} row(s) in {path}", err=True)
    return 1 if any(row["outcome"] != "OK" for row in rows) else 0
