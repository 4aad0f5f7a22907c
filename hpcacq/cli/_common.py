"""What every command shares: library errors -> one-line Click errors, TOML files, rank."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Iterator

import click

from ..errors import HpcacqError

__all__ = ["UsageFailure", "library_errors", "load_toml", "parse_value", "is_rank0"]


class UsageFailure(click.ClickException):
    """A problem the user can fix (exit code 2), shown as one line."""

    exit_code = 2

    def format_message(self) -> str:
        return " ".join(self.message.split())  # one line, whatever the library wrote

    def show(self, file: Any = None) -> None:
        if is_rank0():  # under MPI every rank raises the same error; one message is enough
            super().show(file)


@contextlib.contextmanager
def library_errors() -> Iterator[None]:
    """Turn :class:`hpcacq.errors.HpcacqError` (and bad files) into a one-line exit-2 error."""
    try:
        yield
    except HpcacqError as exc:
        raise UsageFailure(str(exc)) from None
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
