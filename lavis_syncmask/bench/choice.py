"""Choosing each arm's setting on a dev catalogue: the runs of a sweep (one benchmark run
folder per setting, each made with its own `--set`), tabled per arm and setting, and the best
setting per arm by one figure. The choice is then used, unchanged, on a test catalogue with
other seeds (docs/benchmark.md, "The held-out protocol")."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lavis_syncmask.bench.arms import ARMS
from lavis_syncmask.bench.report import figure
from lavis_syncmask.bench.runs import RESULT

#: The figure a sweep is judged by: the full protocol scored as LAVIS does.
CHOICE_FIGURE = "full_itm_itc"


def sweep_points(folders: Sequence[Path], name: str = CHOICE_FIGURE) -> list[dict[str, Any]]:
    """Every finished run under `folders` (benchmark run folders): its arm, seed, setting (the
    run's `--set` options, as recorded in its `spec.json`) and figure `name`."""
    points = []
    for folder in folders:
        runs = sorted(Path(folder).glob(f"runs/*/{RESULT}"))
        if not runs and not Path(folder).is_dir():
            raise FileNotFoundError(f"--choose-from {folder}: no such folder")
        for path in runs:
            result = json.loads(path.read_text())
            spec = json.loads((path.parent / "spec.json").read_text())
            points.append({"arm": result["arm"], "seed": result["seed"],
                           "setting": " ".join(spec.get("overrides", ())) or "(as shipped)",
                           "value": figure(result, name), "folder": str(folder)})  # fmt: skip
    return points


def choose(points: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per arm: each setting's mean over its seeds, and the best setting (highest mean; a
    setting whose runs have no figure is never chosen). Ties go to the first setting seen."""
    out: dict[str, dict[str, Any]] = {}
    for arm in [a for a in ARMS if any(p["arm"] == a for p in points)]:
        settings: dict[str, list[float]] = {}
        for p in points:
            if p["arm"] == arm:
                settings.setdefault(p["setting"], []).append(p["value"])
        means = {s: sum(v) / len(v) for s, v in settings.items()}
        valid = {s: m for s, m in means.items() if not math.isnan(m)}
        best = max(valid, key=valid.__getitem__) if valid else None
        out[arm] = {"settings": means, "seeds": {s: len(v) for s, v in settings.items()},
                    "best": best}  # fmt: skip
    return out


def render_choice(choice: dict[str, dict[str, Any]], name: str = CHOICE_FIGURE) -> str:
    """Markdown: one row per arm, one column per setting, the chosen one in bold."""
    columns = sorted({s for entry in choice.values() for s in entry["settings"]})
    lines = [f"Dev sweep: {name} mean recall per arm and setting (mean over the seeds run); "
             "the chosen setting in bold.", "",
             "| arm | " + " | ".join(f"`{c}`" for c in columns) + " |",
             "|---|" + "---|" * len(columns)]  # fmt: skip
    for arm, entry in choice.items():
        cells = []
        for column in columns:
            value = entry["settings"].get(column)
            text = "n/a" if value is None or math.isnan(value) else f"{value:.1f}"
            cells.append(f"**{text}**" if column == entry["best"] else text)
        lines.append(f"| {ARMS[arm].label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_choice(folders: Sequence[Path], out: Path) -> str:
    """`choice.json` and `choice.md` in `out` from the sweep in `folders`; returns the table."""
    points = sweep_points(folders)
    if not points:
        raise ValueError(f"no finished runs under {', '.join(map(str, folders))}")
    choice = choose(points)
    out.mkdir(parents=True, exist_ok=True)
    record = {"figure": CHOICE_FIGURE, "folders": [str(f) for f in folders],
              "choice": choice, "points": points}  # fmt: skip
    (out / "choice.json").write_text(json.dumps(record, indent=1, default=float) + "\n")
    table = render_choice(choice)
    (out / "choice.md").write_text(table)
    return table
