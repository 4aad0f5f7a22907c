"""Readers: real files, every format, Olympus headers, kymflow sidecars, bad inputs."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

from hpcacq.errors import InputError
from hpcacq.io import (
    RoiSpec,
    parse_olympus_header,
    parse_sidecar,
    read_acquisition,
    write_tiff_with_header,
)

# name -> (shape, dx_um, T Dimension end time in s) from the Olympus headers
A89 = {
    "20250722_A89_0002": ((30000, 19), 0.45, 34.019),
    "20250722_A89_0003": ((30000, 10), 0.45, 33.419),
    "20250722_A89_0004": ((30000, 14), 0.45, 33.659),
    "20250722_A89_0005": ((30000, 7), 0.829, 33.299),
    "20250722_A89_0006": ((30000, 7), 0.829, 33.299),
}


# ---------------------------------------------------------------- real data

@pytest.mark.realdata
def test_capillary1_pixels_units_and_rois(realdata):
    raw = read_acquisition(realdata / "capillary1" / "Capillary1_0001.tif")
    assert raw.data.shape == (1, 30000, 38)
    assert raw.data.dtype == np.uint16
    assert raw.dx_um == pytest.approx(0.284, rel=1e-12)
    assert raw.dt_s == pytest.approx(35.099 / 30000, rel=1e-12)
    assert raw.header["units_source"] == "olympus"
    # capillary1 layout: x = columns, y = rows, channel 1-based in the file
    assert raw.rois == (
        RoiSpec(1, 0, 0, 30000, 0, 38),
        RoiSpec(2, 0, 7500, 22500, 9, 28),
        RoiSpec(3, 0, 10000, 30000, 0, 12),
    )
    # same pixels as tifffile reads them (no rescaling, no transposition)
    reference = tifffile.imread(realdata / "capillary1" / "Capillary1_0001.tif")
    np.testing.assert_array_equal(raw.data[0], reference)


@pytest.mark.realdata
@pytest.mark.parametrize("stem", sorted(A89))
def test_a89_files(realdata, stem):
    shape, dx_um, duration_s = A89[stem]
    raw = read_acquisition(realdata / "a89" / f"{stem}.tif")
    assert raw.data.shape == (1, *shape) and raw.data.dtype == np.uint16
    assert raw.dx_um == pytest.approx(dx_um, rel=1e-12)
    assert raw.dt_s == pytest.approx(duration_s / shape[0], rel=1e-12)
    # a89 layout: dim0 = rows, dim1 = columns; both ROIs span the whole image
    assert raw.rois == (RoiSpec(1, 0, 0, shape[0], 0, shape[1]), RoiSpec(2, 0, 0, shape[0], 0, shape[1]))
    # the sidecar's voxels agree with the Olympus header
    voxels = json.loads((realdata / "a89" / f"{stem}.json").read_text())["header"]["voxels"]
    assert raw.dt_s == pytest.approx(voxels[0], rel=1e-9) and raw.dx_um == pytest.approx(voxels[1])


@pytest.mark.realdata
def test_sidecar_units_used_when_no_header(realdata, tmp_path):
    """Without a .txt the kymflow sidecar's header.voxels [s, um] give the units."""
    src = realdata / "a89" / "20250722_A89_0005"
    for suffix in (".tif", ".json"):
        (tmp_path / f"scan{suffix}").write_bytes(src.with_suffix(suffix).read_bytes())
    raw = read_acquisition(tmp_path / "scan.tif")
    assert raw.header["units_source"] == "sidecar"
    assert raw.dx_um == pytest.approx(0.829) and raw.dt_s == pytest.approx(33.299 / 30000, rel=1e-9)


# ---------------------------------------------------------------- formats and round trips

def test_tiff_writer_round_trip_in_weird_folder(weird_tmp_path):
    data = np.random.default_rng(1).integers(0, 4096, size=(500, 21), dtype=np.uint16)
    path = write_tiff_with_header(weird_tmp_path / "scan 1.tif", data, dx_um=0.284, dt_s=0.0011699667)
    raw = read_acquisition(path)
    assert raw.data.dtype == np.uint16
    np.testing.assert_array_equal(raw.data[0], data)
    assert raw.dx_um == pytest.approx(0.284, rel=1e-12)
    assert raw.dt_s == pytest.approx(0.0011699667, rel=1e-10)
    assert raw.rois == ()
    assert sorted(p.name for p in weird_tmp_path.iterdir()) == ["scan 1.tif", "scan 1.txt"]


