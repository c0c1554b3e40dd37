"""Writes that fail for lack of space say so and name the file (issue 20).

A full disk surfaced as torch's `[enforce fail at inline_container.cc:...] PytorchStreamWriter
failed writing file data/3: file write failed`, which names neither the checkpoint nor the
cause: torch's C++ writer drops the errno. :func:`write_error` turns that, and an `OSError`
with ENOSPC / EDQUOT, into a :class:`NoSpaceError` naming the path. For torch's error the
cause is inferred from the free space left where the file was being written (a failed write
leaves the disk all but full); otherwise the message names the path and the free space, and
says the cause is unknown. Writes here are atomic (a temporary file renamed over the target)
or, for appended log lines, truncated back, so a failed write leaves no partial file or line.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Markers of torch's checkpoint writer failing (it reports no errno).
TORCH_WRITE_FAILURE: tuple[str, ...] = ("inline_container.cc", "PytorchStreamWriter")
#: Below this many free bytes, a failed write is put down to a full device.
FULL_BELOW = 4 * 2**20
_REASONS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}


class NoSpaceError(OSError):
    """A write failed for lack of space (or quota) on the device of the file it names."""


def partial_path(target: Path) -> Path:
    """The temporary file of an atomic write of `target`: `.<name>.<pid>.tmp`, which
    `common/checkpoint.remove_stale_partials` recognises once its writer is dead."""
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")


def free_bytes(path: str | os.PathLike[str]) -> int | None:
    """Bytes this user may still write on the device of `path` (its nearest existing folder),
    or None when that cannot be read."""
    folder = Path(path).absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def write_error(path: str | os.PathLike[str], error: BaseException) -> OSError | None:
    """The one-line error for `error`, raised while writing `path`, when it is a write failure
    of a full device (or torch's writer failing); None for any other error. Call it before
    removing the partial file: that file is what fills the device."""
    if isinstance(error, OSError) and error.errno in _REASONS:
        return NoSpaceError(error.errno, f"{_REASONS[error.errno]} writing {path}")
    if not isinstance(error, RuntimeError) or not any(m in str(error) for m in TORCH_WRITE_FAILURE):
        return None
    free = free_bytes(path)
    if free is not None and free < FULL_BELOW:
        return NoSpaceError(
            errno.ENOSPC, f"no space left on device writing {path} ({free / 2**20:.1f} MiB free)"
        )
    left = "unknown" if free is None else f"{free / 2**20:.0f} MiB"
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return OSError(
        errno.EIO,
        f"writing {path} failed, cause unknown ({left} free there; check the disk and quota); "
        f"torch said: {first}",
    )


@contextmanager
def reporting_full_disk(path: str | os.PathLike[str]) -> Iterator[None]:
    """Re-raise a full-device failure inside the block as :func:`write_error`'s error."""
    try:
        yield
    except (OSError, RuntimeError) as error:
        clear = write_error(path, error)
        if clear is None:
            raise
        raise clear from error


def write_text_atomically(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` to `path` through a temporary file and a rename: readers see the old or
    the new file whole, and a failed write (say, a full disk) leaves no partial file."""
    target = Path(path)
    partial = partial_path(target)
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, target)
    except BaseException as error:
        clear = write_error(target, error)  # before the partial file frees its space
        partial.unlink(missing_ok=True)
        if clear is not None:
            raise clear from error
        raise
    return target


def append_line(path: str | os.PathLike[str], line: str) -> None:
    """Append `line` (a newline is added) to `path` in one unbuffered write; on failure the
    file is cut back to its old length, so a log never keeps half a line."""
    target = Path(path)
    data = (line + "\n").encode("utf-8")
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        start = os.fstat(fd).st_size
        try:
            written = 0
            while written < len(data):  # a short write is legal; the rest follows
                written += os.write(fd, data[written:])
        except BaseException as error:
            clear = write_error(target, error)
            os.ftruncate(fd, start)
            if clear is not None:
                raise clear from error
            raise
    finally:
        os.close(fd)
