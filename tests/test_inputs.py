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


# ----------------------------------------------------------------- the on-disk InputList
def test_input_list_reads_like_the_list_and_pickles_as_a_tuple(weird_tmp_path):
    import pickle

    from hpcacq.jobs.inputs import InputList

    files = _touch(weird_tmp_path, HOSTILE + ["new\nline.tif"])
    with InputList.from_specs([str(weird_tmp_path)]) as inputs:
        want = sorted(p for p in files if not p.endswith(".txt"))
        assert inputs == want and len(inputs) == len(want) and list(inputs) == want
        assert inputs[0] == want[0] and inputs[-1] == want[-1] and inputs[1:3] == want[1:3]
        with pytest.raises(IndexError):
            inputs[len(want)]
        assert pickle.loads(pickle.dumps(inputs)) == tuple(want)


def test_undecodable_names_sort_like_python_strings(tmp_path):
    # names with bytes that are not UTF-8 arrive as str with surrogates: sorted by code point
    # like sorted(), not by their bytes
    folder = os.fsencode(tmp_path)
    for name in (b"a\xc3\xa9.npy", b"a\x80.npy", b"a\xff.npy", b"a\xee\x80\x80.npy", b"a\xf0\x9f\x98\x80.npy",
                 b"b.npy"):
        with open(os.path.join(folder, name), "wb"):
            pass
    want = sorted(os.path.join(str(tmp_path), name) for name in os.listdir(str(tmp_path)))
    assert expand_inputs([str(tmp_path)]) == want
    assert expand_inputs([str(tmp_path / "*.npy")]) == want
    assert expand_inputs(list(reversed(want))) == list(reversed(want))  # files given: their order


def test_long_list_file_keeps_order_across_blocks_and_drops_duplicates(tmp_path):
    files = _touch(tmp_path, [f"s{i:05d}.npy" for i in range(9000)])
    order = files[::-1][:5000] + files[:4000] + files[100:200]  # reversed, then more, then repeats
    listing = tmp_path / "list.txt"
    listing.write_text("\r\n".join(os.path.basename(p) for p in order) + "\n", encoding="utf-8")
    want = list(dict.fromkeys(order))
    assert expand_inputs([f"@{listing}"]) == want and len(want) == 9000


def test_full_temporary_storage_is_a_clear_error(tmp_path, monkeypatch):
    # the input list lives in SQLite's temporary folder; when it is full, say so and how to fix it
    from hpcacq import tempdb
    from hpcacq.errors import TemporaryStorageError

    _touch(tmp_path, [f"s{i:05d}.npy" for i in range(3000)])
    original = tempdb.TemporaryDatabase.__init__

    def tiny(self):
        original(self)
        self.execute("PRAGMA max_page_count=4")  # a 16 KB disk

    monkeypatch.setattr(tempdb.TemporaryDatabase, "__init__", tiny)
    with pytest.raises(TemporaryStorageError, match="SQLITE_TMPDIR or TMPDIR") as info:
        expand_inputs([str(tmp_path)])
    assert "full" in str(info.value)
