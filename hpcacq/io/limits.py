"""Safe opening and memory bounds: nothing is allocated from a shape nobody checked.

Two guards every reader goes through before it reads pixels:

- :func:`open_regular` opens a file only if it is a regular file. FIFOs, sockets,
  devices, folders, dangling links and symbolic-link loops are refused with a message
  naming the path, *without blocking*: the type is checked with ``stat`` first and the
  file is opened with ``O_NONBLOCK`` (a FIFO swapped in between cannot block ``open``).
- :func:`check_memory` compares the memory a file will need (declared shape x dtype,
  plus the analysis's working copies) with the per-rank bound *before* anything is read.

The bound (bytes) is, in order: the ``max_memory`` option (``hpcacq run --max-memory``,
``JobConfig.max_memory``, ``AcqImage.open(max_memory=)``), else the environment variable
``HPCACQ_MAX_MEMORY``, else half of this node's memory (the smaller of physical memory
and the cgroup limit) divided by the MPI ranks on the node. Sizes are given as bytes or
with a unit: ``"4G"``, ``"512MiB"``, ``"1.5GB"``, or a share of the node's memory such as
``"25%"``.
"""

from __future__ import annotations

import errno
import math
import os
import re
import stat
from dataclasses import dataclass

from ..errors import AnalysisCancelled, InputError, ParameterError

__all__ = ["DEFAULT_SHARE", "READ_BLOCK_BYTES", "check_cancel", "check_read_options", "ENV_MAX_MEMORY", "MemoryNeed", "check_memory", "default_memory_bound",
           "describe_not_regular", "format_bytes", "node_memory_bytes", "open_regular", "parse_size",
           "resolve_memory_bound"]

ENV_MAX_MEMORY = "HPCACQ_MAX_MEMORY"
READ_BLOCK_BYTES = 64 << 20  # large files are read in blocks of this size, polling cancellation between them
DEFAULT_SHARE = 0.5  # of the node's memory, shared by its ranks
_UNITS = {"": 1, "B": 1, "K": 1e3, "KB": 1e3, "KIB": 2**10, "M": 1e6, "MB": 1e6, "MIB": 2**20,
          "G": 1e9, "GB": 1e9, "GIB": 2**30, "T": 1e12, "TB": 1e12, "TIB": 2**40}
_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)\s*([A-Za-z]*|%)\s*$")


def format_bytes(n: float) -> str:
    """``1536 -> '1.5 KiB'`` (binary units, for messages)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} EiB"


def node_memory_bytes() -> int:
    """Memory of this node usable by the job: physical memory, or the cgroup limit if smaller."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(limit_file, encoding="ascii") as handle:
                text = handle.read().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < total:
            total = int(text)
    return int(total)


def _ranks_on_node() -> int:
    for name in ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "PMI_LOCAL_SIZE", "MPICH_LOCAL_SIZE"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    match = re.match(r"^(\d+)", os.environ.get("SLURM_NTASKS_PER_NODE", ""))
    if match and int(match.group(1)) > 0:
        return int(match.group(1))
    return 1


def parse_size(text: object, *, what: str = "--max-memory (max_memory)") -> int:
    """Bytes from ``4G``, ``512MiB``, ``1.5GB``, ``25%`` (of the node's memory) or a number.

    Raises
    ------
    ParameterError
        Not a size, or not > 0.
    """
    if isinstance(text, bool):
        raise ParameterError(f"{what}={text!r} must be a size such as 4G, 512MiB or 25%")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        match = _SIZE_RE.match(str(text))
        unit = match.group(2).upper() if match else None
        if not match or (unit != "%" and unit not in _UNITS):
            raise ParameterError(f"{what}={text!r} must be a size such as 4G, 512MiB, 1.5GB, 25% or a number "
                                 "of bytes")
        number = float(match.group(1))
        if unit == "%":
            if not 0 < number <= 100:
                raise ParameterError(f"{what}={text!r}: a share of the node's memory must be in (0, 100]%")
            value = node_memory_bytes() * number / 100
        else:
            value = number * _UNITS[unit]
    if not (math.isfinite(value) and value >= 1):
        raise ParameterError(f"{what}={text!r} must be a size > 0 such as 4G")
    return int(value)


def default_memory_bound() -> int:
    """Half of the node's memory divided by the MPI ranks on the node (bytes)."""
    return int(node_memory_bytes() * DEFAULT_SHARE / _ranks_on_node())


def resolve_memory_bound(max_memory: object = None) -> int:
    """The per-rank bound in bytes: ``max_memory``, else ``$HPCACQ_MAX_MEMORY``, else the default."""
    if max_memory is not None:
        return parse_size(max_memory)
    env = os.environ.get(ENV_MAX_MEMORY, "").strip()
    if env:
        return parse_size(env, what=f"${ENV_MAX_MEMORY}")
    return default_memory_bound()


@dataclass(frozen=True)
class MemoryNeed:
    """What reading and analysing one file will hold at its peak (bytes)."""

    read_bytes: int
    working_bytes: int

    @property
    def total(self) -> int:
        return self.read_bytes + self.working_bytes


