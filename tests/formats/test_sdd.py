import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from remoteclip.formats import sdd
from remoteclip.formats.base import FormatError, SkipLog

from .fixtures import box_tuples, write_text

WIDTH, HEIGHT, FRAMES = 64, 48, 7
LABEL = Path("annotations/bookstore/video0/annotations.txt")
VIDEO = Path("videos/bookstore/video0/video.mov")
TRACKS = [
    '0 2 3 12 11 0 0 0 0 "Pedestrian"',
    '0 3 3 13 11 1 0 0 1 "Pedestrian"',  # frame 1 is not sampled at stride 3
    '1 20 10 35 22 3 0 1 0 "Biker"',  # occluded
    '2 50 40 80 70 3 0 0 1 "Cart"',  # generated, reaches past the frame
    '3 5 5 9 9 3 1 0 0 "Car"',  # lost: outside the view
    '4 1 1 5 5 6 0 0 0 "Skater"',
]


def frame_colour(index: int) -> tuple[int, int, int]:
    return (30 * index, 255 - 30 * index, 100)


def write_video(path: Path, frames: int = FRAMES, fourcc: str = "mp4v") -> Path:
    """A tiny real video, one flat colour per frame, so the extracted frame can be identified."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (WIDTH, HEIGHT))
    assert writer.isOpened(), f"OpenCV cannot write {path.suffix} with {fourcc}"
    for index in range(frames):
        r, g, b = frame_colour(index)
        writer.write(np.full((HEIGHT, WIDTH, 3), (b, g, r), np.uint8))
    writer.release()
    return path


def make_tree(root: Path, tracks: list[str] = TRACKS) -> Path:
    write_text(root / LABEL, tracks)
    (root / LABEL.parent / "reference.jpg").write_bytes(b"")  # present in the real layout, not read
    write_video(root / VIDEO)
    return root


def parse(root: Path, strict: bool = False, **options):
    skips = SkipLog(strict=strict)
    return list(sdd.parse(root, {"stride": 3, **options}, skips)), skips


def mean_colour(path: Path) -> tuple[float, ...]:
    return tuple(np.asarray(Image.open(path).convert("RGB"), np.float64).reshape(-1, 3).mean(0))


def test_sampled_frames_are_written_with_their_boxes(tmp_path):
    records, skips = parse(make_tree(tmp_path))
    assert [r.file_name for r in records] == [f"frames/bookstore/video0/{i:06d}.jpg" for i in (0, 3, 6)]
    assert [(r.width, r.height, r.split) for r in records] == [(WIDTH, HEIGHT, "train")] * 3
    assert [r.extra for r in records] == [{"scene": "bookstore", "video": "video0", "frame": i} for i in (0, 3, 6)]
    assert [box_tuples(r) for r in records] == [
        [("pedestrian", 2, 3, 10, 8)],
        [("cyclist", 20, 10, 15, 12), ("golf cart", 50, 40, 14, 8)],
        [("skateboarder", 1, 1, 4, 4)],
    ]
    for record, index in zip(records, (0, 3, 6)):
        assert mean_colour(tmp_path / record.file_name) == pytest.approx(frame_colour(index), abs=6)
    assert skips.entries == []
    assert not list(tmp_path.rglob("*.partial"))


def test_occluded_and_generated_boxes_can_be_dropped(tmp_path):
    root = make_tree(tmp_path)
    records, _ = parse(root, skip_occluded=True)
    assert [b.category for b in records[1].boxes] == ["golf cart"]
    records, _ = parse(root, skip_generated=True)
    assert [b.category for b in records[1].boxes] == ["cyclist"]


def test_stride_and_frame_pattern_are_options(tmp_path):
    records, _ = parse(make_tree(tmp_path), stride=2, frames="sampled/{scene}_{video}_{frame}.png")
    assert [r.file_name for r in records] == [f"sampled/bookstore_video0_{i}.png" for i in (0, 2, 4, 6)]
    assert Image.open(tmp_path / records[0].file_name).format == "PNG"


def test_video_name_is_an_option(tmp_path):
    write_text(tmp_path / LABEL, TRACKS)
    write_video(tmp_path / "videos/bookstore/video0/clip.avi", fourcc="MJPG")
    records, _ = parse(tmp_path, video="videos/{scene}/{video}/clip.avi")
    assert len(records) == 3 and box_tuples(records[0]) == [("pedestrian", 2, 3, 10, 8)]


def test_existing_frames_are_reused(tmp_path):
    root = make_tree(tmp_path)
    records, _ = parse(root)
    frame = root / records[1].file_name
    Image.new("RGB", (WIDTH, HEIGHT), (1, 2, 3)).save(frame)
    before = frame.read_bytes()
    parse(root)
    assert frame.read_bytes() == before


def test_annotated_frames_past_the_video_end_are_counted(tmp_path):
    root = make_tree(tmp_path, TRACKS + ['5 1 1 5 5 9 0 0 0 "Bus"', '5 1 1 5 5 12 0 0 0 "Bus"'])
    records, skips = parse(root)
    assert len(records) == 3
    assert [(e["what"], e["file"]) for e in skips.entries] == [("frame", str(root / LABEL))]
    assert "2 annotated sampled frames (first: 9) lie beyond the end of video.mov" in skips.entries[0]["reason"]


@pytest.mark.parametrize(
    "line, reason",
    [
        ('6 1 1 5 5 3 0 0 "Car"', "expected 10 fields, got 9"),
        ('6 1 1 5 5 three 0 0 0 "Car"', "expected integers"),
        ('6 1 1 5 5 3 0 2 0 "Car"', "flags must be 0 or 1"),
        ('6 1 1 five 5 3 0 0 0 "Car"', "not a number: 'five'"),
        ('6 1 1 5 5 3 0 0 0 "Car', "unbalanced quotes"),
        ('6 1 1 5 5 3 0 0 0 ""', "empty label"),
        ('6 70 60 80 70 3 0 0 0 "Car"', "lies outside the 64x48 image"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path, line, reason):
    root = make_tree(tmp_path, TRACKS[:2] + [line])
    with pytest.raises(FormatError) as err:
        parse(root, strict=True)
    assert str(err.value).startswith(f"{root / LABEL}:3: ") and reason in str(err.value)
    records, skips = parse(root)
    assert len(records) == 3 and box_tuples(records[0]) == [("pedestrian", 2, 3, 10, 8)]
    assert [(e["what"], e["line"]) for e in skips.entries] == [("object", 3)]


def test_unsampled_lines_are_checked_for_field_count_and_frame(tmp_path):
    root = make_tree(tmp_path, TRACKS + ['6 1 1 x 5 4 0 0 0 "Car"', "6 1 1 5 5 4 0 0"])
    records, skips = parse(root)
    assert [(e["line"], "expected 10 fields" in e["reason"]) for e in skips.entries] == [(8, True)]


@pytest.mark.parametrize(
    "video_bytes, reason",
    [
        (None, "video file missing"),
        (b"not a video at all" * 20, "OpenCV cannot open this video|no frame could be decoded"),
    ],
)
def test_missing_or_corrupt_video_skips_the_video(tmp_path, video_bytes, reason):
    root = make_tree(tmp_path)
    (root / VIDEO).unlink()
    if video_bytes is not None:
        (root / VIDEO).write_bytes(video_bytes)
    records, skips = parse(root)
    assert records == []
    assert [(e["what"], e["file"]) for e in skips.entries] == [("video", str(root / VIDEO))]
    with pytest.raises(FormatError, match=reason):
        parse(root, strict=True)


def test_empty_annotation_file_skips_the_video(tmp_path):
    root = make_tree(tmp_path, [])
    records, skips = parse(root)
    assert records == [] and skips.entries[0]["reason"] == "annotation file is empty"
    assert not (root / "frames").exists()
    with pytest.raises(FormatError, match="annotation file is empty"):
        parse(root, strict=True)


def test_stride_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="stride"):
        parse(make_tree(tmp_path), stride=0)


# ---- one unit per video: the workflow's parse_unit jobs ---------------------------------------

SECOND_LABEL = Path("annotations/deathCircle/video1/annotations.txt")
SECOND_VIDEO = Path("videos/deathCircle/video1/video.mov")


def two_videos(root: Path) -> Path:
    make_tree(root)
    write_text(root / SECOND_LABEL, ['7 30 20 40 30 0 0 0 0 "Bus"', '7 31 20 41 30 3 0 0 0 "Bus"'])
    write_video(root / SECOND_VIDEO, frames=4)
    return root


def test_each_video_is_a_unit_and_their_join_is_the_whole_parse(tmp_path):
    from remoteclip.config import dataset_spec
    from remoteclip.convert import list_units, parse_dataset, parse_unit

    root = two_videos(tmp_path / "raw")
    spec = dataset_spec("S", {"group": "DET", "format": "sdd", "root": str(root), "options": {"stride": 3}})
    whole = tmp_path / "whole"
    parse_dataset(spec, whole / "S.json", whole / "S.report.json")
    units = list_units(spec, tmp_path / "S.units.json")
    assert units == ["bookstore/video0", "deathCircle/video1"]
    parts = [tmp_path / "units" / f"{u}.json" for u in units]
    for unit, part in zip(units, parts):
        parse_unit(spec, unit, part)
    joined = tmp_path / "joined"
    parse_dataset(spec, joined / "S.json", joined / "S.report.json", units=parts)
    for name in ("S.json", "S.report.json"):
        assert (joined / name).read_bytes() == (whole / name).read_bytes()
    assert [i["file_name"] for i in json.loads((joined / "S.json").read_text())["images"]][-2:] == [
        "frames/deathCircle/video1/000000.jpg",
        "frames/deathCircle/video1/000003.jpg",
    ]


def test_a_video_that_fails_is_redone_alone_by_the_workflow(tmp_path):
    """One parse_unit job per video, each with its file: with the second video broken (a strict
    dataset stops on it) the first is done; once it is fixed only the second runs again."""
    from workflow_helpers import REPO, job_counts, snakemake, write_config

    root = two_videos(tmp_path / "sdd")
    (root / SECOND_VIDEO).write_bytes(b"not a video" * 20)
    datasets = {"S": {"group": "DET", "format": "sdd", "root": str(root), "options": {"stride": 3}, "strict": True}}
    config = write_config(
        tmp_path, {"datasets": datasets, "b2c": {"templates": str(REPO / "config/b2c_templates.yaml")}}
    )
    first = snakemake(tmp_path, config, "--keep-going", "results/annotations/S.json", check=False)
    assert first.returncode != 0 and "deathCircle/video1" in first.stdout + first.stderr
    done = tmp_path / "results/annotations/S.units/bookstore/video0.json"
    assert done.is_file() and not (tmp_path / "results/annotations/S.units/deathCircle/video1.json").exists()
    written = done.stat().st_mtime_ns

    write_video(root / SECOND_VIDEO, frames=4)
    second = snakemake(tmp_path, config, "results/annotations/S.json")
    counts = job_counts(second.stdout + second.stderr)
    assert (counts.get("parse_unit"), counts.get("parse")) == (1, 1)
    assert "unit=deathCircle/video1" in second.stdout + second.stderr
    assert done.stat().st_mtime_ns == written
    images = json.loads((tmp_path / "results/annotations/S.json").read_text())["images"]
    assert len(images) == 5
    dry = snakemake(tmp_path, config, "-n", "results/annotations/S.json")
    assert "Nothing to be done" in dry.stdout + dry.stderr
