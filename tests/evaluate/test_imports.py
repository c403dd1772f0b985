"""Scoring a checkpoint does not need the trainer: evaluation and the scripts of its rules
import nothing from remoteclip.train (models and devices are shared, in remoteclip.models and
remoteclip.devices)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

from conftest import REPO

SCORING_SCRIPTS = ["features.py", "evaluate.py", "eval_split.py", "eval_summary.py", "fetch_weights.py"]


def imported_modules(path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names} | {
        n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
    }


def test_evaluation_modules_load_without_the_trainer():
    code = (
        "import importlib, pkgutil, sys, remoteclip.evaluate as e\n"
        "for m in pkgutil.iter_modules(e.__path__): importlib.import_module(f'remoteclip.evaluate.{m.name}')\n"
        "import remoteclip.devices, remoteclip.weight_fetch\n"
        "print(sorted(k for k in sys.modules if k.startswith('remoteclip.train')))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "[]"


def test_the_scoring_scripts_import_nothing_from_the_trainer():
    for name in SCORING_SCRIPTS:
        trainer = [m for m in imported_modules(REPO / "scripts" / name) if m.startswith("remoteclip.train")]
        assert not trainer, f"scripts/{name} imports {trainer}"
