"""A catalogue entry's files, validated: what to fetch, from where, checked against what.

Contract: `file_specs(dataset, entry)` reads a catalogue entry (`files:` plus the files
named under `manual:`) and returns one `FileSpec` per file, refusing names that are not
plain file names, subdirs or nested globs that leave the dataset folder. A file whose name
holds a numbered range, `train-{0000..0239}.tar` (webdataset's brace notation, one range),
stands for one file per number, its URLs carrying the same range: a corpus of 240 shards is
one catalogue line. `expected_for`
says which digests a file must have: the published ones, else the trust-on-first-use
lock's, else none yet. Reads the lock file; writes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..extract import is_archive
from .checksums import Expected, expected_digests
from .lock import ChecksumLock


@dataclass(frozen=True)
class FileSpec:
    name: str
    urls: tuple[str, ...]
    md5: str | None
    sha256: str | None
    extract: bool
    subdir: str | None
    manual_from: str | None
    nested: tuple[str, ...] = ()  # globs of archives inside this one, unpacked in place


def file_specs(dataset: str, entry: dict) -> list[FileSpec]:
    manual = entry.get("manual") or {}
    manual_files = manual.get("files") or []
    sources = {f.get("name"): f.get("from") for f in manual_files}
    files = list(entry.get("files") or [])
    listed = {f.get("name") for f in files}
    files += [f for f in manual_files if f.get("name") not in listed]
    if not files:
        raise ValueError(f"dataset {dataset!r}: the catalogue entry lists no files")
    return [_file_spec(dataset, one, sources) for f in files for one in numbered_files(dataset, f)]


NUMBERED = re.compile(r"\{(\d+)\.\.(\d+)\}")


def numbered_files(dataset: str, f: dict) -> list[dict]:
    """`{name: "a-{00..02}.tar", urls: [".../a-{00..02}.tar"]}` -> the files a-00.tar, a-01.tar,
    a-02.tar, each with its own URLs; zero-padded to the width of the first number. A file
    without a range is itself."""
    name = f.get("name")
    if not isinstance(name, str) or not (ranges := NUMBERED.findall(name)):
        return [f]
    if len(ranges) > 1:
        raise ValueError(f"dataset {dataset!r}: file name {name!r} holds more than one numbered range")
    first, last = ranges[0]
    if int(last) < int(first):
        raise ValueError(f"dataset {dataset!r}: file name {name!r}: the range counts down")
    token = "{" + first + ".." + last + "}"
    urls = f.get("urls") or []
    urls = [urls] if isinstance(urls, str) else urls
    unranged = [u for u in urls if token not in u]
    if unranged:
        raise ValueError(
            f"dataset {dataset!r}: file {name!r} is numbered, but its URL {unranged[0]!r} does not hold the "
            f"same range {token}: every number would download the same file"
        )
    if f.get("md5") or f.get("sha256"):
        raise ValueError(f"dataset {dataset!r}: numbered file {name!r} cannot carry one checksum for every file")
    width = len(first)
    return [
        {**f, "name": name.replace(token, num), "urls": [u.replace(token, num) for u in urls]}
        for num in (str(n).zfill(width) for n in range(int(first), int(last) + 1))
    ]


def _file_spec(dataset: str, f: dict, sources: dict[str, str | None]) -> FileSpec:
    name = f.get("name")
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", ".."):
        raise ValueError(f"dataset {dataset!r}: file name {name!r} must be a plain file name")
    subdir = f.get("subdir")
    if subdir is not None and (Path(subdir).is_absolute() or ".." in Path(subdir).parts):
        raise ValueError(f"dataset {dataset!r}: subdir {subdir!r} of {name} must stay inside the dataset folder")
    urls = f.get("urls", [])
    if isinstance(urls, str):
        urls = [urls]
    extract = bool(f.get("extract", is_archive(name)))
    nested = tuple(f.get("nested") or ())
    for pattern in nested:
        if not isinstance(pattern, str) or not pattern or Path(pattern).is_absolute() or ".." in Path(pattern).parts:
            raise ValueError(
                f"dataset {dataset!r}: nested pattern {pattern!r} of {name} must be a relative glob "
                "inside the extracted archive"
            )
    if nested and not extract:
        raise ValueError(f"dataset {dataset!r}: {name} lists nested archives but is not extracted")
    return FileSpec(
        name=name,
        urls=tuple(urls),
        md5=f.get("md5"),
        sha256=f.get("sha256"),
        extract=extract,
        subdir=subdir,
        manual_from=sources.get(name),
        nested=nested,
    )


def expected_for(dataset: str, spec: FileSpec, lock: ChecksumLock) -> tuple[Expected, bool]:
    """The digests to check, and whether they are published (False: lock or nothing)."""
    if spec.md5 or spec.sha256:
        return expected_digests(spec.md5, spec.sha256, "published in the dataset catalogue"), True
    locked = lock.get(dataset, spec.name)
    if locked:
        return expected_digests(None, locked.get("sha256"), f"recorded in {lock.path} on first use"), False
    return Expected(origin="none"), False
