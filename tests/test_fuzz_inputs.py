"""Issue 11 acceptance: a fuzzing test of the readers through ``hpcacq run`` (fixed seed, < 60 s).

A few hundred mutated TIFF, HDF5 and .npy files, Olympus ``.txt`` headers and ``.json``
sidecars (byte flips, truncations, insertions, extreme integers, numbers replaced by
1e400/NaN/huge values, deep nesting) go through one ``hpcacq run`` in a subprocess:
no exit 4, no crash (signal), no hang (timeout), and every file is a row of the output
whose message, when not OK, names the file.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import tifffile

from hpcacq.io.olympus import format_olympus_header
from hpcacq.results.reader import read_manifest

SEED = 20261201
N_PER_KIND = 60  # x 5 kinds = 300 files
EXTREMES = [b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80", b"\x01\x00\x00\x00"]
TEXT_NUMBERS = ["1e400", "-1e400", "NaN", "-1", "0", "1e300", "1e-300", "99999999999999999999999", "9" * 5000,
                "2.5", "", "[]", "{}", "null", "true", '"x"']


def _image(rng) -> np.ndarray:
    return rng.integers(0, 4000, (int(rng.integers(20, 300)), int(rng.integers(4, 40))), dtype=np.uint16)


def _tiff_bytes(rng) -> bytes:
    buffer = io.BytesIO()
    choice = rng.integers(4)
    data = _image(rng)
    if choice == 0:
        tifffile.imwrite(buffer, data)
    elif choice == 1:
        tifffile.imwrite(buffer, data, compression="zlib", rowsperstrip=int(rng.integers(1, 64)))
    elif choice == 2:
        tifffile.imwrite(buffer, np.stack([data] * int(rng.integers(2, 12))), imagej=bool(rng.integers(2)),
                         photometric="minisblack")
    else:
        tifffile.imwrite(buffer, data, tile=(16, 16))
    return buffer.getvalue()


def _h5_bytes(rng, folder: Path) -> bytes:
    path = folder / "seed.h5"
    with h5py.File(path, "w") as f:
        kwargs = {"compression": "gzip", "chunks": True} if rng.integers(2) else {}
        f.create_dataset("data", data=_image(rng), **kwargs)
        f["data"].attrs["dx_um"] = 0.3
        f.attrs["dt_s"] = 1e-3
    data = path.read_bytes()
    path.unlink()
    return data


def _npy_bytes(rng) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, _image(rng))
    return buffer.getvalue()


def _mutate_bytes(data: bytes, rng) -> bytes:
    data = bytearray(data)
    for _ in range(int(rng.integers(1, 6))):
        op = rng.integers(5)
        at = int(rng.integers(0, max(1, len(data))))
        if op == 0:  # flip bytes, often in the header
            for _ in range(int(rng.integers(1, 20))):
                i = int(rng.integers(0, min(len(data), 512) if rng.integers(2) else len(data)))
                data[i] = int(rng.integers(256))
        elif op == 1:
            data = data[: max(1, at)]
        elif op == 2:
            data[at:at] = rng.bytes(int(rng.integers(1, 64)))
        elif op == 3 and len(data) > 8:
            i = int(rng.integers(0, min(len(data) - 4, 400)))
            data[i:i + 4] = EXTREMES[int(rng.integers(len(EXTREMES)))]
        else:
            j = int(rng.integers(at, len(data) + 1))
            data[at:at] = data[at:j][:4096]
    return bytes(data)


def _mutate_text(text: str, rng) -> str:
    numbers = list(re.finditer(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", text))
    for _ in range(int(rng.integers(1, 4))):
        op = rng.integers(4)
        if op == 0 and numbers:
            match = numbers[int(rng.integers(len(numbers)))]
            text = text[:match.start()] + TEXT_NUMBERS[int(rng.integers(len(TEXT_NUMBERS)))] + text[match.end():]
            numbers = list(re.finditer(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", text))
        elif op == 1 and text:
            i = int(rng.integers(len(text)))
            text = text[:i] + text[i + int(rng.integers(1, 20)):]
        elif op == 2:
            depth = int(rng.choice([10, 1000, 100_000]))
            i = int(rng.integers(len(text) + 1))
            text = text[:i] + "[" * depth + "]" * depth + text[i:]
        else:
            i = int(rng.integers(len(text) + 1))
            text = text[:i] + rng.choice(['"', "\t", "\n", "\\", "\x00", "\ufeff", ","]) + text[i:]
    return text


def _sidecar(rng, shape) -> str:
    n_lines, n_pixels = shape
    doc = {"header": {"shape": [n_lines, n_pixels], "voxels": [1e-3, 0.3], "voxels_units": ["s", "um"]},
           "rois": [{"roi_id": 1, "channel": 1, "data": {"x0": 0, "x1": n_pixels, "y0": 0, "y1": n_lines}},
                    {"id": 2, "channel": 1, "dim0_start": 0, "dim0_stop": n_lines // 2, "dim1_start": 1,
                     "dim1_stop": n_pixels}]}
    return json.dumps(doc, indent=int(rng.integers(0, 3)))


def make_corpus(folder: Path) -> list[str]:
    """Write the mutated files (same files for the same SEED); return the image names."""
    rng = np.random.default_rng(SEED)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(N_PER_KIND):
        names.append(f"t{i:03d}.tif")
        (folder / names[-1]).write_bytes(_mutate_bytes(_tiff_bytes(rng), rng))
        names.append(f"h{i:03d}.h5")
        (folder / names[-1]).write_bytes(_mutate_bytes(_h5_bytes(rng, folder), rng))
        names.append(f"n{i:03d}.npy")
        (folder / names[-1]).write_bytes(_mutate_bytes(_npy_bytes(rng), rng))
        data = _image(rng)  # a valid image with a mutated Olympus header
        names.append(f"o{i:03d}.tif")
        tifffile.imwrite(folder / names[-1], data)
        header = format_olympus_header(n_lines=data.shape[0], n_pixels=data.shape[1], dx_um=0.3, dt_s=1e-3)
        (folder / f"o{i:03d}.txt").write_bytes(_mutate_text(header, rng).encode("latin-1", "replace"))
        data = _image(rng)  # a valid image with a mutated sidecar
        names.append(f"s{i:03d}.npy")
        np.save(folder / names[-1], data)
        (folder / f"s{i:03d}.json").write_text(_mutate_text(_sidecar(rng, data.shape), rng), encoding="utf-8",
                                                errors="surrogatepass")
    return names


# issue 11 acceptance: fuzzing
def test_fuzzed_inputs_are_rows_never_crashes_or_hangs(tmp_path):
    folder = tmp_path / "fuzz"
    names = make_corpus(folder)
    assert len(names) == 5 * N_PER_KIND
    output = tmp_path / "out.h5"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "hpcacq", "run", str(folder), "-o", str(output), "--max-memory",
                           "300M", "--window-lines", "16", "--dx-um", "0.3", "--dt-s", "1e-3"],
                          capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - start
    text = proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.returncode in (0, 1), f"exit {proc.returncode}: {text}"  # never 4, never a signal
    assert "Traceback" not in proc.stderr, text
    rows = read_manifest(output)
    by_name = {os.path.basename(row["file"]): row for row in rows}
    assert sorted(by_name) == sorted(names) and len(rows) == len(names)
    outcomes = {row["outcome"] for row in rows}
    assert outcomes <= {"OK", "FAILED", "SKIPPED_MISSING_ROI"}, outcomes
    for name, row in by_name.items():
        if row["outcome"] != "OK":
            assert name in row["message"], row
            assert len(row["message"]) < 2000, row["message"][:300]
    n_failed = sum(row["outcome"] == "FAILED" for row in rows)
    assert 0 < n_failed < len(rows)  # the corpus has both broken and readable files
    assert elapsed < 120, elapsed  # ~30 s on one core
    print(f"fuzz: {len(rows)} files, {n_failed} FAILED, {len(rows) - n_failed} OK, {elapsed:.1f} s")
