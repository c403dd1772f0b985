"""Training data from a run's WebDataset shards.

The shards are read with random access through a member index (as webdataset's `wids`
does), so that the order of samples is a function of (seed, epoch, step) alone:

- every epoch is a seeded permutation of all samples (with per-source weights, of the epoch's
  multiset of them: remoteclip.train.mixing); global batch t is a fixed slice of it, and rank
  r takes its share of that slice. One process with batch 2b and two with batch b therefore
  see the same global batches, no sample is seen twice in an unweighted epoch, and resuming
  at step t continues exactly where the run stopped;
- each draw picks one of the sample's captions and its augmentation (random resized crop,
  horizontal flip, rotation by 0/90/180/270 degrees, optionally SimCLR's colour distortion
  and blur) from a generator seeded by
  (seed, epoch, sample), so DataLoader workers do not change what the model sees.

The shards are found and opened by remoteclip.train.reader: a shard that is missing or
truncated stops the run before it starts (unless `train.skip_bad_shards`), and a shard file that
cannot be opened or read later stops it with the shard named. Only a sample whose own bytes do
not decode (its image or its JSON) is replaced by the next readable sample (with the device
loader too, whose workers only read the JPEG's header: a truncated file is told by its missing
end marker there, any other failure by the training process's decoder, which then asks the
dataset for the next sample). Every replacement is counted with the batch it happened in, so
the training process sums what its loader workers replaced.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
import random
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image, ImageFilter
from torch.utils.data import Dataset, Sampler

from .mixing import Mixing
from .reader import OpenShards, ShardIndex
from .reader import ShardsMissing as ShardsMissing  # where callers have always found it
from .settings import TRAIN_DEFAULTS

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Augment:
    size: int = 224
    crop_scale: tuple[float, float] = tuple(TRAIN_DEFAULTS["crop_scale"])  # the recipe's (train.*) defaults
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: bool = TRAIN_DEFAULTS["hflip"]
    rot90: bool = TRAIN_DEFAULTS["rot90"]
    simclr: bool = TRAIN_DEFAULTS["simclr"]  # SimCLR's colour distortion and blur (simclr_colour)
    mean: tuple[float, ...] = (0.48145466, 0.4578275, 0.40821073)
    std: tuple[float, ...] = (0.26862954, 0.26130258, 0.27577711)
    # On a GPU, workers hand over uint8 (4x less to copy) and the device normalises; on a
    # CPU the device is the bottleneck, so the workers normalise in parallel with it.
    normalize_on_device: bool = True

    def crop_box(self, rng: random.Random, width: int, height: int) -> tuple[int, int, int, int]:
        """torchvision's RandomResizedCrop parameters, drawn from `rng` (top, left, h, w)."""
        area = width * height
        log_ratio = (math.log(self.crop_ratio[0]), math.log(self.crop_ratio[1]))
        for _ in range(10):
            target = area * rng.uniform(*self.crop_scale)
            ratio = math.exp(rng.uniform(*log_ratio))
            w = int(round(math.sqrt(target * ratio)))
            h = int(round(math.sqrt(target / ratio)))
            if 0 < w <= width and 0 < h <= height:
                return rng.randint(0, height - h), rng.randint(0, width - w), h, w
        in_ratio = width / height
        if in_ratio < self.crop_ratio[0]:
            w, h = width, int(round(width / self.crop_ratio[0]))
        elif in_ratio > self.crop_ratio[1]:
            h, w = height, int(round(height * self.crop_ratio[1]))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def draw(self, rng: random.Random, width: int, height: int) -> tuple[int, int, int, int, int, int]:
        """One sample's geometric choices, in the order they are drawn from `rng`:
        (top, left, h, w) of the crop, flip (0/1), quarter turns (0-3)."""
        top, left, h, w = self.crop_box(rng, width, height)
        flip = int(self.hflip and rng.random() < 0.5)
        turns = rng.randrange(4) if self.rot90 else 0
        return top, left, h, w, flip, turns

    def apply(self, image: torch.Tensor, top: int, left: int, h: int, w: int, flip: int, turns: int) -> torch.Tensor:
        """The choices of `draw` on a uint8 (3, H, W) image, on whatever device it is."""
        image = TF.resized_crop(
            image, top, left, h, w, [self.size, self.size], interpolation=TF.InterpolationMode.BICUBIC, antialias=True
        )
        if flip:
            image = image.flip(-1)
        if turns:
            image = torch.rot90(image, turns, dims=(1, 2))
        return image

    def __call__(self, image: torch.Tensor, rng: random.Random) -> torch.Tensor:
        """uint8 (3, H, W) -> (3, size, size): uint8, or normalised float when the workers
        normalise (`normalize_on_device` False)."""
        image = self.apply(image, *self.draw(rng, image.shape[2], image.shape[1]))
        if self.simclr:  # after the draws above, so a run without it sees exactly what it saw before
            image = simclr_colour(image, rng)
        if not self.normalize_on_device:
            return self.normalize(image[None])[0]
        return image.contiguous()

    def normalize(self, batch: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, device=batch.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=batch.device).view(1, -1, 1, 1)
        return (batch.float() / 255.0 - mean) / std


