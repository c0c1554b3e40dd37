"""Watch a benchmark method's ITC features while it trains: the diagnosis behind the recipe's
queue length. Trains one method of `compare_train.METHODS` with the benchmark recipe, optionally
on a subset of its loss terms and with another queue length, and prints every `--every` steps
the mean of each loss term, the mean pairwise cosine of the batch's image and text ITC features
(near 1: collapsed) and the gradient norm of each top-level module before clipping.

    python benchmarks/probe_collapse.py e_albef --terms itc --queue-size 256   # collapses
    python benchmarks/probe_collapse.py e_albef --terms itc --queue-size 32    # trains
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare import KINDS, ROOT  # noqa: E402
from compare_train import METHODS, Recipe, batches, optimizer_for, prepare_run, set_lr  # noqa: E402
from feature_spread import mean_off_diagonal_cosine  # noqa: E402

TERMS = ("itc", "itm", "mlm", "mim", "lm")


def module_grad_norms(model: torch.nn.Module) -> dict[str, float]:
    """L2 norm of the gradient of each top-level child (`visual_encoder`, `text_proj`, ...)."""
    squares: dict[str, float] = {}
    for name, param in model.named_parameters():
        if param.grad is not None:
            top = name.split(".", 1)[0]
            squares[top] = squares.get(top, 0.0) + float(param.grad.pow(2).sum())
    return {name: value**0.5 for name, value in squares.items()}


def probe(
    method: str, seed: int, data_dir: Path, recipe: Recipe, terms: tuple[str, ...] | None
) -> Iterator[dict[str, Any]]:
    """One record per optimizer step. `terms=None` trains on the method's own total loss, else
    on the sum of the named terms (the others are still computed and recorded)."""
    model, train_set, _ = prepare_run(method, seed, data_dir, recipe)
    optimizer = optimizer_for(model, recipe)
    features: dict[str, torch.Tensor] = {}
    for name in ("vision_proj", "text_proj"):  # every method's ITC projections are named so

        def keep(_module: Any, _inputs: Any, output: torch.Tensor, name: str = name) -> None:
            features.setdefault(name, output.detach())  # the student's, before the teacher's

        getattr(model, name).register_forward_hook(keep)
    stream = batches(train_set, method, recipe, seed)
    model.train()
    for step in range(recipe.steps):
        epoch, iters, per_epoch, samples = next(stream)
        samples.update(epoch=epoch, iters=iters, num_iters_per_epoch=per_epoch)
        set_lr(optimizer, step, recipe)
        features.clear()
        out = model(samples)
        losses = {t: getattr(out, f"loss_{t}", None) for t in TERMS}
        losses = {t: v for t, v in losses.items() if v is not None}
        loss = out.loss if terms is None else sum(losses[t] for t in terms)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grads = module_grad_norms(model)
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.max_grad_norm)
        optimizer.step()
        yield {
            "step": step + 1,
            **{f"loss_{t}": float(v.detach()) for t, v in losses.items()},
            "image_cos": mean_off_diagonal_cosine(features["vision_proj"]),
            "text_cos": mean_off_diagonal_cosine(features["text_proj"]),
            **{f"grad_{k}": v for k, v in grads.items()},
        }


def window_means(records: list[dict[str, Any]]) -> dict[str, float]:
    keys = [k for k in records[-1] if k != "step"]
    return {k: round(float(np.mean([r[k] for r in records if k in r])), 3) for k in keys}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("method", choices=list(METHODS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help="default: the full recipe's")
    parser.add_argument("--terms", default=None, help="e.g. itc or itc,itm; default: all")
    parser.add_argument("--queue-size", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--every", type=int, default=50, help="steps per printed line")
    parser.add_argument("--data", default=str(ROOT / "data" / "bench" / "default_500"))
    args = parser.parse_args(argv)
    terms = tuple(args.terms.split(",")) if args.terms else None
    if terms and not set(terms) <= set(TERMS):
        parser.error(f"--terms takes a comma-separated subset of {TERMS}")
    recipe: Recipe = KINDS["full"]["recipe"]
    changes = {"steps": args.steps, "queue_size": args.queue_size}
    recipe = dataclasses.replace(recipe, **{k: v for k, v in changes.items() if v is not None})
    data = Path(args.data)
    if not (data / "vocab").exists():
        parser.error(f"{data}: no catalogue there (make bench generates data/bench/default_500)")
    records: list[dict[str, Any]] = []
    for record in probe(args.method, args.seed, data, recipe, terms):
        records.append(record)
        if record["step"] % args.every == 0 or record["step"] == recipe.steps:
            line = {"step": record["step"], **window_means(records[-args.every :])}
            print(json.dumps(line), flush=True)
    return records


if __name__ == "__main__":
    main()
