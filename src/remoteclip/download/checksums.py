"""Checksums: which digests a file must have, and whether it has them.

A file is checked against every digest it has (md5 and/or sha256); both are computed in
one read, which matters for archives of tens of GB. Reads the file; writes nothing,
except that `checksum_error` moves a wrong transfer aside to `<name>.bad`.

Not pooch's `hash_matches`/`file_hash`: they check one `alg:hex` digest per file and read
the file once per algorithm (pooch/hashes.py, `hash_algorithm` and `file_hash`), where a
catalogue entry may publish both md5 and sha256. Not `hashlib.file_digest` either (one
digest, no progress bar).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ChecksumError
from .files import CHUNK, bad_path, progress_bar


@dataclass(frozen=True)
class Expected:
    """Digests a file must have, and where they come from (for error messages)."""

    digests: dict[str, str] = field(default_factory=dict)
    origin: str = "given"

    def mismatch(self, actual: dict[str, str]) -> tuple[str, str, str] | None:
        """(algorithm, expected, actual) of the first digest that differs, else None."""
        for algorithm, want in self.digests.items():
            if actual[algorithm] != want:
                return algorithm, want, actual[algorithm]
        return None


def expected_digests(md5: str | None, sha256: str | None, origin: str) -> Expected:
    """The given digests, normalised to lower case; malformed ones are refused."""
    digests = {}
    for algorithm, value, length in (("md5", md5, 32), ("sha256", sha256, 64)):
        if value is None:
            continue
        value = str(value).strip().lower()
        if not re.fullmatch(f"[0-9a-f]{{{length}}}", value):
            raise ValueError(f"{algorithm} {value!r} ({origin}) is not {length} hex digits")
        digests[algorithm] = value
    return Expected(digests, origin)


def file_digests(path: Path, progress: bool = False) -> dict[str, str]:
    """md5 and sha256 of a file, computed in one read."""
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    size = Path(path).stat().st_size
    with open(path, "rb") as fh, progress_bar(size, 0, f"verify {Path(path).name}", progress) as bar:
        while chunk := fh.read(CHUNK):
            md5.update(chunk)
            sha256.update(chunk)
            bar.update(len(chunk))
    return {"md5": md5.hexdigest(), "sha256": sha256.hexdigest()}


def checksum_error(url: str, dest: Path, part: Path, expected: Expected, bad: tuple[str, str, str]) -> ChecksumError:
    """Keep the wrong transfer `part` aside as `<dest>.bad` and say so."""
    algorithm, want, got = bad
    kept = bad_path(dest)
    os.replace(part, kept)
    return ChecksumError(
        f"{url}: checksum mismatch for {dest.name}: expected {algorithm} {want} "
        f"({expected.origin}), got {got}. The downloaded bytes are kept at {kept} for "
        "inspection; nothing was marked complete.",
        url=url,
        algorithm=algorithm,
        expected=want,
        actual=got,
        kept=kept,
    )
