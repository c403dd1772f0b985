"""The evaluation suite on one model against CLIP_benchmark run task by task (zero-shot,
retrieval, linear probe: one `clip_benchmark eval --task ...` each, as a user runs it), on the
same input, with the metrics asserted, at two sizes.

Demo size: a synthetic AID-layout scene set (--cls-images, 80/20 split by file name) and an
RSICD-layout retrieval test split (--ret-images), built by the workflow's own split code.
Realistic size: a RESISC45-shaped set (RESISC45's 45 class folders and class names from the
catalogue, 256 px JPEGs, --resisc-per-class images each: 10,800 images, 2,160 of them test),
an RSICD-sized retrieval split (--ret-large images of 224 px, five captions each) and a
--probe-rows x 768 x 51 linear probe on synthetic features. The images are rendered by the
project's scene renderer (the RESISC45-shaped set: a pool of rendered scenes, each image one
of them turned, tinted and noised) and kept in .bench/eval-data/ between runs. The features
are unit vectors around a shared direction, with class centres and noise in one random basis
whose class signal decays faster than the noise (variance j^-2 against j^-1 along the basis:
the classes differ mostly along the directions the features vary most, as CLIP's do). Model:
the demo's RemoteCLIP-demo-ViT, seeded random weights, fp32 on the CPU (CLIP_benchmark with
amp off). Both sides read images with 0 loader workers; CLIP_benchmark with its CLI's batch
size, 64. CLIP_benchmark 1.6.2 runs in a process of its own with its pinned dependencies
(tests/peers.py installs them into .peers/; tests/evaluate/clip_benchmark_peer.py is the
runner the agreement tests use); its time is measured inside that process, after the imports.

Asserted: zero-shot top-1, top-5 and mean per-class recall equal; the six retrieval recalls
equal; for the linear probe from images, the image features CLIP_benchmark caches for its
probe equal ours; on the synthetic features both probes read the same arrays. The two probes
then train differently (ours: L-BFGS logistic regression, float32, the weight decay chosen
over 17 values on a validation part of the train split; CLIP_benchmark: 10 AdamW epochs, with
weight decay 0 when no validation split is given, or with --val_proportion its own sweep of
about 20 trainings): accuracies are reported, with our probe in float64 beside, not asserted.

Each task is timed as it runs alone: our zero-shot embeds the test images only (what the
features rule does when zero-shot is the only classification task), our linear probe embeds
the train and test images and fits (CLIP_benchmark's linear_probe task does both). The total
row runs our suite as the workflow does (each benchmark's images embedded once for every
task) against the three CLIP_benchmark tasks; the note adds k-NN and few-shot, which
CLIP_benchmark has no task for.

    .venv/bin/python benchmarks/bench_eval.py [--cls-images 400] [--ret-images 300]
        [--resisc-per-class 240] [--ret-large 1000] [--probe-rows 40000] [--peer-sweep] [--probe-only]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchlib import PEERS, REPO, Row, add_json_flag, report, timed

sys.path.insert(0, str(REPO / "tests"))
from peers import CLIP_BENCHMARK, install, python_path  # noqa: E402

ARCH = "RemoteCLIP-demo-ViT"
MODELS = REPO / "config" / "models"
PEER = REPO / "tests" / "evaluate" / "clip_benchmark_peer.py"
DATA = PEERS / "eval-data"  # generated inputs, kept between runs
PROBE_DIMS, PROBE_CLASSES = 768, 51
TIMED_PEER = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import clip_benchmark_peer as peer
start = time.perf_counter()
metrics = peer.main(*sys.argv[2:])
print(json.dumps({"seconds": time.perf_counter() - start, "metrics": metrics}, default=str))
"""


# --- inputs ---------------------------------------------------------------------------------


def kept(name: str, params: dict, build) -> Path:
    """.bench/eval-data/<name>/, built by `build(folder)` once for these parameters."""
    folder, marker = DATA / name, DATA / name / ".params.json"
    if marker.is_file() and json.loads(marker.read_text()) == params:
        return folder
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    build(folder)
    marker.write_text(json.dumps(params))
    return folder


