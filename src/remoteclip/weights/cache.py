"""The pretrained-weights cache: every weight a configuration needs is fetched by the local rule
`fetch_weights` into one folder (`data.weights`, default <data.root>/weights) before the jobs that
need it, verified, and recorded in a manifest; the `train` and `features` jobs then run with
`HF_HUB_OFFLINE=1` and read only that folder, so compute nodes without internet run the DAG.

What is fetched (one `WeightSource` each, named by a file-safe key):
- an open_clip pretrained tag (`pretrained: openai`, `laion2b_s34b_b79k`, or a tag registered
  for a custom architecture in config/models/pretrained_tags.yaml): open_clip's own download
  (Hugging Face Hub first, else its URL) into <cache>/open_clip, exactly where
  `create_model_and_transforms(..., cache_dir=<cache>/open_clip)` looks for it offline;
- an `hf-hub:org/repo` architecture: its open_clip_config.json and weights, the same way;
- a file of a Hugging Face repo (the released RemoteCLIP-*.pt, a zoo entry's file, at its
  revision): into <cache>/<repo name>/;
- a file at a URL (a zoo entry's `weights.url`): into <cache>/url/; a zip archive's checkpoint
  member (`weights.member`, SkyCLIP) is extracted, once the archive is verified, into
  <cache>/url/<archive name without .zip>.unzipped/<member>;
- a Hugging Face repo a zoo entry loads whole (`hf_hub_open_clip`, `transformers`, a tokenizer):
  its config, weights and tokenizer files at the revision, into <cache>/hf/<owner>--<name>@<revision>/.
- an image-encoder initialisation of Table V (`model.image_init`, remoteclip.image_encoders): its
  checkpoint (a timm file on the Hub, or the authors' URL) into <cache>/image_inits/<name>/.

A zoo entry's own sha256 (`weights.sha256`) is checked like one the source publishes.

Verification: the sha256 of every fetched file is compared with the one the source publishes
(the Hub's LFS etag, the sha256 in OpenAI's URLs) where there is one, else recorded on first
use in the weights lock file (`download.weights_lock`) and checked on every later fetch. A file
that differs is moved aside as `<name>.bad` and refused.

This module is the one place that knows the layout: what a config needs, where each source
lies once fetched (the loaders and the fetch both ask here), offline mode. It imports neither
torch nor open_clip: Snakemake reads it while it builds the DAG. The fetching is `fetch`.

Files: <cache>/.fetched/<key>.json, the manifest of one source (`manifest_path`), is the output
of `fetch_weights` and an input of every `train` and `features` job that needs that source.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

from ..image_encoders import ImageEncoder, image_encoder

MANIFESTS = ".fetched"  # <cache>/.fetched/<key>.json, the fetch rule's outputs
RELEASED_REPO = "chendelong/RemoteCLIP"
HF_PREFIX = "hf-hub:"
# zoo formats whose weights are one file (loaded into an open_clip architecture); the others
# are a repo (hf_hub_open_clip, transformers) or open_clip's own tag (openai_tag)
FILE_FORMATS = ("state_dict", "open_clip_train", "itra", "safetensors")


@dataclasses.dataclass(frozen=True)
class WeightSource:
    """One thing to fetch: an open_clip tag, an hf-hub: model, or one file of a HF repo."""

    kind: str  # "open_clip_tag" | "hf_hub_model" | "hf_file" | "url" | "hf_repo" | "image_init" (tag: the entry)
    arch: str | None = None
    tag: str | None = None
    repo: str | None = None
    filename: str | None = None
    revision: str | None = None
    url: str | None = None
    sha256: str | None = None  # the digest a zoo entry states (checked like a published one)
    layout: str | None = None  # hf_repo: "open_clip" | "transformers" | "tokenizer" (which files)
    member: str | None = None  # url: the checkpoint inside a zip archive, extracted once verified

    @property
    def key(self) -> str:
        pinned = () if self.revision in (None, "main") else (self.revision,)
        parts = {
            "open_clip_tag": ("open_clip", self.arch, self.tag),
            "hf_hub_model": ("hf-hub", self.repo),
            "hf_file": ("hf", self.repo, self.filename, *pinned),
            "url": ("url", self.url),
            "hf_repo": ("hf-repo", self.repo, self.layout, *pinned),
            "image_init": ("image_init", self.tag),
        }[self.kind]
        return "--".join(re.sub(r"[^A-Za-z0-9._-]+", "_", str(p)) for p in parts)

    def describe(self) -> str:
        if self.kind == "open_clip_tag":
            return f"open_clip {self.arch} pretrained={self.tag}"
        if self.kind == "hf_hub_model":
            return f"{HF_PREFIX}{self.repo}"
        if self.kind == "url":
            return str(self.url)
        if self.kind == "hf_repo":
            return f"https://huggingface.co/{self.repo}/tree/{self.revision or 'main'} ({self.layout} files)"
        if self.kind == "image_init":
            entry = image_encoder(str(self.tag))
            where = (
                f"https://huggingface.co/{entry.hf_repo}/blob/main/{entry.hf_filename}" if entry.hf_repo else entry.url
            )
            return f"image encoder {entry.name}: {where}"
        return f"https://huggingface.co/{self.repo}/blob/{self.revision or 'main'}/{self.filename}"


def is_checkpoint_path(pretrained: str | None) -> bool:
    """A `pretrained` value that names a file rather than an open_clip tag."""
    return pretrained is not None and (
        os.sep in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors"))
    )


def model_source(arch: str, pretrained: str | None) -> WeightSource | None:
    """What building (arch, pretrained) downloads, if anything."""
    if arch.startswith(HF_PREFIX):
        return WeightSource("hf_hub_model", repo=arch[len(HF_PREFIX) :])
    if pretrained and not is_checkpoint_path(pretrained):
        return WeightSource("open_clip_tag", arch=arch, tag=pretrained)
    return None


def released_source(release: str) -> WeightSource:
    return WeightSource("hf_file", repo=RELEASED_REPO, filename=f"{release}.pt")


def released_path(cache: str | Path, release: str) -> Path:
    """Where a released RemoteCLIP file lies once fetched (a stable path, not the Hub's cache layout)."""
    return Path(cache) / RELEASED_REPO.split("/")[-1] / f"{release}.pt"


def manifest_path(cache: str | Path, source: WeightSource) -> Path:
    return Path(cache) / MANIFESTS / f"{source.key}.json"


def run_sources(config: dict, run: str) -> list[WeightSource]:
    model = config["runs"][run]["model"]
    source = model_source(model["arch"], model.get("pretrained"))
    return ([source] if source else []) + image_init_sources(model)


def image_init_sources(model: dict) -> list[WeightSource]:
    """The image-encoder checkpoint a model with `image_init` starts from, unless the config
    gives the file (`image_checkpoint`) or the entry has none to fetch (the job says so)."""
    name = model.get("image_init")
    if not name or model.get("image_checkpoint") or image_encoder(name).unavailable:
        return []
    return [WeightSource("image_init", tag=name)]


def eval_sources(spec: dict) -> list[WeightSource]:
    """For a resolved evaluation model (`evaluate.registry.resolve`)."""
    if "weight_sources" in spec:  # a zoo entry: resolved with its model (zoo_sources)
        return [WeightSource(**source) for source in spec["weight_sources"]]
    if spec.get("released") and not spec.get("checkpoint_given"):
        return [released_source(spec["released"])]
    if spec.get("image_init"):  # a Table V init run's start: the text tower's weights and the trunk's
        source = model_source(spec["text_arch"], spec.get("pretrained"))
        return ([source] if source else []) + image_init_sources(spec)
    source = model_source(spec["arch"], spec.get("pretrained"))
    return [source] if source else []


def zoo_sources(model: dict) -> list[WeightSource]:
    """What scoring a zoo entry (remoteclip.zoo) downloads: its weights, and the tokenizer's
    repo where that is another one."""
    weights, fmt = model["weights"], model["format"]
    hf = weights.get("hf") or {}
    revision = hf.get("revision", "main")
    if fmt == "openai_tag":
        sources = [WeightSource("open_clip_tag", arch=model["arch"], tag=weights["tag"])]
    elif fmt in ("hf_hub_open_clip", "transformers"):
        layout = "open_clip" if fmt == "hf_hub_open_clip" else "transformers"
        sources = [WeightSource("hf_repo", repo=hf["repo"], revision=revision, layout=layout)]
    elif "url" in weights:
        sources = [WeightSource("url", url=weights["url"], sha256=weights.get("sha256"), member=weights.get("member"))]
    else:
        sources = [
            WeightSource(
                "hf_file", repo=hf["repo"], filename=hf["file"], revision=revision, sha256=weights.get("sha256")
            )
        ]
    tokenizer_repo = tokenizer_repo_of(model)
    if tokenizer_repo and not (tokenizer_repo == hf.get("repo") and fmt in ("hf_hub_open_clip", "transformers")):
        sources.append(WeightSource("hf_repo", repo=tokenizer_repo, revision="main", layout="tokenizer"))
    return sources


def tokenizer_repo_of(model: dict) -> str | None:
    """The Hugging Face repo a zoo entry's tokenizer comes from (None: the architecture's own)."""
    tokenizer = model["tokenizer"]
    return tokenizer.split(":", 1)[1] if ":" in tokenizer else None


def needed(config: dict, eval_models: dict[str, dict]) -> dict[str, WeightSource]:
    """{key: source} of every weight the configured runs and evaluation models download."""
    sources = [s for run in config.get("runs") or {} for s in run_sources(config, run)]
    sources += [s for spec in eval_models.values() for s in eval_sources(spec)]
    return {s.key: s for s in sources}


# ----------------------------------------------------------------- where things lie


def weights_file(cache: str | Path, model: dict) -> Path | None:
    """Where a zoo entry's one-file release lies once fetched (None for repos and tags):
    <cache>/<repo name>/<file> for a Hugging Face file (as the released RemoteCLIP files),
    <cache>/url/<file name> for a URL, or the extracted member of a zip at a URL (`member_path`)."""
    if model["format"] not in FILE_FORMATS:
        return None
    weights = model["weights"]
    if "hf" in weights:
        return Path(cache) / weights["hf"]["repo"].split("/")[-1] / weights["hf"]["file"]
    if weights.get("member"):
        return member_path(url_file(cache, weights["url"]), weights["member"])
    return url_file(cache, weights["url"])


def url_file(cache: str | Path, url: str) -> Path:
    """Where the file at a URL lies once fetched: <cache>/url/<file name>."""
    return Path(cache) / "url" / url.rstrip("/").split("/")[-1].split("?")[0]


def member_path(archive: str | Path, member: str) -> Path:
    """Where a zip member is extracted: <archive without .zip>/<member>, beside the archive,
    so two archives with the same member names (every SkyCLIP zip holds a <name>/epoch_20.pt)
    never share a path."""
    archive = Path(archive)
    return archive.with_name(archive.name.removesuffix(".zip") + ".unzipped") / member


def repo_dir(cache: str | Path, repo: str, revision: str) -> Path:
    """Where a fetched Hugging Face repo (its config, weights and tokenizer files) lies."""
    return Path(cache) / "hf" / f"{repo.replace('/', '--')}@{revision}"


def image_encoder_path(cache: str | Path, entry: ImageEncoder) -> Path:
    """Where an image encoder's checkpoint lies once fetched: <cache>/image_inits/<name>/<file>."""
    return Path(cache) / "image_inits" / entry.name / entry.filename


def hf_text_repos(open_clip_config: str | Path) -> list[str]:
    """The Hugging Face repos an open_clip model with a transformers text tower (RS-M-CLIP's
    XLM-RoBERTa) reads when it is built: open_clip_config.json's text_cfg.hf_model_name (its
    config.json, for `AutoConfig.from_pretrained`) and hf_tokenizer_name (the tokenizer).
    open_clip asks the Hub for them at build time, so fetch_weights fetches them into the
    weights cache and the loader points the config at those folders. Local paths are left out."""
    text = json.loads(Path(open_clip_config).read_text()).get("model_cfg", {}).get("text_cfg", {})
    names = [text.get("hf_model_name"), text.get("hf_tokenizer_name")]
    return list(dict.fromkeys(n for n in names if n and not Path(n).exists() and not n.startswith(("/", "."))))


# ----------------------------------------------------------------- jobs: offline

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def go_offline() -> None:
    """Make this process read only caches (what the train and features jobs do first): the
    Hub client reads its switch at import, so it is also set where it is already imported."""
    os.environ.update(OFFLINE_ENV)
    import sys

    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True  # type: ignore[attr-defined]


def open_clip_cache(cache: str | Path) -> str:
    """The cache_dir to pass to open_clip (tags and hf-hub: models)."""
    return str(Path(cache) / "open_clip")
