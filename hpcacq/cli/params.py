"""``hpcacq params ANALYSIS``: every parameter of an analysis with its default, unit and meaning.

Read from the analysis' frozen options dataclass: its fields, defaults and each field's
``metadata["help"]`` (see :func:`hpcacq.analyses.options.option`), after the two units
of the file (:class:`hpcacq.analyses.options.Units`). A field added to the options
appears here, and with ``cli=True`` as its own ``hpcacq run`` option, without touching
the CLI.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import click

from ..analyses.options import Units, cli_name, help_of
from ..analyses.registry import ALIASES
from ._common import library_errors

__all__ = ["params", "parameter_table", "ANALYSIS_OF", "option_of", "unit_of"]

#: CLI analysis names -> registry names.
ANALYSIS_OF = dict(ALIASES)
_UNITS = (("_mm_s", "mm/s"), ("_um", "um"), ("_deg", "deg"), ("_px", "px"), ("_pixels", "px"), ("_lines", "lines"),
          ("_rows", "lines"), ("_percentile", "percentile (0-100)"), ("_sd", "standard deviations"),
          ("_r2", "R^2 (0-1)"), ("_iter", "steps"), ("_s", "s"))


def unit_of(name: str) -> str:
    """The unit of a parameter from its name's suffix (``dt_s`` -> ``s``); ``-`` when it has none."""
    if name in ("dx_um", "dt_s"):
        return {"dx_um": "um per pixel", "dt_s": "s per line"}[name]
    for suffix, unit in _UNITS:
        if name.endswith(suffix):
            return unit
    return "-"


def option_of(field: dataclasses.Field) -> str:
    """How ``hpcacq run`` takes a field: its own option (units and ``cli=True`` options) or ``--param``."""
    if field.name in ("dx_um", "dt_s") or field.metadata.get("cli"):
        return cli_name(field.name)
    return f"--param {field.name}=VALUE"


def _type_text(field: dataclasses.Field) -> str:
    choices = field.metadata.get("choices")
    if choices:
        return "{" + ", ".join(repr(c) for c in choices) + "}"
    return field.type if isinstance(field.type, str) else getattr(field.type, "__name__", str(field.type))


def parameter_table(analysis: str) -> list[dict[str, Any]]:
    """One dict per parameter of ``analysis`` (the units, then the options): name, option, type,
    default, unit, meaning."""
    from ..analyses.registry import get_spec

    cls = get_spec(ANALYSIS_OF.get(analysis, analysis)).options_cls
    rows = []
    for f in dataclasses.fields(Units) + dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = repr(f.default) if isinstance(f.default, str) else str(f.default)
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = repr(f.default_factory())  # type: ignore[misc]
        else:
            default = "from the file (Olympus header or HDF5 attributes)"
        rows.append({"name": f.name, "option": option_of(f), "type": _type_text(f), "default": default,
                     "unit": unit_of(f.name), "meaning": help_of(f) or "(not documented in the options class)"})
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
