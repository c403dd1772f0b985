"""Shared fixtures: the repository, B2C settings, and tiny synthetic datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def b2c_settings():
    from remoteclip.b2c import B2CSettings, load_templates

    return B2CSettings(load_templates(REPO / "config" / "b2c_templates.yaml"))


def synthesize_dataset(root: Path, writer: str, images: int, size: int = 128, **kw):
    """Render a tiny synthetic dataset in a source's real format; returns its ground truth."""
    from remoteclip.synthetic import SynthSpec, synthesize

    spec = SynthSpec(name=f"test_{writer}", writer=writer, images=images, size=size, **kw)
    return synthesize(spec, root, progress=False)
