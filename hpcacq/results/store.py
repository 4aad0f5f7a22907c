"""Crash-safe file operations and the root file of a results set.

Every file the writer makes is written under a ``.tmp`` name, closed, fsynced and
atomically renamed (``os.replace``), then its directory is fsynced: a reader (or a job
killed at any moment) sees either the previous complete file or the new complete one.
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import time
from collections.abc import Iterable
from typing import Any

import h5py
import numpy as np

from ..errors import ParameterError
from .layout import FORMAT, _scalar_attrs, append_manifest_columns, create_manifest, to_json

__all__ = ["open_h5", "acquire_lock", "release_lock", "fsync_path", "fsync_dir", "commit", "shard_name",
           "shard_numbers", "utc_now", "write_root_attrs", "write_linked_root", "extend_linked_root", "check_format",
           "remove_tree", "remove_trash"]

FORMAT_VERSION = 1
_SHARD = re.compile(r"^shard-(\d{5,})\.h5$")


METADATA_CACHE_MAX_BYTES = 4 << 20
RAW_CHUNK_CACHE_BYTES = 64 << 10  # per dataset (default 1 MiB); manifest columns are read in order


def open_h5(path: str, mode: str) -> h5py.File:
    """``h5py.File(path, mode)`` with HDF5's metadata cache bounded to 4 MiB (default 32 MiB).

    The writer's files hold thousands of small groups; HDF5 grows its metadata cache with
    them, which was ~15 MiB of rank 0's peak memory when consolidating 3000 files. Smaller
    is as fast here: these files are written once, in order.
    """
    handle = h5py.File(path, mode, rdcc_nbytes=RAW_CHUNK_CACHE_BYTES)
    try:
        config = handle.id.get_mdc_config()
        config.set_initial_size = True
        config.initial_size = min(config.initial_size, 1 << 20)
        config.min_size = min(config.min_size, 1 << 20)
        config.max_size = METADATA_CACHE_MAX_BYTES
        handle.id.set_mdc_config(config)
    except Exception:
        handle.close()
        raise
    return handle


def utc_now() -> str:
    """Current UTC time as ISO 8601 text, e.g. ``2026-11-23T20:01:02Z``."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def fsync_path(path: str) -> None:
    """Flush a closed file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str) -> None:
    """Flush a directory entry change (create, rename, unlink) to disk."""
    fd = os.open(path or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def commit(tmp: str, final: str, *, fsync: bool = True) -> None:
    """Atomically replace ``final`` by the complete, closed file ``tmp``."""
    if fsync:
        fsync_path(tmp)
    os.replace(tmp, final)
    if fsync:
        fsync_dir(os.path.dirname(os.path.abspath(final)))


def remove_tree(path: str) -> None:
    """Remove a folder by first renaming it away (atomic), so no half-deleted folder keeps its name."""
    if not os.path.exists(path):
        return
    trash = f"{path}.trash-{os.getpid()}-{time.monotonic_ns()}"
    os.replace(path, trash)
    fsync_dir(os.path.dirname(os.path.abspath(path)))
    shutil.rmtree(trash, ignore_errors=True)


def remove_trash(path: str) -> None:
    """Delete ``<path>.trash-*`` folders left by a job killed while removing ``path``."""
    folder, name = os.path.split(os.path.abspath(path))
    for entry in os.listdir(folder):
        if entry.startswith(name + ".trash-"):
            shutil.rmtree(os.path.join(folder, entry), ignore_errors=True)


def acquire_lock(path: str) -> int:
    """Hold an exclusive ``flock`` on ``path`` (one writer per output); returns its descriptor.

    The kernel releases the lock when the process dies, so a file left by a killed job
    does not block a resume.
    """
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise ParameterError(f"another process is writing {path[:-5]} (it holds {path}); wait for that "
                             "job to finish or choose another --output") from None
    return fd


def release_lock(fd: int, path: str) -> None:
    """Remove the lock file and release the lock (the file goes first, while still held)."""
    try:
        os.remove(path)
    except OSError:
        pass
    os.close(fd)


def shard_name(number: int) -> str:
    """File name of shard ``number`` inside the parts folder."""
    return f"shard-{number:05d}.h5"


def shard_numbers(parts: str) -> list[int]:
    """Shard numbers present in ``parts`` (ascending); leftover ``.tmp`` files are removed."""
    numbers = []
    for entry in os.listdir(parts):
        if entry.endswith(".tmp"):
            os.remove(os.path.join(parts, entry))
            continue
        match = _SHARD.match(entry)
        if match:
            numbers.append(int(match.group(1)))
    return sorted(numbers)


def check_format(handle: h5py.File, path: str) -> str:
    """The ``layout`` attr of an hpcacq results file; ParameterError for any other HDF5 file."""
    if handle.attrs.get("format") != FORMAT:
        raise ParameterError(f"{path} exists but is not an hpcacq results file (no attr format={FORMAT!r}); "
                             "choose another output name or pass --overwrite to replace it")
    return str(handle.attrs.get("layout", "consolidated"))


def write_root_attrs(handle: h5py.File, *, layout: str, job_attrs: dict, versions: dict, created: str,
                     n_files: int, n_rows: int) -> None:
    """Root attributes: format, layout, times, job parameters and software versions."""
    attrs = handle.attrs
    attrs["format"] = FORMAT
    attrs["format_version"] = FORMAT_VERSION
    attrs["layout"] = layout
    attrs["created_utc"] = created
    attrs["updated_utc"] = utc_now()
    attrs["job_json"] = to_json(job_attrs)
    _scalar_attrs(attrs, "job_", job_attrs)
    attrs["versions_json"] = to_json(versions)
    _scalar_attrs(attrs, "version_", versions)
    attrs["n_files"] = int(n_files)
    attrs["n_rows"] = int(n_rows)


def write_linked_root(path: str, links: Iterable[tuple[str, str]], manifest: Iterable[dict[str, np.ndarray]], *,
                      fsync: bool, **root_attrs: Any) -> None:
    """Write the root file from scratch: attrs, one external link per file group, the manifest.

    ``links`` holds (group name, shard file name relative to the root file's folder);
    ``manifest`` yields the rows as dicts of column arrays, so no list of all rows is built.
    """
    tmp = path + ".tmp"
    with open_h5(tmp, "w") as handle:
        write_root_attrs(handle, layout="linked", **root_attrs)
        _add_links(handle.create_group("files"), links)
        table = create_manifest(handle)
        for columns in manifest:
            append_manifest_columns(table, columns)
    commit(tmp, path, fsync=fsync)


def extend_linked_root(path: str, links: Iterable[tuple[str, str]], columns: dict[str, np.ndarray], *,
                       fsync: bool, **root_attrs: Any) -> None:
    """Next version of the root file: a copy of it with new ``links`` and ``columns``' rows added.

    Costs memory in proportion to the rows added, not to the rows already stored (the file
    is copied by the OS, not read into Python), and stays crash-safe: the copy is committed
    like any new file. Each append leaves a few KB of HDF5 free space in the file; the
    writer rewrites the root in full when it has grown too much.
    """
    tmp = path + ".tmp"
    shutil.copyfile(path, tmp)
    with open_h5(tmp, "r+") as handle:
        write_root_attrs(handle, layout="linked", **root_attrs)
        _add_links(handle["files"], links)
        append_manifest_columns(handle["manifest"], columns)
    commit(tmp, path, fsync=fsync)


def _add_links(files: h5py.Group, links: Iterable[tuple[str, str]]) -> None:
    """``files/<name>`` -> external link to ``/files/<name>`` in ``target`` (relative path)."""
    for name, target in links:
        files[name] = h5py.ExternalLink(target, f"/files/{name}")
