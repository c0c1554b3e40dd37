"""The markdown table of the committed results of the retired `benchmarks/compare.py`
(`benchmarks/results/bench_*.json`, made by its private training loop), kept so the README's
existing tables can still be checked against their JSON. New results come from
`python -m lavis_syncmask.bench` (`lavis_syncmask/bench/report.py`).

The README shows tables between `<!-- bench-table:start -->` / `<!-- bench-table:end -->` (and
`bench-<name>-table` pairs); `render_table(results)` regenerates each from its JSON alone, so a
test can check that nothing in them was edited by hand.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from lavis_syncmask.bench.stats import mean_std

#: The method every other one is paired against (LAVIS's own ALBEF).
REFERENCE = "e_albef"

#: Two-sided 95% Student t quantiles by degrees of freedom (t-interval over seeds).
T_975 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
}
METRICS = {
    "s100": ("sample100", "r_mean"),
    "full": ("full", "r_mean"),
}


def _value(run: dict[str, Any], key: str) -> float:
    if key in METRICS:
        group, name = METRICS[key]
        return float(run[group][name])
    if key == "itm_auc":
        return float(run["itm_auc"])
    return float(run["sync"].get(key, math.nan))


def paired_difference(values: list[float], reference: list[float]) -> dict[str, float]:
    """Mean of per-seed differences and its 95% t-interval (seeds paired by position), with
    the rounded t quantiles (`T_975`) that rendered the committed tables; new tables use
    `lavis_syncmask.bench.stats`, whose quantiles are exact."""
    diff = np.asarray(values, dtype=np.float64) - np.asarray(reference, dtype=np.float64)
    n = diff.size
    mean = float(diff.mean())
    if n < 2:
        return {"mean": mean, "low": math.nan, "high": math.nan, "n": n}
    half = T_975.get(n - 1, 2.23) * float(diff.std(ddof=1)) / math.sqrt(n)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}


def summarize(runs: list[dict[str, Any]], methods: list[str], reference: str) -> dict[str, Any]:
    """Per method: mean / std over seeds of each figure, and paired differences to
    `reference` (when it was run) on the two mean recalls."""
    by_method = {
        m: sorted((r for r in runs if r["method"] == m), key=lambda r: r["seed"]) for m in methods
    }
    out: dict[str, Any] = {}
    for method, group in by_method.items():
        if not group:
            continue
        entry: dict[str, Any] = {"seeds": [r["seed"] for r in group]}
        for key in ("s100", "full", "itm_auc", "word_sync_precision", "patch_sync_precision"):
            values = [_value(r, key) for r in group]
            if not all(math.isnan(v) for v in values):
                entry[key] = mean_std(values)
        ref = by_method.get(reference) or []
        if method != reference and [r["seed"] for r in ref] == entry["seeds"]:
            entry["vs_reference"] = {
                key: paired_difference(
                    [_value(r, key) for r in group], [_value(r, key) for r in ref]
                )
                for key in METRICS
            }
        out[method] = entry
    return out


def _ms(entry: dict[str, Any], key: str, digits: int = 1) -> str:
    if key not in entry:
        return "n/a"
    if entry[key].get("n", 2) < 2:  # one seed has no spread: never print it as ± 0
        return f"{entry[key]['mean']:.{digits}f} (1 seed)"
    return f"{entry[key]['mean']:.{digits}f} ± {entry[key]['std']:.{digits}f}"


def _diff(entry: dict[str, Any], key: str, is_reference: bool) -> str:
    if is_reference:
        return "reference"
    d = entry.get("vs_reference", {}).get(key)
    if d is None:  # ALBEF was not run with the same seeds: nothing to pair
        return "n/a (unpaired)"
    if d.get("n", 2) < 2:
        return f"{d['mean']:+.1f} (1 seed)"
    return f"{d['mean']:+.1f} [{d['low']:+.1f}, {d['high']:+.1f}]"


def render_table(results: dict[str, Any]) -> str:
    """The markdown table of one results JSON (settings x methods, cost ratios)."""
    labels = results["labels"]
    cost = results.get("cost", {})
    lines = [
        f"Results: `{results['file']}` ({results['kind']}; {results['recipe']['steps']} steps, "
        f"{len(results['seeds'])} seeds {results['seeds']}; mean ± std over seeds; "
        "Δ: paired difference to ALBEF with its 95% t-interval).",
        "",
        "| setting | method | sample-100 mean R | full mean R | Δ sample-100 | Δ full | ITM AUC | "
        "word sync | patch sync | step / ALBEF | memory / ALBEF |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for setting, block in results["settings"].items():
        for method, entry in block["summary"].items():
            c = cost.get(method) if setting == "default" else None
            step = f"{c['step_ratio']:.2f}" if c else ""
            mem = f"{c['memory_ratio']:.2f}" if c else ""
            lines.append(
                f"| {setting} | {labels[method]} | {_ms(entry, 's100')} | {_ms(entry, 'full')} | "
                f"{_diff(entry, 's100', method == REFERENCE)} | "
                f"{_diff(entry, 'full', method == REFERENCE)} | {_ms(entry, 'itm_auc', 3)} | "
                f"{_ms(entry, 'word_sync_precision', 3)} | {_ms(entry, 'patch_sync_precision', 3)} | "
                f"{step} | {mem} |"
            )
    return "\n".join(lines) + "\n"


def readme_blocks(readme: str) -> list[str]:
    """The text of every generated table block of the README: between
    `<!-- bench-table:start -->` and its end marker, or `<!-- bench-<name>-table:start -->`."""
    pattern = r"<!-- (bench-(?:[a-z]+-)?table):start -->\n(.*?)<!-- \1:end -->"
    return [body for _, body in re.findall(pattern, readme, flags=re.DOTALL)]


def readme_block(readme: str) -> str:
    """The first generated table block of the README."""
    return readme_blocks(readme)[0]


def plot_metrics(results: dict[str, Any], out: Path) -> None:
    """Mean recall per method and setting, error bars = std over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=False)
    settings = list(results["settings"])
    for ax, key, title in zip(
        axes, ("s100", "full"), ("sample-100 mean recall", "full protocol mean recall")
    ):
        methods = list(results["labels"])
        width = 0.8 / len(settings)
        for j, setting in enumerate(settings):
            summary = results["settings"][setting]["summary"]
            xs = [i + j * width for i, m in enumerate(methods) if m in summary]
            ys = [summary[m][key]["mean"] for m in methods if m in summary]
            es = [summary[m][key]["std"] for m in methods if m in summary]
            ax.bar(xs, ys, width, yerr=es, capsize=3, label=setting)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(methods))])
        ax.set_xticklabels(
            [results["labels"][m] for m in methods], rotation=30, ha="right", fontsize=8
        )
        if key == "s100":  # random scores: mean of R@1/5/10 over 101 candidates
            ax.axhline(100 * 16 / (3 * 101), color="grey", linestyle="--", linewidth=1)
            ax.text(-0.4, 100 * 16 / (3 * 101), " chance", va="bottom", fontsize=7, color="grey")
        ax.set_title(title)
        ax.set_ylabel("mean of R@1/5/10, both directions (%)")
        ax.legend(title="invisible text")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_losses(
    curves: dict[str, dict[str, list[float]]], labels: dict[str, str], out: Path
) -> None:
    """ITC and ITM training loss per step (mean over seeds), default setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, key in zip(axes, ("loss_itc", "loss_itm")):
        for method, terms in curves.items():
            if key in terms:
                ax.plot(terms[key], label=labels[method], linewidth=1)
        ax.set_title(f"{key} (mean over seeds, smoothed)")
        ax.set_xlabel("optimizer step")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def mean_curves(runs: list[dict[str, Any]], window: int = 10) -> dict[str, dict[str, list[float]]]:
    """Per method and loss term: the mean over seeds of the per-step loss, moving-averaged."""
    out: dict[str, dict[str, list[float]]] = {}
    for method in sorted({r["method"] for r in runs}):
        group = [r["history"] for r in runs if r["method"] == method]
        out[method] = {}
        for key in ("loss", "loss_itc", "loss_itm"):
            if all(key in h for h in group):
                mean = np.mean([h[key] for h in group], axis=0)
                kernel = np.ones(min(window, mean.size)) / min(window, mean.size)
                out[method][key] = np.convolve(mean, kernel, mode="valid").round(4).tolist()
    return out


def update_readme(readme: Path, table: str, marker: str = "bench-table") -> None:
    """Replace the README's block between `<!-- {marker}:start -->` and its end with `table`."""
    text = readme.read_text(encoding="utf-8")
    start_tag, end_tag = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    start, end = text.index(start_tag) + len(start_tag), text.index(end_tag)
    readme.write_text(text[:start] + "\n" + table + text[end:], encoding="utf-8")