def class_set(name: str, root: Path, classes: dict[str, str] | None = None) -> dict:
    from remoteclip.config import DatasetSpec
    from remoteclip.evaluate.sets import classification_set

    return classification_set(DatasetSpec(name, "CLS", "class_folders", root, {}, None, False), classes, 0.8)


def caption_set(name: str, root: Path) -> dict:
    from remoteclip.config import DatasetSpec
    from remoteclip.evaluate.sets import retrieval_set

    return retrieval_set(DatasetSpec(name, "RET", "karpathy", root, {}, None, False))


def demo_splits(cls_images: int, ret_images: int) -> dict[str, dict]:
    """The demo-sized benchmarks: a 17-class scene set and an RSICD-layout retrieval split."""
    from remoteclip.synthetic import SynthSpec, synthesize

    scenes = kept(
        "scenes",
        {"images": cls_images},
        lambda f: synthesize(SynthSpec("scenes", "class_folders", cls_images, mix=0.5, clutter=0.5), f, progress=False),
    )
    rsicd = kept(
        "rsicd",
        {"images": ret_images},
        lambda f: synthesize(
            SynthSpec("rsicd", "karpathy", ret_images, splits={"test": 1.0}, mix=0.3), f, progress=False
        ),
    )
    return {"scenes": class_set("scenes", scenes), "rsicd": caption_set("rsicd", rsicd)}


def resisc45_classes() -> dict[str, str]:
    import yaml

    return yaml.safe_load((REPO / "config" / "datasets.yaml").read_text())["datasets"]["RESISC45"]["classes"]


def write_resisc45_shaped(folder: Path, per_class: int, size: int = 256, seed: int = 0) -> None:
    """RESISC45's folders, <folder>/<class>_NNN.jpg: each image a rendered scene of a pool,
    turned, tinted per class and noised per image (so every file decodes to other pixels)."""
    from PIL import Image

    from remoteclip.synthetic.scenes import SCENES, render_scene

    rng = np.random.default_rng(seed)
    classes, kinds = list(resisc45_classes()), list(SCENES)
    pool = [render_scene(rng, kinds[i % len(kinds)], size, 0.5, 0.0, 0.5).image for i in range(len(classes))]
    for c, name in enumerate(classes):
        (folder / name).mkdir()
        tint = rng.uniform(0.8, 1.2, 3).astype(np.float32)
        for n in range(per_class):
            image = np.rot90(pool[(c + n) % len(pool)], int(rng.integers(4))).astype(np.float32) * tint
            image += rng.normal(0, 6, image.shape).astype(np.float32)
            Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
                folder / name / f"{name}_{n + 1:03d}.jpg", quality=90
            )


def realistic_splits(per_class: int, ret_images: int) -> dict[str, dict]:
    from remoteclip.synthetic import SynthSpec, synthesize

    resisc = kept("resisc45", {"per_class": per_class}, lambda f: write_resisc45_shaped(f, per_class))
    rsicd = kept(
        "rsicd-large",
        {"images": ret_images},
        lambda f: synthesize(
            SynthSpec("rsicd", "karpathy", ret_images, size=224, splits={"test": 1.0}, mix=0.3), f, progress=False
        ),
    )
    return {"resisc45": class_set("resisc45", resisc, resisc45_classes()), "rsicd": caption_set("rsicd", rsicd)}


