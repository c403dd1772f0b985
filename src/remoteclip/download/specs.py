"""A catalogue entry's files, validated: what to fetch, from where, checked against what.

Contract: `file_specs(dataset, entry)` reads a catalogue entry (`files:` plus the files
named under `manual:`) and returns one `FileSpec` per file, refusing names that are not
plain file names, subdirs or nested globs that leave the dataset folder. `expected_for`
says which digests a file must have: the published ones, else the trust-on-first-use
lock's, else none yet. Reads the lock file; writes nothing.
"""

from __future__ import annotations

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
    return [_file_spec(dataset, f, sources) for f in files]


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
