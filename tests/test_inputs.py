"""expand_inputs: files, folders, globs and @list files, with hostile names kept intact."""

from __future__ import annotations

import os

import pytest

from hpcacq.errors import InputError
from hpcacq.jobs.inputs import expand_inputs, read_list_file, write_list_file

HOSTILE = ["plain.tif", "with space.tif", "quote'single.tiff", 'quote"double.npy', "semi;colon; echo foo.h5",
           "unicode µm ✓.hdf5", "star*[x].tif"]


def _touch(folder, names):
    paths = []
    for name in names:
        path = folder / name
        path.write_bytes(b"x")
        paths.append(str(path))
    return paths


def test_folder_expands_to_supported_suffixes_sorted_not_recursive(weird_tmp_path):
    files = _touch(weird_tmp_path, HOSTILE + ["new\nline.tif", "notes.txt", "roi.json", ".hidden.tif"])
    (weird_tmp_path / "sub").mkdir()
    _touch(weird_tmp_path / "sub", ["deep.tif"])
    got = expand_inputs([str(weird_tmp_path)])
    want = sorted(p for p in files if os.path.basename(p).rsplit(".", 1)[-1] in ("tif", "tiff", "npy", "h5", "hdf5")
                  and not os.path.basename(p).startswith("."))
    assert got == want
    assert str(weird_tmp_path / "new\nline.tif") in got and str(weird_tmp_path / "sub" / "deep.tif") not in got


def test_hostile_files_given_directly_survive_unchanged(weird_tmp_path):
    files = _touch(weird_tmp_path, HOSTILE + ["new\nline.tif"])
    assert expand_inputs(files) == files


def test_existing_path_with_glob_characters_is_taken_literally(tmp_path):
    literal, other = _touch(tmp_path, ["star*[x].tif", "starA.tif"])
    assert expand_inputs([literal]) == [literal]


def test_glob_pattern_matches_sorted_supported_files(weird_tmp_path):
    files = _touch(weird_tmp_path, ["b.tif", "a.tif", "c.txt"])
    assert expand_inputs([str(weird_tmp_path / "*")]) == sorted(files[:2])


def test_list_file_relative_to_its_folder_with_comments_and_blank_lines(weird_tmp_path, monkeypatch):
    files = _touch(weird_tmp_path, HOSTILE)
    listing = weird_tmp_path / "files.txt"
    listing.write_text("# my files\n\n" + "\n".join(HOSTILE) + "\r\n", encoding="utf-8")
    monkeypatch.chdir("/")
    assert expand_inputs([f"@{listing}"]) == files


def test_write_list_file_round_trips_and_refuses_newlines(tmp_path, weird_tmp_path):
    folder = tmp_path / "we ird 'q\" ; echo foo µm"  # weird_tmp_path minus the newline
    folder.mkdir()
    files = _touch(folder, HOSTILE)
    listing = tmp_path / "list.txt"
    write_list_file(listing, files)
    assert read_list_file(listing) == files
    with pytest.raises(InputError, match="newline"):
        write_list_file(listing, [str(weird_tmp_path / "new\nline.tif")])


def test_duplicates_are_dropped_first_wins(tmp_path):
    (a,) = _touch(tmp_path, ["a.tif"])
    assert expand_inputs([a, str(tmp_path), a]) == [a]


@pytest.mark.parametrize("spec, message", [
    ("missing.tif", "does not exist"),
    ("nothing*.tif", "matches no"),
    ("@absent.txt", "list file"),
])
def test_missing_inputs_raise_input_error_naming_them(tmp_path, spec, message):
    with pytest.raises(InputError, match=message) as info:
        expand_inputs([str(tmp_path / spec) if not spec.startswith("@") else "@" + str(tmp_path / spec[1:])])
    assert spec.lstrip("@") in str(info.value)


def test_empty_folder_and_no_inputs_are_errors(tmp_path):
    with pytest.raises(InputError, match="holds no"):
        expand_inputs([str(tmp_path)])
    with pytest.raises(InputError, match="no input"):
        expand_inputs([])
