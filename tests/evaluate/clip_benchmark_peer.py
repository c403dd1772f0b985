"""Runs CLIP_benchmark's own evaluation in a process of its own, with the peers folder (and its
numpy < 2.4, which CLIP_benchmark's `accuracy` needs) first on the path; called by
test_clip_benchmark.py, prints the metrics as JSON.

    python clip_benchmark_peer.py zeroshot|retrieval SPLIT.json MODEL_DIR STATE.pt ARCH [TEMPLATE ...]
    python clip_benchmark_peer.py linear_probe SPLIT.json MODEL_DIR STATE.pt ARCH FEATURE_ROOT
    python clip_benchmark_peer.py ranking FEATURES.npz   (arrays images, texts, owner)
    python clip_benchmark_peer.py linear_probe_cached FEATURE_ROOT [VAL_PROPORTION]

The linear probe is CLIP_benchmark's `linear_probe.evaluate` with its CLI defaults (lr 0.1, 10
epochs, batch 64, no validation split so weight decay 0), which asserts a CUDA device and
calls `.cuda()`; on a machine without one, `.cuda()` is made a no-op so it runs on the CPU
(DataParallel then calls the module directly). Its cached features land in FEATURE_ROOT/bench/.
`linear_probe_cached` runs the same probe on features already in that cache (features_train.pt,
targets_train.pt, features_test.pt, targets_test.pt, as CLIP_benchmark writes them): it then
skips featurising, so it needs no model or images. With VAL_PROPORTION, the probe's own
weight-decay sweep runs on that share of the train features (CLIP_benchmark's
`--val_proportion`: a random split made by its builder, here made with torch.randperm(seed 0)).
"""

import json
import sys

import open_clip
import torch
from clip_benchmark.datasets.builder import image_captions_collate_fn
from clip_benchmark.metrics import zeroshot_classification, zeroshot_retrieval
from PIL import Image


class Split(torch.utils.data.Dataset):
    def __init__(self, paths, targets, transform, classes=None):
        self.paths, self.targets, self.transform = paths, targets, transform
        self.classes = classes  # CLIP_benchmark reads dataset.classes (acc5 only with 5 or more)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return self.transform(Image.open(self.paths[i]).convert("RGB")), self.targets[i]


def official_ranking(features_path):
    """The official retrieval.py's steps after the embeddings, with CLIP_benchmark's recall_at_k
    and batchify (batches of 64 rows): R@1/5/10 both ways, x100."""
    import numpy as np

    arrays = np.load(features_path)
    images_emb, texts_emb = torch.from_numpy(arrays["images"]), torch.from_numpy(arrays["texts"])
    scores = texts_emb @ images_emb.t()
    positive_pairs = torch.zeros_like(scores, dtype=bool)
    positive_pairs[torch.arange(len(scores)), torch.from_numpy(arrays["owner"])] = True
    recall_at_k, batchify = zeroshot_retrieval.recall_at_k, zeroshot_retrieval.batchify
    metrics = {}
    for k in (1, 5, 10):
        metrics[f"image_to_text_R@{k}"] = (
            batchify(recall_at_k, scores.T, positive_pairs.T, 64, "cpu", k=k) > 0
        ).float().mean().item() * 100
    for k in (1, 5, 10):
        metrics[f"text_to_image_R@{k}"] = (
            batchify(recall_at_k, scores, positive_pairs, 64, "cpu", k=k) > 0
        ).float().mean().item() * 100
    return metrics


def linear_probe(model, preprocess, split, feature_root):
    root = split["root"]
    train, test = (
        Split([f"{root}/{f}" for f, _ in part], [label for _, label in part], preprocess, split["classes"])
        for part in (split["train"], split["test"])
    )
    loaders = [torch.utils.data.DataLoader(part, batch_size=64) for part in (train, test)]
    return _probe(model, *loaders, feature_root)


def cached_linear_probe(feature_root, val_proportion=None):
    """The probe on features CLIP_benchmark has cached under FEATURE_ROOT/bench/."""
    if val_proportion is None:
        return _probe(None, None, None, feature_root)
    import os

    folder = os.path.join(feature_root, "bench")
    features, targets = (torch.load(os.path.join(folder, f"{k}_train.pt")) for k in ("features", "targets"))
    order = torch.randperm(len(features), generator=torch.Generator().manual_seed(0))
    n_val = int(float(val_proportion) * len(features))
    for part, index in (("_val", order[:n_val]), ("_train", order[n_val:])):
        torch.save(features[index], os.path.join(folder, f"features{part}.pt"))
        torch.save(targets[index], os.path.join(folder, f"targets{part}.pt"))
    return _probe(None, None, None, feature_root, val_dataloader=True)


def _probe(model, train_loader, test_loader, feature_root, val_dataloader=None):
    from clip_benchmark.metrics import linear_probe as lp

    if not torch.cuda.is_available():
        torch.nn.Module.cuda = lambda self, *args, **kwargs: self
        torch.Tensor.cuda = lambda self, *args, **kwargs: self
        to = torch.Tensor.to  # it also moves batches with .to("cuda")
        torch.Tensor.to = lambda self, *args, **kwargs: (
            self if args and str(args[0]).startswith("cuda") else to(self, *args, **kwargs)
        )
    return lp.evaluate(
        model,
        train_loader,
        test_loader,
        fewshot_k=-1,
        batch_size=64,
        num_workers=0,
        lr=0.1,
        epochs=10,
        model_id="bench",
        seed=0,
        feature_root=feature_root,
        device="cuda",
        val_dataloader=val_dataloader,
        normalize=True,
        amp=False,
    )


def main(task, split_path, model_dir=None, state_path=None, arch=None, *templates):
    if task == "ranking":
        return official_ranking(split_path)
    if task == "linear_probe_cached":
        return cached_linear_probe(split_path, model_dir)
    split = json.load(open(split_path))
    open_clip.add_model_config(model_dir)
    model, _, preprocess = open_clip.create_model_and_transforms(arch)
    model.load_state_dict(torch.load(state_path, weights_only=True))
    model.eval()
    tokenizer = open_clip.get_tokenizer(arch)
    root = split["root"]
    if task == "linear_probe":
        return linear_probe(model, preprocess, split, templates[0])
    if task == "zeroshot":
        test = split["test"]
        data = Split([f"{root}/{f}" for f, _ in test], [label for _, label in test], preprocess, split["classes"])
        loader = torch.utils.data.DataLoader(data, batch_size=64)  # its CLI's default
        return zeroshot_classification.evaluate(
            model, loader, tokenizer, split["classnames"], [t.replace("{}", "{c}") for t in templates], "cpu", amp=False
        )
    # the official retrieval.py's dataset: de-duplicated sorted images, each with its captions
    captions = [[] for _ in split["images"]]
    for caption, owner in zip(split["captions"], split["caption_to_image"]):
        captions[owner].append(caption)
    data = Split([f"{root}/{f}" for f in split["images"]], captions, preprocess)
    loader = torch.utils.data.DataLoader(data, batch_size=64, collate_fn=image_captions_collate_fn)
    return zeroshot_retrieval.evaluate(model, loader, tokenizer, "cpu", amp=False, recall_k_list=[1, 5, 10])


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:])))
