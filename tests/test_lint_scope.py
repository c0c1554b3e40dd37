"""`make lint` checks every Python file of the project: a ruff exclusion pattern that matches a
package folder (a bare `data` once hid all of `lavis_syncmask/data/`) fails here."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUFF = Path(sys.executable).with_name("ruff")


def lint_paths() -> list[str]:
    """The paths the Makefile's `lint` target hands to ruff."""
    match = re.search(r"^LINT_PATHS := (.+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert match, "the Makefile defines LINT_PATHS"
    return match.group(1).split()


def project_python_files() -> set[Path]:
    """Every .py file of the package, its hook, the tests and the benchmarks, as on disk."""
    roots = [REPO / p for p in lint_paths()]
    files = {p for p in roots if p.is_file()}
    for root in (p for p in roots if p.is_dir()):
        files |= {p for p in root.rglob("*.py") if "__pycache__" not in p.parts}
    return {p.resolve() for p in files}


def test_lint_paths_cover_the_package_tests_and_benchmarks() -> None:
    assert {"lavis_syncmask", "tests", "benchmarks"} <= set(lint_paths())


@pytest.mark.skipif(not RUFF.exists() and shutil.which("ruff") is None, reason="needs ruff")
def test_ruff_checks_every_project_python_file() -> None:
    ruff = str(RUFF) if RUFF.exists() else "ruff"
    listed = subprocess.run(
        [ruff, "check", "--show-files", *lint_paths()],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    checked = {Path(line).resolve() for line in listed if line.endswith(".py")}
    skipped = sorted(str(p.relative_to(REPO)) for p in project_python_files() - checked)
    assert not skipped, f"ruff skips {len(skipped)} project files, e.g. {skipped[:5]}"
    assert any("lavis_syncmask/data/" in str(p) for p in checked)