def test_upper_case_suffixes_find_their_header(tmp_path):
    write_tiff_with_header(tmp_path / "x.tif", np.zeros((8, 3), np.uint16), dx_um=0.5, dt_s=0.01)
    (tmp_path / "x.tif").rename(tmp_path / "SCAN.TIF")
    (tmp_path / "x.txt").rename(tmp_path / "SCAN.TXT")
    raw = read_acquisition(tmp_path / "SCAN.TIF")
    assert (raw.dx_um, raw.dt_s) == (0.5, pytest.approx(0.01))


def test_three_channel_tiff_keeps_channel_order(tmp_path):
    data = np.stack([np.full((40, 9), c, dtype=np.uint16) for c in (10, 20, 30)])
    path = write_tiff_with_header(tmp_path / "multi.tif", data, dx_um=0.5, dt_s=0.001)
    raw = read_acquisition(path)
    assert raw.data.shape == (3, 40, 9)
    assert [int(raw.data[c, 0, 0]) for c in range(3)] == [10, 20, 30]


def test_npy_2d_and_3d_keep_dtype_and_have_no_units(tmp_path):
    two = np.arange(60, dtype=np.float32).reshape(10, 6)
    np.save(tmp_path / "two.npy", two)
    np.save(tmp_path / "three.npy", np.stack([two, two + 1]).astype(np.int16))
    raw2 = read_acquisition(tmp_path / "two.npy")
    raw3 = read_acquisition(tmp_path / "three.npy")
    assert raw2.data.shape == (1, 10, 6) and raw2.data.dtype == np.float32
    np.testing.assert_array_equal(raw2.data[0], two)
    assert raw3.data.shape == (2, 10, 6) and raw3.data.dtype == np.int16
    assert raw2.dx_um is None and raw2.dt_s is None  # never guessed


def test_hdf5_data_dataset_and_attrs(tmp_path):
    import h5py

    data = np.arange(200, dtype=np.uint16).reshape(20, 10)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("data", data=data).attrs["dx_um"] = 0.7
        f.attrs["dt_s"] = 0.002
        f.create_dataset("other", data=np.zeros(3))
    raw = read_acquisition(tmp_path / "a.h5")
    np.testing.assert_array_equal(raw.data[0], data)
    assert (raw.dx_um, raw.dt_s) == (0.7, 0.002)
    with h5py.File(tmp_path / "only.hdf5", "w") as f:
        f.create_dataset("group/image", data=data)
    raw = read_acquisition(tmp_path / "only.hdf5")
    assert raw.data.shape == (1, 20, 10) and raw.dx_um is None


def test_hdf5_without_a_clear_dataset(tmp_path):
    import h5py

    with h5py.File(tmp_path / "two.h5", "w") as f:
        f["a"], f["b"] = np.zeros((4, 4)), np.zeros((4, 4))
    with pytest.raises(InputError, match=r"two\.h5.*2 datasets.*name the image dataset 'data'"):
        read_acquisition(tmp_path / "two.h5")


# ---------------------------------------------------------------- Olympus header

def test_olympus_header_sections_and_missing_fields():
    text = (
        '"[Dimensions]"\t""\r\n"X Dimension"\t"38, 0.0 - 10.796 [um], 0.284 [um/pixel]"\r\n'
        '"T Dimension"\t"1, 0.000 - 35.099 [s], Interval FreeRun"\r\n'
        '"[Image]"\t""\r\n"Image Size"\t"38 * 30000 [pixel]"\r\n'
        '"[Reference Image]"\t""\r\n"Image Size"\t"512 * 512 [pixel]"\r\n'
    )
    header = parse_olympus_header(text)
    assert header.dx_um == 0.284 and header.duration_s == pytest.approx(35.099)
    assert (header.n_pixels, header.n_lines) == (38, 30000)  # not the reference image's 512
    assert header.dt_s(30000) == pytest.approx(0.0011699667, rel=1e-7)
    bare = parse_olympus_header('"[General]"\t""\r\n"Name"\t"x.oir"\r\n')
    assert bare.dx_um is None and bare.duration_s is None and bare.dt_s(100) is None


