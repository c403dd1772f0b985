"""Member checks: the one part of extraction that is ours, not the format libraries'.

Contract: `Checker.check` sees every member's name, kind and (where the listing states it)
link target before the reader writes it, and raises `UnsafeArchiveError` naming the
archive and the member for absolute paths, `..` components, links leading outside the
target, members written through a symlink, and device files. `check_extracted_links`
then resolves every symlink written to the staging folder. Reads listings and the staging
folder; writes nothing.

Why not the libraries' own checks: zipfile silently rewrites dangerous names
(`ZipFile._extract_member` drops drive letters and `..`), and so does tarfile's `data`
filter for absolute names (`_get_filtered_attrs` strips the leading `/`: `/etc/x` lands
as `etc/x`), where we refuse the archive; py7zr and rarfile do not report a link's target
before extracting it. The `data` filter still runs as a second line of defence
(readers.py), and py7zr's own link check is turned into `UnsafeArchiveError` there.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from .errors import UnsafeArchiveError


@dataclass(frozen=True)
class Member:
    name: str
    kind: str = "file"  # file | dir | symlink | hardlink | special
    link: str | None = None  # link target where the listing states it


@dataclass
class Checker:
    """Validates members in archive order; remembers symlinks so that nothing is written
    through one (which is how a lexically harmless name can still escape)."""

    archive: Path
    bar: tqdm | None = None
    symlinks: set[str] = field(default_factory=set)
    # the distinct member paths in archive order: a dict is an ordered set, so a member seen
    # again (tar appends a changed file under the same name) costs O(1), not a list scan
    # (quadratic: 40k members took 9 s, a million would take hours)
    seen: dict[str, None] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """The distinct member paths relative to the target, in the order first seen."""
        return list(self.seen)

    def check(self, member: Member) -> str | None:
        if self.bar is not None:
            self.bar.update(1)
        rel = relative_name(self.archive, member.name)
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
        self.seen.setdefault(rel)
        return rel

    def _refuse(self, name: str, why: str) -> None:
        raise UnsafeArchiveError(
            f"{self.archive}: refusing to extract member {name!r}: it {why}; nothing was written outside the target"
        )

    def _refuse_through_symlink(self, rel: str, name: str) -> None:
        parts = rel.split("/")
        for i in range(1, len(parts)):
            prefix = "/".join(parts[:i])
            if prefix in self.symlinks:
                self._refuse(name, f"would be written through the symlink {prefix!r}")

    def _check_symlink(self, rel: str, member: Member) -> None:
        if member.link is None:
            return  # py7zr/rarfile: checked on disk after extraction instead
        if is_absolute(member.link):
            self._refuse(member.name, f"is a symlink to the absolute path {member.link!r}")
        start = str(PurePosixPath(rel).parent)
        if not self._resolves_inside(start, member.link):
            self._refuse(member.name, f"is a symlink pointing outside the target ({member.link!r})")

    def _check_hardlink(self, member: Member) -> None:
        link = member.link or ""
        if is_absolute(link) or ".." in re.split(r"[\\/]", link):
            self._refuse(member.name, f"is a hard link to {link!r}, outside the target")
        rel = relative_name(self.archive, link) or ""
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


def is_absolute(name: str) -> bool:
    return name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) is not None


def relative_name(archive: Path, name: str) -> str | None:
    """The member's path relative to the target, or None for the archive's root entry."""
    if is_absolute(name):
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


def check_extracted_links(archive: Path, staging: Path) -> None:
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
