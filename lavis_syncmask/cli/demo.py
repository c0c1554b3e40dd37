"""`make demo`: generate the synthetic catalogue (if absent), pretrain the tiny model with
SyncMask on the CPU, evaluate retrieval on the validation split, and report: the loss curve,
word / patch sync precision of SyncMask masks against random masks on the trained teacher, and
R@1/5/10 in both directions. Writes `report.json` and `report.png` into the output folder.

    python -m lavis_syncmask.cli.demo --data-dir data/synthetic --output-dir output/demo
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from lavis_syncmask.common.paths import RECIPE_DIR
from lavis_syncmask.masking.strategies import STRATEGIES


def ensure_catalogue(data_dir: Path, products: int, val_products: int, seed: int) -> None:
    from lavis_syncmask.data.formats import TRAIN_FILE
    from lavis_syncmask.data.visibility import VisibilitySidecar, sidecar_path
    from lavis_syncmask.synthetic import (
        format_summary,
        generate_catalogue,
        summarize_catalogue,
    )

    train = data_dir / TRAIN_FILE
    side = sidecar_path(train)
    if train.exists() and side.exists() and VisibilitySidecar(side).fingerprint is None:
        print(f"{side} predates sidecar fingerprints: regenerating the catalogue")
        train.unlink()
    if not train.exists():
        generate_catalogue(data_dir, products, val_products, seed, progress=True)
    print(format_summary(summarize_catalogue(data_dir)))


def latest_checkpoint(run_dir: Path) -> Path:
    found = sorted(run_dir.rglob("checkpoint_*.pth"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise FileNotFoundError(f"pretraining wrote no checkpoint under {run_dir}")
    return found[-1]


def epoch_log(run_dir: Path) -> list[dict[str, Any]]:
    """Per-epoch train stats that LAVIS's runner appends to log.txt (one JSON object a line)."""
    rows = []
    for log in sorted(run_dir.rglob("log.txt")):
        for line in log.read_text().splitlines():
            if line.startswith("{") and '"train_loss"' in line:
                rows.append(json.loads(line))
    return rows


@torch.no_grad()
def sync_precision(checkpoint: Path, data_dir: Path, batches: int = 8) -> dict[str, dict]:
    """Mask statistics of SyncMask and of random masks, from the same trained teacher, over
    validation batches that carry the visibility sidecar."""
    from lavis.common.registry import registry
    from omegaconf import OmegaConf

    from lavis_syncmask.cli.launcher import load_config
    from lavis_syncmask.data.builders import dataset_builder
    from lavis_syncmask.models.config import model_section
    from lavis_syncmask.models.diagnostics import compare_masking
    from lavis_syncmask.tasks.pretrain import RunningMeans

    recipe = argparse.Namespace(cfg_path=str(RECIPE_DIR / "pretrain_tiny.yaml"), options=[])
    cfg = load_config(recipe)  # the recipe over its model preset, as a run reads it
    trained = {"load_finetuned": True, "finetuned": str(checkpoint)}
    tokenizer = {"tokenizer": str(data_dir / "vocab")}
    model_cfg = OmegaConf.create({**model_section(cfg), **trained, **tokenizer})
    model = registry.get_model_class("syncmask_fashion").from_config(model_cfg).eval()
    builder = dataset_builder(cfg, "fashiongen_pretrain", data_root=str(data_dir))
    dataset = builder.build_datasets()["val"]
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=32,
        shuffle=True,
        collate_fn=dataset.collater,
        generator=torch.Generator().manual_seed(0),
    )
    configs = {name: dataclasses.replace(model.masking, strategy=name) for name in STRATEGIES}
    meters = {name: RunningMeans() for name in configs}
    torch.manual_seed(0)
    for i, samples in enumerate(tqdm(loader, total=min(batches, len(loader)), desc="mask stats")):
        if i == batches:
            break
        for name, stats in compare_masking(model, samples, configs).items():
            meters[name].update(stats)
    return {name: meter.means() for name, meter in meters.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="data/synthetic")
    parser.add_argument("--output-dir", default="output/demo")
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--val-products", type=int, default=150)
    parser.add_argument("--epochs", type=int, default=None, help="override run.max_epoch")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    data_dir, out = Path(args.data_dir).resolve(), Path(args.output_dir).resolve()
    os.environ["SYNCMASK_DATA_ROOT"] = str(data_dir)

    ensure_catalogue(data_dir, args.products, args.val_products, args.seed)

    from lavis_syncmask.cli import evaluate, train
    from lavis_syncmask.cli.demo_report import plot_report, summarize

    options = [f"run.output_dir={out / 'pretrain'}", f"model.tokenizer={data_dir / 'vocab'}"]
    if args.epochs:
        options.append(f"run.max_epoch={args.epochs}")
    status = train.main(
        ["--cfg-path", str(RECIPE_DIR / "pretrain_tiny.yaml"), "--options", *options]
    )
    if status != 0:  # stopped (signal, non-finite losses): its checkpoint is no trained model
        raise SystemExit(status)
    checkpoint = latest_checkpoint(out / "pretrain")
    evaluate.main(
        [
            "--cfg-path",
            str(RECIPE_DIR / "retrieval_tiny.yaml"),
            "--options",
            f"model.finetuned={checkpoint}",
            "model.load_finetuned=True",
            f"model.tokenizer={data_dir / 'vocab'}",
            f"run.output_dir={out / 'retrieval'}",
            "run.protocol=full",
        ]
    )
    retrieval = json.loads(next((out / "retrieval").rglob("metrics.json")).read_text())
    report = {
        "epochs": epoch_log(out / "pretrain"),
        "masking": sync_precision(checkpoint, data_dir),
        "retrieval": retrieval,
        "checkpoint": str(checkpoint),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    plot_report(report, out / "report.png")
    print(summarize(report))
    print(f"report: {out / 'report.json'}, figure: {out / 'report.png'}")


if __name__ == "__main__":
    main()
