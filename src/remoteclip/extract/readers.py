"""Per-format readers: each lists an archive's members, passes every one to the `Checker`
and extracts the archive into a staging folder.

Contract: `READERS[fmt](archive, staging, checker)` reads `archive` and writes its members
under `staging` only (the caller moves them into place), raising `UnsafeArchiveError`
(via the checker), `CorruptArchiveError` (truncated or unreadable data, the archive
named), `MissingToolError` (a RAR that needs unrar/bsdtar/7z/unar) or `ExtractError`
(encrypted). The reading itself is the libraries': `zipfile`, `tarfile` (with its `data`
filter as a second line of defence), `py7zr` and `rarfile`.
"""

from __future__ import annotations

import contextlib
import lzma
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from .errors import CorruptArchiveError, ExtractError, MissingToolError, UnsafeArchiveError
from .safety import Checker, Member

_RAR_TOOL_HINT = (
    "install one of: unrar (Debian/Ubuntu: `apt install unrar`, non-free; or `unrar-free`), "
    "bsdtar (`apt install libarchive-tools`, macOS: built in), 7-Zip (`apt install 7zip`), "
    "or unar (`apt install unar`), so that it is on PATH"
)


# ---- zip -------------------------------------------------------------------------------------


def _extract_zip(archive: Path, staging: Path, checker: Checker) -> None:
    with _corrupt_errors(archive, zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if checker.check(_zip_member(zf, info)) is not None:
                    _refuse_encrypted_zip(archive, info)
                    zf.extract(info, staging)


def _zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Member:
    if info.is_dir():
        return Member(info.filename, "dir")
    if stat.S_ISLNK(info.external_attr >> 16):
        # zipfile writes a symlink member as a small file holding the target; checking the
        # target anyway refuses archives built to escape with tools that do make links.
        return Member(info.filename, "symlink", zf.read(info).decode("utf-8", "replace"))
    return Member(info.filename)


def _refuse_encrypted_zip(archive: Path, info: zipfile.ZipInfo) -> None:
    if info.flag_bits & 0x1:
        raise ExtractError(f"{archive}: member {info.filename!r} is encrypted; no password is known")


# ---- tar -------------------------------------------------------------------------------------


def _extract_tar(archive: Path, staging: Path, checker: Checker) -> None:
    with _corrupt_errors(archive, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError):
        with tarfile.open(archive, "r:*") as tf:
            tf.extractall(staging, members=_checked_tar_members(tf, checker), **_tar_filter())
            _check_tar_end(archive, tf)


def _check_tar_end(archive: Path, tf: tarfile.TarFile) -> None:
    """tarfile stops quietly when a plain tar ends at a member boundary; a complete
    archive has a zero block there. Compressed tars need no check: their decompressor
    raises on a truncated stream."""
    if _is_compressed(archive):
        return
    with open(archive, "rb") as fh:
        fh.seek(tf.offset)
        block = fh.read(tarfile.BLOCKSIZE)
    if block != bytes(tarfile.BLOCKSIZE):
        raise CorruptArchiveError(
            f"{archive}: the tar archive ends without its end-of-archive marker at byte "
            f"{tf.offset} (truncated download?); delete it and download it again"
        )


def _is_compressed(archive: Path) -> bool:
    with open(archive, "rb") as fh:
        head = fh.read(6)
    return head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00"))


def _checked_tar_members(tf: tarfile.TarFile, checker: Checker) -> Iterator[tarfile.TarInfo]:
    """Checks each member as the (possibly compressed) stream reaches it, so a large
    .tar.gz is decompressed once; a later refusal discards the staging folder."""
    for info in tf:
        if checker.check(_tar_member(info)) is not None:
            yield info


def _tar_member(info: tarfile.TarInfo) -> Member:
    if info.issym():
        return Member(info.name, "symlink", info.linkname)
    if info.islnk():
        return Member(info.name, "hardlink", info.linkname)
    if info.isdir():
        return Member(info.name, "dir")
    if info.isfile():
        return Member(info.name)
    return Member(info.name, "special")


def _tar_filter() -> dict:
    # Python >= 3.11.4 (and 3.12+) ship the 'data' filter; older versions have no filter.
    return {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


# ---- 7z --------------------------------------------------------------------------------------


def _extract_7z(archive: Path, staging: Path, checker: Checker) -> None:
    import py7zr
    from py7zr import exceptions as e7

    errors = (
        e7.ArchiveError,
        e7.Bad7zFile,
        e7.CrcError,
        e7.DecompressionError,
        e7.UnsupportedCompressionMethodError,
        EOFError,
        lzma.LZMAError,
        zlib.error,
    )
    with _corrupt_errors(archive, *errors):
        with py7zr.SevenZipFile(archive, mode="r") as szf:
            if szf.needs_password():
                raise ExtractError(f"{archive}: the 7z archive is encrypted; no password is known")
            for info in szf.list():
                checker.check(_7z_member(info))
            _extractall_7z(archive, szf, staging)


def _extractall_7z(archive: Path, szf, staging: Path) -> None:
    from py7zr import exceptions as e7

    try:
        szf.extractall(path=staging)
    except (e7.AbsolutePathError, e7.Bad7zFile) as exc:
        # py7zr checks link targets itself but reports them as a bad archive.
        if isinstance(exc, e7.AbsolutePathError) or "target directory" in str(exc):
            raise UnsafeArchiveError(
                f"{archive}: refusing to extract: {exc}; nothing was written outside the target"
            ) from exc
        raise


def _7z_member(info) -> Member:
    if info.is_directory:
        return Member(info.filename, "dir")
    if info.is_symlink or getattr(info, "is_junction", False):
        return Member(info.filename, "symlink")
    if getattr(info, "is_socket", False):
        return Member(info.filename, "special")
    return Member(info.filename)


# ---- rar -------------------------------------------------------------------------------------


def _extract_rar(archive: Path, staging: Path, checker: Checker) -> None:
    import rarfile

    with _corrupt_errors(archive, rarfile.Error, EOFError):
        with rarfile.RarFile(archive) as rf:
            infos = rf.infolist()
            for info in infos:
                checker.check(_rar_member(info))
            if any(_rar_needs_tool(info) for info in infos):
                _require_rar_tool(archive)
            rf.extractall(path=staging)


def _rar_member(info) -> Member:
    if info.is_dir():
        return Member(info.filename, "dir")
    if info.is_symlink():
        link = info.file_redir[2] if info.file_redir else None
        return Member(info.filename, "symlink", link)
    return Member(info.filename)


def _rar_needs_tool(info) -> bool:
    import rarfile

    # rarfile reads stored, unencrypted members itself; everything else goes through a tool.
    return info.is_file() and (info.compress_type != rarfile.RAR_M0 or info.needs_password())


def _require_rar_tool(archive: Path) -> None:
    import rarfile

    try:
        rarfile.tool_setup(force=True)
    except rarfile.RarCannotExec as exc:
        raise MissingToolError(
            f"{archive}: extracting this RAR archive needs an external program and none was found; {_RAR_TOOL_HINT}"
        ) from exc


READERS = {"zip": _extract_zip, "tar": _extract_tar, "7z": _extract_7z, "rar": _extract_rar}


# ---- errors ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _corrupt_errors(archive: Path, *errors: type[BaseException]) -> Iterator[None]:
    """Turns a reader's low-level errors into one that names the archive."""
    try:
        yield
    except ExtractError:
        raise
    except Exception as exc:
        # gzip, bz2 and py7zr report bad data as an OSError without errno; an OSError with
        # one (disk full, permission denied) is a real I/O error and passes unchanged.
        data_error = isinstance(exc, OSError) and exc.errno is None
        if not (isinstance(exc, errors) or data_error):
            raise
        raise CorruptArchiveError(
            f"{archive}: the archive is truncated, corrupt or unsupported "
            f"({type(exc).__name__}: {exc}); delete it and download it again"
        ) from exc
