"""What a stage found against what it should have found, for every parser at once.

The parse (and M2B) and RET caption stages go through here, so no parser has code of its own
for an empty or short result:

- `data_root`: where the dataset's files are. Archives often unpack one folder too deep
  (`DOTA/DOTA/train/...`). When the format's first file pattern (`LOCATORS`) matches no file
  under the root but does under a folder of the root with the root's own name (case aside),
  that folder is read instead and a warning says so; file names stay relative to the root.
- `require_files`: the first file pattern matches nothing: stop before parsing.
- `require_images`: the parse found no image, or fewer than `MIN_FRACTION` of the images the
  catalogue (or the config) states for what was read: stop.

Each stop is a `DataNotFoundError` that names the patterns tried as absolute paths with what
each matched, shows the folders under the root (up to three levels down, with a few file
names each), and names the option to set (`datasets.DOTA.options.labels`).

It writes nothing: a stop is the rule's error, in results/logs/parse/{dataset}.log or
results/logs/captions/{dataset}.log, before any output is written.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from .config import DatasetSpec
from .errors import DataNotFoundError
from .formats import LOCATORS, PARSER_OPTIONS, ImageRecord, SkipLog
from .formats.common import expand

log = logging.getLogger(__name__)

# a parse that finds under half the stated images stops. The sources' own counts and
# RemoteCLIP's Table I differ by a few percent (RSOD 976 vs 936, DOTA 1,411 vs 1,409), which
# stays far above it; a wrong pattern finds nothing or one part of an archive set (one of DOTA's
# three image zips, RSOD's largest class with 446 of 976 images), which falls below it
MIN_FRACTION = 0.5

TREE_DEPTH = 3  # folder levels shown under the root
TREE_FOLDERS = 15  # folders shown at most
TREE_FILE_NAMES = 3  # file names shown per folder


# ---- patterns --------------------------------------------------------------------------------


def options_of(spec: DatasetSpec) -> dict:
    """The options the parser works with: its defaults, overridden by the dataset's."""
    return {**PARSER_OPTIONS.get(spec.format, {}), **spec.options}


def selected_splits(options: dict) -> list[str]:
    if options.get("splits"):
        return list(options["splits"])
    return [options.get("split") or "train"]


def as_patterns(value: str | list[str] | None) -> list[str]:
    """An option's patterns: one string or a list of them."""
    return [value] if isinstance(value, str) else list(value or [])


def concrete_patterns(pattern: str, options: dict) -> list[str]:
    """The pattern once per selected split, `{split}` and `{split_folder}` filled in and any
    other field (`{name}`, `{scene}`) a wildcard, as the parser would glob it."""
    out: list[str] = []
    for split in selected_splits(options):
        fields = {"split": split, "split_folder": (options.get("split_folders") or {}).get(split, split)}
        concrete = re.sub(r"\{(\w*)[^{}]*\}", _field_or_wildcard(fields), pattern)
        if concrete not in out:
            out.append(concrete)
    return out


def _field_or_wildcard(fields: dict[str, str]) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        return fields.get(match.group(1), "*")

    return replace


def locator_patterns(spec: DatasetSpec, root: Path) -> list[tuple[str, str, list[Path]]]:
    """(option, absolute pattern, what it matches) for each file pattern of the format."""
    options = options_of(spec)
    tried = []
    for option in LOCATORS.get(spec.format, ()):
        for pattern in as_patterns(options.get(option)):
            for concrete in concrete_patterns(pattern, options):
                absolute = str(root.absolute() / concrete)
                tried.append((option, absolute, sorted(Path(p) for p in glob.glob(absolute, recursive=True))))
    return tried


def finds_files(spec: DatasetSpec, root: Path) -> bool:
    """Whether the format's first file pattern (labels, annotations, tables) matches a file."""
    if not root.is_dir():
        return False
    options = options_of(spec)
    patterns = as_patterns(options.get(LOCATORS[spec.format][0]))
    return any(expand(root, p) for pattern in patterns for p in concrete_patterns(pattern, options))


# ---- one folder too deep ---------------------------------------------------------------------


def nested_folder(root: Path) -> Path | None:
    """The folder of `root` with the root's own name (`DOTA/DOTA`, `dota/DOTA`), if any."""
    if not root.is_dir():
        return None
    same = [p for p in sorted(root.iterdir()) if p.is_dir() and p.name.lower() == root.name.lower()]
    return same[0] if len(same) == 1 else None


def data_root(spec: DatasetSpec) -> Path:
    """The root, or the same-named folder inside it when only that one holds the files."""
    if finds_files(spec, spec.root):
        return spec.root
    nested = nested_folder(spec.root)
    if nested is not None and finds_files(spec, nested):
        log.warning(
            "%s: nothing matches under %s but the same patterns match one folder deeper, under %s "
            "(an archive that unpacks as %s/%s/...); reading from there. Set datasets.%s.root: %s "
            "to say so",
            spec.name,
            spec.root,
            nested,
            spec.root.name,
            nested.name,
            spec.name,
            nested,
        )
        return nested
    return spec.root


def rebase_records(records: Iterable[ImageRecord], root: Path, spec: DatasetSpec) -> Iterator[ImageRecord]:
    """The records, one at a time, with file names relative to the configured root, whatever
    folder was read."""
    prefix = None if root == spec.root else root.relative_to(spec.root)
    for record in records:
        if prefix is not None:
            record.file_name = str(prefix / record.file_name)
        yield record


