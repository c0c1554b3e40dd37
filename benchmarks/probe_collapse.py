"""Watch a run's ITC features while it trains: the diagnosis behind the recipe's queue length.

Reads the per-step `metrics.jsonl` that the runner writes with `run.log_every_step: true` (every
benchmark arm sets it) and prints every `--every` updates the window's mean of each loss term
and of the mean pairwise cosine of the batch's image and text ITC features (near 1: collapsed).
Train the run with the product itself, e.g. LAVIS's ALBEF with the old 256-entry queue, or
SyncMask on ITC alone:

    python -m lavis_syncmask.train --cfg-path projects/syncmask/bench/e_albef.yaml \
        --job-id albef_q256 --options model.queue_size=256 \
        datasets.fashiongen_pretrain.data_root=data/bench/default_500 \
        model.tokenizer=data/bench/default_500/vocab run.output_dir=output/probe
    python -m lavis_syncmask.train --cfg-path projects/syncmask/bench/a_syncmask.yaml \
        --job-id itc_only --options model.itm_weight=0 model.mlm_weight=0 model.mim_weight=0 ...
    python benchmarks/probe_collapse.py output/probe/albef_q256 --every 50
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from lavis_syncmask.runner.step_log import read_step_log

SHOWN = ("loss_itc", "loss_itm", "loss_mlm", "loss_mim", "loss_lm", "image_cos", "text_cos")


def window_means(lines: list[dict[str, Any]]) -> dict[str, float]:
    """Mean of each shown value over `lines` (values missing or NaN left out)."""
    out = {}
    for key in SHOWN:
        values = [x[key] for x in lines if key in x and not math.isnan(x[key])]
        if values:
            out[key] = round(sum(values) / len(values), 3)
    return out


def windows(lines: list[dict[str, Any]], every: int) -> list[dict[str, Any]]:
    """One record per `every` optimizer updates (and the last, partial, window)."""
    out, start = [], 0
    for i, line in enumerate(lines):
        last = i + 1 == len(lines)
        if last or (lines[i + 1]["update"] != line["update"] and (line["update"] + 1) % every == 0):
            out.append({"update": line["update"] + 1, **window_means(lines[start : i + 1])})
            start = i + 1
    return out


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a training run folder holding metrics.jsonl")
    parser.add_argument("--every", type=int, default=50, help="updates per printed line")
    args = parser.parse_args(argv)
    lines = read_step_log(Path(args.run))
    if not lines:
        parser.error(f"{args.run}: no metrics.jsonl (train with run.log_every_step=true)")
    records = windows(lines, args.every)
    for record in records:
        print(json.dumps(record), flush=True)
    return records


if __name__ == "__main__":
    main()
