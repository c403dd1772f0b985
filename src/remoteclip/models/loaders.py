"""Loading a zoo model (remoteclip.zoo) by its release format, so the evaluation suite sees one
interface whatever the layout: (model with `encode_image` / `encode_text`, validation
transform, tokenizer: list[str] -> token tensor, or for a transformers release what its
tokenizer returns, which `encode_text` takes).

Formats (`format:` of a zoo entry):
- state_dict: an open_clip state dict as open_clip's load_checkpoint reads a `--pretrained` file
  (FarSLIP's test scripts do): torch.save'd plain (the released RemoteCLIP-*.pt) or inside a
  training checkpoint (its "state_dict" entry, a DDP "module." prefix removed);
- open_clip_train: {"epoch", "name", "state_dict", "optimizer", ...}, keys "module."-prefixed
  under DDP (open_clip_train's main.py; SkyScript's and FarSLIP's forks save the same); a
  release that is a zip archive (SkyCLIP) names its checkpoint member (`weights.member`),
  which is extracted from the archive and loaded;
- itra: ITRA's checkpoint (ChenDelong1999/ITRA, itra/training/main.py saves the same dict as
  open_clip_train). Its model, `ItraModel` (itra/model/model.py), holds the open_clip image
  tower as `image_backbone` (CLIP.visual), the text tower as `text_backbone` (the CLIP model
  with visual=None, its logit_scale moved up to `ItraModel.logit_scale`) and projection heads
  that are nn.Identity (no keys) for CLIP training; the keys map back to open_clip's;
- safetensors: a .safetensors file holding an open_clip state dict;
- hf_hub_open_clip: an open_clip hf-hub: repo (open_clip_config.json + weights), fetched into
  the weights cache and built from there with open_clip's `local-dir:` schema;
- transformers: a Hugging Face transformers CLIP-style model (CLIPModel, SiglipModel, ...,
  anything with get_image_features / get_text_features), wrapped by `TransformersCLIP`. Texts
  reach it as the authors' READMEs pass them (`model(**processor(text=..., padding="max_length"))`):
  the tokenizer's input_ids with its attention_mask (`text_attention_mask: false`: the ids alone);
  images as its image processor's settings state them (preprocessor_config.json, or nested in
  processor_config.json), a release stating none is refused;
- openai_tag: open_clip's own pretrained tag, from the cache's open_clip folder.

Long-CLIP text towers (DGTRS-CLIP, FarSLIP: an extra `positional_embedding_res`, FarSLIP's with
mask1/mask2 buffers) load as the entry's `long_clip_positions` says (`long_clip_text`): `fold`
(DGTRS-CLIP, FarSLIP2 with --use-long-clip: `context_length: 248`) builds the architecture with
that many positions and folds the two tables into one (`fold_long_clip`); `resize` (FarSLIP1,
scored without --use-long-clip) loads them as open_clip's load_checkpoint does into a 77-position
tower: positional_embedding interpolated, the Long-CLIP extras dropped, both said in the log.

Every file is read by remoteclip.weights.files (weights_only=True unless trusted by name), the
architecture is built by the factory (`models.factory.create`), and a state dict is loaded
strictly (`models.state.load_strict`: keys that do not fit are named).
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import open_clip
import torch
from open_clip.model import resize_text_pos_embed

from ..weights.cache import hf_text_repos, member_path, open_clip_cache, repo_dir
from ..weights.files import CheckpointError, extract_member, load_file, state_dict_of
from .configs import register_model_configs
from .factory import create
from .state import SHOWN, KeyMismatch, load_strict

log = logging.getLogger(__name__)


class MissingWeights(FileNotFoundError):
    pass


def load_zoo_model(spec: dict[str, Any], device: str | torch.device = "cpu", weights_cache: str | Path | None = None):
    """(model in eval mode on `device`, validation transform, tokenizer) of a resolved zoo
    spec (evaluate.registry.resolve_zoo)."""
    register_model_configs()
    fmt = spec["format"]
    if fmt == "transformers":
        model, preprocess, tokenizer = _transformers(spec)
    elif fmt == "hf_hub_open_clip":
        model, preprocess, tokenizer = _hf_hub_open_clip(spec)
    else:
        cache = open_clip_cache(weights_cache) if weights_cache and fmt == "openai_tag" else None
        arch = with_context_length(spec["arch"], spec.get("context_length"))
        model, _, preprocess = create(
            arch, spec.get("pretrained"), quick_gelu=bool(spec["quick_gelu"]), cache_dir=cache
        )
        if fmt != "openai_tag":
            path = _checkpoint(spec)
            what = f"{spec['name']} ({path})"
            state = zoo_state_dict(fmt, path, bool(spec.get("trust_checkpoint")))
            load_strict(model, long_clip_text(state, model, spec.get("long_clip_positions") or "fold", what), what)
        tokenizer = _tokenizer(spec, default=arch)
    check_tokenizer(model, tokenizer, spec["name"], spec["tokenizer"])
    model.to(device).eval()
    return model, preprocess, tokenizer


class TokenizerMismatch(ValueError):
    """A tokenizer whose token ids the text tower has no embedding rows for."""


def check_tokenizer(model: torch.nn.Module, tokenizer: Any, name: str, declared: str) -> None:
    """Refuse a tokenizer with more tokens than the text tower embeds (a CLIP tower given an
    XLM-RoBERTa tokenizer, or the reverse's wrong `tokenizer:` line): its ids past the table
    would fail inside the embedding or, with a table that happens to be larger, silently read
    other tokens. A smaller vocabulary is fine (towers pad their tables)."""
    rows, size = _embedding_rows(model), _vocabulary(tokenizer)
    if rows and size and size > rows:
        raise TokenizerMismatch(
            f"model {name}: its tokenizer ({declared}) has {size} tokens, but the text tower embeds "
            f"{rows}: the entry's `tokenizer:` does not match its text tower"
        )


def _embedding_rows(model: torch.nn.Module) -> int | None:
    """The text tower's token-embedding rows: open_clip's CLIP table, an open_clip HF text
    tower's or a transformers dual encoder's text model's input embeddings (None: unknown)."""
    table: Any = getattr(model, "token_embedding", None)  # open_clip CLIP
    if table is None:
        tower: Any = getattr(getattr(model, "text", None), "transformer", None)  # open_clip HF tower
        if isinstance(model, TransformersCLIP):  # CLIPModel, SiglipModel, ...: their text_model
            tower = getattr(model.model, "text_model", None) or model.model
        try:
            table = tower.get_input_embeddings() if tower is not None else None
        except (AttributeError, NotImplementedError):  # a model class without the accessor
            table = None
    return int(table.num_embeddings) if isinstance(table, torch.nn.Embedding) else None


def _vocabulary(tokenizer: Any) -> int | None:
    inner = getattr(tokenizer, "tokenizer", None)  # open_clip HFTokenizer, HFTokens
    if inner is not None and hasattr(inner, "__len__"):
        return len(inner)
    size = getattr(tokenizer, "vocab_size", None)  # open_clip SimpleTokenizer
    return int(size) if isinstance(size, int) else None


def _checkpoint(spec: dict[str, Any]) -> Path:
    """The entry's checkpoint file; for a zip release, its member, extracted from the archive
    here when fetch_weights has not (an archive placed by hand in the cache)."""
    member, archive = spec.get("member"), spec.get("archive")
    if member and archive and not Path(spec["checkpoint"]).is_file() and Path(archive).is_file():
        return extract_member(Path(archive), member, member_path(archive, member))
    if member and not Path(spec["checkpoint"]).is_file():
        _present(spec, archive or spec["checkpoint"])  # names the archive, which is what to place
    return _present(spec, spec["checkpoint"])


def _present(spec: dict[str, Any], path: str) -> Path:
    if not Path(path).exists():
        where = f" (from {spec['url']})" if spec.get("url") else ""
        raise MissingWeights(
            f"model {spec['name']}: weights {path} not found{where}: run the fetch_weights rule "
            f"(snakemake fetches them before scoring) or put the file there by hand"
        )
    return Path(path)


def zoo_state_dict(fmt: str, path: Path, trust: bool = False) -> dict[str, torch.Tensor]:
    """The open_clip state dict inside a weight file of the given release format."""
    obj = load_file(path, trust)
    if fmt == "open_clip_train" and not (isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict)):
        found = sorted(map(str, obj))[:SHOWN] if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(
            f"{path}: not an open_clip_train checkpoint (no 'state_dict' entry; found {found}); "
            "a plain state dict is format: state_dict"
        )
    state = state_dict_of(obj, path)
    return itra_to_open_clip(state, path) if fmt == "itra" else state


