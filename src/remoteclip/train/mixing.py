"""Per-source sampling weights (`runs.<run>.weights`): how many times each source's samples are
drawn in an epoch.

The model is open_clip's `--train-data-upsampling-factors` (open_clip_train/data.py, read there:
`expand_urls` gives every shard of a source, a `::`-separated group of shard URLs, its source's
factor, and `ResampledShards2`, which the option requires through `--dataset-resampled`, draws
shards with replacement by `random.choices(urls, weights=...)`), so a source's share of what is
read is proportional to its factor times its number of shards (its size, for full shards).
Our sampler draws without replacement from a seeded permutation
(remoteclip.train.data.GlobalBatchSampler), so the same idea becomes a multiset: each epoch,
source s of n_s kept samples and weight w contributes w x n_s draws, floor(w) copies of every
sample and round((w - floor(w)) n_s) more, which of its samples fill that fractional part drawn
from (seed, epoch). Weights above 1 repeat samples, below 1 subsample, and an epoch is a seeded
permutation of that multiset. With every weight 1 the multiset is each sample once, in index
order: exactly the unweighted epoch.

The draw depends on (seed, epoch) only, never on ranks or loader workers: the sampler computes
it in the training process and every rank computes the same one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np

# a stream of its own for the fractional draws, so the epoch's permutation keeps its seed
_FRACTION_STREAM = 1


@dataclasses.dataclass(frozen=True)
class Mixing:
    """The run's samples by source and the sources' weights."""

    source: np.ndarray  # int32 per sample: its source's position in `names`
    names: tuple[str, ...]
    weights: tuple[float, ...]

    @classmethod
    def of(cls, shard_sources: Sequence[str], sample_shard: np.ndarray, weights: Mapping[str, float]) -> Mixing:
        """From each shard's source and each sample's shard (remoteclip.train.reader.ShardIndex);
        a source without a weight has weight 1. A weight for a source with no shard here is an
        error naming both (the config validation refuses it earlier, this catches a manifest
        that disagrees with the config)."""
        names = tuple(dict.fromkeys(shard_sources))
        unknown = sorted(set(weights) - set(names))
        if unknown:
            raise ValueError(
                f"weights for {', '.join(unknown)}, which the run's shards do not hold (sources: {', '.join(names)})"
            )
        bad = {k: w for k, w in weights.items() if not (isinstance(w, (int, float)) and w > 0 and math.isfinite(w))}
        if bad:
            raise ValueError(f"weights must be positive numbers: {bad}")
        position = {name: i for i, name in enumerate(names)}
        per_shard = np.array([position[s] for s in shard_sources], dtype=np.int32)
        return cls(per_shard[sample_shard], names, tuple(float(weights.get(n, 1.0)) for n in names))

    def sizes(self) -> np.ndarray:
        """Kept samples per source."""
        return np.bincount(self.source, minlength=len(self.names))

    def draws(self) -> list[int]:
        """Draws per source in every epoch: floor(w) n + round(frac(w) n), halves rounded up."""
        out = []
        for n, w in zip(self.sizes().tolist(), self.weights):
            whole = math.floor(w)
            out.append(whole * n + math.floor((w - whole) * n + 0.5))
        return out

    def epoch_size(self) -> int:
        return sum(self.draws())

    def epoch_items(self, seed: int, epoch: int) -> np.ndarray:
        """The epoch's multiset of sample indices, in index order (the permutation is the
        sampler's): each sample floor(w) times, plus a seeded choice of its source's samples
        for the fractional part."""
        counts = np.zeros(len(self.source), dtype=np.int64)
        rng = np.random.default_rng([seed, epoch, _FRACTION_STREAM])
        for s, (n, w, drawn) in enumerate(zip(self.sizes().tolist(), self.weights, self.draws())):
            whole = math.floor(w)
            members = np.flatnonzero(self.source == s)
            counts[members] = whole
            extra = drawn - whole * n
            if extra:
                counts[rng.choice(members, extra, replace=False)] += 1
        return np.repeat(np.arange(len(self.source), dtype=np.int64), counts)

    def uniform(self) -> bool:
        return all(w == 1.0 for w in self.weights)

    def summary(self) -> dict[str, dict]:
        """Per source: kept samples, weight, draws per epoch and expected share of an epoch."""
        total = self.epoch_size()
        return {
            name: {"samples": int(n), "weight": w, "per_epoch": d, "share": d / total if total else 0.0}
            for name, n, w, d in zip(self.names, self.sizes().tolist(), self.weights, self.draws())
        }


def describe(summary: Mapping[str, Mapping]) -> list[str]:
    """One line per source for the training log."""
    return [
        f"source {name}: {s['samples']} samples, weight {s['weight']:g}, {s['per_epoch']} draws per epoch "
        f"({100 * s['share']:.1f} % of an epoch)"
        for name, s in summary.items()
    ]
