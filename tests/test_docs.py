"""The front page and `docs/`: every relative link resolves (file, and `#anchor` to a heading of
that file), the README stays a front page, and every table generated from a results JSON
(between `<!-- bench-...table:start -->` markers) is still what that JSON renders."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from compare_report import readme_blocks, render_table  # noqa: E402

PAGES = [ROOT / "README.md", ROOT / "ARCHITECTURE.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 300
#: `[text](target)` and `![alt](target)`, outside code spans; targets without spaces.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", flags=re.MULTILINE | re.DOTALL)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)}


def relative_links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    text = re.sub(r"^    .*$", "", text, flags=re.MULTILINE)  # indented code blocks
    text = re.sub(r"`[^`\n]*`", "", text)  # code spans
    return [t for t in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def test_slug_matches_github() -> None:
    assert slug("Run recipes (`projects/syncmask/`)") == "run-recipes-projectssyncmask"
    assert (
        slug("Benchmark against LAVIS's ALBEF and BLIP")
        == "benchmark-against-laviss-albef-and-blip"
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target} (no file {file.relative_to(ROOT)})")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target} (no heading #{anchor} in {file.relative_to(ROOT)})")
    assert not broken, f"{page.relative_to(ROOT)}: broken links {broken}"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in relative_links(ROOT / "README.md")}
    orphans = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p.resolve() not in linked]
    assert not orphans, f"docs pages the README does not link: {orphans}"


def test_readme_is_a_front_page_with_the_ci_command() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = text.count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (<= {README_MAX_LINES})"
    assert "    make test" in text, "the README lost the test command CI runs (.ci/run)"


def _generated_blocks() -> list[tuple[str, int, str]]:
    found = []
    for page in PAGES:
        for i, block in enumerate(readme_blocks(page.read_text(encoding="utf-8"))):
            found.append((page.relative_to(ROOT).as_posix(), i, block))
    return found


def test_generated_tables_exist() -> None:
    pages = {page for page, _, _ in _generated_blocks()}
    assert "docs/benchmark.md" in pages, "docs/benchmark.md lost the retired matrix's table"


BLOCKS = _generated_blocks()


@pytest.mark.parametrize(
    ("page", "index", "block"), BLOCKS, ids=[f"{page}#{index}" for page, index, _ in BLOCKS]
)
def test_generated_table_matches_its_results_json(page: str, index: int, block: str) -> None:
    source = block.split("`")[1]  # each table names the JSON it was rendered from
    results = json.loads((ROOT / source).read_text(encoding="utf-8"))
    assert block == render_table(results), (
        f"{page}: table {index} differs from what {source} renders; regenerate it with "
        f"python benchmarks/compare_report.py --json {source} --readme {page} --marker ..."
    )


HELDOUT = re.compile(r"<!-- (heldout-[a-z]+-table):start -->\n(.*?)<!-- \1:end -->", re.DOTALL)


def test_published_benchmark_tables_match_their_results_json() -> None:
    from lavis_syncmask.bench.report import published_table

    found = 0
    for page in PAGES:
        for _, block in HELDOUT.findall(page.read_text(encoding="utf-8")):
            source = block.split("`")[1]
            assert block == published_table(Path(source), ROOT), (
                f"{page.name}: the table from {source} is stale; regenerate it with "
                "lavis_syncmask.bench.report.published_table"
            )
            found += 1
    assert found, "the README lost the held-out benchmark table"
