"""safe_extract: every supported format round-trips; unsafe, truncated and unreadable
archives are refused with an error naming the archive, and nothing lands outside the target."""

from __future__ import annotations

import io
import os
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import py7zr
import pytest

from remoteclip.extract import (
    CorruptArchiveError,
    ExtractError,
    MissingToolError,
    UnsafeArchiveError,
    archive_format,
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


def make_rar(path: Path, members: list[tuple[str, bytes, int]]) -> Path:
    """A RAR 2.9 archive written by hand (no free tool creates RAR): members are
    (name, data, method), method 0x30 = stored, 0x33 = compressed (data then garbage)."""

    def block(kind: int, flags: int, body: bytes) -> bytes:
        raw = struct.pack("<BHH", kind, flags, 7 + len(body)) + body
        return struct.pack("<H", zlib.crc32(raw) & 0xFFFF) + raw

    out = b"Rar!\x1a\x07\x00" + block(0x73, 0, bytes(6))
    date = ((2020 - 1980) << 25) | (1 << 21) | (1 << 16)
    for name, data, method in members:
        raw_name = name.encode()
        header = struct.pack("<LLBLLBBHL", len(data), len(data), 3, zlib.crc32(data), date, 29,
                             method, len(raw_name), 0o100644) + raw_name
        out += block(0x74, 0x8000, header) + data
    path.write_bytes(out + block(0x7B, 0x4000, b""))
    return path


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def assert_nothing_escaped(tmp_path: Path, target: Path, before: set[Path]) -> None:
    outside = {p for p in tmp_path.rglob("*") if target not in p.parents and p != target}
    assert outside == before, f"written outside the target: {outside - before}"
    assert not [p for p in target.rglob("*") if p.is_file()], "a refused archive left files"


# ---- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix,mode", [
    (".tar", "w"), (".tar.gz", "w:gz"), (".tgz", "w:gz"), (".tar.bz2", "w:bz2"), (".tar.xz", "w:xz"),
])
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


def test_symlinks_inside_the_target_are_kept(tmp_path):
    archive = make_tar(tmp_path / "links.tar", [
        ("v1/data.txt", b"x"), ("latest", "sym", "v1"), ("current", "sym", "latest/data.txt"),
    ])
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


@pytest.mark.parametrize("build,member,why", [
    (lambda p: zip_with(p / "dotdot.zip", "../evil.txt"), "../evil.txt", "'..' component"),
    (lambda p: zip_with(p / "deep.zip", "a/../../evil.txt"), "a/../../evil.txt", "'..' component"),
    (lambda p: zip_with(p / "backslash.zip", "..\\evil.txt"), "..\\evil.txt", "'..' component"),
    (lambda p: zip_with(p / "abs.zip", "/tmp/evil.txt"), "/tmp/evil.txt", "absolute path"),
    (lambda p: make_tar(p / "dotdot.tar", [("fine.txt", b"ok"), ("../evil.txt", b"evil")]),
     "../evil.txt", "'..' component"),
    (lambda p: make_tar(p / "abs.tar.gz", [("fine.txt", b"ok"), (str(p / "evil.txt"), b"evil")], "w:gz"),
     "{p}/evil.txt", "absolute path"),
    (lambda p: make_tar(p / "sym.tar", [("fine.txt", b"ok"), ("link", "sym", "../evil.txt")]),
     "link", "symlink pointing outside"),
    (lambda p: make_tar(p / "symabs.tar", [("link", "sym", str(p / "evil.txt"))]),
     "link", "symlink to the absolute path"),
    (lambda p: make_tar(p / "through.tar", [("d", "sym", "sub"), ("d/evil.txt", b"evil")]),
     "d/evil.txt", "through the symlink"),
    (lambda p: make_tar(p / "chain.tar", [("a", "sym", "."), ("b", "sym", "a/a/../..")]),
     "b", "symlink pointing outside"),
    (lambda p: make_tar(p / "later.tar", [("b", "sym", "a/.."), ("a", "sym", ".")]),
     "b", "symlink pointing outside"),
    (lambda p: make_tar(p / "hard.tar", [("h", "hard", "../evil.txt"), ("h", b"overwrite")]),
     "h", "hard link"),
    (lambda p: make_rar(p / "dotdot.rar", [("../evil.txt", b"evil", 0x30)]), "../evil.txt", "'..' component"),
])
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


@pytest.mark.parametrize("build", [
    lambda p: make_zip(p / "big.zip", BIG),
    lambda p: make_tar(p / "big.tar", list(BIG.items())),
    lambda p: make_tar(p / "big.tar.gz", list(BIG.items()), "w:gz"),
    lambda p: make_tar(p / "big.tar.xz", list(BIG.items()), "w:xz"),
    lambda p: make_7z(p / "big.7z", BIG),
], ids=["zip", "tar", "tar.gz", "tar.xz", "7z"])
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
