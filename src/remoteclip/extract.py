"""Safe extraction of dataset archives: zip, tar (plain, gz, bz2, xz), 7z and rar.

Dataset archives come from third-party hosts, so every member is checked before it is
written: absolute paths, `..` components, links that lead outside the target, members
written through a symlink, and device files are refused with an error naming the archive
and the member. Members are extracted into a staging folder inside the target and only
moved into place once the whole archive has been read, so a refused, truncated or corrupt
archive leaves the target as it was.

The per-format readers are the standard library's `zipfile` and `tarfile` (with its
`data` filter as a second line of defence), `py7zr` and `rarfile`. Only the member checks
are ours: zipfile silently rewrites dangerous names instead of refusing them, and py7zr and
rarfile do not report a link's target before extracting it.
"""

from __future__ import annotations

import contextlib
import lzma
import os
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tqdm import tqdm

__all__ = [
    "ARCHIVE_SUFFIXES",
    "CorruptArchiveError",
    "ExtractError",
    "MissingToolError",
    "UnsafeArchiveError",
    "archive_format",
    "archive_stem",
    "extract_in_place",
    "is_archive",
    "safe_extract",
]

ARCHIVE_SUFFIXES = {
    ".zip": "zip",
    ".tar": "tar",
    ".tar.gz": "tar",
    ".tgz": "tar",
    ".tar.bz2": "tar",
    ".tbz2": "tar",
    ".tbz": "tar",
    ".tar.xz": "tar",
    ".txz": "tar",
    ".7z": "7z",
    ".rar": "rar",
}

# Content beats the file name: hosts often serve archives under misleading names.
_MAGIC = (
    (0, b"PK\x03\x04", "zip"),
    (0, b"PK\x05\x06", "zip"),
    (0, b"7z\xbc\xaf\x27\x1c", "7z"),
    (0, b"Rar!\x1a\x07", "rar"),
    (0, b"\x1f\x8b", "tar"),
    (0, b"BZh", "tar"),
    (0, b"\xfd7zXZ\x00", "tar"),
    (257, b"ustar", "tar"),
)

_RAR_TOOL_HINT = (
    "install one of: unrar (Debian/Ubuntu: `apt install unrar`, non-free; or `unrar-free`), "
    "bsdtar (`apt install libarchive-tools`, macOS: built in), 7-Zip (`apt install 7zip`), "
    "or unar (`apt install unar`), so that it is on PATH"
)


class ExtractError(RuntimeError):
    """An archive could not be extracted; the message names the archive."""


class UnsafeArchiveError(ExtractError):
    """A member would land outside the target (path traversal, absolute path, link)."""


class CorruptArchiveError(ExtractError):
    """The archive is truncated, corrupt or in a variant the reader does not support."""


class MissingToolError(ExtractError):
    """An external program the archive needs (unrar, bsdtar, ...) is not installed."""


def is_archive(name: str | os.PathLike) -> bool:
    """Whether a file name has one of the archive suffixes `safe_extract` reads."""
    return _format_from_name(str(name)) is not None


def archive_format(archive: Path) -> str:
    """'zip', 'tar', '7z' or 'rar', from the file's first bytes, else from its name."""
    archive = Path(archive)
    if not archive.is_file():
        raise ExtractError(f"{archive}: archive not found")
    with open(archive, "rb") as fh:
        head = fh.read(512)
    for offset, magic, fmt in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return fmt
    fmt = _format_from_name(archive.name)
    if fmt is None:
        known = ", ".join(sorted(ARCHIVE_SUFFIXES))
        raise ExtractError(f"{archive}: not a recognised archive (known suffixes: {known})")
    return fmt


def safe_extract(archive: Path, target: Path, *, progress: bool = False) -> list[Path]:
    """Extract `archive` into `target` after checking every member; return the member
    paths under `target` in archive order. Existing files of the same name are replaced.
    `progress` shows a tqdm counter of members."""
    archive, target = Path(archive), Path(target)
    reader = _READERS[archive_format(archive)]
    target.mkdir(parents=True, exist_ok=True)
    staging = target / f".extracting-{archive.name}"
    _rmtree(staging)
    staging.mkdir()
    bar = tqdm(desc=f"extract {archive.name}", unit=" files", disable=not progress, leave=False)
    try:
        checker = _Checker(archive, bar)
        reader(archive, staging, checker)
        _check_extracted_links(archive, staging)
        _make_dirs_writable(staging)
        _merge(staging, target)
    finally:
        bar.close()
        _rmtree(staging)
    return [target / name for name in checker.names]


def extract_in_place(archive: Path, *, progress: bool = False) -> Path:
    """Unpack an archive that came inside another one into a folder named after it, next to
    it, and delete it: `Images/airplane.rar` -> `Images/airplane/`. An archive whose members
    all sit in one folder of that name already (`imgs.rar` holding `imgs/...`) is not nested
    twice. The same member checks as `safe_extract` apply. Returns the folder."""
    archive = Path(archive)
    folder = archive.parent / archive_stem(archive.name)
    staging = archive.parent / f".unpacking-{archive.name}"
    _rmtree(staging)
    try:
        safe_extract(archive, staging, progress=progress)
        inner = staging / folder.name
        only_folder = [p.name for p in staging.iterdir()] == [folder.name] and inner.is_dir() and not inner.is_symlink()
        folder.mkdir(exist_ok=True)
        _merge(inner if only_folder else staging, folder)
    finally:
        _rmtree(staging)
    archive.unlink()
    return folder