LONG_CLIP_EXTRAS = ("positional_embedding_res", "mask1", "mask2")


def long_clip_text(
    state: dict[str, torch.Tensor], model: torch.nn.Module, recipe: str, what: str
) -> dict[str, torch.Tensor]:
    """A state dict whose text tower is Long-CLIP's (it holds positional_embedding_res) with its
    positions loaded as the entry's recipe (`long_clip_positions`) says; any other as it is.
    fold: as Long-CLIP runs them, into a tower with as many positions (`context_length`);
    resize: as open_clip's load_checkpoint loads them into a shorter tower (`resize_long_clip`)."""
    if "positional_embedding_res" not in state:
        return state
    if recipe == "resize":
        return resize_long_clip(state, model, what)
    if recipe != "fold":
        raise ValueError(f"{what}: long_clip_positions {recipe!r}: expected fold or resize")
    rows = state["positional_embedding"].shape[0]
    own = model.state_dict().get("positional_embedding")  # None: load_strict names the keys
    positions = own.shape[0] if own is not None else rows
    if positions != rows:
        raise KeyMismatch(
            f"{what}: a Long-CLIP text tower with {rows} positions (positional_embedding_res), but the "
            f"entry builds {positions}: context_length: {rows} loads it as Long-CLIP runs it (folded; "
            f"--use-long-clip), or long_clip_positions: resize as open_clip's load_checkpoint loads it "
            f"into {positions} positions (FarSLIP's test command without --use-long-clip)"
        )
    log.info("%s: Long-CLIP text tower: folded positional_embedding_res into positional_embedding", what)
    return fold_long_clip(state)


