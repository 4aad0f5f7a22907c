"""Options of an analysis apart from the units of a file; both cheap to import (no NumPy).

An analysis' options are one frozen dataclass (``RadonOptions``, ``DiameterOptions``),
validated once when built: a job builds it once and every file reuses it. Each field is
made by :func:`option`, whose metadata carries the help text that ``hpcacq params``
prints and, for the few with their own ``hpcacq run`` option, the command-line option.
The units of one file, ``dx_um`` and ``dt_s``, travel apart as :class:`Units`. A result
stores both as one flat dict (:func:`stored_params`), as it always has.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import checks
from ..errors import ParameterError
from .runtime import require_unit

__all__ = ["option", "Units", "NoOptions", "options_from_mapping", "stored_params", "cli_fields", "help_of",
           "cli_name"]

UNIT_HINTS = {"dx_um": "give the pixel size in micrometres, e.g. dx_um=0.284",
              "dt_s": "give the line period in seconds, e.g. dt_s=0.00117"}


def option(default: Any, help: str, *, cli: bool = False, choices: tuple | None = None,  # noqa: A002
           low: int | None = None, metavar: str | None = None) -> Any:
    """A field of an options dataclass with its help text (and CLI option) in its metadata.

    Parameters
    ----------
    default : object
        The default value.
    help : str
        What the option means, with its unit and range (``hpcacq params`` and ``--help``).
    cli : bool, keyword-only
        True: ``hpcacq run`` gets its own option ``--<name-with-dashes>``; otherwise it is
        given as ``--param NAME=VALUE``.
    choices : tuple or None, keyword-only
        The valid values of a text option (the CLI offers them).
    low : int or None, keyword-only
        The smallest valid value of an integer option (the CLI checks it).
    metavar : str or None, keyword-only
        The CLI's placeholder of the value (``N``).
    """
    return dataclasses.field(default=default, metadata={"help": help, "cli": cli, "choices": choices, "low": low,
                                                        "metavar": metavar})


def help_of(field: dataclasses.Field) -> str:
    """The help text of an options field ('' when it has none)."""
    return str(field.metadata.get("help", ""))


def cli_name(name: str) -> str:
    """The command-line spelling of a field name: ``window_lines`` -> ``--window-lines``."""
    return "--" + name.replace("_", "-")


def cli_fields(options_cls: type) -> tuple[dataclasses.Field, ...]:
    """The fields of ``options_cls`` with their own ``hpcacq run`` option."""
    return tuple(f for f in dataclasses.fields(options_cls) if f.metadata.get("cli"))


@dataclass(frozen=True)
class Units:
    """The units of one file: micrometres per pixel and seconds per line, both > 0.

    A missing unit (None) raises :class:`~hpcacq.errors.MissingUnitsError` naming the
    Python keyword and the command-line option that give it; any other bad value a
    :class:`~hpcacq.errors.ParameterError`.
    """

    dx_um: float = dataclasses.field(metadata={"help": "Micrometres per pixel (axis 1, space), > 0; from the file "
                                                       "(Olympus header or HDF5 attributes) or --dx-um."})
    dt_s: float = dataclasses.field(metadata={"help": "Seconds per line (axis 0, time), > 0; from the file or "
                                                      "--dt-s."})

    def __post_init__(self) -> None:
        for name in ("dx_um", "dt_s"):
            require_unit(name, getattr(self, name), UNIT_HINTS[name])
            object.__setattr__(self, name, checks.positive(name, getattr(self, name), UNIT_HINTS[name]))

    def mm_per_s(self, px_per_line):
        """A speed in pixels per line (number or array) in mm/s: ``px_per_line * dx_um / dt_s / 1000``."""
        return px_per_line * self.dx_um / self.dt_s / 1000.0


@dataclass(frozen=True)
class NoOptions:
    """An analysis without options (``sum_intensity``)."""


def options_from_mapping(cls: type, values: Mapping[str, Any]) -> Any:
    """Build the frozen options dataclass ``cls`` from ``values``.

    Unknown names raise :class:`ParameterError` listing the valid ones, so a typo in a
    job file or on the command line never passes silently; a unit (``dx_um``, ``dt_s``)
    is refused with where to give it instead.
    """
    valid = tuple(f.name for f in dataclasses.fields(cls))
    units = sorted(set(values) & set(UNIT_HINTS))
    if units:
        raise ParameterError(f"{' and '.join(units)} are units of the file, not options of {cls.__name__}: "
                             f"give them as dx_um=/dt_s= (Python) or --dx-um/--dt-s (CLI)")
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ParameterError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))} for {cls.__name__}; "
            f"valid names are: {', '.join(valid)}"
        )
    return cls(**dict(values))


def stored_params(options: Any, units: Units) -> dict[str, Any]:
    """The parameters a result stores: ``dx_um``, ``dt_s``, then every option, in field order."""
    out: dict[str, Any] = {"dx_um": units.dx_um, "dt_s": units.dt_s}
    out.update({f.name: getattr(options, f.name) for f in dataclasses.fields(options)})
    return out
