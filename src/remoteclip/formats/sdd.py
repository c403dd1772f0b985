"""Stanford Drone Dataset (RemoteCLIP's "S-Drone"): per-video tracks in
`annotations/<scene>/video<k>/annotations.txt`, frames only inside `videos/<scene>/video<k>/video.mov`.

One track box per line, space-separated, the label quoted:

    track_id xmin ymin xmax ymax frame lost occluded generated "label"

`lost` 1 means the target is outside the view: such rows are dropped. `occluded` and
`generated` (interpolated) rows are kept unless `skip_occluded` / `skip_generated`.

How RemoteCLIP sampled frames is unknown; here every `stride`-th frame (0, stride, 2*stride,
...) is decoded with OpenCV and written as an image to `frames` (inside the dataset root,
so records stay relative to it). Frames already written are reused, and each is written
atomically, so an interrupted run leaves no half-written frame. Lines of frames that are
not sampled are checked only for their field count and frame number.

The scene and video names are the two folders above each `annotations.txt`.

Rule `parse` (DET): one `ImageRecord` per sampled frame (its file under `frames`), with the boxes
of the tracks visible in it. The only parser that writes files: the frames.

Each video is a unit of its own (`units`, `parse_unit`): the workflow decodes each in a job of
its own (rule `parse_unit`, one marker per video) and the `parse` rule joins their records in
the order `parse` reads them, so a failure or a kill redoes one video, not sixty.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..imageio import image_size
from .base import FormatError, ImageRecord, SkipLog
from .common import clip_box, expand, read_lines, to_integers, to_numbers
from .labels import Labeler

DEFAULTS = {
    "annotations": "annotations/*/*/annotations.txt",
    "video": "videos/{scene}/{video}/video.mov",
    "frames": "frames/{scene}/{video}/{frame:06d}.jpg",
    "stride": 30,
    "skip_occluded": False,
    "skip_generated": False,
    "jpeg_quality": 95,
    "split": "train",
}
FIELDS = 10


@dataclasses.dataclass
class TrackBox:
    label: str
    corners: tuple[float, float, float, float]
    line: int


def parse_line(text: str, path: Path, line: int, opts: dict[str, Any]) -> tuple[int, TrackBox] | None:
    """(frame, box) of a line the options keep; None for a blank, unsampled or dropped line."""
    # the label is the last field, so splitting at most FIELDS-1 times keeps a label with spaces whole
    fields = text.split(maxsplit=FIELDS - 1)
    if not fields:
        return None
    if len(fields) != FIELDS:
        raise FormatError(path, f"expected {FIELDS} fields, got {len(fields)}: {text.strip()!r}", line)
    (frame,) = to_integers(fields[5:6], path, line)
    if frame % opts["stride"]:
        return None
    lost, occluded, generated = to_integers(fields[6:9], path, line)
    if not {lost, occluded, generated} <= {0, 1}:
        raise FormatError(path, f"lost/occluded/generated flags must be 0 or 1, got {fields[6:9]}", line)
    if lost or (occluded and opts["skip_occluded"]) or (generated and opts["skip_generated"]):
        return None
    x0, y0, x1, y1 = to_numbers(fields[1:5], path, line)
    return frame, TrackBox(unquote(fields[9], path, line), (x0, y0, x1, y1), line)


def unquote(field: str, path: Path, line: int) -> str:
    label = field.strip()
    if len(label) >= 2 and label[0] == label[-1] == '"':
        label = label[1:-1]
    if '"' in label:
        raise FormatError(path, f"unbalanced quotes in label {field!r}", line)
    if not label.strip():
        raise FormatError(path, "empty label", line)
    return label


def read_tracks(path: Path, opts: dict[str, Any], skips: SkipLog) -> dict[int, list[TrackBox]]:
    """{sampled frame: kept boxes}; FormatError for an unreadable or empty file."""
    lines = read_lines(path)
    if not any(text.strip() for text in lines):
        raise FormatError(path, "annotation file is empty")
    per_frame: dict[int, list[TrackBox]] = defaultdict(list)
    for number, text in enumerate(lines, 1):
        try:
            parsed = parse_line(text, path, number, opts)
        except FormatError as err:
            skips.skip(err, "object")
            continue
        if parsed is not None:
            per_frame[parsed[0]].append(parsed[1])
    return per_frame


def sampled_frames(video: Path, stride: int) -> Iterator[tuple[int, cv2.VideoCapture]]:
    """(frame index, capture positioned on it) for every `stride`-th frame, decoding in order."""
    if not video.is_file():
        raise FormatError(video, "video file missing")
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise FormatError(video, "OpenCV cannot open this video")
    index = 0
    try:
        while capture.grab():
            if index % stride == 0:
                yield index, capture
            index += 1
    finally:
        capture.release()
    if index == 0:
        raise FormatError(video, "no frame could be decoded")


def write_frame(path: Path, frame: np.ndarray, quality: int) -> None:
    ok, encoded = cv2.imencode(path.suffix, frame, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise FormatError(path, f"OpenCV cannot encode a frame as {path.suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(encoded.tobytes())
    partial.replace(path)


def frame_file(path: Path, index: int, capture: cv2.VideoCapture, video: Path, quality: int) -> tuple[int, int]:
    """(width, height) of the frame file, written from the capture unless it exists."""
    if path.is_file():
        return image_size(path)
    ok, frame = capture.retrieve()
    if not ok:
        raise FormatError(video, f"cannot decode frame {index}")
    write_frame(path, frame, quality)
    return frame.shape[1], frame.shape[0]


def video_records(
    root: Path, label: Path, opts: dict[str, Any], labeler: Labeler, skips: SkipLog
) -> Iterator[ImageRecord]:
    scene, video_name = label.parent.parent.name, label.parent.name
    tracks = read_tracks(label, opts, skips)
    video = root / opts["video"].format(scene=scene, video=video_name)
    last = None
    for index, capture in sampled_frames(video, opts["stride"]):
        path = root / opts["frames"].format(scene=scene, video=video_name, frame=index)
        width, height = frame_file(path, index, capture, video, opts["jpeg_quality"])
        record = ImageRecord(
            str(path.relative_to(root)),
            width,
            height,
            split=opts["split"],
            extra={"scene": scene, "video": video_name, "frame": index},
        )
        add_boxes(record, tracks.pop(index, []), label, labeler, skips)
        last = index
        yield record
    if tracks:
        skips.skip(
            FormatError(
                label,
                f"{len(tracks)} annotated sampled frames (first: {min(tracks)}) lie beyond "
                f"the end of {video.name} (last sampled frame: {last})",
            ),
            "frame",
        )


def add_boxes(record: ImageRecord, boxes: list[TrackBox], label: Path, labeler: Labeler, skips: SkipLog) -> None:
    for box in boxes:
        category = labeler(box.label)
        if category is None:
            continue
        try:
            record.boxes.append(clip_box(*box.corners, record.width, record.height, category, label, box.line))
        except FormatError as err:
            skips.skip(err, "object")


def _options(options: dict[str, Any]) -> dict[str, Any]:
    opts = {**DEFAULTS, **options}
    if not isinstance(opts["stride"], int) or opts["stride"] < 1:
        raise ValueError(f"sdd parser: stride must be a positive integer, got {opts['stride']!r}")
    return opts


def unit_of(label: Path) -> str:
    """A video's unit name, `scene/video`: the two folders above its annotations.txt."""
    return f"{label.parent.parent.name}/{label.parent.name}"


def _labels(root: Path, opts: dict[str, Any]) -> dict[str, Path]:
    labels: dict[str, Path] = {}
    for label in expand(root, opts["annotations"]):
        unit = unit_of(label)
        if unit in labels:
            raise FormatError(label, f"a second annotation file of video {unit} (the first: {labels[unit]})")
        labels[unit] = label
    return labels


def units(root: Path, options: dict[str, Any]) -> list[str]:
    """The videos, `scene/video`, in the order `parse` reads them."""
    return list(_labels(root, _options(options)))


def parse_unit(root: Path, options: dict[str, Any], unit: str, skips: SkipLog) -> Iterator[ImageRecord]:
    """The records of one video; a video that cannot be read is a counted skip."""
    opts = _options(options)
    label = _labels(root, opts).get(unit)
    if label is None:
        raise FormatError(root / opts["annotations"], f"no annotation file of video {unit!r}")
    try:
        yield from video_records(root, label, opts, Labeler(opts), skips)
    except FormatError as err:
        skips.skip(err, "video")


def parse(root: Path, options: dict[str, Any], skips: SkipLog) -> Iterator[ImageRecord]:
    for unit in units(root, options):
        yield from parse_unit(root, options, unit, skips)
