"""The image encoders a run can start its image tower from (`model.image_init`, the paper's Table
V initialisation ablation): ImageNet-supervised and self-supervised image towers paired with a
CLIP text tower. A catalogue only (what each entry is, where its checkpoint comes from, its key
layout, and the name of the hybrid architecture it makes); it imports neither torch nor timm,
because Snakemake reads it (through `weights.cache`) to know what the `fetch_weights` rule
downloads. Where a checkpoint lies once fetched is `weights.cache.image_encoder_path`;
registering the hybrid is `models.configs`, building it `models.factory`, loading the trunk
`models.hybrid_towers`.

Each entry names a timm architecture for the image trunk (open_clip's timm tower, with a
linear projection to the CLIP embedding) and a checkpoint:

- `hf`: a timm weight file on the Hugging Face Hub (`timm/<model>.<tag>`, model.safetensors),
  in timm's own key layout;
- `url`: a file from the authors' own release (their torch.hub entry points load it), in
  torchvision's ResNet layout (which timm's ResNet shares), with the keys named in `strip`
  and `drop` removed as their hubconf.py removes them;
- none: no public checkpoint can be fetched; the entry says why, and `image_checkpoint:` in a
  run's model gives a file of your own.

What the paper does not state: which ImageNet weights (torchvision's RN50 and timm's
ImageNet-1k ViT-B/32 here), the SwAV/VICReg/Barlow Twins epochs (each one's released RN50),
and which ViT-Base (B/32 for ImageNet, as the CLIP ViT-B-32 it is compared with; DINOv2 has
only B/14, used at 224 px with its position embedding resampled by timm). Every hybrid sees
CLIP's input normalisation (the run's transforms are the CLIP architecture's), not the
statistics these encoders were trained with (ImageNet's means agree with CLIP's within 0.005,
its standard deviations are 0.22-0.23 against CLIP's 0.26-0.28; AugReg's ViT used 0.5 and 0.5);
the whole tower is fine-tuned.

Verified (each project's own source): the three authors' URLs and how their hubconf.py load
them: SwAV strips "module." and loads strict=False into torchvision's resnet50 (fc is random);
Barlow Twins loads strict=False into torchvision's resnet50; VICReg loads strict=True into its
own resnet.py, which has no fc. SwAV's and VICReg's ResNets add ConstantPad2d(1) before a conv1
of padding 2 (torchvision's: padding 3), the same convolution, so the weights fit timm's
resnet50 unchanged. The timm tags and their Hub repos are those of timm's pretrained registry.
Not verified (no download here): that SwAV's released file holds `projection_head.*` and
`prototypes.weight` (its training code builds them; they are dropped by prefix either way, and
a file without them loads as well), that VICReg's and Barlow Twins' files have no `fc.*`
(one would be dropped like ImageNet's classifier), and the files' checksums (recorded in the weights
lock on first fetch).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class ImageEncoder:
    name: str
    title: str
    family: str  # "resnet50" | "vit-base": what the checkpoint is, for the mismatch message
    timm_model: str  # the trunk's timm architecture
    layout: str  # "timm" | "torchvision" (the checkpoint's keys)
    pool: str = "avg"  # open_clip TimmModel pooling: "avg" (ResNet), "token" (ViT class token)
    hf_repo: str | None = None
    hf_filename: str = "model.safetensors"
    url: str | None = None
    strip: str = ""  # a prefix every key carries (DDP's "module.")
    drop: tuple[str, ...] = ()  # key prefixes that are not the trunk (classifier, projection heads)
    unavailable: str | None = None  # why no checkpoint can be fetched

    @property
    def filename(self) -> str:
        return self.hf_filename if self.hf_repo else Path(self.url or f"{self.name}.pth").name


IMAGE_ENCODERS: dict[str, ImageEncoder] = {
    e.name: e
    for e in (
        ImageEncoder(
            "imagenet-rn50",
            "ResNet-50, ImageNet-1k supervised (torchvision's IMAGENET1K_V1 weights, via timm)",
            "resnet50",
            "resnet50",
            "timm",
            hf_repo="timm/resnet50.tv_in1k",
            drop=("fc.",),
        ),
        ImageEncoder(
            "swav-rn50",
            "ResNet-50, SwAV 800 epochs (Caron et al. 2020; facebookresearch/swav hubconf resnet50)",
            "resnet50",
            "resnet50",
            "torchvision",
            url="https://dl.fbaipublicfiles.com/deepcluster/swav_800ep_pretrain.pth.tar",
            strip="module.",
            drop=("projection_head.", "prototypes."),
        ),
        ImageEncoder(
            "vicreg-rn50",
            "ResNet-50, VICReg (Bardes et al. 2022; facebookresearch/vicreg hubconf resnet50)",
            "resnet50",
            "resnet50",
            "torchvision",
            url="https://dl.fbaipublicfiles.com/vicreg/resnet50.pth",
            drop=("fc.",),  # none expected (see the module doc); a classifier is not the trunk
        ),
        ImageEncoder(
            "barlowtwins-rn50",
            "ResNet-50, Barlow Twins 1000 epochs (Zbontar et al. 2021; facebookresearch/barlowtwins hubconf resnet50)",
            "resnet50",
            "resnet50",
            "torchvision",
            url="https://dl.fbaipublicfiles.com/barlowtwins/ep1000_bs2048_lrw0.2_lrb0.0048_lambd0.0051/resnet50.pth",
            drop=("fc.",),  # none expected (see the module doc); a classifier is not the trunk
        ),
        ImageEncoder(
            "imagenet-vit-b",
            "ViT-B/32, ImageNet-1k supervised (AugReg, Steiner et al. 2021; timm vit_base_patch32_224.augreg_in1k)",
            "vit-base",
            "vit_base_patch32_224",
            "timm",
            pool="token",
            hf_repo="timm/vit_base_patch32_224.augreg_in1k",
            drop=("head.",),
        ),
        ImageEncoder(
            "dinov2-vit-b",
            "ViT-B/14, DINOv2 LVD-142M (Oquab et al. 2023; timm vit_base_patch14_dinov2.lvd142m, at 224 px)",
            "vit-base",
            "remoteclip_vit_base_patch14_dinov2_224",  # registered in timm by models.configs
            "timm",
            pool="token",
            hf_repo="timm/vit_base_patch14_dinov2.lvd142m",
            drop=("head.",),
        ),
        ImageEncoder(
            "vitae-vit-b",
            "ViTAE-B (Wang et al. 2022, remote-sensing pretraining)",
            "vit-base",
            "",
            "timm",
            unavailable=(
                "ViTAE has no checkpoint that can be fetched by URL (the authors share theirs through "
                "OneDrive/Baidu links) and no timm architecture, so this workflow cannot build or load it"
            ),
        ),
    )
}


class UnknownImageEncoder(ValueError):
    pass


class ImageEncoderError(RuntimeError):
    """An image encoder that cannot be built or whose checkpoint does not fit."""


def image_encoder(name: str) -> ImageEncoder:
    if name not in IMAGE_ENCODERS:
        raise UnknownImageEncoder(f"model.image_init: unknown {name!r}; known: {', '.join(IMAGE_ENCODERS)}")
    return IMAGE_ENCODERS[name]


def buildable(entry: ImageEncoder) -> ImageEncoder:
    """The entry, unless no checkpoint of it can be had (then an error with the reason)."""
    if entry.unavailable:
        raise ImageEncoderError(f"model.image_init {entry.name} ({entry.title}): {entry.unavailable}")
    return entry


# the hybrid architecture: the text tower of `arch` beside an entry's image tower, named
# "<arch>+<entry>" (a trained run's export names its architecture so); parsed only here


def hybrid_arch(arch: str, name: str) -> str:
    """The architecture name of `arch`'s text tower with the image tower of `name`."""
    return f"{arch}+{name}"


def split_hybrid(name: str) -> tuple[str, ImageEncoder] | None:
    """(text architecture, image encoder) of a hybrid "<arch>+<entry>"; None for any other name."""
    arch, plus, entry = name.rpartition("+")
    return (arch, IMAGE_ENCODERS[entry]) if plus and entry in IMAGE_ENCODERS else None


def text_arch_of(name: str) -> str:
    """The architecture whose text tower a hybrid "<arch>+<entry>" has; any other name itself."""
    parts = split_hybrid(name)
    return parts[0] if parts else name
