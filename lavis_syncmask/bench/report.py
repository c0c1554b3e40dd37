"""The benchmark's outputs from its runs' results: summary per arm, paired comparisons of arm
(a) with every other arm (Holm-adjusted within each arm's family, `arms.Arm.family`: the
headline comparisons and the ablations, and over the whole table), the markdown table
(`bench.md`), the JSON (`bench.json`) and two plots (`bench_metrics.png`, `bench_losses.png`).

Two families rather than one table-wide family: the headline comparisons ((a) against random
masks, LAVIS's ALBEF and BLIP) were fixed before any test-catalogue run, and adding an ablation
to a run folder must not change what they show. Each row also carries the whole table's Holm p
(`p_holm_table`), and the table prints both."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from lavis_syncmask.bench.arms import ARMS
from lavis_syncmask.bench.stats import adjust_family, compare_arms, mean_std

#: Figures per run: name -> (evaluation, metric). `full_itm_itc` is LAVIS's own scoring.
FIGURES = {
    "sample100": ("sample100", "r_mean"),
    "full_itm_itc": ("full_itm_itc", "r_mean"),
    "full_itm": ("full_itm", "r_mean"),
}
#: The figures compared (each in its arm's family): the headline figures.
FAMILY = ("sample100", "full_itm_itc")
HEAD = "a_syncmask"


def figure(run: dict[str, Any], name: str) -> float:
    if name in FIGURES:
        evaluation, metric = FIGURES[name]
        return float(run["metrics"].get(evaluation, {}).get(metric, math.nan))
    return float(run.get("sync", {}).get(name, math.nan))


def summarize(runs: list[dict[str, Any]], arms: list[str]) -> dict[str, Any]:
    """Per arm: its seeds and mean / std over them of every figure it has."""
    out: dict[str, Any] = {}
    for arm in arms:
        group = sorted((r for r in runs if r["arm"] == arm), key=lambda r: r["seed"])
        if not group:
            continue
        entry: dict[str, Any] = {"seeds": [r["seed"] for r in group]}
        names = [*FIGURES, "word_sync_precision", "patch_sync_precision", "train_s"]
        for name in names:
            values = [float(r[name]) if name == "train_s" else figure(r, name) for r in group]
            if not all(math.isnan(v) for v in values):
                entry[name] = mean_std(values)
        out[arm] = entry
    return out


def comparisons(runs: list[dict[str, Any]], arms: list[str]) -> list[dict[str, Any]]:
    """Arm (a) against every other arm run, on each headline figure; Holm within each arm's
    family and over them all."""
    if HEAD not in arms:
        return []
    pairs = [(HEAD, other) for other in arms if other != HEAD]
    rows: list[dict[str, Any]] = []
    for name in FAMILY:
        values: dict[str, dict[int, float]] = {}
        for run in runs:
            value = figure(run, name)
            if not math.isnan(value):
                values.setdefault(run["arm"], {})[run["seed"]] = value
        rows += compare_arms(values, pairs, name)
    for row in rows:
        row["family"] = ARMS[row["vs"]].family
    return adjust_family(rows)


def _ms(entry: dict[str, Any], key: str, digits: int = 1) -> str:
    if key not in entry:
        return "n/a"
    if entry[key]["n"] < 2:
        return f"{entry[key]['mean']:.{digits}f} (1 seed)"
    return f"{entry[key]['mean']:.{digits}f} ± {entry[key]['std']:.{digits}f}"


def _p(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


#: The per-arm table's columns: header, summary key, digits.
COLUMNS = (
    ("sample-100 mean R", "sample100", 1),
    ("full mean R (LAVIS ITM+ITC)", "full_itm_itc", 1),
    ("full mean R (ITM prob.)", "full_itm", 1),
    ("word sync", "word_sync_precision", 3),
    ("patch sync", "patch_sync_precision", 3),
    ("train s", "train_s", 0),
)


def render_table(results: dict[str, Any]) -> str:
    """Markdown: one row per arm (the columns some arm has), then the paired comparisons."""
    summary = results["summary"]
    columns = [c for c in COLUMNS if any(c[1] in entry for entry in summary.values())]
    lines = [
        f"Results: `{results['out']}` ({results['length']}; seeds {results['seeds']}; "
        "mean ± std over seeds; full protocol scored as LAVIS (ITM logit + ITC) and by ITM "
        "probability).",
        "",
        "| arm | " + " | ".join(header for header, _, _ in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for arm, entry in summary.items():
        cells = [_ms(entry, key, digits) for _, key, digits in columns]
        lines.append(f"| {ARMS[arm].label} | " + " | ".join(cells) + " |")
    rows = results["comparisons"]
    if rows:
        lines += ["", *_comparison_table(rows)]
    return "\n".join(lines) + "\n"


def _comparison_table(rows: list[dict[str, Any]]) -> list[str]:
    """The paired comparisons; by family (and with the whole table's Holm p) when the rows
    name families, else one family (results written before families, e.g. the retired
    matrix's, render as they were published)."""
    families = "family" in rows[0]
    if families:
        rows = sorted(rows, key=lambda r: r["family"] != "headline")  # headline first, stable
        counts = Counter(r["family"] for r in rows)  # insertion order: headline first
        sizes = ", ".join(f"{family} {n}" for family, n in counts.items())
        intro = ("Paired differences over seeds (95% t-interval, paired t-test p; Holm-adjusted "
                 f"within each family of comparisons ({sizes}) and over all {len(rows)} of the "
                 "table):")  # fmt: skip
        header = ["| family | comparison | figure | Δ [95% CI] | p | Holm p (family) | "
                  "Holm p (table) | seeds |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    else:
        intro = ("Paired differences over seeds (95% t-interval, paired t-test p, Holm-adjusted "
                 f"over these {len(rows)} comparisons):")  # fmt: skip
        header = ["| comparison | figure | Δ [95% CI] | p | Holm p | seeds |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
    lines = [intro, "", *header]
    for r in rows:
        interval = "" if math.isnan(r["low"]) else f" [{r['low']:+.1f}, {r['high']:+.1f}]"
        cells = [f"{ARMS[r['arm']].label} − {ARMS[r['vs']].label}", r["metric"],
                 f"{r['mean']:+.1f}{interval}", _p(r["p"]), _p(r["p_holm"])]  # fmt: skip
        if families:
            cells = [r["family"], *cells, _p(r["p_holm_table"])]
        lines.append("| " + " | ".join([*cells, str(len(r["seeds"]))]) + " |")
    return lines


def mean_curves(runs: list[dict[str, Any]], window: int = 10) -> dict[str, dict[str, list]]:
    """Per arm and loss term: the per-step loss averaged over seeds, moving-averaged."""
    out: dict[str, dict[str, list[float]]] = {}
    for arm in sorted({r["arm"] for r in runs}):
        group = [r["history"] for r in runs if r["arm"] == arm]
        out[arm] = {}
        for key in ("loss", "loss_itc", "loss_itm"):
            if all(key in h for h in group):
                length = min(len(h[key]) for h in group)
                mean = np.mean([h[key][:length] for h in group], axis=0)
                width = max(1, min(window, mean.size))
                smooth = np.convolve(mean, np.ones(width) / width, mode="valid")
                out[arm][key] = smooth.round(4).tolist()
    return out


def plot(results: dict[str, Any], out: Path) -> None:
    """`bench_metrics.png` (mean recall per arm, std over seeds) and `bench_losses.png`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = results["summary"]
    arms = list(summary)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, key in zip(axes, ("sample100", "full_itm_itc")):
        shown = [a for a in arms if key in summary[a]]
        ax.bar(range(len(shown)), [summary[a][key]["mean"] for a in shown],
               yerr=[summary[a][key]["std"] for a in shown], capsize=3)  # fmt: skip
        ax.set_xticks(range(len(shown)))
        ax.set_xticklabels([ARMS[a].label for a in shown], rotation=30, ha="right", fontsize=8)
        ax.set_title(f"{key}: mean of R@1/5/10, both directions (%)")
    fig.tight_layout()
    fig.savefig(out / "bench_metrics.png", dpi=110)
    plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, key in zip(axes, ("loss_itc", "loss_itm")):
        for arm, terms in results["loss_curves"].items():
            if key in terms:
                ax.plot(terms[key], label=ARMS[arm].label, linewidth=1)
        ax.set_title(f"{key} (mean over seeds, smoothed)")
        ax.set_xlabel("optimizer update")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "bench_losses.png", dpi=110)
    plt.close(fig)


def published_table(path: Path, root: Path = Path(".")) -> str:
    """A results file's table as the docs carry it: the file it was rendered from (`path`,
    relative to `root`), then the table (`tests/test_docs.py` holds the docs' copies to it)."""
    results = json.loads((root / path).read_text())
    return f"From `{path.as_posix()}`:\n\n" + render_table(results)


def write_outputs(results: dict[str, Any], runs: list[dict[str, Any]], out: Path) -> str:
    """`bench.json`, `bench.md` and the plots into `out`; returns the table."""
    results["loss_curves"] = mean_curves(runs)
    results["runs"] = [{k: v for k, v in r.items() if k != "history"} for r in runs]
    (out / "bench.json").write_text(json.dumps(results, indent=1, default=float) + "\n")
    table = render_table(results)
    (out / "bench.md").write_text(table)
    plot(results, out)
    return table
