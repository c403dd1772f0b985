"""The training objectives of Table V's loss ablation (`train.loss`).

Every loss is called as `loss(image_features, text_features, logit_scale, logit_bias=None)` on
one rank's part of the global batch (the loop concatenates the accumulation steps' cached
features, see loop._accumulated_step) and sees the whole global batch:

- infonce and siglip are open_clip's `ClipLoss` (gathering the features of every rank, with
  their gradients) and `SigLipLoss` (exchanging the text features between ranks);
- margin_ranking, npair and barlow_twins are written here, since open_clip has none of them,
  as plain functions of the global batch's L2-normalised embeddings (N x D, row i of each one
  pair), wrapped in `GlobalBatchLoss`, which gathers the features with open_clip's
  `gather_features` exactly as ClipLoss does. pytorch-metric-learning has N-pair and hinge
  losses too, but not for two modalities and not with a gather that keeps the gradients; a
  cross-entropy and a clamp are not worth a dependency.

Each rank then computes the same global loss; the all-gather's backward sums every rank's
gradient into each rank's own features and DDP averages the ranks, which gives one process's
gradient for the whole batch (tests/test_losses.py checks this for every loss).

Every loss runs in float32 outside the autocast region the model runs in (`InFloat32`): under
bf16 autocast its matrix products would otherwise run in bf16 (a Barlow Twins value of 430.0
for 429.687, margin ranking 1.7e-3 off). open_clip_train computes its loss inside autocast;
for a batch of B pairs the loss's products cost O(B^2 D), small beside the towers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss, SigLipLoss, gather_features
from torch import nn

from .settings import LOSSES

# the losses whose logits are scaled by the model's learnable temperature (logit_scale)
WITH_TEMPERATURE = ("infonce", "siglip")


def margin_ranking(image: torch.Tensor, text: torch.Tensor, margin: float, hardest: bool) -> torch.Tensor:
    """The bidirectional hinge (triplet) ranking loss of visual-semantic embeddings on cosine
    similarities s(i, j) = image_i . text_j:

        hardest (VSE++, Faghri et al. 2018, "VSE++: Improving Visual-Semantic Embeddings with
        Hard Negatives", Eq. 5, its max-violation loss):
            L = 1/N sum_i [ max_{j!=i} [a - s(i,i) + s(i,j)]_+ + max_{j!=i} [a - s(i,i) + s(j,i)]_+ ]
        all (Kiros et al. 2014, "Unifying Visual-Semantic Embeddings with Multimodal Neural
        Language Models", Eq. 1; VSE++'s sum-of-hinges):
            L = 1/N sum_i sum_{j!=i} ( [a - s(i,i) + s(i,j)]_+ + [a - s(i,i) + s(j,i)]_+ )

    with margin a and [x]_+ = max(0, x): image i must rank its caption above every other caption
    by a, and caption i its image above every other image. Averaged over the N pairs, where the
    papers sum, so that the gradient's size does not grow with the batch."""
    scores = image @ text.T
    positive = scores.diag()
    caption_cost = (margin + scores - positive[:, None]).clamp(min=0)  # row i: image i's negative captions
    image_cost = (margin + scores - positive[None, :]).clamp(min=0)  # column j: caption j's negative images
    off_diagonal = ~torch.eye(len(scores), dtype=torch.bool, device=scores.device)
    caption_cost, image_cost = caption_cost * off_diagonal, image_cost * off_diagonal
    if hardest:
        return (caption_cost.max(dim=1).values.sum() + image_cost.max(dim=0).values.sum()) / len(scores)
    return (caption_cost.sum() + image_cost.sum()) / len(scores)


def npair(image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """The multi-class N-pair loss (Sohn 2016, "Improved Deep Metric Learning with Multi-class
    N-pair Loss Objective", Eq. 6), with the images as anchors and their captions as the
    positives, every other caption of the batch a negative:

        L = 1/N sum_i log(1 + sum_{j!=i} exp(f_i . g_j - f_i . g_i))
          = 1/N sum_i -log( exp(f_i . g_i) / sum_j exp(f_i . g_j) )

    on plain inner products: no temperature, one direction (what sets it apart from InfoNCE).
    Sohn's L2 penalty on the embedding norms is left out: open_clip's embeddings are
    L2-normalised, so the penalty is a constant."""
    logits = image @ text.T
    return F.cross_entropy(logits, torch.arange(len(logits), device=logits.device))


def barlow_twins(image: torch.Tensor, text: torch.Tensor, lambd: float, eps: float = 1e-5) -> torch.Tensor:
    """Barlow Twins (Zbontar et al. 2021, "Barlow Twins: Self-Supervised Learning via
    Redundancy Reduction", Eqs. 1-2) with the image and the text embedding of a pair as the two
    views: each embedding dimension is standardised over the batch (mean 0, biased variance 1,
    as the official code's affine-free BatchNorm1d with its eps), then

        C_kl = 1/N sum_n z^I_{n,k} z^T_{n,l}
        L = sum_k (1 - C_kk)^2 + lambda sum_k sum_{l!=k} C_kl^2

    (invariance: matching dimensions correlate; redundancy reduction: the others do not)."""
    image, text = _standardised(image, eps), _standardised(text, eps)
    c = image.T @ text / len(image)
    on_diagonal = (1 - c.diagonal()).pow(2).sum()
    off_diagonal = c.pow(2).sum() - c.diagonal().pow(2).sum()
    return on_diagonal + lambd * off_diagonal


def _standardised(z: torch.Tensor, eps: float) -> torch.Tensor:
    return (z - z.mean(dim=0)) / torch.sqrt(z.var(dim=0, unbiased=False) + eps)


class GlobalBatchLoss(nn.Module):
    """A loss of the whole global batch's embeddings, computed on every rank from the features
    that open_clip's `gather_features` collects (with their gradients: the loop's ClipLoss
    settings, local_loss=False, gather_with_grad=True). Such a loss has no temperature, so it
    ignores logit_scale and logit_bias (the model's logit scale is frozen, see `prepare_model`)."""

    def __init__(self, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], rank: int = 0, world_size: int = 1):
        super().__init__()
        self.fn, self.rank, self.world_size = fn, rank, world_size
        self.step = 0  # the optimiser step being taken (`at_step`), for a loss that changes with it

    def objective(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return self.fn(image, text)

    def forward(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor | None = None,
        logit_bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.world_size > 1:
            image_features, text_features = gather_features(
                image_features, text_features, gather_with_grad=True, rank=self.rank, world_size=self.world_size
            )
        return self.objective(image_features, text_features)


class MarginRankingLoss(GlobalBatchLoss):
    """`margin_ranking` over the global batch. With hardest negatives, VSE++'s max of hinges
    alone collapses from weights that do not yet rank pairs (every similarity equal, the loss
    stuck at twice the margin; Faghri et al. 2018 report the same from random weights).
    `all_negatives_steps` > 0 is the remedy the VSE line of work uses: the sum over all
    negatives for that many optimiser steps, the hardest after (VSE-infinity, Chen et al. 2021,
    train.py's `vse_mean_warmup_epochs`, in steps here)."""

    def __init__(self, margin: float, negatives: str, all_negatives_steps: int, rank: int = 0, world_size: int = 1):
        super().__init__(lambda i, t: margin_ranking(i, t, margin, self.hardest()), rank, world_size)
        self.negatives, self.all_negatives_steps = negatives, all_negatives_steps

    def hardest(self) -> bool:
        return self.negatives == "hardest" and self.step >= self.all_negatives_steps


def at_step(loss_fn: nn.Module, step: int) -> None:
    """Tell the loss which optimiser step (0-based) it is computed for; the loop calls it before
    every step, a resumed run included, so a loss that changes with the step resumes exactly."""
    for module in loss_fn.modules():
        if isinstance(module, GlobalBatchLoss):
            module.step = step


class InFloat32(nn.Module):
    """`loss` with autocast switched off and its tensors in float32 (or wider): the model's
    features may come out of autocast in bf16, but the loss's products and batch statistics are
    computed at full precision (Barlow Twins' are too coarse in bf16)."""

    def __init__(self, loss: nn.Module):
        super().__init__()
        self.loss = loss

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor, *logit_params: torch.Tensor):
        tensors = [image_features, text_features, *logit_params]
        with torch.autocast(image_features.device.type, enabled=False):
            return self.loss(*(t.to(torch.promote_types(t.dtype, torch.float32)) for t in tensors))


def build(name: str, options: dict[str, dict[str, Any]], rank: int = 0, world_size: int = 1) -> nn.Module:
    """The loss `name` (one of settings.LOSSES) with its `options` (TrainSettings.loss_options),
    computed in float32 whatever autocast the model runs under."""
    return InFloat32(_build(name, options, rank, world_size))


def _build(name: str, options: dict[str, dict[str, Any]], rank: int, world_size: int) -> nn.Module:
    if name == "infonce":  # the loop's original loss, unchanged
        return ClipLoss(local_loss=False, gather_with_grad=True, cache_labels=True, rank=rank, world_size=world_size)
    if name == "siglip":
        return SigLipLoss(rank=rank, world_size=world_size)
    if name == "margin_ranking":
        o = options["margin_ranking"]
        return MarginRankingLoss(o["margin"], o["negatives"], o["all_negatives_steps"], rank, world_size)
    if name == "npair":
        return GlobalBatchLoss(npair, rank=rank, world_size=world_size)
    if name == "barlow_twins":
        lambd = options["barlow_twins"]["lambd"]
        return GlobalBatchLoss(lambda i, t: barlow_twins(i, t, lambd), rank=rank, world_size=world_size)
    raise ValueError(f"unknown loss {name!r}; known: {', '.join(LOSSES)}")


def prepare_model(model: nn.Module, name: str, options: dict[str, dict[str, Any]]) -> tuple[str, ...]:
    """Fit the model's logit parameters to the loss before the optimiser sees them: SigLIP gets
    its learnable bias (open_clip's `logit_bias`, which its CLIP models only have when built with
    init_logit_bias) and its temperature's starting value; a loss without a temperature gets a
    frozen logit scale (no gradient reaches it, and DDP needs every trained parameter used).
    InfoNCE on a CLIP architecture is left exactly as it is. Returns the names of the parameters
    it added (SigLIP's bias on a CLIP architecture): they belong to training, not to the model
    that evaluation loads."""
    scale = model.get_parameter("logit_scale")
    has_bias = getattr(model, "logit_bias", None) is not None
    if name == "siglip":
        o = options["siglip"]
        added: tuple[str, ...] = () if has_bias else ("logit_bias",)
        if added:  # zero, as open_clip starts CLIP weights trained with SigLIP (its issue 712)
            # assigned, not registered: open_clip's CLIP holds a plain `logit_bias = None`
            model.logit_bias = nn.Parameter(torch.zeros_like(scale))
        with torch.no_grad():
            if o["init_logit_scale"] is not None:
                scale.fill_(math.log(o["init_logit_scale"]))
            if o["init_logit_bias"] is not None:
                model.get_parameter("logit_bias").fill_(o["init_logit_bias"])
        return added
    if name not in WITH_TEMPERATURE:
        scale.requires_grad_(False)
    if has_bias:
        # a SigLIP architecture's bias: only the sigmoid loss trains it (InfoNCE's softmax is
        # blind to a constant shift, the other losses do not read it)
        model.get_parameter("logit_bias").requires_grad_(False)
    return ()
