"""Write synthetic scenes to disk in the real on-disk formats of the paper's sources.

Every writer returns the ground truth it wrote, `{relative image path: [(canonical
class, [x, y, w, h]), ...]}`, so tests can check that the parsers recover it.

Rule `synthesize`: a writer gets the rendered (index, split, scene) triples of one dataset and
writes its images and annotation files under <data>/raw/{dataset}/, in the real layout of the
source it imitates (each writer's docstring names it), which that format's parser reads.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from .corpora import CORPUS_WRITERS
from .scenes import Scene

GroundTruth = dict[str, list[tuple[str, list[float]]]]

# canonical class -> the raw token each source uses (absent: the source does not label it)
DOTA_TOKENS = {
    "plane": "plane",
    "ship": "ship",
    "storage tank": "storage-tank",
    "tennis court": "tennis-court",
    "basketball court": "basketball-court",
    "ground track field": "ground-track-field",
    "bridge": "bridge",
    "large vehicle": "large-vehicle",
    "small vehicle": "small-vehicle",
    "helicopter": "helicopter",
    "roundabout": "roundabout",
    "swimming pool": "swimming-pool",
}
DIOR_TOKENS = {
    "plane": "airplane",
    "ship": "ship",
    "storage tank": "storagetank",
    "tennis court": "tenniscourt",
    "basketball court": "basketballcourt",
    "ground track field": "groundtrackfield",
    "bridge": "bridge",
    "small vehicle": "vehicle",
    "large vehicle": "vehicle",
}
ISAID_CATEGORIES = {  # raw iSAID_train.json ids and names
    1: "storage_tank",
    2: "Large_Vehicle",
    3: "Small_Vehicle",
    4: "plane",
    5: "ship",
    6: "Swimming_pool",
    7: "Harbor",
    8: "tennis_court",
    9: "Ground_Track_Field",
    10: "Soccer_ball_field",
    11: "baseball_diamond",
    12: "Bridge",
    13: "basketball_court",
    14: "Roundabout",
    15: "Helicopter",
}
ISAID_IDS = {name.lower().replace("_", " "): i for i, name in ISAID_CATEGORIES.items()}
ISAID_IDS.update({"soccer field": 10})

# ISPRS Potsdam/Vaihingen colour table
POTSDAM_COLOURS = {
    "impervious surfaces": (255, 255, 255),
    "building": (0, 0, 255),
    "low vegetation": (0, 255, 255),
    "tree": (0, 255, 0),
    "car": (255, 255, 0),
    "clutter": (255, 0, 0),
}
LOVEDA_VALUES = {
    "no-data": 0,
    "background": 1,
    "building": 2,
    "road": 3,
    "water": 4,
    "barren": 5,
    "forest": 6,
    "agriculture": 7,
}

_POTSDAM_GROUND = {
    "grass": "low vegetation",
    "crop": "low vegetation",
    "forest": "tree",
    "road": "impervious surfaces",
    "concrete": "impervious surfaces",
    "water": "clutter",
    "sand": "clutter",
    "soil": "clutter",
    "nodata": "clutter",
}
_POTSDAM_OBJECT = {"building": "building", "tree": "tree", "small vehicle": "car"}
_LOVEDA_GROUND = {
    "grass": "background",
    "concrete": "background",
    "crop": "agriculture",
    "forest": "forest",
    "road": "road",
    "water": "water",
    "sand": "barren",
    "soil": "barren",
    "nodata": "no-data",
}
_LOVEDA_OBJECT = {"building": "building", "tree": "forest"}


def _hbb(poly: np.ndarray) -> list[float]:
    x0, y0 = poly.min(0)
    x1, y1 = poly.max(0)
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]


def _save(image: np.ndarray, path: Path, quality: int = 95) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, quality=quality) if path.suffix == ".jpg" else Image.fromarray(image).save(path)


# ------------------------------------------------------------------ detection
def write_dota(
    root: Path,
    scenes: Iterator[tuple[int, str, Scene]],
    rng: np.random.Generator,
    header_fraction: float = 0.5,
    difficult_fraction: float = 0.05,
) -> GroundTruth:
    """DOTA v1: {split}/images/P0000.png and {split}/labelTxt/P0000.txt."""
    truth: GroundTruth = {}
    for index, split, scene in scenes:
        name = f"P{index:04d}"
        image_rel = f"{split}/images/{name}.png"
        _save(scene.image, root / image_rel)
        lines, boxes = [], []
        if rng.random() < header_fraction:
            gsd = "null" if rng.random() < 0.2 else f"{rng.uniform(0.1, 1.0):.12f}"
            lines += ["imagesource:GoogleEarth", f"gsd:{gsd}"]
        for obj in scene.objects:
            token = DOTA_TOKENS.get(obj.category)
            if token is None:
                continue
            poly = np.round(obj.polygon.astype(np.float64), 1)
            difficult = int(rng.random() < difficult_fraction)
            lines.append(" ".join(f"{v:.1f}" for v in poly.ravel()) + f" {token} {difficult}")
            boxes.append((obj.category, _hbb(poly)))
        label = root / f"{split}/labelTxt/{name}.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text("\n".join(lines) + ("\n" if lines else ""))
        truth[image_rel] = boxes
    return truth


def write_voc_dior(root: Path, scenes: Iterator[tuple[int, str, Scene]], rng: np.random.Generator) -> GroundTruth:
    """DIOR: JPEGImages-{trainval,test}/NNNNN.jpg, 'Annotations/Horizontal Bounding Boxes'/NNNNN.xml, ImageSets/Main."""
    truth: GroundTruth = {}
    lists: dict[str, list[str]] = {}
    for index, split, scene in scenes:
        stem = f"{index + 1:05d}"
        folder = "JPEGImages-test" if split == "test" else "JPEGImages-trainval"
        image_rel = f"{folder}/{stem}.jpg"
        _save(scene.image, root / image_rel)
        h, w = scene.image.shape[:2]
        ann = ET.Element("annotation")
        ET.SubElement(ann, "filename").text = f"{stem}.jpg"
        ET.SubElement(ann, "source").append(ET.Element("database"))
        size = ET.SubElement(ann, "size")
        for tag, val in (("width", w), ("height", h), ("depth", 3)):
            ET.SubElement(size, tag).text = str(val)
        boxes = []
        for obj in scene.objects:
            token = DIOR_TOKENS.get(obj.category)
            if token is None:
                continue
            x0, y0 = np.floor(obj.polygon.min(0)).astype(int)
            x1, y1 = np.ceil(obj.polygon.max(0)).astype(int)
            x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w - 1, x1), min(h - 1, y1)
            node = ET.SubElement(ann, "object")
            ET.SubElement(node, "name").text = token
            ET.SubElement(node, "pose").text = "Unspecified"
            ET.SubElement(node, "truncated").text = "0"
            ET.SubElement(node, "difficult").text = "0"
            bb = ET.SubElement(node, "bndbox")
            for tag, val in (("xmin", x0), ("ymin", y0), ("xmax", x1), ("ymax", y1)):
                ET.SubElement(bb, tag).text = str(int(val))
            canonical = "vehicle" if token == "vehicle" else obj.category
            boxes.append((canonical, [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]))
        xml_path = root / "Annotations" / "Horizontal Bounding Boxes" / f"{stem}.xml"
        xml_path.parent.mkdir(parents=True, exist_ok=True)
        ET.indent(ann)
        ET.ElementTree(ann).write(xml_path, encoding="utf-8")
        lists.setdefault(split, []).append(stem)
        truth[image_rel] = boxes
    for split, stems in lists.items():
        path = root / "ImageSets" / "Main" / f"{split}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(stems) + "\n")
    return truth


# ------------------------------------------------------------------ segmentation
def _outline(mask: np.ndarray) -> list[float]:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    biggest = max(contours, key=cv2.contourArea)
    return [float(v) for v in biggest.reshape(-1)]


def write_isaid(root: Path, scenes: Iterator[tuple[int, str, Scene]], rng: np.random.Generator) -> GroundTruth:
    """iSAID: {split}/images/P0000.png plus {split}/Annotations/iSAID_{split}.json (COCO polygons, raw ids)."""
    truth: GroundTruth = {}
    cocos: dict[str, dict] = {}
    for index, split, scene in scenes:
        coco = cocos.setdefault(
            split,
            {
                "images": [],
                "annotations": [],
                "categories": [{"id": i, "name": n, "supercategory": n} for i, n in ISAID_CATEGORIES.items()],
            },
        )
        file_name = f"P{index:04d}.png"
        _save(scene.image, root / split / "images" / file_name)
        h, w = scene.image.shape[:2]
        image_id = index + 1
        coco["images"].append({"id": image_id, "file_name": file_name, "width": w, "height": h})
        boxes = []
        for obj in scene.objects:
            cat = ISAID_IDS.get(obj.category)
            visible = scene.canvas.visible(obj)
            if cat is None or visible.sum() < 3:
                continue
            poly = _outline(visible)
            xy = np.array(poly).reshape(-1, 2)
            if len(xy) < 3:
                continue
            bbox = _hbb(xy)
            coco["annotations"].append(
                {
                    "id": len(coco["annotations"]) + 1,
                    "image_id": image_id,
                    "category_id": cat,
                    "segmentation": [poly],
                    "bbox": bbox,
                    "area": float(visible.sum()),
                    "iscrowd": 0,
                }
            )
            boxes.append((obj.category, bbox))
        truth[f"{split}/images/{file_name}"] = boxes
    for split, coco in cocos.items():
        path = root / split / "Annotations" / f"iSAID_{split}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(coco))
    return truth


def semantic_map(
    scene: Scene, ground_table: dict[str, str], object_table: dict[str, str], other: str
) -> tuple[np.ndarray, list[str]]:
    """Per-pixel class names (as indices into a sorted name list) from ground and objects."""
    from .canvas import GROUNDS

    names = sorted(set(ground_table.values()) | set(object_table.values()) | {other})
    index = {n: i for i, n in enumerate(names)}
    lut = np.array([index[ground_table[g]] for g in GROUNDS], np.int32)
    out = lut[scene.canvas.ground]
    for obj in scene.objects:
        out[scene.canvas.visible(obj)] = index[object_table.get(obj.category, other)]
    return out, names


def write_potsdam(root: Path, scenes: Iterator[tuple[int, str, Scene]], rng: np.random.Generator) -> GroundTruth:
    """ISPRS Potsdam: 2_Ortho_RGB/top_potsdam_A_B_RGB.tif and 5_Labels_all/top_potsdam_A_B_label.tif (RGB colour codes)."""
    truth: GroundTruth = {}
    for index, _split, scene in scenes:
        tile = f"{2 + index // 10}_{10 + index % 10}" if index < 60 else f"{index}_{index}"
        image_rel = f"2_Ortho_RGB/top_potsdam_{tile}_RGB.tif"
        _save(scene.image, root / image_rel)
        classes, names = semantic_map(scene, _POTSDAM_GROUND, _POTSDAM_OBJECT, "clutter")
        palette = np.array([POTSDAM_COLOURS[n] for n in names], np.uint8)
        _save(palette[classes], root / f"5_Labels_all/top_potsdam_{tile}_label.tif")
        truth[image_rel] = []
    return truth


def write_loveda(root: Path, scenes: Iterator[tuple[int, str, Scene]], rng: np.random.Generator) -> GroundTruth:
    """LoveDA: {Train,Val}/{Urban,Rural}/{images_png,masks_png}/N.png; masks hold 0 (no-data) .. 7."""
    truth: GroundTruth = {}
    for index, split, scene in scenes:
        domain = "Rural" if scene.kind in RURAL else "Urban"
        folder = {"train": "Train", "val": "Val", "test": "Test"}[split]
        image_rel = f"{folder}/{domain}/images_png/{index}.png"
        _save(scene.image, root / image_rel)
        classes, names = semantic_map(scene, _LOVEDA_GROUND, _LOVEDA_OBJECT, "background")
        values = np.array([LOVEDA_VALUES[n] for n in names], np.uint8)
        _save(values[classes], root / f"{folder}/{domain}/masks_png/{index}.png")
        truth[image_rel] = []
    return truth


RURAL = {"farmland", "forest", "meadow", "lake", "river", "desert", "beach"}


# ------------------------------------------------------------------ retrieval and classification
def write_karpathy(
    root: Path, scenes: Iterator[tuple[int, str, Scene]], rng: np.random.Generator, dataset: str = "rsicd"
) -> GroundTruth:
    """RSICD: RSICD_images/<scene>_<n>.jpg and dataset_rsicd.json (Karpathy format, 5 sentences per image)."""
    from .grammar import describe

    images: list[dict] = []
    truth: dict = {}
    sentid = 0
    for index, split, scene in scenes:
        file_name = f"{scene.kind.replace(' ', '')}_{index + 1}.jpg"
        _save(scene.image, root / "RSICD_images" / file_name)
        captions = describe(rng, scene.kind, scene.counts())
        sentences = []
        for raw in captions:
            sentences.append({"tokens": raw.replace(" .", "").split(), "raw": raw, "imgid": index, "sentid": sentid})
            sentid += 1
        images.append(
            {
                "filename": file_name,
                "imgid": index,
                "split": split,
                "sentids": [s["sentid"] for s in sentences],
                "sentences": sentences,
            }
        )
        truth[f"RSICD_images/{file_name}"] = [(c, []) for c in captions]
    (root / f"dataset_{dataset}.json").write_text(json.dumps({"dataset": dataset, "images": images}))
    return truth


def folder_name(kind: str) -> str:
    return "".join(word.capitalize() for word in kind.split())


def write_class_folders(root: Path, scenes: Iterator[tuple[int, str, Scene]], rng: np.random.Generator) -> GroundTruth:
    """AID / RESISC45 layout: <Class>/<class>_<n>.jpg."""
    truth: GroundTruth = {}
    counters: dict[str, int] = {}
    for _index, _split, scene in scenes:
        cls = folder_name(scene.kind)
        counters[cls] = counters.get(cls, 0) + 1
        rel = f"{cls}/{cls.lower()}_{counters[cls]}.jpg"
        _save(scene.image, root / rel)
        truth[rel] = [(scene.kind, [])]
    return truth


def write_count(root: Path, scenes: Iterator[tuple[int, str, Scene]], rng: np.random.Generator) -> GroundTruth:
    """RemoteCount-shaped: DOTA-val-style images and labels plus remotecount.json with number captions."""
    listed = list(scenes)
    truth = write_dota(root, iter(listed), rng, header_fraction=1.0, difficult_fraction=0.0)
    items = []
    from ..vocabulary import NUMBER_WORDS, plural

    for index, split, scene in listed:
        cat, n = scene.extra["category"], scene.extra["count"]
        noun = cat if n == 1 else plural(cat)
        be = "is" if n == 1 else "are"
        items.append(
            {
                "image": f"{split}/images/P{index:04d}.png",
                "category": cat,
                "count": n,
                "caption": f"There {be} {NUMBER_WORDS[n]} {noun} in the image.",
            }
        )
    (root / "remotecount.json").write_text(json.dumps(items, indent=1))
    return truth


WRITERS = {
    "dota": write_dota,
    "dior": write_voc_dior,
    "isaid": write_isaid,
    "potsdam": write_potsdam,
    "loveda": write_loveda,
    "karpathy": write_karpathy,
    "class_folders": write_class_folders,
    "count": write_count,
    **CORPUS_WRITERS,
}
