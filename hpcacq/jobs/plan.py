"""Which files a job runs, in order: all of them, or on ``--resume`` those not already done.

Rank 0 plans once, before any file is handed out. Nothing per file stays in memory: the
inputs are read lazily, every path goes out in its canonical spelling
(:func:`hpcacq.jobs.resume.canonical_path`), and on resume the indices of the files still
to run go to a temporary file (8 bytes each) while the done index of the output is
compared file by file (:func:`hpcacq.jobs.resume.already_done`).
"""

from __future__ import annotations

import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

from .config import JobConfig
from .resume import already_done, canonical_path, job_options

__all__ = ["Todo", "plan_todo"]


class Todo:
    """Files not handed out yet, as (index, path), read lazily: constant memory at any length."""

    def __init__(self, items: Iterable[tuple[int, str]], count: int):
        self._items, self._left = iter(items), int(count)

    def __len__(self) -> int:
        return self._left

    def take(self, n: int) -> list[tuple[int, str]]:
        """The next ``n`` files (fewer at the end)."""
        wanted = max(0, min(n, self._left))
        out = list(islice(self._items, wanted))
        self._left = self._left - len(out) if len(out) == wanted else 0  # the list ended early
        return out


def plan_todo(config: JobConfig, writer: Any, log: Callable[[str], None]) -> tuple[Todo, int]:
    """Files to run now (index, canonical path) and the number skipped as already done (resume).

    ``writer`` is the job's open results writer: on resume its ``done_fingerprints()`` tell
    what is stored; ``log`` gets one line with the count skipped.
    """
    inputs = config.inputs
    if not config.resume:
        return Todo(_canonical(enumerate(inputs)), len(inputs)), 0
    from ..results.records import path_text  # the manifest's text of a path (undecodable bytes escaped)

    done = writer.done_fingerprints()
    strategy = config.strategy()
    reference, options = strategy.reference_params(), job_options(strategy)
    spool = tempfile.TemporaryFile()
    block, n_keep = array("q"), 0
    try:
        for index, path in _canonical(enumerate(inputs)):
            if not already_done(done.get(path_text(path)), path, config, reference, options=options):
                block.append(index)
                n_keep += 1
                if len(block) == 4096:
                    block.tofile(spool)
                    del block[:]
        block.tofile(spool)
    except BaseException:
        spool.close()
        raise
    finally:
        getattr(done, "close", lambda: None)()
    n_skipped = len(inputs) - n_keep
    log(f"resume: {n_skipped} of {len(inputs)} files already done")
    return Todo(_canonical(_spooled(spool, inputs)), n_keep), n_skipped


def _canonical(items: Iterable[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """(index, canonical path): one spelling of each input everywhere (see jobs/resume.py)."""
    return ((index, canonical_path(path)) for index, path in items)


def _spooled(spool: Any, inputs: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(index, path) of the inputs whose indices (ascending int64) are in the ``spool`` file."""
    def indices() -> Iterator[int]:
        spool.seek(0)
        while data := spool.read(8 * 4096):
            block = array("q")
            block.frombytes(data)
            yield from block

    with spool:
        wanted = indices()
        next_index = next(wanted, None)
        for index, path in enumerate(inputs):
            if next_index is None:
                return
            if index == next_index:
                yield index, path
                next_index = next(wanted, None)