def probe_features(rows: int, test_rows: int, noise: float = 1.4, seed: int = 0):
    """(train_x, train_y, test_x, test_y) of float32 unit vectors (see the module docstring)."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(PROBE_DIMS, PROBE_DIMS)))[0]
    j = np.arange(1, PROBE_DIMS + 1)
    signal, spread = 1 / j, 1 / np.sqrt(j)
    signal, spread = signal / np.linalg.norm(signal), noise * spread / np.linalg.norm(spread)
    centres = 2.0 * basis[:, -1] + (rng.normal(size=(PROBE_CLASSES, PROBE_DIMS)) * signal) @ basis.T
    labels = rng.integers(PROBE_CLASSES, size=rows + test_rows)
    x = centres[labels] + (rng.normal(size=(rows + test_rows, PROBE_DIMS)) * spread) @ basis.T
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return x[:rows], labels[:rows], x[rows:], labels[rows:]


def model_state(path: Path):
    """A seeded random RemoteCLIP-demo-ViT: (model, transform, tokenizer), its state saved to `path`."""
    import open_clip
    import torch

    from remoteclip.models import register_model_configs

    register_model_configs()
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms(ARCH)
    torch.save(model.state_dict(), path)
    return model.eval(), preprocess, open_clip.get_tokenizer(ARCH)


def settings() -> dict:
    from remoteclip.config import load

    ev = load(REPO / "config" / "config.yaml", REPO / "workflow" / "schemas" / "config.schema.yaml")["evaluation"]
    return {k: ev[k] for k in ("knn", "linear_probe", "fewshot", "counting", "templates", "retrieval")}


# --- ours -----------------------------------------------------------------------------------


class Ours:
    """Our tasks on one model, each timed as it runs alone."""

    def __init__(self, model, preprocess, tokenizer, config: dict):
        self.model, self.preprocess, self.tokenizer, self.config = model, preprocess, tokenizer, config

    def features(self, split: dict, test_only: bool = False) -> tuple[dict, dict]:
        from remoteclip.evaluate.features import embed

        return embed(
            self.model,
            self.preprocess,
            self.tokenizer,
            split,
            self.config["templates"],
            ["words"],
            "cpu",
            workers=0,
            test_only=test_only,
        )

    def tasks(self, split: dict, images: dict, texts: dict, tasks: tuple[str, ...]) -> dict:
        from remoteclip.evaluate.tasks import run

        results, probe = {}, None
        for task in tasks:
            result = run(task, split["benchmark"], {"name": ARCH}, split, images, texts, self.config, probe)
            probe = result if task == "linear_probe" else probe
            results[task] = result
        return results

    def zeroshot(self, split: dict) -> tuple[float, dict]:
        return timed(lambda: self.tasks(split, *self.features(split, test_only=True), ("zeroshot",))["zeroshot"])

    def retrieval(self, split: dict) -> tuple[float, dict]:
        return timed(lambda: self.tasks(split, *self.features(split), ("retrieval",))["retrieval"])

    def probe(self, split: dict) -> tuple[float, tuple[dict, dict]]:
        def task():
            images, texts = self.features(split)
            return images, self.tasks(split, images, texts, ("linear_probe",))["linear_probe"]

        return timed(task)

    def suite(self, split: dict, tasks: tuple[str, ...]) -> tuple[float, dict]:
        return timed(lambda: self.tasks(split, *self.features(split), tasks))


# --- CLIP_benchmark -------------------------------------------------------------------------


def clip_benchmark(folder: Path, task: str, *args: str) -> tuple[float, dict]:
    """One CLIP_benchmark task in its own process: (seconds inside it, its metrics)."""
    cmd = [sys.executable, "-c", TIMED_PEER, str(PEER.parent), task, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=python_path(folder), timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"CLIP_benchmark {task} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["seconds"], out["metrics"]


def on_images(folder: Path, task: str, split: dict, work: Path, state: Path, *extra: str) -> tuple[float, dict]:
    path = work / f"{split['benchmark']}.json"
    path.write_text(json.dumps(split))
    return clip_benchmark(folder, task, str(path), str(MODELS), str(state), ARCH, *extra)


def on_features(folder: Path, arrays, work: Path, val_proportion: float | None = None) -> tuple[float, dict]:
    """CLIP_benchmark's probe on features put in its own cache (it then skips featurising)."""
    import torch

    cache = work / "bench"
    cache.mkdir(parents=True, exist_ok=True)
    for name, array in zip(("features_train", "targets_train", "features_test", "targets_test"), arrays):
        torch.save(torch.from_numpy(np.ascontiguousarray(array)), cache / f"{name}.pt")
    extra = [] if val_proportion is None else [str(val_proportion)]
    return clip_benchmark(folder, "linear_probe_cached", str(work), *extra)


# --- checks ---------------------------------------------------------------------------------