# SimCLR's augmentation beyond crop and flip (Chen, Kornblith, Norouzi, Hinton 2020, "A Simple
# Framework for Contrastive Learning of Visual Representations", ICML; appendix A and its
# reference code): colour jitter of strength s = 1 (brightness, contrast, saturation 0.8 s, hue
# 0.2 s, in random order) with p = 0.8, grayscale with p = 0.2, Gaussian blur with p = 0.5 and
# sigma uniform in [0.1, 2.0]. SimCLR truncates the blur kernel at 10 % of the side (23 px at
# 224, +-5.5 sigma at the largest sigma); PIL's Gaussian blur does not truncate, which differs
# from it by less than the JPEG noise of the shards.
SIMCLR_STRENGTH = 1.0
SIMCLR_JITTER = (0.8 * SIMCLR_STRENGTH, 0.8 * SIMCLR_STRENGTH, 0.8 * SIMCLR_STRENGTH, 0.2 * SIMCLR_STRENGTH)
SIMCLR_P = {"jitter": 0.8, "grayscale": 0.2, "blur": 0.5}
SIMCLR_SIGMA = (0.1, 2.0)


def simclr_colour(image: torch.Tensor, rng: random.Random) -> torch.Tensor:
    """SimCLR's colour distortion and blur on a uint8 (3, H, W) image, every draw from `rng`
    (torchvision's ColorJitter / RandomGrayscale / GaussianBlur draw from torch's global
    generator, which would make the augmentation depend on the DataLoader worker). Applied
    with torchvision's functional ops on a PIL image: on uint8 tensors its hue shift is ~20x
    slower, too slow for a data loader."""
    pil = Image.fromarray(image.permute(1, 2, 0).numpy())
    if rng.random() < SIMCLR_P["jitter"]:
        brightness, contrast, saturation, hue = SIMCLR_JITTER
        steps = [
            (TF.adjust_brightness, rng.uniform(max(0.0, 1 - brightness), 1 + brightness)),
            (TF.adjust_contrast, rng.uniform(max(0.0, 1 - contrast), 1 + contrast)),
            (TF.adjust_saturation, rng.uniform(max(0.0, 1 - saturation), 1 + saturation)),
            (TF.adjust_hue, rng.uniform(-hue, hue)),
        ]
        for k in rng.sample(range(4), 4):  # ColorJitter's random order
            fn, factor = steps[k]
            pil = fn(pil, factor)
    if rng.random() < SIMCLR_P["grayscale"]:
        pil = TF.rgb_to_grayscale(pil, num_output_channels=3)
    if rng.random() < SIMCLR_P["blur"]:
        pil = pil.filter(ImageFilter.GaussianBlur(radius=rng.uniform(*SIMCLR_SIGMA)))  # radius: the sigma
    return torch.from_numpy(np.array(pil.convert("RGB"))).permute(2, 0, 1).contiguous()


def decode_image(data: bytes) -> torch.Tensor:
    """Encoded image bytes -> uint8 (3, H, W)."""
    with Image.open(io.BytesIO(data)) as image:
        return torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)


JPEG_END = b"\xff\xd9"  # the EOI marker that ends every complete JPEG


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the header, without decoding the pixels; a JPEG whose end marker is
    missing (a truncated file) is refused here, in the loader worker, as the cpu loader's full
    decode would refuse it. The marker may be followed by padding, so the file's tail is searched."""
    with Image.open(io.BytesIO(data)) as header:
        if header.format == "JPEG" and JPEG_END not in data[-64:]:
            raise ValueError(f"truncated JPEG ({len(data)} bytes, no end marker)")
        return header.size


class UndecodableSample(ValueError):
    """A sample whose bytes do not decode (its image, its JSON): replaced by the next one."""


class Sample(NamedTuple):
    """One readable sample as a loader worker hands it over: the augmented image (cpu loader), or
    the JPEG bytes and the augmentation's drawn choices (device loader); its tokens; the
    (epoch, index) it was read from and how many unreadable samples were passed over to reach it."""

    image: torch.Tensor | None
    jpeg: torch.Tensor | None
    choices: torch.Tensor | None
    tokens: torch.Tensor
    item: tuple[int, int]
    replaced: int


