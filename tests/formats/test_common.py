"""File discovery shared by the parsers: `expand`'s order and `image_index`'s lookup rules."""

from pathlib import Path

import pytest

from remoteclip.formats.common import expand, image_index


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_expand_is_in_path_order_across_nested_folders_and_patterns(tmp_path):
    # a file of a folder sorts between that folder's subfolders by name, as pathlib orders parts
    for rel in ["a/z.txt", "a/b/y.txt", "a/c.txt", "a-b/x.txt", "a/b/c/w.txt", "a/é.txt", "a/Z.txt"]:
        touch(tmp_path / rel)
    (tmp_path / "a" / "folder.txt").mkdir()  # a folder matching the glob is not a file
    found = expand(tmp_path, ["a/**/*.txt", "a/*.txt", "a-b/*.txt"])  # a/*.txt again: no duplicates
    rel = [str(p.relative_to(tmp_path)) for p in found]
    assert rel == ["a/Z.txt", "a/b/c/w.txt", "a/b/y.txt", "a/c.txt", "a/z.txt", "a/é.txt", "a-b/x.txt"]
    assert rel == [str(p.relative_to(tmp_path)) for p in sorted(found)]
    assert len(found) == 7 and found[-1] == tmp_path / "a-b" / "x.txt"
    assert found[1:3] == [tmp_path / "a/b/c/w.txt", tmp_path / "a/b/y.txt"]


def test_expand_matches_as_glob_does(tmp_path):
    for rel in ["a/.h.txt", "a/b/y.txt", "a/b/y.TXT", "c/b/x.txt", "c/b/.g.txt"]:
        touch(tmp_path / rel)
    assert expand(tmp_path, "a/*.txt")[:] == []  # a hidden name needs a pattern starting with "."
    assert expand(tmp_path, "a/.*.txt")[:] == [tmp_path / "a/.h.txt"]
    assert expand(tmp_path, "*/b/*.txt")[:] == [tmp_path / "a/b/y.txt", tmp_path / "c/b/x.txt"]  # case counts
    assert expand(tmp_path, "**/*.txt")[:] == [tmp_path / "a/b/y.txt", tmp_path / "c/b/x.txt"]
    assert expand(tmp_path, "a/b/y.TXT")[:] == [tmp_path / "a/b/y.TXT"]


def test_expand_fills_fields_and_finds_nothing(tmp_path):
    touch(tmp_path / "train" / "labels" / "p1.txt")
    assert list(expand(tmp_path, "{split}/labels/*.txt", split="train")) == [tmp_path / "train/labels/p1.txt"]
    empty = expand(tmp_path, "{split}/labels/*.txt", split="val")
    assert len(empty) == 0 and not empty and list(empty) == []


def test_image_index_first_in_sorted_order_wins(tmp_path):
    for rel in ["one/b.png", "one/a.jpg", "one/a.png", "two/a.bmp", "two/c.tif", "two/notes.txt", "three/a.tif"]:
        touch(tmp_path / rel)
    # folders in the order given, a glob's folders sorted, names sorted within a folder
    images = image_index(tmp_path, ["t*", "one"])
    assert images["a"] == tmp_path / "three" / "a.tif"  # the stem: "t*" first, "three" < "two"
    assert images["a.bmp"] == tmp_path / "two" / "a.bmp"
    assert images["a.png"] == tmp_path / "one" / "a.png"  # a file name finds that file only
    assert images["a.jpg"] == tmp_path / "one" / "a.jpg"
    assert images["c"] == images["c.tif"] == tmp_path / "two" / "c.tif"
    assert "notes" not in images and "notes.txt" not in images  # not an image extension
    assert images.get("d") is None and "a.gif" not in images
    with pytest.raises(KeyError):
        images["e"]
    assert sorted(images) == ["a", "a.bmp", "a.jpg", "a.png", "a.tif", "b", "b.png", "c", "c.tif"]
    assert len(images) == 9
    # within one folder the extensions sort: a.jpg before a.png
    assert image_index(tmp_path, "one")["a"] == tmp_path / "one" / "a.jpg"


def test_image_index_non_ascii_and_odd_keys(tmp_path):
    touch(tmp_path / "imgs" / "航拍_é.png")
    touch(tmp_path / "imgs" / "x.png.jpg")  # its stem is another file's name
    touch(tmp_path / "imgs" / "x.png")
    images = image_index(tmp_path, "imgs")
    assert images["航拍_é"] == images["航拍_é.png"] == tmp_path / "imgs" / "航拍_é.png"
    assert images["x.png"] == tmp_path / "imgs" / "x.png"  # sorted first: its name is set first
    assert images["x"] == tmp_path / "imgs" / "x.png"
    for missing in ["", "航拍", "x.png.jpg.png", "x.png.jpg-longer-than-every-key", "x\x00"]:
        assert missing not in images
