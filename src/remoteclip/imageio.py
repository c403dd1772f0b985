"""Reading images as they come in real data (sizes without decoding, RGB conversion).

No stage of its own: the parsers (`parse`) read image sizes here, and `build_shards`, the
pHash rules and `features` decode images through `load_rgb`, so every stage sees the same RGB.
A training image may lie inside a container file (a web corpus's tar or Parquet file, the row's
`stored`, remoteclip.stored): the stages that decode training images (`hash_training_source`,
`build_shards`) read a caption row's image through `load_sample_rgb`, which serves both.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image, ImageOps

from .errors import FormatError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")

# Potsdam tiles are 6000 x 6000 and iSAID scenes larger; they are trusted inputs.
Image.MAX_IMAGE_PIXELS = None


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the header; FormatError when the file is missing or not an image."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                return im.size
    except FileNotFoundError:
        raise FormatError(path, "image file missing") from None
    except Exception as exc:  # PIL raises several types for corrupt files
        raise FormatError(path, f"unreadable image ({type(exc).__name__}: {exc})") from None


def load_sample_rgb(image: str | Path, stored: dict | None = None) -> Image.Image:
    """A caption row's image as `load_rgb` gives it: the file `image`, or, with `stored`, the
    bytes at that place in its container; FormatError naming the image otherwise."""
    if stored is None:
        return load_rgb(image)
    from .stored import stored_bytes

    try:
        data = stored_bytes(stored)
    except FormatError as err:
        raise FormatError(image, err.reason) from None
    return load_rgb(io.BytesIO(data), name=image)


def load_rgb(path: str | Path | io.BytesIO, name: str | Path | None = None) -> Image.Image:
    """Decode fully, apply EXIF orientation and convert to 8-bit RGB (`name`: what an error
    names when `path` is bytes in memory)."""
    label = str(path if name is None else name)
    try:
        with Image.open(path) as opened:
            im = ImageOps.exif_transpose(opened)
            im.load()
            return _to_rgb(im)
    except FileNotFoundError:
        raise FormatError(label, "image file missing") from None
    except FormatError:
        raise
    except Exception as exc:
        # PIL names a stream by its repr, an address that differs per run: the name instead
        message = str(exc).replace(repr(path), label) if isinstance(path, io.BytesIO) else str(exc)
        raise FormatError(label, f"unreadable image ({type(exc).__name__}: {message})") from None


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        import numpy as np

        arr = np.asarray(im, dtype=np.float64)
        lo, hi = np.percentile(arr, [0.5, 99.5]) if arr.size else (0, 1)
        arr = np.clip((arr - lo) / max(hi - lo, 1e-9) * 255, 0, 255).astype("uint8")
        return Image.fromarray(arr).convert("RGB")
    if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, im).convert("RGB")
    return im.convert("RGB")
