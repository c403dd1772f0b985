"""WebDataset tars read in place (RS5M, RSTeller, GAIA after its img2dataset download): one
caption row per image, with where the image's bytes lie in its tar, so nothing is unpacked.

Each tar is read once, member headers in order, with Python's `tarfile` in random-access mode
(`r:`): the headers are read and the member data is seeked over, except the caption members,
which are read. Members are grouped into samples as WebDataset groups them
(`webdataset.tariterators.group_by_keys` with its `base_plus_ext`, written out here): the key is the
member name up to the first dot of its base name, the suffix the rest, lower-cased; a sample is
a run of consecutive members with one key. A member name without a dot belongs to no sample.

Options:
- `tars`: glob patterns relative to the dataset root (sorted, read in that order);
- `image_extensions`: the suffixes that hold the image (the first member of a sample with one
  of them is its image);
- `captions`: the caption fields, in order. A plain suffix (`txt`, RS5M's `caption`) is the
  text of the member `<key>.<suffix>`, one caption per non-empty line (RSTeller's `.txt` holds
  one caption a line); `json:<field>` is a field of `<key>.json`, a string or a list of
  strings, and a dotted path walks into it, mapping over lists (`json:annotations.text` is the
  `text` of every element of `annotations`). An image's captions are those of every field in
  order, repeats removed.

Rows: `{"image": "<tar>/<member>", "captions", "split": "train", "stored": {"tar": <tar>,
"offset": <byte offset of the member's data>, "size": <its size>}}` with `<tar>` relative to the
dataset root (the caption stage puts the root in front of both, as it does for image files);
`imageio.load_sample_rgb` reads the image back by seeking there. Web corpora are training
sources: every row is "train".

Bad input: a tar that is not one, is compressed (a compressed member cannot be read by its
offset), or is truncated (a member's data runs past the end of the file, or the end-of-archive
zero block is missing: a tar cut at a member boundary reads as a shorter complete one
otherwise) is a FormatError naming it. A sample without an image member, an image without any
configured caption, a caption member that is not UTF-8 or a json member that is not JSON, and a
key seen earlier in the same tar (WebDataset would make it a second sample of the same name)
are counted skips with the reason.

Release layouts (checked with the project's search tools, 2026-12-07):
- RS5M: om-ai-lab/RS5M `dataloader.py` reads `{pub11,rs3}-{train,val}-{0000..0031}.tar` and
  decodes the members `.img_content` (image bytes), `.img_name` and `.caption` (text): verified in
  that loader; its catalogue entry needs `image_extensions: [img_content]`, `captions:
  [caption]`. The Hub cards (`omlab/RS5M`: MIT; `Zilun/RS5M`: cc-by-nc-4.0, metadata CSVs) were
  seen as pages only; no real tar was opened: the image encoding inside `.img_content` and
  whether `.caption` ever holds several lines are unverified.
- RSTeller: the SlytherinGe/RSTeller README shows `Patches0000.tar` ... with `607.jpg`,
  `607.txt` (one caption a line) and `607.json` (`{"metadata": {...}, "annotations": [{"task",
  "text"}, ...]}`); the Hub card (`SlytherinGe/RSTeller`) lists `jpg`, `json`, `txt` features
  under `JPG/`. So `captions: [txt]` or `[json:annotations.text]`: verified from the README, no
  real tar opened.
- GAIA: img2dataset's webdataset output (rule `fetch_images`, remoteclip.download.urllists:
  `<stem>/NNNNN.tar` with `<key>.png`, `<key>.txt`, `<key>.json`); its five captions are the
  json field `captions` (img2dataset's save_additional_columns), so `captions: [json:captions]`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .base import FormatError, SkipLog
from .common import expand

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "tars": ["**/*.tar"],
    "image_extensions": ["jpg", "jpeg", "png", "webp", "tif", "tiff"],
    "captions": ["txt"],
}

# WebDataset's split of a member name into key and suffix: `webdataset.tariterators.base_plus_ext`
# (the same regex in 0.2.86 and 1.0.2, by their source), written out because importing webdataset
# imports torch, which the data stages do not load; tests/formats/test_webdataset.py checks that
# the two agree
MEMBER_NAME = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")


def base_plus_ext(name: str) -> tuple[str | None, str | None]:
    """(key, suffix) of a member name as WebDataset splits it; (None, None) without a dot."""
    match = MEMBER_NAME.match(name)
    return (match.group(1), match.group(2)) if match else (None, None)


BLOCK = tarfile.BLOCKSIZE
# the first bytes of compressed streams: gzip, bzip2, xz, zstd
COMPRESSED = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}


class Sample:
    """The members of one key: suffix -> TarInfo, in tar order."""

    def __init__(self, key: str):
        self.key = key
        self.members: dict[str, tarfile.TarInfo] = {}


def parse(root: Path, options: dict[str, Any], skips: SkipLog) -> Iterator[dict]:
    """Yield one row per image of every tar the patterns match, tar by tar in sorted order."""
    opts = {**DEFAULTS, **options}
    tars = expand(root, opts["tars"])
    if not len(tars):
        raise FormatError(root / str(opts["tars"]), "no tar matches these patterns")
    fields = [CaptionField(f) for f in opts["captions"]]
    extensions = {e.lower().lstrip(".") for e in opts["image_extensions"]}
    for tar in tars:
        yield from read_tar(root, Path(tar), fields, extensions, skips)


class CaptionField:
    """One entry of `captions`: a member suffix, or `json:<dotted path>`."""

    def __init__(self, spec: str):
        self.spec = spec
        self.suffix, _, path = spec.partition(":") if spec.startswith("json:") else (spec.lower(), "", "")
        self.path = [p for p in path.split(".") if p] if spec.startswith("json:") else None
        if self.path is not None and not self.path:
            raise ValueError(f"caption field {spec!r}: give the json field after 'json:'")

    def values(self, data: Any) -> list[str]:
        """The field's captions in a member's text (a suffix) or parsed JSON (a json path)."""
        if self.path is None:
            return [line.strip() for line in data.splitlines() if line.strip()]
        return [s.strip() for s in _walk(data, self.path) if s.strip()]


def _walk(value: Any, path: list[str]) -> list[str]:
    """The strings at a dotted path, mapping over lists on the way."""
    if isinstance(value, list):
        return [s for item in value for s in _walk(item, path)]
    if not path:
        return [value] if isinstance(value, str) else []
    return _walk(value.get(path[0]), path[1:]) if isinstance(value, dict) else []


def read_tar(root: Path, tar: Path, fields: list[CaptionField], extensions: set[str], skips: SkipLog) -> Iterator[dict]:
    """The rows of one tar, streamed: memory holds one sample's headers and captions."""
    rel = tar.relative_to(root).as_posix()
    seen: set[str] = set()
    with open(tar, "rb") as fh:
        _check_uncompressed(tar, fh)
        try:
            archive = tarfile.open(fileobj=fh, mode="r:")
        except tarfile.TarError as exc:
            raise FormatError(tar, f"not a readable tar ({exc})") from None
        with archive:
            current: Sample | None = None
            for member in _members(tar, archive, size=os.fstat(fh.fileno()).st_size):
                key, suffix = base_plus_ext(member.name)
                if key is None or suffix is None:
                    continue
                if current is None or key != current.key:
                    if current is not None:
                        yield from _row(rel, tar, archive, current, fields, extensions, skips, seen)
                    current = Sample(key)
                if suffix.lower() in current.members:
                    skips.skip(FormatError(tar, f"member {member.name} repeats a suffix of its sample"), "member")
                    continue
                current.members[suffix.lower()] = member
            if current is not None:
                yield from _row(rel, tar, archive, current, fields, extensions, skips, seen)
            _check_end(tar, fh, archive.offset)


