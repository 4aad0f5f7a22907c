"""What every command shares: library errors -> one-line Click errors, TOML files, rank."""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from typing import Any

import click

from ..errors import HpcacqError

__all__ = ["UsageFailure", "library_errors", "load_toml", "parse_value", "is_rank0", "cli_words"]


class UsageFailure(click.ClickException):
    """A problem the user can fix (exit code 2), shown as one line."""

    exit_code = 2

    def format_message(self) -> str:
        return " ".join(self.message.split())  # one line, whatever the library wrote

    def show(self, file: Any = None) -> None:
        if is_rank0():  # under MPI every rank raises the same error; one message is enough
            super().show(file)


#: Library words -> command-line words in error messages (the library speaks Python to its callers).
_CLI_WORDS = (
    (re.compile(r" \(mode='(resume|overwrite)'\)"), ""),
    (re.compile(r"RoiBatchMode\.ADD_NEW_ROI|\bADD_NEW_ROI\b"), "--roi new"),
    (re.compile(r"RoiBatchMode\.ANALYZE_EXISTING_ROI|\broi_mode ANALYZE_EXISTING_ROI\b|\bANALYZE_EXISTING_ROI\b"),
     "--roi existing"),
    (re.compile(r"give (dx_um|dt_s) as the strategy's \w+= option, not in detection_params"),
     lambda m: f"give --{m.group(1).replace('_', '-')} VALUE instead of --param {m.group(1)}=VALUE"),
    (re.compile(r"unknown parameter\(s\) (.+?) for (\w+Options|'\w+'); valid names are: (?:dx_um, dt_s, )?(.+)$"),
     lambda m: f"unknown --param {m.group(1)}; valid names are: {m.group(3)} "
               f"(`hpcacq params {_label_of_options(m.group(2))}` lists them with default, unit and meaning)"),
)
def _label_of_options(name: str) -> str:
    """The label of the analysis whose options class (or quoted registered name) is ``name``; all labels if unknown."""
    from ..analyses.registry import REGISTRY

    for entry in REGISTRY.values():
        if entry.options.endswith(":" + name) or name.strip("'") == entry.name:
            return entry.label
    return "|".join(entry.label for entry in REGISTRY.values())


#: Job options named alike in the library and on the command line (the analyses' own come from the registry).
_JOB_OPTIONS = ("dx_um", "dt_s", "roi_id", "channel", "threads")


def _option_of(name: str) -> str | None:
    """The ``hpcacq run`` option of a library name (``window_lines`` -> ``--window-lines``), None if it has none."""
    from ..analyses.options import cli_fields, cli_name
    from ..analyses.registry import REGISTRY

    if name in _JOB_OPTIONS or any(f.name == name for e in REGISTRY.values() for f in cli_fields(e.options_cls())):
        return cli_name(name)
    return None


def _param_names() -> set[str]:
    """Names of every analysis parameter (the analyses are imported by then, after a run error)."""
    import dataclasses

    from ..analyses.registry import ANALYSES

    try:
        return {f.name for spec in ANALYSES.values() for f in dataclasses.fields(spec.options_cls)}
    except Exception:  # noqa: BLE001 - only used to word a message
        return set()


def cli_words(text: str) -> str:
    """``text`` of a library error with option names instead of Python names, e.g.
    ``window_lines must ...`` -> ``--window-lines must ...``, ``RoiBatchMode.ADD_NEW_ROI`` -> ``--roi new``."""
    for pattern, replacement in _CLI_WORDS:
        text = pattern.sub(replacement, text)
    match = re.match(r"^([a-z][a-z0-9_]*)(=| must| is | are )", text)
    option = _option_of(match.group(1)) if match else None
    if match and option is not None:
        text = option + (" " if match.group(2) == "=" else "") + text[len(match.group(1)) + (
            1 if match.group(2) == "=" else 0):]
    elif match and match.group(1) in _param_names():
        text = f"--param {text}" if match.group(2) == "=" else f"--param {match.group(1)}{text[len(match.group(1)):]}"
    return text


def read_options(command):
    """``--transpose`` and ``--axes``: how a file is read, the same for every command that reads one."""
    command = click.option(
        "--axes", default=None, metavar="LETTERS",
        help="What a multi-page TIFF's (or 3-D array's) dimensions are: T = blocks of lines joined in time, "
             "C = channels, Y = lines, X = pixels (e.g. TYX, CYX). Default: from the file's metadata.")(command)
    return click.option("--transpose", is_flag=True, default=False,
                        help="Files are stored pixels x lines: swap the axes after reading.")(command)


@contextlib.contextmanager
def library_errors() -> Iterator[None]:
    """Turn :class:`hpcacq.errors.HpcacqError` (and bad files) into a one-line exit-2 error
    worded for the command line (:func:`cli_words`)."""
    try:
        yield
    except HpcacqError as exc:
        raise UsageFailure(cli_words(str(exc))) from None
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        raise UsageFailure(f"{exc.strerror}: {exc.filename!r}") from None


def _tomllib():
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    return tomllib


def load_toml(path: str) -> dict[str, Any]:
    """Read a TOML file; a missing or malformed file is a usage error naming it."""
    try:
        with open(path, "rb") as handle:
            return _tomllib().load(handle)
    except OSError as exc:
        raise UsageFailure(f"cannot read config file {path!r}: {exc.strerror}") from None
    except _tomllib().TOMLDecodeError as exc:
        raise UsageFailure(f"config file {path!r} is not valid TOML: {exc}") from None


def parse_value(text: str) -> Any:
    """A ``--param`` value: a TOML literal (``5``, ``0.5``, ``true``, ``"x"``), else the text."""
    try:
        return _tomllib().loads(f"v = {text}")["v"]
    except Exception:  # noqa: BLE001 - anything not a TOML literal is a plain string
        return text


def is_rank0() -> bool:
    """True unless this process is an MPI rank other than 0 (from the launcher's environment)."""
    for name in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        value = os.environ.get(name, "").strip()
        if value.isdigit():
            return int(value) == 0
    return True