def check_memory(source: str, *, shape: tuple, itemsize: int, copies: float = 1.0,
                 channel_pixels: int | None = None, working_per_pixel: float = 0.0,
                 bound: int, extra_bytes: int = 0) -> MemoryNeed:
    """Refuse a file whose estimated memory need exceeds ``bound``, before reading it.

    Parameters
    ----------
    source : str
        The file (named in the message).
    shape : tuple of int
        The declared shape of everything that will be read (Python ints: no overflow).
    itemsize : int
        Bytes per pixel in the file's dtype.
    copies : float
        Copies of the read pixels alive at once (2 when the pixels must be reordered).
    channel_pixels : int, optional
        Pixels of the channel the analysis works on (default: all pixels).
    working_per_pixel : float
        The analysis's extra bytes per pixel of that channel.
    bound : int
        The per-rank bound in bytes.
    extra_bytes : int
        Reading's own buffers (e.g. one decoded compressed strip).

    Raises
    ------
    InputError
        The need exceeds the bound; the message gives both and the option to raise it.
    """
    n_pixels = math.prod(int(n) for n in shape)
    read = n_pixels * int(itemsize) * copies + int(extra_bytes)
    working = (n_pixels if channel_pixels is None else int(channel_pixels)) * working_per_pixel
    need = MemoryNeed(int(read), int(working))
    if need.total > bound:
        raise InputError(
            f"{source}: needs about {format_bytes(need.total)} of memory (shape {tuple(int(n) for n in shape)}, "
            f"{itemsize} byte(s) per pixel, with the analysis's working copies), more than the bound of "
            f"{format_bytes(bound)} per rank; if the shape is right, raise the bound with --max-memory "
            f"(or ${ENV_MAX_MEMORY}, or fewer ranks per node); a header declaring an impossible size "
            "means the file is damaged")
    return need


def describe_not_regular(mode: int) -> str | None:
    """What a non-regular file is (``"a FIFO (named pipe)"``), or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _stat_error(path: str, exc: OSError, what: str) -> InputError:
    if exc.errno == errno.ELOOP:
        return InputError(f"{path}: symbolic link loop (a link that points to itself); fix or remove the link")
    if exc.errno == errno.ENOENT:
        if os.path.islink(path):
            return InputError(f"{path}: dangling symbolic link (its target {os.readlink(path)!r} does not exist)")
        return InputError(f"{path}: no such file; check the path")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return InputError(f"{path}: permission denied; make the {what} readable (chmod +r)")
    if exc.errno == errno.ENAMETOOLONG:
        return InputError(f"{path}: the path is too long for the file system")
    return InputError(f"{path}: cannot open the {what} ({exc.strerror or exc})")


def open_regular(path: str | os.PathLike, *, what: str = "file", max_bytes: int | None = None):
    """Open ``path`` for binary reading if (and only if) it is a regular, non-empty file.

    Never blocks: the type is checked with ``stat`` before opening, the open uses
    ``O_NONBLOCK`` and the type is checked again on the open descriptor.

    Parameters
    ----------
    what : str
        Word used in messages ("file", "sidecar", "header").
    max_bytes : int, optional
        Refuse files larger than this (small text files such as sidecars).

    Returns
    -------
    file object
        A binary file object; the caller closes it.

    Raises
    ------
    InputError
        Missing, dangling link, link loop, not a regular file, unreadable, empty or too large.
    """
    path = os.fspath(path)
    try:
        kind = describe_not_regular(os.stat(path).st_mode)
    except (OSError, ValueError) as exc:
        raise _stat_error(path, exc, what) if isinstance(exc, OSError) else InputError(f"{path}: invalid path ({exc})") from exc
    if kind is not None:
        raise InputError(f"{path}: is {kind}, not a {what}; hpcacq reads regular files only")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _stat_error(path, exc, what) from None
    try:
        info = os.fstat(fd)
        kind = describe_not_regular(info.st_mode)
        if kind is not None:
            raise InputError(f"{path}: is {kind}, not a {what}; hpcacq reads regular files only")
        if info.st_size == 0:
            raise InputError(f"{path}: the {what} is empty (0 bytes); re-export or remove it")
        if max_bytes is not None and info.st_size > max_bytes:
            raise InputError(f"{path}: the {what} is {format_bytes(info.st_size)}, more than the "
                             f"{format_bytes(max_bytes)} such a file can be; it is not a {what}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


_AXES_LETTERS = set("TCYX")


def check_read_options(options: dict | None) -> dict:
    """Validate reader options ``transpose`` (bool), ``axes`` (letters T, C, Y, X) and
    ``max_memory`` (a size); return them without the unset ones.

    Raises
    ------
    ParameterError
        An unknown option or a bad value (the message names it).
    """
    options = dict(options or {})
    unknown = sorted(set(options) - {"transpose", "axes", "max_memory"})
    if unknown:
        raise ParameterError(f"unknown reader option(s) {unknown}; valid: axes, max_memory, transpose")
    out: dict = {}
    if options.get("transpose") not in (None, False):
        if options["transpose"] is not True:
            raise ParameterError(f"transpose={options['transpose']!r} must be True or False")
        out["transpose"] = True
    axes = options.get("axes")
    if axes is not None:
        text = str(axes).strip().upper()
        if not text or set(text) - _AXES_LETTERS or len(set(text)) != len(text) or "X" not in text \
                or not {"T", "Y"} & set(text):
            raise ParameterError(f"--axes (axes=) {axes!r} must be letters from T (blocks of lines joined in time), "
                                 "C (channels), Y (lines), X (pixels), each once, with X and Y or T (e.g. TYX)")
        out["axes"] = text
    if options.get("max_memory") is not None:
        parse_size(options["max_memory"])
        out["max_memory"] = options["max_memory"]
    return out


def check_cancel(cancel, source: str) -> None:
    """Raise AnalysisCancelled when the job was cancelled while ``source`` was being read."""
    if cancel is not None and cancel():
        raise AnalysisCancelled(f"{source}: reading cancelled")
