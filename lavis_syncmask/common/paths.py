"""Where the plugin's own files live, and how data paths in configs are resolved.

LAVIS joins relative config paths to its installed `lavis/` folder; a plugin must hand it
absolute paths built from its own location, and resolve user data paths itself.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
CONFIG_DIR = PACKAGE_DIR / "configs"
#: Run recipes that ship in the wheel (the demo's); `projects/syncmask/` links to them.
RECIPE_DIR = CONFIG_DIR / "recipes"
#: Files shipped inside the package (package_data), e.g. the tiny preset's vocabulary.
ASSET_DIR = PACKAGE_DIR / "assets"
TINY_VOCAB_DIR = ASSET_DIR / "tiny_vocab"

#: Environment variable naming the folder that relative data paths in configs are joined to.
DATA_ROOT_ENV = "SYNCMASK_DATA_ROOT"
#: Used when neither the config's `data_root` key nor the environment variable is set.
DEFAULT_DATA_ROOT = "data/synthetic"


def config_path(*parts: str) -> str:
    """Absolute path of a yaml shipped inside the package, e.g. ``config_path("models", "x.yaml")``."""
    return str(CONFIG_DIR.joinpath(*parts))


def data_root(configured: str | os.PathLike[str] | None = None) -> Path:
    """The data root: the config's ``data_root`` key, else ``$SYNCMASK_DATA_ROOT``, else
    ``data/synthetic``; relative roots are taken from the current working directory."""
    root = configured or os.environ.get(DATA_ROOT_ENV) or DEFAULT_DATA_ROOT
    return Path(root).expanduser().resolve()


def resolve_data_path(
    path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
) -> Path:
    """An absolute path stays; a relative one is joined to :func:`data_root`."""
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else data_root(root) / candidate


def require_file(path: Path, config_key: str) -> Path:
    """Fail with one clear message naming the missing path and the key that points to it."""
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist (set by config key `{config_key}`). Nothing is downloaded: "
            f"put the file there, or point `{config_key}` / `data_root` / ${DATA_ROOT_ENV} at it. "
            "For the synthetic catalogue run `python -m lavis_syncmask.synthetic --out DIR`."
        )
    return path


#: Files whose presence means a folder holds a run's results (config.yaml alone does not).
RESULT_PATTERNS: tuple[str, ...] = ("metrics.json", "evaluate.txt", "log.txt", "checkpoint_*.pth")


def job_folder(output_dir: str | os.PathLike[str], job_id: str) -> Path:
    """``<run.output_dir>/<job id>``; a relative ``run.output_dir`` is taken from the working
    directory (LAVIS would put it inside its installed package)."""
    base = Path(output_dir).expanduser()
    return (base if base.is_absolute() else Path.cwd() / base) / job_id


def existing_results(folder: Path) -> list[str]:
    """The result files already in ``folder`` (sorted names; empty when there are none)."""
    if not folder.is_dir():
        return []
    return sorted({p.name for pattern in RESULT_PATTERNS for p in folder.glob(pattern)})


#: In a run folder: the file whose lock marks the folder as in use by a live run.
LOCK_FILE = ".run.lock"
#: Run folders this process holds, with the descriptor that holds each lock.
_HELD: dict[Path, int] = {}


def claim_job_folder(folder: Path) -> Path:
    """Create ``folder`` if needed and lock it for the rest of this process, so two runs
    started together with one ``--job-id`` can never share it (issue 20: one run's
    config.yaml and the other's log.txt ended up side by side). The second gets a
    FileExistsError naming the folder and the process that holds it. The lock is an
    ``flock`` on ``<folder>/.run.lock``: the system drops it when its holder ends, however
    it ends, so no stale lock outlives a killed run. A process may claim a folder again."""
    folder = folder.absolute()
    if folder in _HELD:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise FileExistsError(
            f"run folder {folder} is in use by another run ({holder}); choose another "
            "--job-id, or wait for that run to end"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"process {os.getpid()} on {socket.gethostname()}\n".encode())
    _HELD[folder] = fd
    return folder


def release_job_folders() -> None:
    """Drop every run-folder lock this process holds: a launcher calls it when its run ends,
    so a process that runs several in turn (the tests, a benchmark worker) keeps no lock and
    no descriptor of a finished run."""
    while _HELD:
        _, fd = _HELD.popitem()
        os.close(fd)  # closing the descriptor drops its flock