def archive_stem(name: str) -> str:
    """The name without its archive suffix: `imgs.rar` -> `imgs`, `a.tar.gz` -> `a`."""
    suffix = _archive_suffix(name)
    return name[: -len(suffix)] if suffix and len(name) > len(suffix) else name


def _format_from_name(name: str) -> str | None:
    suffix = _archive_suffix(name)
    return ARCHIVE_SUFFIXES[suffix] if suffix else None


# longest first, so a compound suffix wins over a shorter suffix it ends with
_SUFFIXES_LONGEST_FIRST = sorted(ARCHIVE_SUFFIXES, key=len, reverse=True)


def _archive_suffix(name: str) -> str | None:
    lower = name.lower()
    return next((suffix for suffix in _SUFFIXES_LONGEST_FIRST if lower.endswith(suffix)), None)


# ---- member checks -------------------------------------------------------------------


@dataclass(frozen=True)
class _Member:
    name: str
    kind: str = "file"  # file | dir | symlink | hardlink | special
    link: str | None = None  # link target where the listing states it


@dataclass
class _Checker:
    """Validates members in archive order; remembers symlinks so that nothing is written
    through one (which is how a lexically harmless name can still escape)."""

    archive: Path
    bar: tqdm | None = None
    symlinks: set[str] = field(default_factory=set)
    names: list[str] = field(default_factory=list)

    def check(self, member: _Member) -> str | None:
        if self.bar is not None:
            self.bar.update(1)
        rel = _relative_name(self.archive, member.name)
        if rel is None:
            return None
        self._refuse_through_symlink(rel, member.name)
        if member.kind == "special":
            self._refuse(member.name, "is a device, FIFO or socket")
        if member.kind == "symlink":
            self._check_symlink(rel, member)
            self.symlinks.add(rel)
        if member.kind == "hardlink":
            self._check_hardlink(member)
        if rel not in self.names:
            self.names.append(rel)
        return rel

    def _refuse(self, name: str, why: str) -> None:
        raise UnsafeArchiveError(
            f"{self.archive}: refusing to extract member {name!r}: it {why}; "
            "nothing was written outside the target"
        )

    def _refuse_through_symlink(self, rel: str, name: str) -> None:
        parts = rel.split("/")
        for i in range(1, len(parts)):
            prefix = "/".join(parts[:i])
            if prefix in self.symlinks:
                self._refuse(name, f"would be written through the symlink {prefix!r}")

    def _check_symlink(self, rel: str, member: _Member) -> None:
        if member.link is None:
            return  # py7zr/rarfile: checked on disk after extraction instead
        if _is_absolute(member.link):
            self._refuse(member.name, f"is a symlink to the absolute path {member.link!r}")
        start = str(PurePosixPath(rel).parent)
        if not self._resolves_inside(start, member.link):
            self._refuse(member.name, f"is a symlink pointing outside the target ({member.link!r})")

    def _check_hardlink(self, member: _Member) -> None:
        link = member.link or ""
        if _is_absolute(link) or ".." in re.split(r"[\\/]", link):
            self._refuse(member.name, f"is a hard link to {link!r}, outside the target")
        rel = _relative_name(self.archive, link) or ""
        if rel in self.symlinks:
            self._refuse(member.name, f"is a hard link to the symlink {link!r}")
        self._refuse_through_symlink(rel, member.name)

    def _resolves_inside(self, start: str, link: str) -> bool:
        """Walk the link's components from its folder; `..` after passing a known symlink
        is refused because the real parent is unknown until the link is resolved."""
        stack = [p for p in start.split("/") if p not in ("", ".")]
        through_symlink = False
        for part in re.split(r"[\\/]", link):
            if part in ("", "."):
                continue
            if part == "..":
                if not stack or through_symlink:
                    return False
                stack.pop()
                continue
            stack.append(part)
            through_symlink = through_symlink or "/".join(stack) in self.symlinks
        return True


def _is_absolute(name: str) -> bool:
    return name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) is not None


def _relative_name(archive: Path, name: str) -> str | None:
    """The member's path relative to the target, or None for the archive's root entry."""
    if _is_absolute(name):
        raise UnsafeArchiveError(
            f"{archive}: refusing to extract member {name!r}: it has an absolute path; "
            "nothing was written outside the target"
        )
    # Backslashes count as separators for the check: Windows-made zips use them.
    if ".." in re.split(r"[\\/]", name):
        raise UnsafeArchiveError(
            f"{archive}: refusing to extract member {name!r}: it contains a '..' component; "
            "nothing was written outside the target"
        )
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return "/".join(parts) or None


