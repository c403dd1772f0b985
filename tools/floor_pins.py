"""Print pip requirements that pin every dependency in pyproject.toml to its lower bound.

    python tools/floor_pins.py            # project dependencies + the test extra
    python tools/floor_pins.py --extra ''  # project dependencies only

`make test-min` installs these (`name==floor`) into a separate venv, so the floors in
pyproject.toml are versions the tests have actually run against. Only the direct
dependencies are pinned; pip picks the newest versions of everything else that those
pins allow. A dependency without a `>=` bound is an error: every floor must be stated.
Standard library only (tomllib), so any Python >= 3.11 runs it before a venv exists.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# a PEP 508 requirement without extras or markers: name, then comma-separated specifiers
_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*((?:[<>=!~]=?\s*[\w.*+!-]+\s*,?\s*)*)$")
_FLOOR = re.compile(r">=\s*([\w.+!-]+)")


def floor_pins(pyproject: Path, extras: list[str]) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project.get("optional-dependencies", {})[extra]
    pins, problems = [], []
    for line in requirements:
        match = _REQ.match(line)
        if not match:
            problems.append(f"{line!r}: not a plain `name>=floor[,<cap]` requirement")
            continue
        name, spec = match.groups()
        floors = _FLOOR.findall(spec)
        if len(floors) != 1:
            problems.append(f"{line!r}: needs exactly one `>=` lower bound")
            continue
        pins.append(f"{name}=={floors[0]}")
    if problems:
        raise SystemExit(f"{pyproject}:\n  " + "\n  ".join(problems))
    return pins


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pyproject", type=Path, default=REPO / "pyproject.toml")
    ap.add_argument("--extra", default="test", help="comma-separated optional-dependency groups to add ('' for none)")
    args = ap.parse_args(argv)
    extras = [e for e in args.extra.split(",") if e]
    print("\n".join(floor_pins(args.pyproject, extras)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
