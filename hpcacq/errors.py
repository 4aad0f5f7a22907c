"""Exceptions users can cause, each with a message that says what to change.

Every error hpcacq raises on purpose derives from :class:`HpcacqError`, so a
caller (the CLI, the batch engine) can turn it into a one-line message or a
per-file outcome instead of a traceback.
"""

__all__ = [
    "HpcacqError",
    "InputError",
    "ParameterError",
    "UnknownParameterError",
    "MissingUnitsError",
    "AnalysisCancelled",
    "AnalysisExclusionError",
    "TemporaryStorageError",
]


class HpcacqError(Exception):
    """Base class of all errors hpcacq raises on purpose."""


class InputError(HpcacqError, ValueError):
    """An input file or array cannot be used (unreadable, wrong shape, NaN pixels, ...)."""


class ParameterError(HpcacqError, ValueError):
    """An analysis or job parameter is invalid (unknown name, out of range, ...)."""


class UnknownParameterError(ParameterError, KeyError):
    """A detection parameter name is not known; the message lists the valid names.

    Also a :class:`KeyError`, as acqstore raises for an unknown detection parameter.
    """

    def __str__(self) -> str:  # KeyError would show the message quoted
        return str(self.args[0]) if self.args else ""


class MissingUnitsError(ParameterError):
    """The physical steps ``dx_um`` / ``dt_s`` are unknown and were not given."""


class AnalysisCancelled(HpcacqError, RuntimeError):
    """Raised by long-running work when its cancel callback returns True (a RuntimeError, as in acqstore)."""


class AnalysisExclusionError(HpcacqError, ValueError):
    """Two analyses that exclude each other were requested on the same channel and ROI (a ValueError, as in acqstore)."""


class TemporaryStorageError(HpcacqError, OSError):
    """hpcacq's temporary on-disk lists (inputs, stored groups) cannot be written: no space or no folder."""