class Batch(NamedTuple):
    images: torch.Tensor | None  # (B, 3, S, S), cpu loader
    jpegs: list[torch.Tensor] | None  # B encoded images of different lengths, device loader
    choices: torch.Tensor | None  # (B, 6), device loader (Augment.draw)
    texts: torch.Tensor
    items: list[tuple[int, int]]
    replaced: int  # unreadable samples the workers replaced in this batch


class ShardDataset(Dataset):
    """Map-style view of the shards; items are (epoch, index) pairs from `GlobalBatchSampler`.

    With `encoded` (train.loader: device) an item carries the JPEG bytes and the augmentation's
    choices: the worker draws exactly what it draws otherwise but leaves decoding and the
    pixels' work to the training device (`decode_on_device`)."""

    def __init__(
        self,
        index: ShardIndex,
        augment: Augment,
        tokenizer,
        seed: int = 0,
        encoded: bool = False,
        open_shards: int = TRAIN_DEFAULTS["open_shards"],
    ):
        self.index, self.augment, self.tokenizer, self.seed = index, augment, tokenizer, seed
        self.encoded = encoded
        self.files = OpenShards(index.shards, open_shards)  # per process: each worker opens its own

    def __len__(self) -> int:
        return len(self.index)

    def _members(self, i: int) -> tuple[bytes, bytes]:
        """The sample's JSON and image bytes; a shard that cannot be read raises (ShardFileError)."""
        shard, key = int(self.index.shard[i]), self.index.key(i)
        (meta_at, meta_size), (jpg_at, jpg_size) = self.index.meta[i].tolist(), self.index.jpg[i].tolist()
        return (
            self.files.read(shard, meta_at, meta_size, f"{key}.json"),
            self.files.read(shard, jpg_at, jpg_size, f"{key}.jpg"),
        )

    def _load(self, epoch: int, i: int, replaced: int) -> Sample:
        rng = random.Random(f"{self.seed}:{epoch}:{self.index.key(i)}")
        meta_bytes, data = self._members(i)
        try:  # from here on a failure is the sample's own bytes
            meta = json.loads(meta_bytes)
            tokens = self.tokenizer([rng.choice(meta.get("captions") or [meta["caption"]])])[0]  # the first draw
            if self.encoded:
                choices = torch.tensor(self.augment.draw(rng, *jpeg_size(data)))
                jpeg = torch.frombuffer(bytearray(data), dtype=torch.uint8)
                return Sample(None, jpeg, choices, tokens, (epoch, i), replaced)
            return Sample(self.augment(decode_image(data), rng), None, None, tokens, (epoch, i), replaced)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UndecodableSample(f"{type(exc).__name__}: {exc}") from exc

    def __getitem__(self, item: tuple[int, int]) -> Sample:
        epoch, i = item
        for attempt in range(len(self)):
            j = (i + attempt) % len(self)
            try:
                return self._load(epoch, j, attempt)
            except UndecodableSample as exc:  # the sample's own fault: its bytes
                log.warning("sample %s unreadable (%s); using the next one", self.index.key(j), exc)
        raise RuntimeError("no readable sample in the shards")

    def after(self, item: tuple[int, int]) -> Sample:
        """The next readable sample after `item` (a sample the training device could not
        decode), counting that one as replaced."""
        epoch, i = item
        sample = self[(epoch, (i + 1) % len(self))]
        return sample._replace(replaced=sample.replaced + 1)


