"""Strict image decoding: a truncated image file is an error, whatever PIL's global flag says.

LAVIS sets ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES = True`` for the whole process when it is
imported (and ``import lavis_syncmask`` imports LAVIS); PIL then pads a truncated image with
grey and returns it as if it were whole. Turning the flag back off would change LAVIS's own
loaders, so the check here is local and does not read the flag: before decoding, the file's
container is checked to be complete.

- PNG: every chunk is whole and its CRC matches, up to the ``IEND`` chunk;
- JPEG: the file starts with the SOI marker and ends with the EOI marker (trailing padding
  bytes allowed);
- anything else: PIL's ``verify()``.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI, JPEG_EOI = b"\xff\xd8", b"\xff\xd9"


class TruncatedImageError(ValueError):
    """An image file is incomplete or corrupt."""


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


def check_complete(data: bytes, path: str | os.PathLike[str]) -> None:
    """Raise :class:`TruncatedImageError` naming ``path`` unless ``data`` is a whole image."""
    problem: str | None
    if data.startswith(PNG_SIGNATURE):
        problem = _check_png(data)
    elif data.startswith(JPEG_SOI):
        whole = data.rstrip(b"\x00\r\n\t ").endswith(JPEG_EOI)
        problem = None if whole else "the JPEG has no end-of-image marker"
    elif not data:
        problem = "the file is empty"
    else:
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.verify()
            problem = None
        except Exception as err:  # noqa: BLE001 - PIL raises many types for bad files
            problem = f"PIL cannot verify it ({type(err).__name__}: {err})"
    if problem is not None:
        raise TruncatedImageError(f"image {path} is truncated or corrupt: {problem}")


def load_rgb(path: str | os.PathLike[str]) -> Image.Image:
    """The image at ``path`` decoded to RGB, refusing truncated or corrupt files.

    Example:
        >>> load_rgb("images/B0001.png").size  # doctest: +SKIP
        (256, 256)
    """
    data = Path(path).read_bytes()
    check_complete(data, path)
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("RGB")
    except OSError as err:
        raise TruncatedImageError(f"image {path} cannot be decoded: {err}") from err
