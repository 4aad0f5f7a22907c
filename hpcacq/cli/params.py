"""``hpcacq params ANALYSIS``: every parameter of an analysis with its default, unit and meaning.

Read from the analysis' frozen parameters dataclass (its fields and defaults) and the
``Attributes`` section of its numpydoc docstring (the meanings), so a parameter added
to the dataclass appears here without touching the CLI.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from typing import Any

import click

from ..analyses.registry import ALIASES
from ._common import library_errors

__all__ = ["params", "parameter_table", "ANALYSIS_OF", "OPTION_OF", "unit_of"]

#: CLI analysis names -> registry names.
ANALYSIS_OF = dict(ALIASES)
#: Parameters with their own `hpcacq run` option (the others are given as --param NAME=VALUE).
OPTION_OF = {"dx_um": "--dx-um", "dt_s": "--dt-s", "window_lines": "--window-lines", "window_rows": "--window-rows",
             "method": "--method", "polarity": "--polarity"}
_UNITS = (("_mm_s", "mm/s"), ("_um", "um"), ("_deg", "deg"), ("_px", "px"), ("_pixels", "px"), ("_lines", "lines"),
          ("_rows", "lines"), ("_percentile", "percentile (0-100)"), ("_sd", "standard deviations"),
          ("_r2", "R^2 (0-1)"), ("_iter", "steps"), ("_s", "s"))
_HEADER = re.compile(r"^(\w+(?:\s*,\s*\w+)*)\s*:\s*(.+)$")


def unit_of(name: str) -> str:
    """The unit of a parameter from its name's suffix (``dt_s`` -> ``s``); ``-`` when it has none."""
    if name in ("dx_um", "dt_s"):
        return {"dx_um": "um per pixel", "dt_s": "s per line"}[name]
    for suffix, unit in _UNITS:
        if name.endswith(suffix):
            return unit
    return "-"


def _attribute_docs(cls: type) -> dict[str, tuple[str, str]]:
    """name -> (type text, meaning) from the ``Attributes`` section of ``cls``'s docstring."""
    doc = inspect.getdoc(cls) or ""
    lines = doc.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes") + 2
    except StopIteration:
        return {}
    out: dict[str, tuple[str, str]] = {}
    names: list[str] = []
    kind, words = "", []
    for line in lines[start:] + [""]:
        header = _HEADER.match(line) if not line.startswith(" ") else None
        if header or (line and not line.startswith(" ")) or (not line.strip() and names and words):
            for name in names:
                out[name] = (kind, " ".join(words))
            names, words = [], []
            if header:
                names = [n.strip() for n in header.group(1).split(",")]
                kind = header.group(2).strip()
            elif line.strip():
                break  # the end of the section ("Build one from a dict ...")
        elif line.strip():
            words.append(line.strip())
    return out


def parameter_table(analysis: str) -> list[dict[str, Any]]:
    """One dict per parameter of ``analysis``: name, option, type, default, unit, meaning."""
    from ..analyses.registry import get_spec

    cls = get_spec(ANALYSIS_OF.get(analysis, analysis)).params_cls
    docs = _attribute_docs(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = repr(f.default) if isinstance(f.default, str) else str(f.default)
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = repr(f.default_factory())  # type: ignore[misc]
        else:
            default = "from the file (Olympus header or HDF5 attributes)"
        kind, meaning = docs.get(f.name, (str(f.type), ""))
        option = OPTION_OF.get(f.name, f"--param {f.name}=VALUE")
        rows.append({"name": f.name, "option": option, "type": kind, "default": default, "unit": unit_of(f.name),
                     "meaning": meaning or "(not documented in the parameters class)"})
    return rows


def format_table(analysis: str, rows: list[dict[str, Any]], width: int = 100) -> str:
    """The listing printed by ``hpcacq params`` (meanings wrapped to ``width``)."""
    import textwrap

    out = [f"Parameters of --analysis {analysis} (give each as its option or --param NAME=VALUE):"]
    for row in rows:
        out += ["", f"{row['name']}  [{row['option']}]",
                f"    default {row['default']}; unit {row['unit']}; type {row['type']}"]
        out += textwrap.wrap(row["meaning"].replace("``", ""), width=width, initial_indent="    ",
                             subsequent_indent="    ")
    return "\n".join(out)


@click.command(name="params")
@click.argument("analysis", type=click.Choice(sorted(ANALYSIS_OF)), default="velocity")
def params(analysis: str) -> int:
    """List every parameter of ANALYSIS with its default, unit and meaning.

    Parameters with their own `hpcacq run` option (--window-lines, --method, ...) show
    it; the others are given as --param NAME=VALUE (`hpcacq run ... --param help` prints
    this list too).

    \b
    Example:
      hpcacq params velocity
      hpcacq run data/ -o out.h5 --param score=path_normalized --param clean_sd=3
    """
    import shutil

    with library_errors():
        rows = parameter_table(analysis)
    click.echo(format_table(analysis, rows, width=max(60, min(110, shutil.get_terminal_size().columns - 1))))
    return 0
