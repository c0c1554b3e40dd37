"""The one image decoder of the plugin (FashionIQ, the catalogue, the converter, search).

:func:`load_rgb` returns an 8-bit RGB image that is whole and upright, or raises
:class:`TruncatedImageError` naming the file:

- a truncated file is an error whatever ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` says. LAVIS
  sets that flag when it is imported, and PIL then pads a truncated image with grey and returns
  it as if it were whole. This module neither reads nor sets the flag: before decoding, the
  file's container is checked to be complete (PNG: every chunk whole with a matching CRC up to
  ``IEND``; JPEG: SOI ... EOI; GIF: the trailer byte; WebP / BMP: the size in the header;
  TIFF: every strip or tile inside the file; anything else: PIL's ``verify()``);
- an empty file, a text file or any other undecodable file is the same one-line error;
- EXIF orientation is applied (phone photos are stored sideways with a rotate tag);
- 16-bit grey (modes ``I;16*``, and ``I`` as PIL opens 16-bit PNG / TIFF) is scaled to 8 bits,
  65535 -> 255; a plain ``convert("RGB")`` clips it, so a 16-bit photo comes out white;
- transparency (RGBA, LA, PA, a palette or RGB / L with a transparent colour) is composited
  onto :data:`BACKGROUND`, the white that square padding uses; ``convert("RGB")`` would drop
  the alpha and show the black hidden under it.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI, JPEG_EOI = b"\xff\xd8", b"\xff\xd9"
GIF_SIGNATURES, GIF_TRAILER = (b"GIF87a", b"GIF89a"), b"\x3b"
#: The colour behind transparent pixels and around padded images: product photos sit on white.
BACKGROUND = (255, 255, 255)
#: Grey modes wider than 8 bits; they are read as 16-bit values (PNG / TIFF store 16 at most).
_WIDE_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_TRAILING = b"\x00\r\n\t "  # padding some writers append after the end marker


class TruncatedImageError(ValueError):
    """An image file that cannot be decoded whole: truncated, corrupt, empty or not an image."""


def _check_png(data: bytes) -> str | None:
    """None when the PNG chunk stream is whole up to IEND, else what is wrong."""
    offset = len(PNG_SIGNATURE)
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        end = offset + 8 + length + 4
        if end > len(data):
            return f"chunk {kind!r} at byte {offset} needs {end} bytes, the file has {len(data)}"
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(data[offset + 4 : end - 4]) != crc:
            return f"chunk {kind!r} at byte {offset} fails its CRC"
        if kind == b"IEND":
            return None
        offset = end
    return f"no IEND chunk before the end of the file ({len(data)} bytes)"


def _check_declared_size(data: bytes) -> str | None:
    """WebP (RIFF) and BMP headers state the file size: a shorter file is cut."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 8:
        need = struct.unpack("<I", data[4:8])[0] + 8
    elif data[:2] == b"BM" and len(data) >= 6:
        need = struct.unpack("<I", data[2:6])[0]
    else:
        return None
    return None if len(data) >= need else f"the header says {need} bytes, the file has {len(data)}"


def _check_tiff(image: Image.Image, size: int) -> str | None:
    """A TIFF's strips / tiles must lie inside the file (PIL pads a cut one under the flag)."""
    tags = getattr(image, "tag_v2", {})
    for offsets_tag, counts_tag in ((273, 279), (324, 325)):  # strips, tiles
        offsets, counts = tags.get(offsets_tag), tags.get(counts_tag)
        if offsets is None or counts is None:
            continue
        offsets = offsets if isinstance(offsets, tuple) else (offsets,)
        counts = counts if isinstance(counts, tuple) else (counts,)
        need = max(o + c for o, c in zip(offsets, counts))
        if need > size:
            return f"its image data needs {need} bytes, the file has {size}"
    return None


def _check_with_pil(data: bytes) -> str | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            problem = _check_tiff(image, len(data)) if image.format == "TIFF" else None
            image.verify()
    except UnidentifiedImageError:
        return f"not an image format PIL can read (it starts with {data[:16]!r})"
    except Exception as err:  # noqa: BLE001 - PIL raises many types for bad files
        return f"PIL cannot read it as an image ({type(err).__name__}: {err})"
    return problem


def _problem(data: bytes) -> str | None:
    """What is wrong with the container of ``data``, or None when it is whole."""
    if not data:
        return "the file is empty"
    if data.startswith(PNG_SIGNATURE):
        return _check_png(data)
    if data.startswith(JPEG_SOI):
        whole = data.rstrip(_TRAILING).endswith(JPEG_EOI)
        return None if whole else "the JPEG has no end-of-image marker"
    if data.startswith(GIF_SIGNATURES):
        whole = data.rstrip(_TRAILING).endswith(GIF_TRAILER)
        return None if whole else "the GIF has no trailer byte"
    return _check_declared_size(data) or _check_with_pil(data)


def check_complete(data: bytes, path: str | os.PathLike[str]) -> None:
    """Raise :class:`TruncatedImageError` naming ``path`` unless ``data`` is a whole image."""
    problem = _problem(data)
    if problem is not None:
        raise TruncatedImageError(f"image {path} is truncated or corrupt: {problem}")


def _to_8bit_grey(image: Image.Image) -> Image.Image:
    """A 16-bit grey image as mode ``L``, scaled so 65535 -> 255 (not clipped at 255)."""
    values = np.asarray(image, dtype=np.float64)
    scaled = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
    return Image.fromarray(scaled, mode="L")


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in _ALPHA_MODES or "transparency" in image.info


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` as 8-bit RGB: wide grey scaled, transparency composited onto BACKGROUND."""
    if image.mode in _WIDE_GREY:
        image = _to_8bit_grey(image)  # tRNS on a 16-bit grey PNG is ignored: it is rare
    if _has_alpha(image):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return image.convert("RGB")


def decode_rgb(data: bytes, path: str | os.PathLike[str]) -> Image.Image:
    """The bytes ``data`` of the file ``path`` decoded as by :func:`load_rgb`."""
    check_complete(data, path)
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)
            return to_rgb(upright)
    except Exception as err:  # noqa: BLE001 - PIL raises many types for bad files
        raise TruncatedImageError(
            f"image {path} cannot be decoded ({type(err).__name__}: {err})"
        ) from err


def load_rgb(path: str | os.PathLike[str]) -> Image.Image:
    """The image at ``path`` as upright 8-bit RGB, refusing truncated or corrupt files.

    Example:
        >>> load_rgb("images/B0001.png").size  # doctest: +SKIP
        (256, 256)
    """
    return decode_rgb(Path(path).read_bytes(), path)  # a missing file: FileNotFoundError


def load_square_rgb(path: str | os.PathLike[str], size: int = 256) -> np.ndarray:
    """``(size, size, 3)`` uint8: :func:`load_rgb` padded with BACKGROUND to a square and
    resized, so no garment is cropped or stretched."""
    square = ImageOps.pad(load_rgb(path), (size, size), Image.BICUBIC, color=BACKGROUND)
    return np.asarray(square, dtype=np.uint8)