class GlobalBatchSampler(Sampler):
    """Per-rank index lists of global batches, from `start_step` on, for `steps` steps.

    Global batch t of epoch e is permutation_e[t*B:(t+1)*B]; rank r's share is the r-th of
    `world` equal slices, cut into `accum` micro-batches. Incomplete global batches at the
    end of an epoch are dropped. With `mix` an epoch permutes the multiset of per-source
    weights (Mixing.epoch_items) instead of the `n` samples once each.
    """

    def __init__(
        self,
        n: int,
        global_batch: int,
        world: int,
        rank: int,
        seed: int,
        steps: int,
        start_step: int = 0,
        accum: int = 1,
        mix: Mixing | None = None,
    ):
        if global_batch % (world * accum):
            raise ValueError(
                f"global batch {global_batch} is not divisible by world size {world} x accumulation {accum}"
            )
        if mix is not None and len(mix.source) != n:
            raise ValueError(f"the mixing covers {len(mix.source)} samples, the dataset {n}")
        epoch_size = mix.epoch_size() if mix is not None else n
        if global_batch > epoch_size:
            what = "samples an epoch draws with the run's weights" if mix is not None else "training samples"
            raise ValueError(f"global batch {global_batch} is larger than the {epoch_size} {what}")
        self.n, self.batch, self.world, self.rank = n, global_batch, world, rank
        self.seed, self.steps, self.start, self.accum, self.mix = seed, steps, start_step, accum, mix
        self.per_epoch = epoch_size // global_batch

    def epoch_of(self, step: int) -> int:
        return step // self.per_epoch

    def _permutation(self, epoch: int) -> np.ndarray:
        # permutation(n) permutes arange(n): with every weight 1 the multiset is arange(n) and
        # the epoch is the unweighted one, draw for draw
        items = self.mix.epoch_items(self.seed, epoch) if self.mix is not None else self.n
        return np.random.default_rng([self.seed, epoch]).permutation(items)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        share = self.batch // self.world
        micro = share // self.accum
        perm, perm_epoch = np.empty(0, np.int64), -1
        for step in range(self.start, self.steps):
            epoch, t = divmod(step, self.per_epoch)
            if epoch != perm_epoch:
                perm, perm_epoch = self._permutation(epoch), epoch
            mine = perm[t * self.batch + self.rank * share : t * self.batch + (self.rank + 1) * share]
            for k in range(self.accum):
                yield [(epoch, int(i)) for i in mine[k * micro : (k + 1) * micro]]

    def __len__(self) -> int:
        return (self.steps - self.start) * self.accum


def collate(samples: list[Sample]) -> Batch:
    items, replaced = [s.item for s in samples], sum(s.replaced for s in samples)
    texts = torch.stack([s.tokens for s in samples])
    if samples[0].jpeg is not None:  # encoded: the JPEGs' lengths differ, so they stay a list
        jpegs = [s.jpeg for s in samples if s.jpeg is not None]
        choices = torch.stack([s.choices for s in samples if s.choices is not None])
        return Batch(None, jpegs, choices, texts, items, replaced)
    return Batch(torch.stack([s.image for s in samples if s.image is not None]), None, None, texts, items, replaced)


def _decode_one(data: torch.Tensor, device: torch.device) -> torch.Tensor:
    from torchvision.io import ImageReadMode, decode_jpeg
    from torchvision.io import decode_image as tv_decode_image

    try:
        return decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    except RuntimeError:  # a non-JPEG member (shards written elsewhere): on the CPU
        return tv_decode_image(data, mode=ImageReadMode.RGB).to(device)


def decode_on_device(
    augment: Augment, batch: Batch, device: torch.device, dataset: ShardDataset | None = None
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The device loader's second half: decode a batch of JPEGs on `device` (nvJPEG on CUDA,
    libjpeg-turbo on the CPU), apply each sample's drawn choices there, normalise. Returns
    (images, tokens, samples replaced here).

    When the batch does not decode, each image is decoded alone; one that fails is replaced,
    with its caption, by the next readable sample of `dataset` (as the cpu loader replaces it,
    so a corrupt file costs a warning, not the run). Without a dataset the error is raised."""
    from torchvision.io import ImageReadMode, decode_jpeg

    assert batch.jpegs is not None and batch.choices is not None
    try:
        images = decode_jpeg(batch.jpegs, mode=ImageReadMode.RGB, device=device)
    except RuntimeError:  # one of them does not decode (or is no JPEG): one by one below
        images = None
    if images is not None:
        pixels = [augment.apply(image, *row) for image, row in zip(images, batch.choices.tolist())]
        return augment.normalize(torch.stack(pixels)), batch.texts, 0
    pixels, texts, replaced = [], [], 0
    for jpeg, choices, tokens, item in zip(batch.jpegs, batch.choices, batch.texts, batch.items):
        image, tokens, passed = _decode_or_next(augment, Sample(None, jpeg, choices, tokens, item, 0), device, dataset)
        pixels.append(image)
        texts.append(tokens)
        replaced += passed
    return augment.normalize(torch.stack(pixels)), torch.stack(texts), replaced


def _decode_or_next(
    augment: Augment, sample: Sample, device: torch.device, dataset: ShardDataset | None
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(augmented image, tokens, samples passed over) of `sample`, or of the next sample the
    device decodes."""
    for _ in range(len(dataset) if dataset is not None else 1):
        assert sample.jpeg is not None and sample.choices is not None
        try:
            return (
                augment.apply(_decode_one(sample.jpeg, device), *sample.choices.tolist()),
                sample.tokens,
                sample.replaced,
            )
        except RuntimeError as exc:
            if dataset is None:
                raise
            log.warning("sample %s undecodable on %s (%s); using the next one", sample.item, device, exc)
            nxt = dataset.after(sample.item)
            sample = nxt._replace(replaced=sample.replaced + nxt.replaced)
    raise RuntimeError(f"no sample of the shards decodes on {device}")