def _check_uncompressed(tar: Path, fh) -> None:
    head = fh.read(6)
    fh.seek(0)
    for magic, kind in COMPRESSED.items():
        if head.startswith(magic):
            raise FormatError(
                tar, f"{kind}-compressed: images are read in place by their offset, which needs a plain tar"
            )


def _members(tar: Path, archive: tarfile.TarFile, size: int) -> Iterator[tarfile.TarInfo]:
    """Regular file members in order (`size`: the tar's bytes); the archive's member list is
    emptied as it goes (as WebDataset does), so memory does not grow with the tar."""
    while True:
        try:
            member = archive.next()
        except tarfile.TarError as exc:
            raise FormatError(tar, f"unreadable tar member header after byte {archive.offset} ({exc})") from None
        if member is None:
            return
        archive.members = []  # type: ignore[attr-defined]  # (tarfile's own list, not in typeshed)
        if not member.isfile():
            continue
        if member.offset_data + member.size > size:
            raise FormatError(tar, f"truncated: member {member.name} ends past the end of the file")
        yield member


def _check_end(tar: Path, fh, offset: int) -> None:
    """A complete tar ends with zero blocks where the next header would be."""
    fh.seek(offset)
    if fh.read(BLOCK) != bytes(BLOCK):
        # tarfile ends quietly at an unreadable header after the first one; this does not
        raise FormatError(tar, f"truncated or corrupt: no member header or end-of-archive block at byte {offset}")


def _row(
    rel: str,
    tar: Path,
    archive: tarfile.TarFile,
    sample: Sample,
    fields: list[CaptionField],
    extensions: set[str],
    skips: SkipLog,
    seen: set[str],
) -> Iterator[dict]:
    if sample.key in seen:
        skips.skip(FormatError(tar, f"key {sample.key} appears again after other members"), "sample")
        return
    seen.add(sample.key)
    image = next((m for suffix, m in sample.members.items() if suffix in extensions), None)
    if image is None:
        skips.skip(
            FormatError(tar, f"sample {sample.key} has no image member ({', '.join(sorted(extensions))})"), "sample"
        )
        return
    try:
        captions = _captions(archive, sample, fields)
    except FormatError as err:
        skips.skip(FormatError(tar, f"{image.name}: {err.reason}"), "image")
        return
    if not captions:
        tried = ", ".join(f.spec for f in fields)
        skips.skip(FormatError(tar, f"{image.name} has no caption ({tried})"), "image")
        return
    yield {
        "image": f"{rel}/{image.name}",
        "captions": captions,
        "split": "train",
        "stored": {"tar": rel, "offset": image.offset_data, "size": image.size},
    }


def _captions(archive: tarfile.TarFile, sample: Sample, fields: list[CaptionField]) -> list[str]:
    """The captions of every field in order, repeats removed; each member read once."""
    texts: dict[str, Any] = {}
    out: list[str] = []
    for field in fields:
        member = sample.members.get(field.suffix)
        if member is None:
            continue
        if field.suffix not in texts:
            texts[field.suffix] = _decode(archive, member, as_json=field.path is not None)
        out += [c for c in field.values(texts[field.suffix]) if c not in out]
    return out


def _decode(archive: tarfile.TarFile, member: tarfile.TarInfo, as_json: bool) -> Any:
    data = archive.extractfile(member)
    assert data is not None  # a regular file
    try:
        text = data.read().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(member.name, f"{member.name} is not UTF-8 text ({exc})") from None
    if not as_json:
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(member.name, f"{member.name} is not JSON ({exc})") from None