@pytest.mark.parametrize(
    "line, field",
    [
        ('"X Dimension"\t"38, 0.0 - 10.796 [um]"', "X Dimension"),
        ('"T Dimension"\t"one, 0 - 35 [s]"', "T Dimension"),
        ('"T Dimension"\t"1, 0.000 - 0.000 [s], Interval FreeRun"', "T Dimension"),
        ('"Image Size"\t"38 x 30000"', "Image Size"),
        ("this line has no tab", "line 2"),
    ],
)
def test_malformed_olympus_header_names_field_and_file(tmp_path, line, field):
    np.save(tmp_path / "scan.npy", np.zeros((10, 4), np.uint16))
    (tmp_path / "scan.txt").write_bytes(f'"[Dimensions]"\t""\r\n{line}\r\n'.encode("latin-1"))
    with pytest.raises(InputError, match="scan.txt") as info:
        read_acquisition(tmp_path / "scan.npy")
    assert field in str(info.value)


def test_header_of_another_image_is_refused(tmp_path):
    write_tiff_with_header(tmp_path / "a.tif", np.zeros((30, 5), np.uint16), dx_um=1.0, dt_s=0.001)
    np.save(tmp_path / "a.npy", np.zeros((31, 5), np.uint16))
    (tmp_path / "a.tif").unlink()
    with pytest.raises(InputError, match=r"a\.txt.*5 pixels x 30 lines.*5 x 31"):
        read_acquisition(tmp_path / "a.npy")


def test_pixel_count_of_x_dimension_is_checked(tmp_path):
    np.save(tmp_path / "b.npy", np.zeros((31, 5), np.uint16))
    (tmp_path / "b.txt").write_text('"X Dimension"\t"20, 0.0 - 5.68 [um], 0.284 [um/pixel]"\r\n')
    with pytest.raises(InputError, match=r"b\.txt: header says 20 pixels x None lines"):
        read_acquisition(tmp_path / "b.npy")


# ---------------------------------------------------------------- kymflow sidecar

