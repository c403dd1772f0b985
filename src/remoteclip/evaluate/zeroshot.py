"""Zero-shot classification with text prompts: cosine logits, acc1 / acc5 / mean per-class recall.

Metrics follow CLIP_benchmark (acc5 is top-min(5, n_classes); mean per-class recall is the
balanced accuracy over the classes present in the labels). Ties follow `_common`: the lower
class index wins, so a row of equal logits predicts class 0.
"""

from __future__ import annotations

import re

import numpy as np

from ..vocabulary import normalise
from ._common import as_matrix, check_same_dims, classification_metrics, l2_normalise, to_numpy

_RSSCN7_PREFIX = re.compile(r"^[a-z](?=[A-Z][a-z])")  # "aGrass", "dRiverLake": a sort letter
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def classify(image_features, class_features, logit_scale: float = 100.0) -> np.ndarray:
    """Logits (images, classes): scaled cosine similarity of images to class embeddings.

    `class_features` is (classes, dims), or (classes, templates, dims) for a prompt ensemble:
    each template embedding is L2-normalised, averaged per class and normalised again, as in
    CLIP's zero-shot classifier. The scale (CLIP's 100) changes no metric, only softmaxes.
    """
    images = l2_normalise(as_matrix(image_features, "image_features"), "image_features")
    classes = _class_matrix(class_features)
    check_same_dims(images, classes, "image_features", "class_features")
    return logit_scale * images @ classes.T


def _class_matrix(class_features) -> np.ndarray:
    array = to_numpy(class_features, "class_features")
    if array.ndim == 3:
        if 0 in array.shape:
            raise ValueError(f"class_features: empty array of shape {array.shape}")
        stacked = as_matrix(array.reshape(-1, array.shape[-1]), "class_features")
        per_template = l2_normalise(stacked, "class_features").reshape(array.shape)
        return l2_normalise(per_template.mean(axis=1), "class_features (template mean)")
    return l2_normalise(as_matrix(array, "class_features"), "class_features")


def zeroshot_metrics(logits, labels, n_classes: int) -> dict[str, float]:
    """{"acc1", "acc5", "mean_per_class_recall"}, x100 (see `_common.classification_metrics`)."""
    return classification_metrics(logits, labels, n_classes)


def readable_name(folder: str) -> str:
    """Prompt-friendly class name from a class folder when no mapping is configured.

    "DenseResidential" -> "dense residential", "baseball_field" -> "baseball field",
    RSSCN7's sort letter "aGrass" -> "grass"; run-together words ("storagetanks") cannot be
    split without a dictionary and stay as they are: configure a mapping for those.
    """
    name = _RSSCN7_PREFIX.sub("", folder.strip())
    name = _CAMEL.sub(" ", name)
    name = normalise(name)  # lower case, `_` / `-` / space runs -> one space, as class labels are
    if not name:
        raise ValueError(f"class folder {folder!r} gives an empty class name")
    return name