def resize_long_clip(state: dict[str, torch.Tensor], model: torch.nn.Module, what: str) -> dict[str, torch.Tensor]:
    """A Long-CLIP text tower as FarSLIP's README command without --use-long-clip loads it: the
    fork's create_model builds the architecture's 77 positions and load_checkpoint(strict=False)
    interpolates positional_embedding (all 248 rows, linearly: open_clip's resize_text_pos_embed,
    which the fork has unchanged) and skips positional_embedding_res, mask1 and mask2 as
    unexpected keys. Here they are dropped by name, so any other stray key still fails."""
    kept = {k: v for k, v in state.items() if k not in LONG_CLIP_EXTRAS}
    rows = kept["positional_embedding"].shape[0]
    resize_text_pos_embed(kept, model)
    log.warning(
        "%s: long_clip_positions: resize, as open_clip's load_checkpoint loads this Long-CLIP file: "
        "dropped %s; positional_embedding interpolated linearly from %d to %d rows",
        what,
        ", ".join(k for k in LONG_CLIP_EXTRAS if k in state),
        rows,
        kept["positional_embedding"].shape[0],
    )
    return kept


LONG_CLIP_KEPT = 20  # Long-CLIP keeps the first 20 of CLIP's positions (its mask1) and learns the rest


def fold_long_clip(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Long-CLIP's text positions (DGTRS-CLIP, FarSLIP2) as one open_clip positional_embedding.
    Long-CLIP adds `positional_embedding * mask1 + positional_embedding_res * mask2`, mask1 = 1
    on the first 20 positions and mask2 = 1 - mask1 (model_longclip.py), so the sum is one
    table; the masks are taken from the file where it holds them (FarSLIP's fork saves them)."""
    state = dict(state)
    residual = state.pop("positional_embedding_res")
    base = state["positional_embedding"]
    mask1 = state.pop("mask1", None)
    mask2 = state.pop("mask2", None)
    if mask1 is None:
        mask1 = torch.zeros(base.shape[0], 1, dtype=base.dtype)
        mask1[:LONG_CLIP_KEPT] = 1
    mask2 = 1 - mask1 if mask2 is None else mask2
    state["positional_embedding"] = base * mask1 + residual * mask2
    return state


def with_context_length(arch: str, context_length: int | None) -> str:
    """`arch`, or a registered copy of it whose text tower has `context_length` positions
    (Long-CLIP's 248): open_clip sizes the text tower from the architecture's config."""
    if not context_length:
        return arch
    cfg = open_clip.get_model_config(arch)
    if cfg is None or cfg["text_cfg"].get("context_length") == context_length:
        return arch  # an unknown architecture is reported by build
    name = f"{arch}-ctx{context_length}"
    if name not in open_clip.list_models():
        cfg["text_cfg"]["context_length"] = context_length
        with tempfile.TemporaryDirectory() as folder:  # open_clip reads the file when it is added
            path = Path(folder) / f"{name}.json"
            path.write_text(json.dumps(cfg))
            open_clip.add_model_config(path)
    return name


ITRA_PREFIXES = {"image_backbone.": "visual.", "text_backbone.": ""}
ITRA_HEADS = ("image_projection_head.", "text_projection_head.")


def itra_to_open_clip(state: dict[str, torch.Tensor], path: str | Path) -> dict[str, torch.Tensor]:
    """ITRA's ItraModel keys as open_clip CLIP keys (see the module doc)."""
    heads = [k for k in state if k.startswith(ITRA_HEADS)]
    if heads:
        raise KeyMismatch(
            f"{path}: an ITRA checkpoint with trained projection heads ({', '.join(heads[:SHOWN])}): "
            "only ITRA's open_clip image and text backbones without extra heads load into open_clip"
        )
    if not any(k.startswith(tuple(ITRA_PREFIXES)) for k in state):
        raise KeyMismatch(
            f"{path}: not an ITRA checkpoint (no image_backbone.* / text_backbone.* keys; "
            f"found {', '.join(sorted(state)[:SHOWN])}); a plain open_clip state dict is format: state_dict"
        )
    out = {}
    for key, value in state.items():
        prefix = next((p for p in ITRA_PREFIXES if key.startswith(p)), "")
        out[ITRA_PREFIXES.get(prefix, "") + key[len(prefix) :]] = value
    return out


def _hf_hub_open_clip(spec: dict[str, Any]):
    """An open_clip hf-hub: release from its fetched folder. A transformers text tower
    (RS-M-CLIP's XLM-RoBERTa: text_cfg.hf_model_name / hf_tokenizer_name name Hub repos) is
    built from the copies fetch_weights placed in the weights cache: the folder is staged with
    the release's files and a config naming those folders, so open_clip reads no Hub at build
    time (HF_HUB_OFFLINE=1 on compute nodes)."""
    folder = _present(spec, spec["repo_dir"])
    towers = hf_text_repos(folder / "open_clip_config.json")
    if not towers:
        where = f"local-dir:{folder}"
        model, _, preprocess = open_clip.create_model_and_transforms(where, device="cpu")
        return model, preprocess, _tokenizer(spec, default=where)
    cache = Path(spec["repo_dir"]).parent.parent  # <cache>/hf/<owner>--<name>@<revision>
    local = {repo: _present(spec, str(repo_dir(cache, repo, "main"))) for repo in towers}
    cfg = json.loads((folder / "open_clip_config.json").read_text())
    text = cfg["model_cfg"]["text_cfg"]
    # under local-dir: open_clip reads the tokenizer from the folder itself: the release's own
    # tokenizer files where it ships them, else those of the tokenizer (or text tower) repo
    tokenizer_dir = local.get(text.get("hf_tokenizer_name") or text.get("hf_model_name"))
    for key in ("hf_model_name", "hf_tokenizer_name"):
        if text.get(key) in local:
            text[key] = str(local[text[key]])
    own_tokenizer = any((folder / name).is_file() for name in HF_TOKENIZER_FILES)
    with tempfile.TemporaryDirectory() as staged:
        for file in folder.iterdir():
            if file.name != "open_clip_config.json":
                (Path(staged) / file.name).symlink_to(file.absolute())
        if not own_tokenizer and tokenizer_dir is not None:
            for file in tokenizer_dir.iterdir():
                if file.name != "config.json" and not (Path(staged) / file.name).exists():
                    (Path(staged) / file.name).symlink_to(file.absolute())
        (Path(staged) / "open_clip_config.json").write_text(json.dumps(cfg))
        where = f"local-dir:{staged}"
        model, _, preprocess = open_clip.create_model_and_transforms(where, device="cpu")
        tokenizer = open_clip.get_tokenizer(where)  # reads the files now: the folder may go
    return model, preprocess, tokenizer


HF_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
)


def _tokenizer(spec: dict[str, Any], default: str):
    """The entry's tokenizer: the architecture's own (open_clip), an open_clip tokenizer of
    a fetched hf-hub: repo, or a transformers AutoTokenizer of a fetched repo."""
    tokenizer = spec["tokenizer"]
    if tokenizer == "open_clip":
        kwargs = {"context_length": spec["context_length"]} if spec.get("context_length") else {}
        return open_clip.get_tokenizer(default, **kwargs)
    folder = _present(spec, spec["tokenizer_dir"])
    if tokenizer.startswith("hf-hub:"):
        return open_clip.get_tokenizer(f"local-dir:{folder}")
    return HFTokens(folder, spec.get("context_length"))


# ------------------------------------------------------------------ transformers releases


def _transformers(spec: dict[str, Any]):
    try:
        import transformers
    except ImportError:
        raise ImportError(
            f"model {spec['name']} is a transformers release: install the zoo extra (pip install -e '.[zoo]')"
        ) from None
    folder = _present(spec, spec["repo_dir"])
    cls = getattr(transformers, spec.get("model_class") or "AutoModel")
    # no Hub kernels: recent transformers swap layers for kernels downloaded from the Hub by
    # default (and refuse to load without the `kernels` package); scoring runs offline and
    # must compute what the release's own layers compute
    model = TransformersCLIP(cls.from_pretrained(folder, use_kernels=False), spec.get("text_attention_mask", True))
    tokenizer_dir = _present(spec, spec["tokenizer_dir"] or spec["repo_dir"])
    tokenizer = HFTextInputs(tokenizer_dir, spec.get("context_length"))
    return model, _image_transform(folder, spec["image_size"], spec["name"]), tokenizer


class TransformersCLIP(torch.nn.Module):
    """A transformers dual encoder as open_clip's interface: encode_image / encode_text."""

    def __init__(self, model: Any, text_attention_mask: bool = True):
        super().__init__()
        self.model = model  # a transformers PreTrainedModel (typed Any: transformers is optional)
        # the READMEs hand the model the tokenizer's attention_mask (Git-RSCLIP's among them);
        # False keeps the ids alone, under which SigLIP's padding takes part in attention
        self.text_attention_mask = bool(text_attention_mask)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return _tensor(self.model.get_image_features(pixel_values=images))

    def encode_text(self, tokens: Mapping[str, torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """`tokens`: what the tokenizer returns (HFTextInputs: input_ids, and attention_mask where
        the tokenizer makes one), passed on as the README's get_text_features(**inputs) does; a
        tensor is input ids alone."""
        inputs = dict(tokens) if isinstance(tokens, Mapping) else {"input_ids": tokens}
        if not self.text_attention_mask:
            inputs.pop("attention_mask", None)
        return _tensor(self.model.get_text_features(**inputs))


def _tensor(out) -> torch.Tensor:
    # transformers 5 returns a model output whose pooler_output is the projected embedding
    return out if isinstance(out, torch.Tensor) else out.pooler_output


class HFTokens:
    """A transformers tokenizer as open_clip's: list of strings -> a LongTensor of ids, padded
    to the model's fixed length (SigLIP was trained on max_length padding)."""

    def __init__(self, folder: str | Path, context_length: int | None = None):
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.context_length = context_length or min(int(self.tokenizer.model_max_length), 512)

    def __call__(self, texts: list[str] | str) -> torch.Tensor:
        return self.encode(texts)["input_ids"]

    def encode(self, texts: list[str] | str):
        """All the tokenizer returns (a transformers BatchEncoding; `.to(device)` moves it)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        return self.tokenizer(
            texts, padding="max_length", truncation=True, max_length=self.context_length, return_tensors="pt"
        )


class HFTextInputs(HFTokens):
    """A transformers release's tokenizer: list of strings -> what the tokenizer returns
    (input_ids, attention_mask where it makes one), for TransformersCLIP.encode_text."""

    def __call__(self, texts: list[str] | str):
        return self.encode(texts)


class ImageSettingsError(ValueError):
    """A transformers release whose image preprocessing is not stated, or not one we reproduce."""


def image_settings(folder: Path) -> tuple[dict[str, Any], Path]:
    """The release's image processor settings and the file holding them, found as transformers'
    image processors find them: nested under "image_processor" in processor_config.json (how
    transformers 5 saves a processor), else preprocessor_config.json (how releases made with
    earlier versions hold them, Git-RSCLIP's among them)."""
    nested, own = folder / "processor_config.json", folder / "preprocessor_config.json"
    if nested.is_file():
        settings = json.loads(nested.read_text()).get("image_processor")
        if isinstance(settings, dict):
            return settings, nested
    if own.is_file():
        return json.loads(own.read_text()), own
    raise ImageSettingsError(
        f"the release {folder} has neither preprocessor_config.json nor processor_config.json with an "
        f'"image_processor" entry: its image size, mean and std are unknown (CLIP\'s are not assumed)'
    )


def _image_transform(folder: Path, image_size: int, name: str):
    """The release's preprocessing (size, mean, std, centre crop or not) as an open_clip
    validation transform; the entry's image_size must be the size the release states."""
    try:
        settings, source = image_settings(folder)
    except ImageSettingsError as exc:
        raise ImageSettingsError(f"model {name}: {exc}") from None
    where = f"model {name}: {source}"
    missing = [key for key in ("image_mean", "image_std") if not settings.get(key)]
    if missing:
        raise ImageSettingsError(f"{where} states no {' or '.join(missing)}")
    # SigLIP processors resize the whole image to a square (no crop); CLIP's crop the centre
    crop = bool(settings.get("do_center_crop", False))
    side = _square_side(settings.get("crop_size") if crop else settings.get("size"), where)
    resized = _square_side(settings.get("size"), where)
    if crop and resized not in (None, side):
        raise ImageSettingsError(f"{where} resizes to {resized} and then crops {side}: not reproduced here")
    if side is not None and side != image_size:
        raise ImageSettingsError(
            f"{where} {'crops' if crop else 'resizes'} images to {side}x{side} but the entry's image_size is {image_size}"
        )
    return open_clip.image_transform(
        image_size,
        is_train=False,
        mean=tuple(settings["image_mean"]),
        std=tuple(settings["image_std"]),
        resize_mode="shortest" if crop else "squash",
    )


def _square_side(size: Any, where: str) -> int | None:
    """The side of a transformers `size` / `crop_size` setting: {"height", "width"} (equal),
    {"shortest_edge"} or a number; None where the release states none."""
    if size is None or isinstance(size, int):
        return size
    if isinstance(size, dict) and "height" in size and size.get("height") == size.get("width"):
        return int(size["height"])
    if isinstance(size, dict) and set(size) == {"shortest_edge"}:
        return int(size["shortest_edge"])
    raise ImageSettingsError(f"{where}: image size {size} is not a square side this loader reproduces")
