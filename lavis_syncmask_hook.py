"""`python -m lavis.train` / `python -m lavis.evaluate` for an installed lavis_syncmask.

The LAVIS 1.0.2 wheel has no `lavis.train` or `lavis.evaluate` module, yet that is the command
its documentation teaches. This top-level module (kept tiny and free of imports beyond the
standard library, because `lavis_syncmask_hook.pth` imports it at every interpreter start)
appends one finder to the END of `sys.meta_path`: it answers only those two names and only
after every regular finder has failed to find them, so a LAVIS that ever ships a real
`lavis/train.py` wins without any change here. The answered module imports the plugin (which
registers everything) and runs the plugin's launcher with LAVIS's flags (`--cfg-path`,
`--options`). No file of the installed LAVIS is touched.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

#: The missing LAVIS module -> the plugin launcher that stands in for it.
ALIASES = {
    "lavis.train": "lavis_syncmask.cli.train",
    "lavis.evaluate": "lavis_syncmask.cli.evaluate",
}

_SOURCE = '''"""Stand-in for the {name} module LAVIS 1.0.2 lacks: the lavis_syncmask launcher
({target}), same flags. Installed by lavis_syncmask_hook."""
import lavis_syncmask  # registers the plugin's models, builders, tasks and runner
from {target} import main

if __name__ == "__main__":
    raise SystemExit(main())
'''


class LauncherLoader(importlib.abc.InspectLoader):
    """Loads the stand-in source; `InspectLoader` gives `get_code` (what `python -m` runs as
    `__main__`) and `exec_module` (a plain `import lavis.train`) from `get_source`."""

    def __init__(self, name: str) -> None:
        self.name = name

    def get_source(self, fullname: str) -> str:
        return _SOURCE.format(name=fullname, target=ALIASES[fullname])

    def is_package(self, fullname: str) -> bool:
        return False


class LavisLauncherFinder(importlib.abc.MetaPathFinder):
    """Answers `lavis.train` / `lavis.evaluate` when nothing earlier on `sys.meta_path` did."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in ALIASES:
            return None
        # Being last on sys.meta_path already means no regular finder found the name; check
        # again in case a finder was appended after this one (then a real module exists).
        for finder in sys.meta_path:
            if finder is self or isinstance(finder, LavisLauncherFinder):
                continue
            find = getattr(finder, "find_spec", None)
            if find is not None and find(fullname, path, target) is not None:
                return None
        return importlib.machinery.ModuleSpec(fullname, LauncherLoader(fullname), origin=None)


def install() -> None:
    """Append the finder once (`.pth` files may be processed more than once)."""
    if not any(isinstance(f, LavisLauncherFinder) for f in sys.meta_path):
        sys.meta_path.append(LavisLauncherFinder())
