"""The live status area of ``hpcacq run`` on a terminal (plain ANSI escapes, no dependency).

Redrawn in place a few times a second below the log::

    [12/100 files 12%] 0.85 files/s  25,400 lines/s  1m43s left  (14s elapsed)
      velocity_0003.tif  [##########..........]  48%  rank 0  3.2s
      velocity_0004.tif  [##..................]  10%  rank 1  0.4s

Log lines are printed above it (the area is cleared, the line written, the area drawn
again at the next redraw).
"""

from __future__ import annotations

import shutil
from typing import Any, TextIO

from ..jobs.progress import format_duration

__all__ = ["StatusArea", "status_lines"]

MAX_FILES_SHOWN = 8
BAR = 20


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 3)] + "..."


def status_lines(snapshot: Any, width: int = 100) -> list[str]:
    """The lines of the status area for one :class:`~hpcacq.jobs.progress.ProgressSnapshot`."""
    percent = 100.0 * snapshot.n_done / snapshot.n_total if snapshot.n_total else 100.0
    eta = "time left unknown" if snapshot.eta_s is None else f"{format_duration(snapshot.eta_s)} left"
    head = (f"[{snapshot.n_done}/{snapshot.n_total} files {percent:.0f}%] {snapshot.files_per_s:.2f} files/s  "
            f"{snapshot.lines_per_s:,.0f} lines/s  {eta}  ({format_duration(snapshot.elapsed_s)} elapsed)")
    lines = [_fit(head, width)]
    shown = snapshot.running[:MAX_FILES_SHOWN]
    name_width = max([12] + [len(_name(f.path)) for f in shown])
    name_width = min(name_width, max(12, width - BAR - 30))
    for item in shown:
        filled = int(round(BAR * item.fraction))
        state = f"{100 * item.fraction:3.0f}%" if item.total else "read"
        lines.append(_fit(f"  {_fit(_name(item.path), name_width):<{name_width}}  [{'#' * filled}{'.' * (BAR - filled)}]"
                          f" {state}  rank {item.rank}  {format_duration(item.elapsed_s)}", width))
    if len(snapshot.running) > MAX_FILES_SHOWN:
        lines.append(f"  ... and {len(snapshot.running) - MAX_FILES_SHOWN} more files in progress")
    return lines


def _name(path: str) -> str:
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or path


class StatusArea:
    """A block of lines at the bottom of a terminal, redrawn in place."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.height = 0  # lines currently drawn
        self.last: Any = None

    def _erase(self) -> str:
        # to the start of the area's first line, then clear to the end of the screen
        return ("\r" + (f"\033[{self.height - 1}F" if self.height > 1 else "") + "\033[J") if self.height else ""

    def draw(self, snapshot: Any) -> None:
        self.last = snapshot
        width = max(40, shutil.get_terminal_size((100, 24)).columns - 1)
        lines = status_lines(snapshot, width)
        self.stream.write(self._erase() + "\n".join(lines))
        self.stream.flush()
        self.height = len(lines)

    def print_above(self, line: str) -> None:
        self.stream.write(self._erase() + line + "\n")
        self.height = 0
        if self.last is not None:
            self.draw(self.last)
        else:
            self.stream.flush()

    def clear(self) -> None:
        self.stream.write(self._erase())
        self.stream.flush()
        self.height = 0
