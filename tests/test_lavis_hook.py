"""`python -m lavis.train` / `lavis.evaluate` through lavis_syncmask_hook: answered for an
installed plugin (the .pth in site-packages: test_catalogue_end_to_end.py runs both launchers
in subprocesses from outside the checkout), only for those two names, and never in place of a
real LAVIS module."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import lavis

import lavis_syncmask_hook as hook

REPO_ROOT = Path(__file__).resolve().parent.parent


def _python(args: list[str], cwd: Path, pythonpath: list[Path]) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in pythonpath)
    return subprocess.run(
        [sys.executable, "-W", "ignore", *args], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip


def test_finder_answers_only_the_missing_launchers() -> None:
    finder = hook.LavisLauncherFinder()
    spec = finder.find_spec("lavis.train", lavis.__path__)
    assert spec is not None and isinstance(spec.loader, hook.LauncherLoader)
    assert "lavis_syncmask.cli.train import main" in spec.loader.get_source("lavis.train")
    assert finder.find_spec("lavis.models", lavis.__path__) is None
    assert finder.find_spec("lavis.trainer", lavis.__path__) is None


def test_plain_import_gives_the_launcher_main() -> None:
    hook.install()
    hook.install()  # idempotent: one finder however often the .pth runs
    assert sum(isinstance(f, hook.LavisLauncherFinder) for f in sys.meta_path) == 1
    import lavis.evaluate as stand_in

    from lavis_syncmask.cli.evaluate import main

    assert stand_in.main is main


def _fake_lavis(root: Path, with_train: bool) -> Path:
    package = root / "lavis"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    if with_train:
        (package / "train.py").write_text("print('REAL LAVIS TRAIN')\n")
    return root


_PROBE = (
    "import importlib.util, lavis_syncmask_hook; lavis_syncmask_hook.install(); "
    "spec = importlib.util.find_spec('lavis.train'); print(type(spec.loader).__name__)"
)


def test_a_real_lavis_train_wins(tmp_path: Path) -> None:
    """A LAVIS that ships `lavis/train.py` keeps it: the hook steps aside."""
    fake = _fake_lavis(tmp_path / "with", with_train=True)
    done = _python(["-c", _PROBE], tmp_path, [fake, REPO_ROOT])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["SourceFileLoader"]
    run = _python(
        ["-c", "import lavis_syncmask_hook, runpy; lavis_syncmask_hook.install(); "
               "runpy.run_module('lavis.train', run_name='__main__')"],
        tmp_path, [fake, REPO_ROOT],
    )  # fmt: skip
    assert run.returncode == 0 and "REAL LAVIS TRAIN" in run.stdout, run.stderr[-2000:]
    # The same fake LAVIS without train.py: now the hook answers.
    bare = _fake_lavis(tmp_path / "without", with_train=False)
    done = _python(["-c", _PROBE], tmp_path, [bare, REPO_ROOT])
    assert done.stdout.split() == ["LauncherLoader"], done.stderr[-2000:]
