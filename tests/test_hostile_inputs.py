"""Issue 11 items 6-9 and 13 (@list part), issue 14 item 2: hostile inputs are rows, never hangs or exit 4.

Each numbered case of the issue is marked ``# issue 11.N``; every one of them failed on
main before this change (exit 4, a hang, a 10 GB allocation, a raw library message, or
a file silently dropped).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import tracemalloc
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile

from hpcacq.errors import InputError
from hpcacq.io import read_acquisition
from hpcacq.results.reader import read_manifest

RUN_UNITS = ("--dx-um", "0.5", "--dt-s", "1e-3")
PEAK_SCRIPT = (
    "import sys\nfrom hpcacq.cli import main\n"
    "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    rc = e.code\n"
    "peak = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
    "print('RC', rc, 'PEAK_KB', peak)\n"
)
from helpers.cli import hpcacq


def run_subprocess(*args, timeout: float = 120, env: dict | None = None) -> tuple[int, int, str]:
    """``hpcacq ARGS`` in a fresh process: (exit code, peak RSS in bytes, output). A hang fails the test."""
    proc = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
    text = proc.stdout + proc.stderr
    assert "RC" in proc.stdout, text
    rc = int(proc.stdout.split("RC")[1].split()[0])
    return rc, int(proc.stdout.split("PEAK_KB")[1].split()[0]) * 1024, text


def _good(path: Path, seed: int = 0) -> Path:
    np.save(path, np.random.default_rng(seed).integers(0, 4000, (200, 20), dtype=np.uint16))
    return path


def _rows(output) -> dict[str, dict]:
    return {os.path.basename(row["file"]): row for row in read_manifest(output)}


# ---------------------------------------------------------------- 11.6 decompression bombs, lying headers

@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bombs")
    with h5py.File(folder / "lie.h5", "w") as f:  # declares 8 GB, stores nothing
        f.create_dataset("data", shape=(50000, 20000), dtype="float64")
    tifffile.imwrite(folder / "zeros.tif", iter([_zlib_zeros(50, 40000 * 1000)]), shape=(50000, 40000),
                     dtype=np.uint8, compression="zlib", rowsperstrip=50000)  # 2 GB of zeros in 1.9 MB
    return folder


def _zlib_zeros(n_blocks: int, block_size: int) -> bytes:
    """A zlib stream of ``n_blocks * block_size`` zero bytes, built without compressing them all.

    After a full flush the deflate output of the next block does not depend on what came
    before, so one compressed block repeats; the Adler-32 of n zeros is ``(n % 65521) << 16 | 1``.
    """
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate: the zlib header and checksum are added here
    block = deflate.compress(bytes(block_size)) + deflate.flush(zlib.Z_FULL_FLUSH)
    n = n_blocks * block_size
    return b"\x78\xda" + block * n_blocks + deflate.flush(zlib.Z_FINISH) + ((n % 65521) << 16 | 1).to_bytes(4, "big")


# issue 11.6
def test_bombs_are_refused_with_peak_memory_under_the_bound(bombs, tmp_path):
    assert (bombs / "lie.h5").stat().st_size < 2000 and (bombs / "zeros.tif").stat().st_size < 2_000_000
    bound = 1_000_000_000
    rc, peak, text = run_subprocess("run", bombs, "-o", tmp_path / "o.h5", *RUN_UNITS, "--max-memory", "1G",
                                    "--threads", "1")
    assert rc == 1, text
    rows = _rows(tmp_path / "o.h5")
    assert rows["lie.h5"]["outcome"] == "FAILED" and "stores no pixels" in rows["lie.h5"]["message"]
    assert rows["zeros.tif"]["outcome"] == "FAILED" and "more than the bound" in rows["zeros.tif"]["message"]
    assert all("lie.h5" in r["message"] or "zeros.tif" in r["message"] for r in rows.values())
    assert peak < bound, peak
    # the default bound (half the node's memory per rank) refuses them as quickly
    rc, peak_default, text = run_subprocess("run", bombs, "-o", tmp_path / "d.h5", *RUN_UNITS)
    assert rc == 1 and peak_default < bound, (peak_default, text)
    print(f"bombs: peak RSS {peak / 2**20:.0f} MiB (bound 1G), {peak_default / 2**20:.0f} MiB (default bound)")


# issue 11.6
@pytest.mark.parametrize("rows_per_strip, bound, refused", [(20000, "75M", "65M"), (500, "23M", "19M")])
def test_a_compressed_file_under_the_bound_is_read_within_it(tmp_path, rows_per_strip, bound, refused):
    """20 MB of zlib zeros (one strip, or strips of 500 lines) read with a peak under the bound."""
    path = tmp_path / "z.tif"
    tifffile.imwrite(path, np.zeros((20000, 1000), np.uint8), compression="zlib", rowsperstrip=rows_per_strip)
    assert path.stat().st_size < 200_000
    tracemalloc.start()
    try:
        raw = read_acquisition(path, max_memory=bound)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert raw.data.shape == (1, 20000, 1000) and peak < float(bound[:-1]) * 1e6, peak
    with pytest.raises(InputError, match="more than the bound"):
        read_acquisition(path, max_memory=refused)


# issue 11.6
def test_npy_header_declaring_more_than_the_file_holds_is_refused_quickly(tmp_path):
    path = tmp_path / "lie.npy"
    header = {"descr": "<f8", "fortran_order": False, "shape": (50000, 20000)}
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        handle.write(b"\0" * 1024)
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match=r"lie\.npy: the \.npy header declares shape \(50000, 20000\).*truncated"):
            read_acquisition(path)
        assert tracemalloc.get_traced_memory()[1] < 10_000_000
    finally:
        tracemalloc.stop()


# ---------------------------------------------------------------- 11.7, 11.8 non-regular inputs

def _hostile_folder(folder: Path) -> dict[str, str]:
    """Every kind of entry that is not a regular image file, named like one; returns name -> expected words."""
    folder.mkdir()
    _good(folder / "good.npy")
    os.mkfifo(folder / "fifo.tif")
    os.symlink("loop.tif", folder / "loop.tif")  # points to itself
    os.symlink("missing.tif", folder / "dangling.tif")
    os.symlink("/dev/null", folder / "device.tif")
    (folder / "folder.tif").mkdir()
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "sock.npy"))
    server.close()
    return {"fifo.tif": "FIFO", "loop.tif": "symbolic link loop", "dangling.tif": "dangling symbolic link",
            "device.tif": "character device", "folder.tif": "folder", "sock.npy": "socket"}


# issue 11.7, issue 11.8
def test_fifos_links_devices_sockets_and_folders_are_rows_not_hangs(tmp_path):
    expected = _hostile_folder(tmp_path / "d")
    start = time.perf_counter()
    rc, _, text = run_subprocess("run", tmp_path / "d", "-o", tmp_path / "o.h5", *RUN_UNITS, timeout=120)
    assert rc == 1, text  # not 4, no hang
    assert time.perf_counter() - start < 120
    rows = _rows(tmp_path / "o.h5")
    assert set(rows) == set(expected) | {"good.npy"}, rows.keys()
    assert rows["good.npy"]["outcome"] == "OK"
    for name, words in expected.items():
        assert rows[name]["outcome"] == "FAILED", rows[name]
        assert name in rows[name]["message"] and words in rows[name]["message"], rows[name]["message"]


# issue 11.7
def test_a_fifo_given_by_name_never_blocks(tmp_path):
    os.mkfifo(tmp_path / "pipe.npy")
    start = time.perf_counter()
    with pytest.raises(InputError, match=r"pipe\.npy: is a FIFO \(named pipe\)"):
        read_acquisition(tmp_path / "pipe.npy")
    _good(tmp_path / "a.npy")
    os.mkfifo(tmp_path / "a.json")  # a FIFO as the sidecar
    with pytest.raises(InputError, match=r"a\.json: is a FIFO"):
        read_acquisition(tmp_path / "a.npy")
    assert time.perf_counter() - start < 5


# ---------------------------------------------------------------- 11.9 values from files validated where read

def _sidecar(rois=None, header=None) -> dict:
    doc: dict = {"rois": rois if rois is not None else [
        {"roi_id": 1, "channel": 1, "data": {"x0": 0, "x1": 20, "y0": 0, "y1": 200}}]}
    if header is not None:
        doc["header"] = header
    return doc


def _roi(**data) -> list:
    bounds = {"x0": 0, "x1": 20, "y0": 0, "y1": 200}
    bounds.update(data.pop("data", {}))
    return [{"roi_id": data.pop("roi_id", 1), "channel": 1, "data": bounds}]


SIDECARS = {
    "bound 1e400": ('{"rois": [{"roi_id": 1, "data": {"x0": 0, "x1": 1e400, "y0": 0, "y1": 200}}]}', "'x1'"),
    "bound NaN": ('{"rois": [{"roi_id": 1, "data": {"x0": 0, "x1": NaN, "y0": 0, "y1": 200}}]}', "'x1'"),
    "voxels 10^400": (json.dumps(_sidecar(header={"voxels": [10**400, 0.3]})), "header.voxels[0]"),
    "voxels inf": ('{"header": {"voxels": [Infinity, 0.3]}}', "header.voxels[0]"),
    "voxels_units 5": (json.dumps(_sidecar(header={"voxels": [1e-3, 0.3], "voxels_units": 5})), "voxels_units"),
    "nested 100000 deep": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    "roi id 2^63-1": (json.dumps(_sidecar(_roi(roi_id=2**63 - 1))), "'roi_id'"),
    "roi id 2^70": (json.dumps(_sidecar(_roi(roi_id=2**70))), "'roi_id'"),
    "roi id 5000 digits": ('{"rois": [{"roi_id": ' + "9" * 5000 + ', "data": {}}]}', "cannot be read"),
    "dx 1e300": (json.dumps(_sidecar(header={"voxels": [1e-3, 1e300]})), "plausible range"),
    "dt 1e-30": (json.dumps(_sidecar(header={"voxels": [1e-30, 0.3]})), "plausible range"),
    "shape 10^400": (json.dumps(_sidecar(header={"shape": [10**400, 20]})), "header.shape[0]"),
    "channel 10^30": (json.dumps({"rois": [{"roi_id": 1, "channel": 10**30,
                                            "data": {"x0": 0, "x1": 20, "y0": 0, "y1": 200}}]}), "'channel'"),
}


# issue 11.9
@pytest.mark.parametrize("case", sorted(SIDECARS))
def test_sidecar_values_are_validated_naming_file_and_field(tmp_path, case):
    text, field = SIDECARS[case]
    _good(tmp_path / "scan.npy")
    (tmp_path / "scan.json").write_text(text)
    with pytest.raises(InputError) as info:
        read_acquisition(tmp_path / "scan.npy")
    message = str(info.value)
    assert str(tmp_path / "scan.json") in message and field in message, message
    assert len(message) < 600


# issue 11.9
def test_absurd_units_in_headers_are_refused_with_a_plausible_range(tmp_path):
    from hpcacq.io.olympus import format_olympus_header

    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["data"] = np.zeros((200, 20), np.uint16)
        f["data"].attrs["dx_um"] = 1e300
    with pytest.raises(InputError, match=r"a\.h5: field 'attribute dx_um' gives dx_um = 1e\+300 .*plausible range"):
        read_acquisition(tmp_path / "a.h5")
    tifffile.imwrite(tmp_path / "b.tif", np.zeros((200, 20), np.uint16))
    (tmp_path / "b.txt").write_text(format_olympus_header(n_lines=200, n_pixels=20, dx_um=1e300, dt_s=1e-3))
    with pytest.raises(InputError, match=r"b\.txt: field 'X Dimension' gives dx_um = 1e\+300.*plausible range"):
        read_acquisition(tmp_path / "b.tif")


# issue 11.9
def test_library_exceptions_are_wrapped_naming_the_file(tmp_path, monkeypatch):
    path = tmp_path / "z.tif"
    tifffile.imwrite(path, np.zeros((200, 20), np.uint16))

    def boom(*args, **kwargs):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(tifffile.TiffFile, "__init__", boom)
    with pytest.raises(InputError, match=r"z\.tif: the TIFF is truncated or corrupt \(ZeroDivisionError"):
        read_acquisition(path)


# issue 11.9 (and the input side of 11.1): ids that do not fit are the file's FAILED row, the others are kept
def test_roi_ids_beyond_int64_are_that_files_failed_row(tmp_path, capsys):
    folder = tmp_path / "d"
    folder.mkdir()
    for i in range(3):
        _good(folder / f"g{i}.npy", seed=i)
    _good(folder / "big.npy")
    (folder / "big.json").write_text(json.dumps(_sidecar(_roi(roi_id=2**63 - 1))))
    _good(folder / "huge.npy")
    (folder / "huge.json").write_text(json.dumps(_sidecar(_roi(roi_id=2**70))))
    code, out, err = hpcacq(capsys, "run", folder, "-o", tmp_path / "o.h5", *RUN_UNITS)
    assert code == 1, out + err
    rows = _rows(tmp_path / "o.h5")
    assert [rows[f"g{i}.npy"]["outcome"] for i in range(3)] == ["OK"] * 3
    for name in ("big", "huge"):
        assert rows[f"{name}.npy"]["outcome"] == "FAILED"
        assert f"{name}.json" in rows[f"{name}.npy"]["message"] and "roi_id" in rows[f"{name}.npy"]["message"]


# ---------------------------------------------------------------- 14.2 results are never inputs, --recursive

# issue 14.2
def test_results_inside_the_input_folder_are_skipped_with_one_line(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        _good(data / f"s{i}.npy", seed=i)
    code, out, err = hpcacq(capsys, "run", data, "-o", data / "velocity.h5", *RUN_UNITS)
    assert code == 0, out + err
    code, out, err = hpcacq(capsys, "run", data, "-o", data / "again.h5", *RUN_UNITS)
    assert code == 0, out + err  # no FAILED row for velocity.h5
    assert sorted(_rows(data / "again.h5")) == ["s0.npy", "s1.npy"]
    skipped = [line for line in err.splitlines() if "velocity.h5" in line]
    assert len(skipped) == 1 and "hpcacq results file" in skipped[0] and skipped[0].startswith("skipped")
    # a results file named directly is never read either
    code, out, err = hpcacq(capsys, "run", data / "velocity.h5", "-o", tmp_path / "x.h5", *RUN_UNITS)
    assert code == 2 and "no input files left" in err and "hpcacq results file" in err


# issue 14.2, 14.6
def test_recursive_search_skips_parts_folders_and_the_error_suggests_it(tmp_path, capsys):
    top = tmp_path / "top"
    (top / "a" / "b").mkdir(parents=True)
    _good(top / "a" / "one.npy")
    _good(top / "a" / "b" / "two.npy", seed=1)
    (top / "out.h5.parts").mkdir()
    _good(top / "out.h5.parts" / "shard-00001.npy")  # anything inside a parts folder is never an input
    (top / ".hidden").mkdir()
    _good(top / ".hidden" / "three.npy")
    code, out, err = hpcacq(capsys, "run", top, "-o", tmp_path / "o.h5", *RUN_UNITS)
    assert code == 2 and "holds no" in err and "--recursive" in err
    code, out, err = hpcacq(capsys, "run", top, "-o", tmp_path / "o.h5", *RUN_UNITS, "--recursive")
    assert code == 0, out + err
    assert sorted(os.path.relpath(r["file"], top) for r in read_manifest(tmp_path / "o.h5")) == \
        [os.path.join("a", "b", "two.npy"), os.path.join("a", "one.npy")]
    from hpcacq.jobs.inputs import expand_inputs

    assert expand_inputs([top], recursive=True) == [str(top / "a" / "b" / "two.npy"), str(top / "a" / "one.npy")]
    assert "out.h5.parts" in err and "results parts folder" in err


def test_recursive_follows_a_folder_link_once(tmp_path):
    from hpcacq.jobs.inputs import InputList

    (tmp_path / "t" / "sub").mkdir(parents=True)
    _good(tmp_path / "t" / "sub" / "x.npy")
    os.symlink("..", tmp_path / "t" / "sub" / "up")  # a loop through a linked folder
    with InputList.from_specs([tmp_path / "t"], recursive=True) as inputs:
        assert list(inputs) == [str(tmp_path / "t" / "sub" / "x.npy")]
        assert any("link loop" in note for note in inputs.notes)


# ---------------------------------------------------------------- 11.13 @list files

# issue 11.13
def test_list_file_with_bom_trailing_spaces_and_a_missing_entry(tmp_path, capsys):
    for i in range(2):
        _good(tmp_path / f"s{i}.npy", seed=i)
    listing = tmp_path / "files.txt"
    listing.write_bytes("\ufeffs0.npy   \r\ns1.npy\t\n# comment\nmissing.npy\n".encode("utf-8"))
    code, out, err = hpcacq(capsys, "run", f"@{listing}", "-o", tmp_path / "o.h5", *RUN_UNITS)
    assert code == 1, out + err
    rows = _rows(tmp_path / "o.h5")
    assert rows["s0.npy"]["outcome"] == rows["s1.npy"]["outcome"] == "OK"
    assert rows["missing.npy"]["outcome"] == "FAILED" and "missing.npy: no such file" in rows["missing.npy"]["message"]


# issue 11.13
def test_an_empty_list_is_a_usage_error(tmp_path, capsys):
    listing = tmp_path / "empty.txt"
    listing.write_text("\n# nothing here\n\n")
    code, out, err = hpcacq(capsys, "run", f"@{listing}", "-o", tmp_path / "o.h5", *RUN_UNITS)
    assert code == 2 and "lists no files" in err and "empty.txt" in err
    assert not (tmp_path / "o.h5").exists()


# ---------------------------------------------------------------- 11.7 reads stop when the job is cancelled

@pytest.fixture
def small_blocks(monkeypatch):
    """Read in blocks of 64 KiB (instead of 64 MiB) so small files exercise the block loops."""
    from hpcacq.io import arrays, limits, tiff

    for module in (arrays, limits, tiff):
        monkeypatch.setattr(module, "READ_BLOCK_BYTES", 1 << 16)


def _counting_cancel(after: int):
    calls = {"n": 0}

    def cancel() -> bool:
        calls["n"] += 1
        return calls["n"] > after
    return cancel, calls


@pytest.mark.parametrize("kind", ["npy", "npy_fortran", "h5", "h5_3d", "tif_pages"])
def test_block_reads_are_exact_and_stop_on_cancel(tmp_path, small_blocks, kind):  # issue 11.7
    from hpcacq.errors import AnalysisCancelled

    data = np.random.default_rng(3).integers(0, 60000, (2, 4000, 40), dtype=np.uint16)
    path = tmp_path / ("scan.npy" if kind.startswith("npy") else "scan.h5" if kind.startswith("h5") else "scan.tif")
    expected = data[0]
    if kind == "npy":
        np.save(path, data[0])
    elif kind == "npy_fortran":
        np.save(path, np.asfortranarray(data[0]))
    elif kind == "h5":
        with h5py.File(path, "w") as f:
            f.create_dataset("data", data=data[0], chunks=(100, 40), compression="gzip")
    elif kind == "h5_3d":
        with h5py.File(path, "w") as f:
            f["data"] = data
        expected = data
    else:
        _write_tiff_pages(path, data[0], 40)
    raw = read_acquisition(path, cancel=lambda: False)
    np.testing.assert_array_equal(raw.data, expected.reshape(raw.data.shape))
    cancel, calls = _counting_cancel(after=2)
    with pytest.raises(AnalysisCancelled, match="reading cancelled"):
        read_acquisition(path, cancel=cancel)
    assert calls["n"] == 3  # stopped at the third block, not after the whole file


def _write_tiff_pages(path: Path, data: np.ndarray, n_pages: int) -> None:
    with tifffile.TiffWriter(path) as tif:
        for page in data.reshape(n_pages, -1, data.shape[1]):
            tif.write(page, metadata=None, contiguous=False)


def test_a_cancel_during_the_read_makes_the_file_cancelled(tmp_path, small_blocks):  # issue 11.7
    import threading

    from hpcacq.jobs.strategies import strategy_for

    np.save(tmp_path / "scan.npy", np.zeros((4000, 40), np.uint16))
    event = threading.Event()
    strategy = strategy_for("radon_velocity", dx_um=0.5, dt_s=1e-3)
    calls = {"n": 0}

    class Event:  # set after the first block of the read
        def is_set(self):
            calls["n"] += 1
            if calls["n"] > 2:
                event.set()
            return event.is_set()

    result = strategy.run_file(str(tmp_path / "scan.npy"), cancel_event=Event())
    assert result.outcome.name == "CANCELLED", result.message
