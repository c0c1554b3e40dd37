"""Parameters and Adam optimizer state of the downstream heads at base size, before and after
they stopped inheriting the pretraining model (issue 11, item 4).

"before" rebuilds the old layout exactly: the head class subclassed `syncmask_fashion`, so it
carried the momentum encoders and projections, the ITC queue, the ITM head, the text ITC
projection and the MLM head (its yaml set `use_mim: False`, `queue_size: 256`). "after" is the
shipped head (`FusionEncoders` + its own layers). Both are built at the `base` preset (ViT-B/16
+ BERT-base at 256 px) with random weights and a 30,522-token vocabulary (bert-base-uncased's
size, written locally: no download). Each model then takes one real AdamW step on a batch of
two (forward, backward, step) and the optimizer's state tensors are summed: AdamW keeps state
only for parameters that received a gradient, so this is the state a fine-tuning run holds.
Each configuration runs in its own process, so peak RSS is comparable too.

    python benchmarks/bench_head_memory.py [--heads cls tgir] [--batch 2] [--preset base]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from smoke import parse_with_smoke

REPO = Path(__file__).resolve().parents[1]

IMAGE_SIZES = {"base": 256, "tiny": 128}  # the presets' image sizes
SMOKE = {"preset": "tiny", "batch": 2}
VOCAB_SIZE = 30522  # bert-base-uncased
NUM_CLASSES = 48  # FashionGen subcategories (order of magnitude; the head layer is tiny)


def write_vocab(folder: Path) -> Path:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = [f"tok{i}" for i in range(VOCAB_SIZE - len(specials))]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(specials + words) + "\n", encoding="utf-8")
    return folder


def old_layout_classes() -> dict[str, type]:
    """The pre-issue-11 heads: the pretraining model plus a head layer (same forward)."""
    from torch import nn

    from lavis_syncmask.models.heads import SyncMaskClassifier, SyncMaskComposedRetrieval
    from lavis_syncmask.models.syncmask_fashion import SyncMaskFashion

    class OldClassifier(SyncMaskFashion):
        def __init__(self, config: Any, tokenizer: Any, num_classes: int) -> None:
            super().__init__(config, tokenizer)
            width = config.backbone.text_width
            self.cls_head = nn.Sequential(
                nn.Linear(width, width), nn.ReLU(), nn.Linear(width, num_classes)
            )

        predict_logits = SyncMaskClassifier.predict_logits
        forward = SyncMaskClassifier.forward

    class OldComposed(SyncMaskFashion):
        def __init__(self, config: Any, tokenizer: Any) -> None:
            super().__init__(config, tokenizer)
            bb = config.backbone
            self.composed_proj = nn.Linear(bb.text_width, bb.embed_dim)

        query_features = SyncMaskComposedRetrieval.query_features
        target_features = SyncMaskComposedRetrieval.target_features
        forward = SyncMaskComposedRetrieval.forward

    return {"cls": OldClassifier, "tgir": OldComposed}


def build(head: str, layout: str, vocab: Path, preset: str) -> torch.nn.Module:
    from omegaconf import OmegaConf

    from lavis_syncmask.common.paths import config_path
    from lavis_syncmask.data.tokenizer import load_tokenizer
    from lavis_syncmask.models.heads import (
        SyncMaskClassifier,
        SyncMaskComposedRetrieval,
        head_config,
    )

    cfg = OmegaConf.load(config_path("models", f"syncmask_fashion_{head}_{preset}.yaml")).model
    cfg.tokenizer = str(vocab)
    cfg.num_classes = NUM_CLASSES if head == "cls" else None
    if layout == "before":  # what the old head yamls set on top of the pretraining preset
        cfg.use_mim, cfg.queue_size = False, 256
    config = head_config(cfg)
    tokenizer = load_tokenizer(vocab)
    torch.manual_seed(0)
    if layout == "before":
        cls = old_layout_classes()[head]
        model = cls(config, tokenizer, NUM_CLASSES) if head == "cls" else cls(config, tokenizer)
        model.copy_to_teacher()
        return model
    if head == "cls":
        return SyncMaskClassifier(config, tokenizer, NUM_CLASSES)
    return SyncMaskComposedRetrieval(config, tokenizer)


def batch(head: str, n: int, image_size: int) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(n, 3, image_size, image_size, generator=gen)
    texts = ["tok1 tok2 tok3 tok4 tok5 tok6"] * n
    if head == "cls":
        return {"image": images, "text_input": texts, "label": torch.arange(n) % NUM_CLASSES}
    return {
        "reference_image": images,
        "target_image": images.flip(0),
        "text_input": texts,
        "target_id": [str(i) for i in range(n)],
    }


def measure(head: str, layout: str, n: int, preset: str) -> dict[str, Any]:
    """One configuration, in this process: counts, one AdamW step, optimizer state bytes."""
    from lavis.tasks.base_task import BaseTask

    from lavis_syncmask.runner.loop import LoopSettings, one_update

    with tempfile.TemporaryDirectory() as tmp:
        model = build(head, layout, write_vocab(Path(tmp) / "vocab"), preset)
    params = list(model.named_parameters())
    trainable = [p for _, p in params if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-5, weight_decay=0.05)
    model.train()
    # One update as the runner makes it; optimizer.zero_grad there frees the gradients, which
    # the state count below does not include.
    one_update(BaseTask(), model, batch(head, n, IMAGE_SIZES[preset]), optimizer, LoopSettings())
    state_bytes = sum(
        t.numel() * t.element_size()
        for state in optimizer.state.values()
        for t in state.values()
        if torch.is_tensor(t)
    )
    numel = sum(p.numel() for _, p in params)
    return {
        "head": head,
        "layout": layout,
        "parameters": numel,
        "trainable": sum(p.numel() for p in trainable),
        "frozen": numel - sum(p.numel() for p in trainable),
        "with_gradient": sum(p.numel() for p in trainable if p.grad is not None),
        "buffer_bytes": sum(b.numel() * b.element_size() for b in model.buffers()),
        "weight_bytes": sum(p.numel() * p.element_size() for _, p in params),
        "adam_state_bytes": state_bytes,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_child(head: str, layout: str, n: int, preset: str) -> dict[str, Any]:
    from lavis_syncmask.common.processes import run_group  # the children skip it

    done = run_group(
        [sys.executable, __file__, "--child", head, layout, "--batch", str(n), "--preset", preset],
        cwd=REPO,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{head}/{layout} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def commit() -> str:
    from lavis_syncmask.common.processes import run_group  # the children skip it

    return run_group(["git", "rev-parse", "--short", "HEAD"], cwd=REPO).stdout.strip() or "?"


def report(rows: list[dict[str, Any]], preset: str) -> None:
    print(
        f"machine: {platform.platform()}, {platform.processor() or '?'}; torch {torch.__version__}"
    )
    size = IMAGE_SIZES[preset]
    print(f"commit: {commit()}; {preset} preset, {size} px, vocab {VOCAB_SIZE}, batch of 2, fp32")
    mib = 1024**2
    print(f"{'head':<5} {'layout':<7} {'params (M)':>10} {'trainable':>10} {'frozen':>8} "
          f"{'weights MiB':>11} {'buffers MiB':>11} {'Adam MiB':>9} {'peak RSS MiB':>12}")  # fmt: skip
    for r in rows:
        print(
            f"{r['head']:<5} {r['layout']:<7} {r['parameters'] / 1e6:10.1f} "
            f"{r['trainable'] / 1e6:10.1f} {r['frozen'] / 1e6:8.1f} {r['weight_bytes'] / mib:11.1f} "
            f"{r['buffer_bytes'] / mib:11.2f} {r['adam_state_bytes'] / mib:9.1f} "
            f"{r['peak_rss_mib']:12.0f}"
        )
    for head in dict.fromkeys(r["head"] for r in rows):
        old, new = (
            next(r for r in rows if (r["head"], r["layout"]) == (head, lay))
            for lay in ("before", "after")
        )  # noqa: E501
        print(
            f"{head}: after / before  parameters {new['parameters'] / old['parameters']:.3f}, "
            f"Adam state {new['adam_state_bytes'] / old['adam_state_bytes']:.3f}, "
            f"peak RSS {new['peak_rss_mib'] / old['peak_rss_mib']:.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--heads", nargs="+", default=["cls", "tgir"], choices=["cls", "tgir"])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--preset", choices=list(IMAGE_SIZES), default="base")
    parser.add_argument("--child", nargs=2, metavar=("HEAD", "LAYOUT"), help=argparse.SUPPRESS)
    args = parse_with_smoke(parser, SMOKE)
    if args.child:
        print(json.dumps(measure(*args.child, args.batch, args.preset)))
        return
    # Under --smoke in this process: a fresh child per configuration costs a whole `import lavis`.
    run = measure if args.smoke else run_child
    configs = [(h, lay) for h in args.heads for lay in ("before", "after")]
    report([run(h, lay, args.batch, args.preset) for h, lay in configs], args.preset)


if __name__ == "__main__":
    main()
