"""When did each benchmark run leave the ITC plateau, and does that predict its retrieval?

Every arm starts at chance ITC loss, ln(batch + queue), and stays there for a while; the
update at which a run leaves that plateau varies between seeds. This reads the per-step ITC
loss that each run of a `python -m lavis_syncmask.bench` folder recorded (`runs/*/result.json`,
from the runner's `metrics.jsonl`; no training), finds for each run the first update at which
the mean ITC loss over a window falls `margin` below chance, and relates that update to the
run's full-protocol mean recall (LAVIS's scoring) with a Spearman rank correlation.

    python benchmarks/plateau_exit.py --bench output/bench/full --out output/bench/full/plateau_exit.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr


def plateau_exit(itc_loss: list[float], chance: float, margin: float, window: int) -> int | None:
    """First step (1-based, the window's last) whose `window`-step mean ITC loss is at least
    `margin` below `chance`; None when the run never leaves the plateau."""
    losses = np.asarray(itc_loss, dtype=float)
    if losses.size < window:
        return None
    means = np.convolve(losses, np.ones(window) / window, mode="valid")
    below = np.flatnonzero(means <= chance - margin)
    return int(below[0]) + window if below.size else None


def read_bench(folder: Path) -> list[dict[str, Any]]:
    """Each finished run of a benchmark folder, with its chance ITC loss: ln(batch + queue)
    from the run's resolved `config.yaml`."""
    from omegaconf import OmegaConf

    runs = []
    for path in sorted(folder.glob("runs/*/result.json")):
        run = json.loads(path.read_text())
        config = OmegaConf.load(path.parent / "config.yaml")
        run["chance"] = math.log(config.run.batch_size_train + config.model.queue_size)
        run["catalogue"] = Path(config.datasets.fashiongen_pretrain.data_root).name
        runs.append(run)
    return runs


def analyse(runs: list[dict[str, Any]], margin: float, window: int) -> dict[str, Any]:
    """Per run: the plateau exit update and its recall; per catalogue and overall: Spearman's
    rho between the exit update (a run that never left counts as the last) and the recall."""
    rows = []
    for run in sorted(runs, key=lambda r: (r["catalogue"], r["arm"], r["seed"])):
        full = run["metrics"].get("full_itm_itc") or run["metrics"]["full_itm"]
        rows.append(
            {
                "catalogue": run["catalogue"],
                "method": run["arm"],
                "seed": run["seed"],
                "exit_step": plateau_exit(
                    run["history"]["loss_itc"], run["chance"], margin, window
                ),  # fmt: skip
                "steps": run["updates"],
                "full_r_mean": full["r_mean"],
            }
        )
    groups = {"all": rows}
    for name in sorted({r["catalogue"] for r in rows}):
        groups[name] = [r for r in rows if r["catalogue"] == name]
    correlation = {name: _spearman(group) for name, group in groups.items()}
    # The same over seeds only: each run's exit and recall minus its (catalogue, method) mean,
    # so that a method that is both early and good does not make the correlation by itself.
    correlation["within_method"] = _spearman(rows, centred=True)
    return {"margin": margin, "window": window, "runs": rows, "correlation": correlation}


def _spearman(rows: list[dict[str, Any]], centred: bool = False) -> dict[str, float]:
    exits = np.array([r["exit_step"] if r["exit_step"] is not None else r["steps"] for r in rows])
    recall = np.array([r["full_r_mean"] for r in rows], dtype=float)
    if centred:
        keys = [(r["catalogue"], r["method"]) for r in rows]
        for key in set(keys):
            members = np.array([k == key for k in keys])
            exits = np.where(members, exits - exits[members].mean(), exits)
            recall = np.where(members, recall - recall[members].mean(), recall)
    rho, p = spearmanr(exits, recall)
    return {"n": len(rows), "spearman_rho": float(rho), "p_value": float(p)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", required=True, help="a python -m lavis_syncmask.bench --out")
    parser.add_argument("--out", default=None, help="write the analysis here as JSON")
    parser.add_argument("--margin", type=float, default=0.25, help="loss below chance (nats)")
    parser.add_argument("--window", type=int, default=10, help="steps averaged")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    result = analyse(read_bench(Path(args.bench)), args.margin, args.window)
    result["command"] = "python benchmarks/plateau_exit.py " + " ".join(argv)
    for row in result["runs"]:
        left = "never" if row["exit_step"] is None else f"at step {row['exit_step']}"
        print(
            f"{row['catalogue']:<12} {row['method']:<26} seed {row['seed']}: left the plateau "
            f"{left}, full mean R {row['full_r_mean']:.1f}"
        )
    for name, c in result["correlation"].items():
        print(f"{name}: Spearman rho {c['spearman_rho']:+.2f} (p {c['p_value']:.3f}, n {c['n']})")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
