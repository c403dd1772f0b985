"""A tiny real open_clip model and small benchmark splits in the real formats, for tests that
run the evaluation from images to metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

TINY_EVAL_VIT = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


TINY_ARCH = "tiny-eval-ViT"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A folder with the tiny architecture's open_clip config, registered with open_clip."""
    import open_clip

    folder = tmp_path_factory.mktemp("models")
    (folder / f"{TINY_ARCH}.json").write_text(json.dumps(TINY_EVAL_VIT))
    open_clip.add_model_config(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_clip(tiny_model_dir):
    """(model in eval mode, validation transform, tokenizer) of a seeded random tiny ViT."""
    import open_clip
    import torch

    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms(TINY_ARCH)
    return model.eval(), preprocess, open_clip.get_tokenizer(TINY_ARCH)


@pytest.fixture(scope="session")
def tiny_clip_state(tiny_clip, tiny_model_dir) -> Path:
    """The tiny model's weights as a plain state dict file (for other processes)."""
    import torch

    path = tiny_model_dir / f"{TINY_ARCH}.pt"
    torch.save(tiny_clip[0].state_dict(), path)
    return path


def _spec(name: str, group: str, fmt: str, root: Path, options: dict):
    from remoteclip.config import DatasetSpec

    return DatasetSpec(name=name, group=group, format=fmt, root=root, options=options, synthetic=None, strict=False)


@pytest.fixture(scope="session")
def cls_split(tmp_path_factory):
    """An AID-layout classification split (80/20 by file name) of synthetic scenes."""
    from conftest import synthesize_dataset
    from remoteclip.evaluate.sets import classification_set

    root = tmp_path_factory.mktemp("scenes")
    synthesize_dataset(
        root,
        "class_folders",
        images=120,
        size=48,
        scenes=["airport", "beach", "forest", "farmland", "harbor", "desert"],
    )
    return classification_set(_spec("scenes", "CLS", "class_folders", root, {}), None, 0.8)


@pytest.fixture(scope="session")
def ret_split(tmp_path_factory):
    """An RSICD-layout retrieval test split whose captions repeat across images, as real ones do."""
    from conftest import synthesize_dataset
    from remoteclip.evaluate.sets import retrieval_set

    root = tmp_path_factory.mktemp("rsicd")
    synthesize_dataset(root, "karpathy", images=120, size=48, splits={"test": 1.0})
    split = retrieval_set(_spec("rsicd", "RET", "karpathy", root, {}))
    assert len(set(split["captions"])) < len(split["captions"]), "the fixture should hold repeated captions"
    return split
