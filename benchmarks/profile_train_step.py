"""Where a SyncMask training step spends its time, on CPU (issue 10, item 6): the share of the
momentum teacher (EMA update, teacher encoders, and the extra fusion pass for the masks), of
each loss's own work, of the backward pass, and of the attention core (score and context
matmuls + softmax) against the dense layers, from `torch.profiler`.

The GPU targets (SyncMask step <= 1.3x ALBEF's, MFU >= 40%) cannot be measured here; this says
which part would have to shrink. Step parts are `record_function` ranges put around the model's
own methods; op times are the profiler's self CPU times.

    python benchmarks/profile_train_step.py --size tiny --batch 16
    python benchmarks/profile_train_step.py --size base --batch 4
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile, record_function

sys.path.insert(0, str(Path(__file__).resolve().parent))

from smoke import parse_with_smoke  # noqa: E402

#: Model methods timed as step parts; `teacher_attention` runs inside `_teacher`.
PARTS = ("_teacher", "teacher_attention", "_itm_loss", "_mlm_loss", "_mim_loss")
#: The attention core in LAVIS's BERT and ViT blocks: QK^T and AV matmuls, and the softmax.
ATTENTION_OPS = ("aten::bmm", "aten::_softmax", "aten::baddbmm")
DENSE_OPS = ("aten::addmm", "aten::mm")


def _labelled(name: str, method: Any) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with record_function(f"part::{name}"):
            return method(*args, **kwargs)

    return wrapper


def op_shares(events: Any) -> dict[str, Any]:
    """Attention-core and dense-matmul shares of all ops' self CPU time, and the top ops."""
    self_ms = {e.key: e.self_cpu_time_total / 1e3 for e in events}
    ops = sum(self_ms.values())
    return {
        "attention_core_share_of_op_time": round(
            sum(self_ms.get(k, 0.0) for k in ATTENTION_OPS) / ops, 4
        ),
        "dense_matmul_share_of_op_time": round(
            sum(self_ms.get(k, 0.0) for k in DENSE_OPS) / ops, 4
        ),
        "top_ops_ms": {
            e.key: round(e.self_cpu_time_total / 1e3, 1)
            for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:8]
        },
    }


def profile_albef(model: Any, optimizer: Any, samples: dict) -> dict[str, Any]:
    """ALBEF's methods have other names: the step total and the op shares only."""
    from gpu_step_bench import train_step

    train_step(model, optimizer, samples, None)  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        with record_function("part::step"):
            train_step(model, optimizer, samples, None)
    events = prof.key_averages()
    step = {e.key: e.cpu_time_total for e in events}["part::step"] / 1e3
    return {"step_ms": round(step, 1), **op_shares(events)}


def profile_step(model: Any, optimizer: Any, samples: dict) -> dict[str, Any]:
    from gpu_step_bench import train_step

    from lavis_syncmask.runner.loop import STEP_LABELS

    for name in PARTS:
        setattr(model, name, _labelled(name, getattr(model, name)))
    train_step(model, optimizer, samples, None)  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        with record_function("part::step"):
            train_step(model, optimizer, samples, None)  # the runner labels its phases
    events = prof.key_averages()
    total = {e.key: e.cpu_time_total / 1e3 for e in events}
    step = total["part::step"]
    phases = {label: f"part::{phase}" for phase, label in STEP_LABELS.items()}
    total = {phases.get(k, k): v for k, v in total.items()}
    shares = {k[6:]: round(v / step, 4) for k, v in total.items() if k.startswith("part::")}
    return {"step_ms": round(step, 1), "shares_of_step": shares, **op_shares(events)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=["tiny", "base"], default="tiny")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--variants", nargs="+", default=["syncmask", "albef"])
    args = parse_with_smoke(parser, {"size": "tiny", "batch": 2})
    from gpu_step_bench import build, make_batch, write_bench_vocab

    from lavis_syncmask.common.processes import run_group

    commit = run_group(["git", "rev-parse", "--short", "HEAD"])
    print(
        f"machine: {platform.platform()}, {torch.get_num_threads()} threads; commit "
        f"{commit.stdout.strip()}; config: {vars(args)}"
    )
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        vocab = write_bench_vocab(Path(tmp))
        for variant in args.variants:
            model, optimizer = build(args.size, variant, vocab, torch.device("cpu"))
            samples = make_batch(args.size, model, torch.device("cpu"), args.batch)
            profiler = profile_albef if variant == "albef" else profile_step
            results[variant] = profiler(model, optimizer, samples)
            print(variant, json.dumps(results[variant], indent=1))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