def test_sidecar_layouts_give_same_rois():
    cap = {"rois": [{"roi_id": 4, "channel": 2, "data": {"x0": 1, "x1": 5, "y0": 10, "y1": 20}}]}
    a89 = {"rois": [{"id": 4, "channel": 2, "dim0_start": 10, "dim0_stop": 20, "dim1_start": 1, "dim1_stop": 5}]}
    expected = (RoiSpec(roi_id=4, channel=1, r0=10, r1=20, c0=1, c1=5),)
    assert parse_sidecar(cap).rois == expected
    assert parse_sidecar(a89).rois == expected


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"rois": {}}, "field 'rois' must be a list"),
        ({"rois": [{"roi_id": 1, "data": {"x0": 0, "x1": 2, "y0": 0}}]}, "'y1' must be an integer"),
        ({"rois": [{"id": 1, "dim0_start": 0, "dim0_stop": 5, "dim1_start": 3, "dim1_stop": 3}]}, "empty"),
        ({"rois": [{"id": 1, "channel": 0, "dim0_start": 0, "dim0_stop": 5, "dim1_start": 0, "dim1_stop": 3}]},
         "channels start at 1"),
        ({"rois": [{"name": "x"}]}, "unknown ROI layout"),
        ({"rois": [{"id": 1, "dim0_start": 0, "dim0_stop": 5, "dim1_start": 0, "dim1_stop": 3}] * 2},
         "repeats roi id"),
        ({"header": {"voxels": [0.001]}}, "header.voxels"),
        ({"header": {"voxels": [-1, 0.3]}}, "header.voxels"),
    ],
)
def test_malformed_sidecar_names_field_and_file(tmp_path, doc, message):
    np.save(tmp_path / "scan.npy", np.zeros((10, 4), np.uint16))
    (tmp_path / "scan.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="scan.json") as info:
        read_acquisition(tmp_path / "scan.npy")
    assert message in str(info.value)


def test_sidecar_roi_outside_image_or_channel(tmp_path):
    np.save(tmp_path / "scan.npy", np.zeros((10, 4), np.uint16))
    roi = {"roi_id": 7, "channel": 1, "data": {"x0": 0, "x1": 5, "y0": 0, "y1": 10}}
    (tmp_path / "scan.json").write_text(json.dumps({"rois": [roi]}))
    with pytest.raises(InputError, match=r"scan\.json: roi 7 .* outside the image of 10 lines x 4 pixels"):
        read_acquisition(tmp_path / "scan.npy")
    roi.update(channel=2, data={"x0": 0, "x1": 4, "y0": 0, "y1": 10})
    (tmp_path / "scan.json").write_text(json.dumps({"rois": [roi]}))
    with pytest.raises(InputError, match="channel 2 .*1 channel"):
        read_acquisition(tmp_path / "scan.npy")
    (tmp_path / "scan.json").write_text("{not json")
    with pytest.raises(InputError, match=r"scan\.json: the sidecar is not valid JSON"):
        read_acquisition(tmp_path / "scan.npy")


# ---------------------------------------------------------------- bad files

def _truncated_tiff(path: Path) -> None:
    tifffile.imwrite(path, np.ones((300, 20), np.uint16))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


BAD_FILES = {
    "text named .tif": ("fake.tif", lambda p: p.write_text("just text"), "not a readable TIFF"),
    "truncated TIFF": ("cut.tif", _truncated_tiff, "truncated or corrupt"),
    "tiny broken TIFF": ("tiny.tiff", lambda p: p.write_bytes(b"II*\x00\x08\x00\x00\x00\x05"), "TIFF"),
    "empty file": ("empty.tif", lambda p: p.write_bytes(b""), "empty (0 bytes)"),
    "1-D array": ("one.npy", lambda p: np.save(p, np.zeros(10)), "1 dimension(s)"),
    "4-D array": ("four.npy", lambda p: np.save(p, np.zeros((2, 2, 3, 4))), "4 dimension(s)"),
    "zero-size": ("zero.npy", lambda p: np.save(p, np.zeros((0, 38), np.uint16)), "empty (shape (0, 38))"),
    "complex pixels": ("cplx.npy", lambda p: np.save(p, np.zeros((3, 3), complex)), "dtype complex128"),
    "text named .npy": ("text.npy", lambda p: p.write_text("hello"), "not a readable .npy"),
    "text named .h5": ("text.h5", lambda p: p.write_text("hello"), "not a readable HDF5"),
    "unsupported suffix": ("scan.png", lambda p: p.write_bytes(b"x"), ".tif, .tiff, .npy, .h5, .hdf5"),
    "no suffix": ("scan", lambda p: p.write_bytes(b"x"), "no suffix"),
    "a folder": ("folder.tif", lambda p: p.mkdir(), "is a folder"),
    "4-D TIFF": ("four.tif", lambda p: tifffile.imwrite(p, np.zeros((2, 2, 8, 9), np.uint16)), "4 dimension"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_names_file_and_problem(weird_tmp_path, case):
    name, make, problem = BAD_FILES[case]
    path = weird_tmp_path / name
    make(path)
    with pytest.raises(InputError) as info:
        read_acquisition(path)
    message = str(info.value)
    assert str(path) in message, message
    assert problem in message, message


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.tif: no such file"):
        read_acquisition(tmp_path / "nope.tif")


@contextlib.contextmanager
def _as_unprivileged_user():
    """Root reads any file: drop the effective uid to 'nobody' for the block (restored after)."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


def test_unreadable_file():
    folder = tempfile.mkdtemp(prefix="hpcacq-locked-")  # world-traversable, unlike tmp_path
    try:
        os.chmod(folder, 0o755)
        path = Path(folder) / "locked.tif"
        tifffile.imwrite(path, np.zeros((4, 4), np.uint16))
        path.chmod(0)
        with _as_unprivileged_user():
            with pytest.raises(InputError, match=r"locked\.tif: permission denied"):
                read_acquisition(path)
    finally:
        shutil.rmtree(folder)


def test_writer_refuses_bad_units_and_leaves_no_temp_files(tmp_path):
    with pytest.raises(InputError, match="dt_s = 0 must be a number > 0"):
        write_tiff_with_header(tmp_path / "a.tif", np.zeros((4, 4), np.uint16), dx_um=1.0, dt_s=0)
    with pytest.raises(InputError, match="1 dimension"):
        write_tiff_with_header(tmp_path / "a.tif", np.zeros(4, np.uint16), dx_um=1.0, dt_s=1.0)
    assert list(tmp_path.iterdir()) == []


def test_permission_error_message_even_as_root(tmp_path, monkeypatch):
    """Root can read anything, so fake the refusal the OS gives other users."""
    from hpcacq.io import limits

    path = tmp_path / "locked.tif"
    tifffile.imwrite(path, np.zeros((4, 4), np.uint16))
    real_open = os.open

    def refuse(file, *args, **kwargs):
        if Path(file) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(limits.os, "open", refuse)
    with pytest.raises(InputError, match=r"locked\.tif: permission denied; make the file readable"):
        read_acquisition(path)
