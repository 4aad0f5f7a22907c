"""Exceptions users can cause, each with a message that says what to change.

Every error hpcacq raises on purpose derives from :class:`HpcacqError`, so a
caller (the CLI, the batch engine) can turn it into a one-line message or a
per-file outcome instead of a traceback.
"""

__all__ = [
    "HpcacqError",
    "InputError",
    "ParameterError",
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


class MissingUnitsError(ParameterError):
    """The physical steps ``dx_um`` / ``dt_s`` are unknown and were not given."""


class AnalysisCancelled(HpcacqError):
    """Raised by long-running work when its cancel callback returns True."""


class AnalysisExclusionError(HpcacqError):
    """Two analyses that exclude each other were requested on the same channel and ROI."""


class TemporaryStorageError(HpcacqError, OSError):
    """hpcacq's temporary on-disk lists (inputs, stored groups) cannot be written: no space or no folder."""
