"""safe_extract: every supported format round-trips; unsafe, truncated and unreadable
archives are refused with an error naming the archive, and nothing lands outside the target."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import py7zr
import pytest

from archives import make_rar
from remoteclip.extract import (
    CorruptArchiveError,
    ExtractError,
    MissingToolError,
    UnsafeArchiveError,
    archive_format,
    archive_stem,
    extract_in_place,
    is_archive,
    safe_extract,
)

FILES = {"images/a.jpg": b"jpeg bytes", "labels/a.txt": b"1 2 3 4 plane 0\n", "README": b"hi"}


# ---- fixture builders ---------------------------------------------------------------------


def make_zip(path: Path, files: dict[str, bytes] = FILES) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def make_tar(path: Path, members: list[tuple], mode: str = "w") -> Path:
    """members: (name, bytes) for files, (name, 'sym'|'hard', target) for links."""
    with tarfile.open(path, mode) as tf:
        for name, *rest in members:
            info = tarfile.TarInfo(name)
            if len(rest) == 2:
                info.type = tarfile.SYMTYPE if rest[0] == "sym" else tarfile.LNKTYPE
                info.linkname = rest[1]
                tf.addfile(info)
            else:
                info.size = len(rest[0])
                tf.addfile(info, io.BytesIO(rest[0]))
    return path


def make_7z(path: Path, files: dict[str, bytes] = FILES) -> Path:
    with py7zr.SevenZipFile(path, "w") as szf:
        for name, data in files.items():
            szf.writestr(data, name)
    return path


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def assert_nothing_escaped(tmp_path: Path, target: Path, before: set[Path]) -> None:
    outside = {p for p in tmp_path.rglob("*") if target not in p.parents and p != target}
    assert outside == before, f"written outside the target: {outside - before}"
    assert not [p for p in target.rglob("*") if p.is_file()], "a refused archive left files"


# ---- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "suffix,mode",
    [
        (".tar", "w"),
        (".tar.gz", "w:gz"),
        (".tgz", "w:gz"),
        (".tar.bz2", "w:bz2"),
        (".tar.xz", "w:xz"),
    ],
)
def test_tar_variants_round_trip(tmp_path, suffix, mode):
    archive = make_tar(tmp_path / f"data{suffix}", list(FILES.items()), mode)
    written = safe_extract(archive, tmp_path / "out")
    assert tree(tmp_path / "out") == FILES
    assert written == [tmp_path / "out" / name for name in FILES]


@pytest.mark.parametrize("maker,suffix", [(make_zip, ".zip"), (make_7z, ".7z")])
def test_zip_and_7z_round_trip(tmp_path, maker, suffix):
    archive = maker(tmp_path / f"data{suffix}")
    safe_extract(archive, tmp_path / "out")
    assert tree(tmp_path / "out") == FILES


def test_stored_rar_needs_no_external_tool(tmp_path):
    archive = make_rar(tmp_path / "data.rar", [("images/a.jpg", b"jpeg", 0x30), ("README", b"hi", 0x30)])
    safe_extract(archive, tmp_path / "out")
    assert tree(tmp_path / "out") == {"images/a.jpg": b"jpeg", "README": b"hi"}


def test_extraction_merges_into_existing_target_and_replaces_files(tmp_path):
    target = tmp_path / "out"
    (target / "images").mkdir(parents=True)
    (target / "images" / "keep.jpg").write_bytes(b"keep")
    (target / "README").write_bytes(b"old")
    safe_extract(make_zip(tmp_path / "d.zip"), target)
    assert tree(target) == {**FILES, "images/keep.jpg": b"keep"}
    assert not [p for p in target.iterdir() if p.name.startswith(".extracting")]


def test_a_member_repeated_in_the_archive_is_listed_once_and_its_last_copy_wins(tmp_path):
    """tar appends a changed file under its old name; `./x` and `x` are one path. The member
    list stays in first-seen order without repeats (it is an ordered set, not a list scan)."""
    archive = make_tar(
        tmp_path / "dup.tar",
        [("images/a.jpg", b"old"), ("./images/b.jpg", b"b"), ("images/a.jpg", b"new"), ("images/./b.jpg", b"b2")],
    )
    out = tmp_path / "out"
    assert safe_extract(archive, out) == [out / "images/a.jpg", out / "images/b.jpg"]
    assert tree(out) == {"images/a.jpg": b"new", "images/b.jpg": b"b2"}


def test_a_name_seen_before_is_checked_again_when_it_comes_back_as_a_link(tmp_path):
    """A repeated name is not a pass: `d` first as a file, then as a link out of the target."""
    archive = make_tar(tmp_path / "again.tar", [("d", b"x"), ("d", "sym", "../outside"), ("d/evil.txt", b"evil")])
    before = set(tmp_path.rglob("*"))
    with pytest.raises(UnsafeArchiveError, match="'d': it is a symlink pointing outside"):
        safe_extract(archive, tmp_path / "out")
    assert_nothing_escaped(tmp_path, tmp_path / "out", before)


def test_symlinks_inside_the_target_are_kept(tmp_path):
    archive = make_tar(
        tmp_path / "links.tar",
        [
            ("v1/data.txt", b"x"),
            ("latest", "sym", "v1"),
            ("current", "sym", "latest/data.txt"),
        ],
    )
    safe_extract(archive, tmp_path / "out")
    assert os.readlink(tmp_path / "out" / "latest") == "v1"
    assert (tmp_path / "out" / "current").read_bytes() == b"x"


def test_format_comes_from_content_before_name(tmp_path):
    misnamed = tmp_path / "data.rar"
    make_zip(tmp_path / "real.zip").rename(misnamed)
    assert archive_format(misnamed) == "zip"
    assert is_archive("DOTA/part1.tar.gz") and is_archive("x.TGZ") and not is_archive("labels.json.gz")


def test_unknown_format_names_the_file(tmp_path):
    odd = tmp_path / "notes.txt"
    odd.write_text("not an archive")
    with pytest.raises(ExtractError, match="notes.txt: not a recognised archive"):
        safe_extract(odd, tmp_path / "out")


# ---- refused members ------------------------------------------------------------------------


def zip_with(path: Path, name: str) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fine.txt", b"ok")
        zf.writestr(zipfile.ZipInfo(name), b"evil")
    return path


@pytest.mark.parametrize(
    "build,member,why",
    [
        (lambda p: zip_with(p / "dotdot.zip", "../evil.txt"), "../evil.txt", "'..' component"),
        (lambda p: zip_with(p / "deep.zip", "a/../../evil.txt"), "a/../../evil.txt", "'..' component"),
        (lambda p: zip_with(p / "backslash.zip", "..\\evil.txt"), "..\\evil.txt", "'..' component"),
        (lambda p: zip_with(p / "abs.zip", "/tmp/evil.txt"), "/tmp/evil.txt", "absolute path"),
        (
            lambda p: make_tar(p / "dotdot.tar", [("fine.txt", b"ok"), ("../evil.txt", b"evil")]),
            "../evil.txt",
            "'..' component",
        ),
        (
            lambda p: make_tar(p / "abs.tar.gz", [("fine.txt", b"ok"), (str(p / "evil.txt"), b"evil")], "w:gz"),
            "{p}/evil.txt",
            "absolute path",
        ),
        (
            lambda p: make_tar(p / "sym.tar", [("fine.txt", b"ok"), ("link", "sym", "../evil.txt")]),
            "link",
            "symlink pointing outside",
        ),
        (
            lambda p: make_tar(p / "symabs.tar", [("link", "sym", str(p / "evil.txt"))]),
            "link",
            "symlink to the absolute path",
        ),
        (
            lambda p: make_tar(p / "through.tar", [("d", "sym", "sub"), ("d/evil.txt", b"evil")]),
            "d/evil.txt",
            "through the symlink",
        ),
        (
            lambda p: make_tar(p / "chain.tar", [("a", "sym", "."), ("b", "sym", "a/a/../..")]),
            "b",
            "symlink pointing outside",
        ),
        (
            lambda p: make_tar(p / "later.tar", [("b", "sym", "a/.."), ("a", "sym", ".")]),
            "b",
            "symlink pointing outside",
        ),
        (lambda p: make_tar(p / "hard.tar", [("h", "hard", "../evil.txt"), ("h", b"overwrite")]), "h", "hard link"),
        (lambda p: make_rar(p / "dotdot.rar", [("../evil.txt", b"evil", 0x30)]), "../evil.txt", "'..' component"),
    ],
)
def test_unsafe_members_are_refused_and_nothing_escapes(tmp_path, build, member, why):
    archive = build(tmp_path)
    target = tmp_path / "sandbox" / "target"
    target.mkdir(parents=True)
    before = {p for p in tmp_path.rglob("*") if target not in p.parents and p != target}
    with pytest.raises(UnsafeArchiveError) as err:
        safe_extract(archive, target)
    message = str(err.value)
    assert archive.name in message and repr(member.format(p=tmp_path)) in message and why in message
    assert_nothing_escaped(tmp_path, target, before)


def test_7z_symlink_pointing_outside_is_refused(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink("../secret.txt", src / "link")
    archive = tmp_path / "link.7z"
    with py7zr.SevenZipFile(archive, "w") as szf:
        szf.write(src / "link", "link")
    target = tmp_path / "target"
    with pytest.raises(UnsafeArchiveError, match="link.7z"):
        safe_extract(archive, target)
    assert not list(target.iterdir())
    assert (tmp_path / "secret.txt").read_text() == "secret"


# ---- truncated, corrupt, unreadable -------------------------------------------------------------


def truncate(path: Path, keep: float = 0.6) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


BIG = {f"images/{i:03d}.jpg": os.urandom(4096) for i in range(12)}


@pytest.mark.parametrize(
    "build",
    [
        lambda p: make_zip(p / "big.zip", BIG),
        lambda p: make_tar(p / "big.tar", list(BIG.items())),
        lambda p: make_tar(p / "big.tar.gz", list(BIG.items()), "w:gz"),
        lambda p: make_tar(p / "big.tar.xz", list(BIG.items()), "w:xz"),
        lambda p: make_7z(p / "big.7z", BIG),
    ],
    ids=["zip", "tar", "tar.gz", "tar.xz", "7z"],
)
def test_truncated_archive_is_a_clear_error_and_leaves_no_files(tmp_path, build):
    archive = truncate(build(tmp_path))
    target = tmp_path / "target"
    with pytest.raises(CorruptArchiveError, match=f"{archive.name}.*(truncated|corrupt)"):
        safe_extract(archive, target)
    assert list(target.iterdir()) == []


def test_tar_cut_at_a_member_boundary_is_detected(tmp_path):
    archive = make_tar(tmp_path / "cut.tar", list(BIG.items()))
    with tarfile.open(archive) as tf:
        boundary = tf.getmembers()[6].offset
    archive.write_bytes(archive.read_bytes()[:boundary])
    with pytest.raises(CorruptArchiveError, match="end-of-archive marker"):
        safe_extract(archive, tmp_path / "target")


def test_corrupt_zip_data_is_a_clear_error(tmp_path):
    archive = make_zip(tmp_path / "bad.zip", BIG)
    data = bytearray(archive.read_bytes())
    data[200:260] = bytes(60)
    archive.write_bytes(bytes(data))
    with pytest.raises(CorruptArchiveError, match="bad.zip"):
        safe_extract(archive, tmp_path / "target")


def test_compressed_rar_without_a_tool_says_what_to_install(tmp_path, monkeypatch):
    empty = tmp_path / "no-tools"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # hides unrar/bsdtar/7z/unar wherever installed
    archive = make_rar(tmp_path / "packed.rar", [("a.txt", b"not really compressed", 0x33)])
    with pytest.raises(MissingToolError) as err:
        safe_extract(archive, tmp_path / "target")
    message = str(err.value)
    assert "packed.rar" in message and "unrar" in message and "bsdtar" in message


def test_missing_archive_is_named(tmp_path):
    with pytest.raises(ExtractError, match="absent.zip: archive not found"):
        safe_extract(tmp_path / "absent.zip", tmp_path / "target")


# ---- archives inside archives ----------------------------------------------------------------


def test_archive_stem_drops_only_the_archive_suffix():
    assert archive_stem("imgs.rar") == "imgs"
    assert archive_stem("part1.tar.gz") == "part1"
    assert archive_stem("Airplane.ZIP") == "Airplane"
    assert archive_stem("v1.0.7z") == "v1.0"
    assert archive_stem("notes.txt") == "notes.txt"


def test_nested_archive_is_unpacked_into_a_folder_named_after_it(tmp_path):
    folder = tmp_path / "UCM_captions"
    folder.mkdir()
    # members already inside imgs/ (UCM-Captions' imgs.rar): not nested twice
    make_rar(folder / "imgs.rar", [("imgs/1.tif", b"one", 0x30), ("imgs/2.tif", b"two", 0x30)])
    assert extract_in_place(folder / "imgs.rar") == folder / "imgs"
    # flat members (one archive per category): they get the archive's folder
    make_zip(folder / "airplane.zip", {"airplane_00001.jpg": b"a", "airplane_00002.jpg": b"b"})
    assert extract_in_place(folder / "airplane.zip") == folder / "airplane"
    # one folder of another name is kept as it is, inside the archive's folder
    make_zip(folder / "beach.zip", {"Beach/x.jpg": b"x"})
    extract_in_place(folder / "beach.zip")
    assert tree(folder) == {
        "imgs/1.tif": b"one",
        "imgs/2.tif": b"two",
        "airplane/airplane_00001.jpg": b"a",
        "airplane/airplane_00002.jpg": b"b",
        "beach/Beach/x.jpg": b"x",
    }


def test_unsafe_nested_archive_is_refused_and_left_in_place(tmp_path):
    folder = tmp_path / "Images"
    folder.mkdir()
    inner = make_zip(folder / "escape.zip", {"../../outside.txt": b"x"})
    with pytest.raises(UnsafeArchiveError, match="escape.zip"):
        extract_in_place(inner)
    assert inner.exists() and sorted(p.name for p in folder.iterdir()) == ["escape.zip"]
    assert not (tmp_path / "outside.txt").exists() and not (tmp_path.parent / "outside.txt").exists()