def _check_extracted_links(archive: Path, staging: Path) -> None:
    """Resolve every symlink on disk: the only complete check for formats whose listing
    does not state link targets (7z, rar) and for chains of links."""
    root = os.path.realpath(staging)
    for dirpath, dirnames, filenames in os.walk(staging):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                continue
            real = os.path.realpath(path)
            if real != root and not real.startswith(root + os.sep):
                rel = os.path.relpath(path, staging)
                raise UnsafeArchiveError(
                    f"{archive}: refusing to extract member {rel!r}: it is a symlink pointing "
                    f"outside the target ({os.readlink(path)!r}); nothing was written outside "
                    "the target"
                )


# ---- readers: each checks its members with `checker` and extracts them into `staging` ----


def _extract_zip(archive: Path, staging: Path, checker: _Checker) -> None:
    with _corrupt_errors(archive, zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if checker.check(_zip_member(zf, info)) is not None:
                    _refuse_encrypted_zip(archive, info)
                    zf.extract(info, staging)


def _zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> _Member:
    if info.is_dir():
        return _Member(info.filename, "dir")
    if stat.S_ISLNK(info.external_attr >> 16):
        # zipfile writes a symlink member as a small file holding the target; checking the
        # target anyway refuses archives built to escape with tools that do make links.
        return _Member(info.filename, "symlink", zf.read(info).decode("utf-8", "replace"))
    return _Member(info.filename)


def _refuse_encrypted_zip(archive: Path, info: zipfile.ZipInfo) -> None:
    if info.flag_bits & 0x1:
        raise ExtractError(f"{archive}: member {info.filename!r} is encrypted; no password is known")


def _extract_tar(archive: Path, staging: Path, checker: _Checker) -> None:
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


def _checked_tar_members(tf: tarfile.TarFile, checker: _Checker) -> Iterator[tarfile.TarInfo]:
    """Checks each member as the (possibly compressed) stream reaches it, so a large
    .tar.gz is decompressed once; a later refusal discards the staging folder."""
    for info in tf:
        if checker.check(_tar_member(info)) is not None:
            yield info


def _tar_member(info: tarfile.TarInfo) -> _Member:
    if info.issym():
        return _Member(info.name, "symlink", info.linkname)
    if info.islnk():
        return _Member(info.name, "hardlink", info.linkname)
    if info.isdir():
        return _Member(info.name, "dir")
    if info.isfile():
        return _Member(info.name)
    return _Member(info.name, "special")


def _tar_filter() -> dict:
    # Python >= 3.11.4 (and 3.12+) ship the 'data' filter; older versions have no filter.
    return {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


def _extract_7z(archive: Path, staging: Path, checker: _Checker) -> None:
    import py7zr
    from py7zr import exceptions as e7

    errors = (e7.ArchiveError, e7.Bad7zFile, e7.CrcError, e7.DecompressionError,
              e7.UnsupportedCompressionMethodError, EOFError, lzma.LZMAError, zlib.error)
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


def _7z_member(info) -> _Member:
    if info.is_directory:
        return _Member(info.filename, "dir")
    if info.is_symlink or getattr(info, "is_junction", False):
        return _Member(info.filename, "symlink")
    if getattr(info, "is_socket", False):
        return _Member(info.filename, "special")
    return _Member(info.filename)


def _extract_rar(archive: Path, staging: Path, checker: _Checker) -> None:
    import rarfile

    with _corrupt_errors(archive, rarfile.Error, EOFError):
        with rarfile.RarFile(archive) as rf:
            infos = rf.infolist()
            for info in infos:
                checker.check(_rar_member(info))
            if any(_rar_needs_tool(info) for info in infos):
                _require_rar_tool(archive)
            rf.extractall(path=staging)


def _rar_member(info) -> _Member:
    if info.is_dir():
        return _Member(info.filename, "dir")
    if info.is_symlink():
        link = info.file_redir[2] if info.file_redir else None
        return _Member(info.filename, "symlink", link)
    return _Member(info.filename)


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
            f"{archive}: extracting this RAR archive needs an external program and none was "
            f"found; {_RAR_TOOL_HINT}"
        ) from exc


_READERS = {"zip": _extract_zip, "tar": _extract_tar, "7z": _extract_7z, "rar": _extract_rar}


# ---- errors ------------------------------------------------------------------------------


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


# ---- staging -------------------------------------------------------------------------------


def _merge(src: Path, dst: Path) -> None:
    """Move the staged tree into `dst`; whole folders move in one rename where possible."""
    for entry in sorted(os.scandir(src), key=lambda e: e.name):
        out = dst / entry.name
        if entry.is_dir(follow_symlinks=False) and out.is_dir() and not out.is_symlink():
            _merge(Path(entry.path), out)
            continue
        _remove_path(out)
        os.replace(entry.path, out)


def _remove_path(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        _rmtree(path)


def _rmtree(path: Path) -> None:
    if path.is_symlink():
        path.unlink()
    elif path.exists():
        _make_dirs_writable(path)
        shutil.rmtree(path)


def _make_dirs_writable(root: Path) -> None:
    # Archives may hold read-only folders; moving or deleting their contents needs u+rwx.
    for dirpath, dirnames, _ in os.walk(root):
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | stat.S_IRWXU)

