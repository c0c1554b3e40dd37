"""The demo reads its recipes from inside the package, so it also runs from an installed
wheel (not only from a source checkout with `projects/`)."""

from __future__ import annotations

import re
from pathlib import Path

from lavis_syncmask.cli import demo
from lavis_syncmask.common.paths import PACKAGE_DIR

REPO = PACKAGE_DIR.parent


def test_demo_recipes_ship_in_the_package_once() -> None:
    source = Path(demo.__file__).read_text()
    names = set(re.findall(r'RECIPE_DIR / "([a-z_]+\.yaml)"', source))
    assert names == {"pretrain_tiny.yaml", "retrieval_tiny.yaml"}
    assert "projects" not in source
    for name in names:
        packaged = demo.RECIPE_DIR / name
        assert packaged.is_file() and not packaged.is_symlink()
        assert packaged.is_relative_to(PACKAGE_DIR)
        linked = REPO / "projects" / "syncmask" / name
        if linked.exists():  # a source checkout: one copy, the projects entry links to it
            assert linked.resolve() == packaged.resolve()
    setup = (REPO / "setup.py").read_text()
    assert '"configs/**/*.yaml"' in setup