def check_zeroshot(ours_m: dict, theirs: dict) -> None:
    for key in ("acc1", "acc5", "mean_per_class_recall"):
        assert abs(ours_m[key] - 100 * theirs[key]) < 1e-6, f"zero-shot {key}: {ours_m[key]} vs {100 * theirs[key]}"


def check_retrieval(ours_m: dict, theirs: dict) -> None:
    for k in (1, 5, 10):
        for mine, its in (("image_to_text", "text_retrieval"), ("text_to_image", "image_retrieval")):
            a, b = ours_m[f"{mine}_R@{k}"], 100 * theirs[f"{its}_recall@{k}"]
            assert abs(a - b) < 1e-4, f"{mine} R@{k}: {a} vs {b}"


def check_probe_features(images: dict, feature_dir: Path) -> float:
    """Largest difference between CLIP_benchmark's cached probe features and ours."""
    import torch

    train = torch.load(feature_dir / "features_train.pt").numpy()
    test = torch.load(feature_dir / "features_test.pt").numpy()
    mine = images["features"]
    gap = max(np.abs(train - mine[~images["is_test"]]).max(), np.abs(test - mine[images["is_test"]]).max())
    assert gap < 1e-4, f"probe features differ by {gap}"
    return float(gap)


# --- rows -----------------------------------------------------------------------------------

PEER_NAME = f"CLIP_benchmark {CLIP_BENCHMARK[0].split('==')[1]} (own process, amp off)"


def zeroshot_row(ours: Ours, folder, split, work, state, templates, label: str) -> Row:
    t, mine = ours.zeroshot(split)
    p, theirs = on_images(folder, "zeroshot", split, work, state, *templates)
    check_zeroshot(mine["metrics"], theirs)
    stage = f"zero-shot{label}, {len(split['test'])} test images, {len(split['classes'])} classes"
    return Row(stage, t, p, PEER_NAME, "same top-1, top-5, mean per-class recall")


def retrieval_row(ours: Ours, folder, split, work, state, templates, label: str) -> Row:
    t, mine = ours.retrieval(split)
    p, theirs = on_images(folder, "retrieval", split, work, state, *templates)
    check_retrieval(mine["metrics"], theirs)
    stage = f"retrieval{label}, {len(split['images'])} images, {len(split['captions'])} captions"
    return Row(stage, t, p, PEER_NAME, "same six recalls (R@1/5/10 both ways)")


def image_probe_row(ours: Ours, folder, split, work, state) -> tuple[Row, float]:
    t, (images, mine) = ours.probe(split)
    p, theirs = on_images(folder, "linear_probe", split, work, state, str(work / "lp"))
    gap = check_probe_features(images, work / "lp" / "bench")
    n_train, n_test = len(split["train"]), len(split["test"])
    row = Row(
        f"linear probe from images, {n_train} train + {n_test} test, {len(split['classes'])} classes",
        t,
        p,
        PEER_NAME,
        f"same probe features (max difference {gap:.1e}); accuracies differ by design",
        f"top-1 ours {mine['metrics']['acc1']:.1f} (L-BFGS float32, weight decay {mine['protocol']['weight_decay']:.0e} "
        f"validated), CLIP_benchmark {100 * theirs['lp_acc1']:.1f} (AdamW 10 epochs, wd 0)",
    )
    return row, p