def holm_family(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every paired comparison the table makes (each method against ALBEF, per catalogue and
    protocol), with its t-test p-value and the Holm-adjusted p over that whole family: the
    correction the retired table never printed."""
    from lavis_syncmask.bench import stats

    by: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for run in runs:
        by.setdefault((run["catalogue"], run["method"]), {})[run["seed"]] = run
    rows = []
    for (catalogue, method), seeds in sorted(by.items()):
        reference = by.get((catalogue, REFERENCE), {})
        if method == REFERENCE or not reference:
            continue
        shared = sorted(set(seeds) & set(reference))
        for protocol in ("sample100", "full"):
            d = stats.paired_difference(
                [seeds[s][protocol]["r_mean"] for s in shared],
                [reference[s][protocol]["r_mean"] for s in shared],
            )
            rows.append({"catalogue": catalogue, "method": method, "protocol": protocol,
                         "seeds": shared, **{k: d[k] for k in ("mean", "low", "high", "p")}})  # fmt: skip
    for row, adjusted in zip(rows, stats.holm([r["p"] for r in rows]), strict=True):
        row["p_holm"] = adjusted
    return rows


def main(argv: list[str] | None = None) -> None:
    """`python benchmarks/compare_report.py --json RESULTS.json [--readme README.md]`: print
    the table of a results file (and put it into the README between the markers);
    `--holm RUNS.jsonl [--out F.json]`: the table's comparisons with Holm-adjusted p-values."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--json", default=None)
    parser.add_argument("--readme", default=None)
    parser.add_argument("--marker", default="bench-table", help="e.g. bench-full-table")
    parser.add_argument("--holm", default=None, help="a runs .jsonl: its comparison family")
    parser.add_argument("--out", default=None, help="with --holm: write the family here")
    args = parser.parse_args(argv)
    if args.holm:
        lines = Path(args.holm).read_text().splitlines()
        family = holm_family([json.loads(line) for line in lines if line.strip()])
        for r in family:
            print(f"{r['catalogue']:<12} {r['method']:<17} {r['protocol']:<9} "
                  f"{r['mean']:+6.1f} [{r['low']:+6.1f}, {r['high']:+6.1f}] "
                  f"p {r['p']:.3f}, Holm p {r['p_holm']:.2f}")  # fmt: skip
        if args.out:
            Path(args.out).write_text(json.dumps(family, indent=1) + "\n")
        return
    if not args.json:
        parser.error("--json or --holm is required")
    table = render_table(json.loads(Path(args.json).read_text()))
    print(table)
    if args.readme:
        update_readme(Path(args.readme), table, args.marker)


if __name__ == "__main__":
    main()
