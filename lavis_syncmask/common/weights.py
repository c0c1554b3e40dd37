"""Initial weights named by URL or path, the LAVIS way: a URL goes through LAVIS's
`download_cached_file` (cached under ``$TORCH_HOME/hub/checkpoints/<file name>`` and never
fetched twice); a path is used as it is.

Unlike LAVIS, a URL that is not cached yet fails AT ONCE when there is no network, with one
message naming the URL, the cache path where the file may be placed by hand, and the config key
that takes a local path instead; LAVIS would retry inside `urllib` or hang on a dead resolver.
"Offline" means ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` / ``SYNCMASK_OFFLINE`` is set to
1, or a TCP connection to the URL's host fails within a few seconds.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

#: Any of these set to a true value means: never try the network.
OFFLINE_ENV = ("SYNCMASK_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
_PROBE_TIMEOUT_S = 3.0


def is_url(value: str) -> bool:
    return urlparse(str(value)).scheme in ("http", "https", "file")


def cache_path(url: str) -> Path:
    """Where LAVIS's `download_cached_file` keeps ``url``: ``<torch hub>/checkpoints/<name>``."""
    from timm.models.hub import get_cache_dir

    return Path(get_cache_dir()) / os.path.basename(urlparse(url).path)


def offline_reason(url: str) -> str | None:
    """Why ``url`` cannot be fetched now (an env flag, or the host unreachable), or None."""
    parts = urlparse(url)
    if parts.scheme == "file":  # a local copy: reading it is no network access
        return None
    for name in OFFLINE_ENV:
        if os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on"):
            return f"${name} is set"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=_PROBE_TIMEOUT_S):
            return None
    except OSError as err:  # DNS failure, refused, unreachable, timeout
        return f"{parts.hostname}:{port} is unreachable ({err.__class__.__name__}: {err})"


def resolve_weights(value: str | os.PathLike[str], config_key: str) -> Path:
    """A local file for the weights ``value`` (URL or path) of config key ``config_key``.

    Example:
        >>> resolve_weights("/models/ALBEF.pth", "model.pretrained")  # doctest: +SKIP
        PosixPath('/models/ALBEF.pth')
    """
    text = str(value)
    if not is_url(text):
        path = Path(text).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"`{config_key}`: no file at {path}. Set `{config_key}` to a local checkpoint "
                "or to a URL (fetched once into the torch hub cache)."
            )
        return path
    cached = cache_path(text)
    if cached.is_file():
        return cached
    reason = offline_reason(text)
    if reason is not None:
        raise FileNotFoundError(
            f"`{config_key}` = {text} is not in the cache and cannot be downloaded now "
            f"({reason}). Download it on a machine with internet and place it at {cached}, "
            f"or set `{config_key}` to a local file (e.g. --options {config_key}=/models/"
            f"{cached.name})."
        )
    from lavis.common.dist_utils import download_cached_file

    return Path(download_cached_file(text, check_hash=False, progress=True))
