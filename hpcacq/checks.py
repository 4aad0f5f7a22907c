"""Checks of the numbers and names users give: one wording at every layer.

Every check raises :class:`~hpcacq.errors.ParameterError` with one message pattern,
``"<name> must be <what>, got <value>; <hint>"``, and returns the value converted
(``float`` or ``int``). Python and NumPy numbers pass (``numbers.Real`` /
``numbers.Integral``); ``bool`` never counts as a number. Like :mod:`hpcacq.errors`
this module imports nothing of hpcacq but the errors, so every layer (kernels
excepted) can use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from numbers import Integral, Real
from typing import Any, NoReturn, TypeVar

from .errors import ParameterError

__all__ = ["fail", "number", "positive", "non_negative", "integer", "window_lines", "one_of", "flag", "optional"]

T = TypeVar("T")


def fail(name: str, what: str, value: Any, hint: str = "") -> NoReturn:
    """Raise ``ParameterError("<name> must be <what>, got <value!r>; <hint>")``."""
    raise ParameterError(f"{name} must be {what}, got {value!r}" + (f"; {hint}" if hint else ""))


def _real(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def number(name: str, value: Any, hint: str = "") -> float:
    """A finite number (int or float, Python or NumPy), as a float."""
    if not _real(value) or not math.isfinite(value):
        fail(name, "a finite number", value, hint)
    return float(value)


def positive(name: str, value: Any, hint: str = "") -> float:
    """A finite number > 0, as a float."""
    if not _real(value) or not math.isfinite(value) or value <= 0:
        fail(name, "a finite number > 0", value, hint)
    return float(value)


def non_negative(name: str, value: Any, hint: str = "") -> float:
    """A finite number >= 0, as a float."""
    if not _real(value) or not math.isfinite(value) or value < 0:
        fail(name, "a finite number >= 0", value, hint)
    return float(value)


def integer(name: str, value: Any, low: int | None = None, hint: str = "") -> int:
    """An integer (not bool), at least ``low`` when given, as an int."""
    if not isinstance(value, Integral) or isinstance(value, bool) or (low is not None and value < low):
        fail(name, "an integer" if low is None else f"an integer >= {low}", value, hint)
    return int(value)


def window_lines(value: Any, low: int = 4) -> int:
    """``value`` as an int if it is a multiple of 4 and at least ``low``: the window length of
    the velocity methods (windows advance by a quarter of it)."""
    if not isinstance(value, Integral) or isinstance(value, bool) or value < low or value % 4:
        what = "a positive multiple of 4 (e.g. 16 or 32)" if low <= 4 else f"a multiple of 4, at least {low} (e.g. 32)"
        fail("window_lines", what, value, "windows advance by window_lines // 4 lines")
    return int(value)


def one_of(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """``value`` if it is one of ``choices``; the message lists them."""
    if isinstance(value, bool) or value not in choices:
        fail(name, f"one of {', '.join(map(repr, choices))}", value)
    return value


def flag(name: str, value: Any) -> bool:
    """True or False (Python or NumPy bool), as a bool."""
    numpy_bool = type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_")
    if not isinstance(value, bool) and not numpy_bool:
        fail(name, "True or False", value)
    return bool(value)


def optional(check: Callable[..., T], name: str, value: Any, *args: Any, **kwargs: Any) -> T | None:
    """None stays None; any other value goes through ``check(name, value, *args, **kwargs)``."""
    return None if value is None else check(name, value, *args, **kwargs)