def feature_probe_rows(folder, rows: int, work: Path, peer_sweep: bool, float64: bool) -> list[Row]:
    from remoteclip.evaluate.probe import linear_probe

    arrays = probe_features(rows, rows // 4)
    t, mine = timed(linear_probe, *arrays, PROBE_CLASSES)
    p, theirs = on_features(folder, arrays, work / "lp-features")
    shape = f"{rows} x {PROBE_DIMS} features, {PROBE_CLASSES} classes, {rows // 4} test"
    ours_acc, wd = mine["metrics"]["acc1"], mine["protocol"]["weight_decay"]
    note = f"top-1 ours {ours_acc:.2f} (float32, weight decay {wd:.0e} chosen of 17 on validation)"
    if float64:
        t64, ref = timed(linear_probe, *arrays, PROBE_CLASSES, dtype="float64", tol=1e-10)
        note += (
            f"; in float64 {ref['metrics']['acc1']:.2f} (weight decay {ref['protocol']['weight_decay']:.0e}, "
            f"{t64:.1f} s)"
        )
    out = [
        Row(
            f"linear probe on {shape}",
            t,
            p,
            PEER_NAME,
            "same features; accuracies differ by design",
            f"{note}; CLIP_benchmark {100 * theirs['lp_acc1']:.2f} (AdamW 10 epochs, wd 0, no selection)",
        )
    ]
    if peer_sweep:
        p2, swept = on_features(folder, arrays, work / "lp-sweep", val_proportion=0.2)
        out.append(
            Row(
                f"linear probe on {shape}, weight decay chosen on 20 % of train",
                t,
                p2,
                PEER_NAME + " --val_proportion 0.2",
                "same features; accuracies differ by design",
                f"top-1 ours {ours_acc:.2f}, CLIP_benchmark {100 * swept['lp_acc1']:.2f} "
                f"(its sweep of AdamW trainings chose wd {float(swept['weight_decay']):.1e})",
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cls-images", type=int, default=400, help="demo size: scene images (17 classes)")
    ap.add_argument("--ret-images", type=int, default=300, help="demo size: retrieval images")
    ap.add_argument("--resisc-per-class", type=int, default=240, help="realistic size: images per RESISC45 class")
    ap.add_argument("--ret-large", type=int, default=1000, help="realistic size: retrieval images")
    ap.add_argument("--probe-rows", type=int, default=40000, help="realistic size: probe training features")
    ap.add_argument("--peer-sweep", action="store_true", help="also CLIP_benchmark's probe with its own sweep")
    ap.add_argument("--no-float64", action="store_true", help="skip our probe in float64 on the features")
    ap.add_argument("--probe-only", action="store_true", help="only the linear-probe rows (demo and features)")
    add_json_flag(ap)
    args = ap.parse_args()
    folder, why = install("clip_benchmark", CLIP_BENCHMARK)
    if folder is None:
        raise SystemExit(why)
    config = settings()
    templates = config["templates"]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        state = work / "state.pt"
        ours = Ours(*model_state(state), config)
        demo = demo_splits(args.cls_images, args.ret_images)
        if args.probe_only:
            lp, _ = image_probe_row(ours, folder, demo["scenes"], work, state)
            lp.stage = f"demo size: {lp.stage}"
            rows += [lp, *feature_probe_rows(folder, args.probe_rows, work, args.peer_sweep, not args.no_float64)]
            report(rows, args.json)
            return
        zs = zeroshot_row(ours, folder, demo["scenes"], work, state, templates, "")
        rt = retrieval_row(ours, folder, demo["rsicd"], work, state, templates, "")
        lp, _ = image_probe_row(ours, folder, demo["scenes"], work, state)
        t_cls, _ = ours.suite(demo["scenes"], ("zeroshot", "linear_probe"))
        t_all, _ = ours.suite(demo["scenes"], ("zeroshot", "linear_probe", "knn", "fewshot"))
        total = Row(
            "demo size: zero-shot + retrieval + linear probe, one model",
            t_cls + rt.ours_s,
            zs.peer_s + rt.peer_s + lp.peer_s,
            PEER_NAME,
            "the three demo rows",
            f"ours embeds each benchmark's images once for every task; our whole suite (adds k-NN and "
            f"few-shot, which CLIP_benchmark lacks): {t_all + rt.ours_s:.1f} s",
        )
        for row in (zs, rt, lp):
            row.stage = f"demo size: {row.stage}"
        rows += [zs, rt, lp, total]
        large = realistic_splits(args.resisc_per_class, args.ret_large)
        rows.append(zeroshot_row(ours, folder, large["resisc45"], work, state, templates, " (RESISC45-shaped)"))
        rows.append(retrieval_row(ours, folder, large["rsicd"], work, state, templates, " (RSICD-sized)"))
        rows += feature_probe_rows(folder, args.probe_rows, work, args.peer_sweep, not args.no_float64)
    report(rows, args.json)


if __name__ == "__main__":
    main()