# ---- the checks ------------------------------------------------------------------------------


def require_files(spec: DatasetSpec, root: Path) -> None:
    """DataNotFoundError when the format's first file pattern matches nothing under `root`."""
    if not finds_files(spec, root):
        raise DataNotFoundError(
            root.absolute(),
            _message(
                spec, root, f"the {LOCATORS[spec.format][0]} pattern matches no file, so there is nothing to parse"
            ),
        )


def expected_images(spec: DatasetSpec) -> tuple[int, str] | None:
    """(count, what it covers) of the images the stage should find, or None where nothing
    stated applies: a per-split count is summed over the splits the parser reads (None if one
    of them has no count); a whole-dataset count applies as it is (config.stated_images has
    already dropped it where the config reads a different part)."""
    if not spec.images:
        return None
    count = spec.images["count"]
    if isinstance(count, int):
        return count, "the whole dataset"
    options = options_of(spec)
    if "splits" not in options or any(s not in count for s in options["splits"]):
        return None
    splits = list(options["splits"])
    return sum(count[s] for s in splits), f"split{'s' if len(splits) > 1 else ''} {' + '.join(splits)}"


def require_images(spec: DatasetSpec, root: Path, parsed: int, skips: SkipLog) -> None:
    """DataNotFoundError when the stage found no image, or fewer than MIN_FRACTION of the
    stated count; `parsed` is the number of distinct image files found (tiles of one file
    count once), counted by the stage as it streams."""
    if parsed == 0:
        raise DataNotFoundError(root.absolute(), _message(spec, root, "0 images parsed", skips))
    expected = expected_images(spec)
    if expected is None or parsed >= MIN_FRACTION * expected[0]:
        return
    count, covers = expected
    images = spec.images or {}
    source = f" ({images['source']})" if images.get("source") else ""
    what = (
        f"{parsed:,} image{'' if parsed == 1 else 's'} parsed, under {MIN_FRACTION:.0%} of the {count:,} "
        f"stated for {covers}{source}"
    )
    raise DataNotFoundError(root.absolute(), _message(spec, root, what, skips, partial_hint=True))


# ---- the message -----------------------------------------------------------------------------


def _message(spec: DatasetSpec, root: Path, what: str, skips: SkipLog | None = None, partial_hint: bool = False) -> str:
    tried = locator_patterns(spec, root)
    lines = [f"dataset {spec.name}: {what}.", f"Patterns tried ({spec.format} format):"]
    lines += [f"  {option}: {pattern} -> {_matched(paths, root)}" for option, pattern, paths in tried]
    lines.append(f"Under {root.absolute()} (folders up to {TREE_DEPTH} levels down):")
    lines += [f"  {line}" for line in tree_sample(root)]
    if skips is not None and skips.entries:
        reasons = ", ".join(f"{reason} ({n})" for reason, n in list(skips.counts().items())[:5])
        lines.append(f"Skipped {len(skips.entries)}: {reasons}")
    lines.append(_option_hint(spec, tried))
    if partial_hint:
        lines.append(f"If the copy is partial on purpose, set datasets.{spec.name}.images: null.")
    return "\n".join(lines)


def _matched(paths: list[Path], root: Path) -> str:
    if not paths:
        return "no match"
    example = paths[0].relative_to(root.absolute()).as_posix() + ("/" if paths[0].is_dir() else "")
    return f"{len(paths):,} match{'es' if len(paths) > 1 else ''}, e.g. {example}"


def _option_hint(spec: DatasetSpec, tried: list[tuple[str, str, list[Path]]]) -> str:
    """Which option to set: those whose patterns matched nothing, else every file option."""
    options = options_of(spec)
    empty = [option for option, _, paths in tried if not paths]
    named = list(dict.fromkeys(empty or [option for option, _, _ in tried]))
    settings = " and ".join(f"datasets.{spec.name}.options.{o} (now {options.get(o)!r})" for o in named)
    return (
        f"Set {settings} to where the files are, relative to the root, or datasets.{spec.name}.root "
        "to the folder that holds them."
    )


def tree_sample(
    root: Path, depth: int = TREE_DEPTH, folders: int = TREE_FOLDERS, names: int = TREE_FILE_NAMES
) -> list[str]:
    """The folders under `root`, breadth first, each with its file count and first file
    names; hidden entries (.archives, .verified) are left out."""
    if not root.is_dir():
        return ["(the root does not exist)"]
    lines: list[str] = []
    queue = deque([(root, 0)])
    while queue:
        folder, level = queue.popleft()
        files, subfolders = _entries(folder)
        if level > 0 or files:
            if len(lines) == folders:
                lines.append("... (more folders)")
                break
            shown = ", ".join(files[:names]) + (", ..." if len(files) > names else "")
            relative = "./" if level == 0 else f"{folder.relative_to(root).as_posix()}/"
            listed = f": {shown}" if files else ""
            lines.append(f"{relative}  ({len(files):,} file{'' if len(files) == 1 else 's'}{listed})")
        if level < depth:
            queue.extend((sub, level + 1) for sub in subfolders)
    return lines or ["(empty)"]


def _entries(folder: Path) -> tuple[list[str], list[Path]]:
    """(file names, sub-folders) of a folder, sorted, without hidden entries."""
    files, subfolders = [], []
    with os.scandir(folder) as scan:
        for entry in scan:
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                subfolders.append(Path(entry.path))
            else:
                files.append(entry.name)
    return sorted(files), sorted(subfolders)
