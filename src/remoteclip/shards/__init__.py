"""WebDataset shards per source chunk, shared by every run that reads the source.

Each source's caption file (results/captions/{source}.jsonl) is cut into chunks of
`shards.samples_per_shard` rows, and each chunk becomes one tar with its member index and a
record (remoteclip.shards.encode), built by a job of its own (rule `build_shards`), written
atomically, and skipped while complete. A chunk lives in
results/shards/sources/{source}/{settings key}/{number}-{digest of its rows}.tar: its folder is
keyed by the settings that decide its bytes (size, JPEG quality, rows per chunk, seed of the
stored caption, a super-resolution model) and its name by its rows (remoteclip.shards.plan),
so a chunk is reused exactly while nothing that makes its bytes has changed, and a chunk whose
rows changed is built again under its new name.

De-duplication removals stay out of the chunks. Every readable image of a source is in its
chunks; a run's training set is its manifest (remoteclip.shards.manifest): the chunks of its
sources with, per shard, the samples the run's de-duplication removed. Why:

- removals differ per run: training duplicates are searched among a run's own sources, so a
  RET-only run and a RET+DET+SEG run remove different RET images. Chunks keyed by their
  removals would encode such images once per run; keeping them lets every run that uses a
  source share its chunks, so each training image is encoded once however many runs use it;
- chunks are known from the caption files alone, so encoding starts as soon as a source is
  captioned, beside the hashing and de-duplication jobs, and a new de-duplication threshold
  or protected test set costs a new manifest, not a new encode;
- the removed samples cost only their bytes on disk (the paper removes a few per cent).

The price: open_clip_train has no exclusion list, so reading results/shards/{run}/ (links to
the chunks, and the sizes.json it needs) it also reads the samples the run's de-duplication
removed; our training loop (remoteclip.train) reads the manifest and leaves them out. Samples
are mixed across sources at load time by the seeded sampler (remoteclip.train.data), not by
the order in which they are written.

Modules: `settings` (what decides the bytes, and the names), `encode` (one chunk), `index`
(each tar's member index, read by the trainer instead of scanning tar headers), `plan` (a
source's chunks), `manifest` (a run's training set), `build` (all steps in one process, for
tests, benchmarks and use without Snakemake: `build_shards`).
"""

from .manifest import RunShards, read_run_shards, write_run_manifest
from .settings import ShardSettings, member_key, sample_key, settings_key

# the encoders (PIL, the image readers) stay behind remoteclip.shards.build and .encode, so
# the training environment reads manifests and indexes without them
__all__ = [
    "RunShards",
    "ShardSettings",
    "member_key",
    "read_run_shards",
    "sample_key",
    "settings_key",
    "write_run_manifest",
]
