"""How spread out are a trained model's ITC features on the validation split? Mean pairwise
cosine of the image and the text features (near 1: collapsed), for every run of a
`python -m lavis_syncmask.bench` folder: each run's model is built from its resolved
`config.yaml` and its evaluated checkpoint, and its validation split from its `eval.yaml`.

    python benchmarks/feature_spread.py --bench output/bench/full --out output/bench/full/feature_spread.json
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from lavis_syncmask.tasks.step_metrics import mean_off_diagonal_cosine


def build_trained(run_dir: Path, checkpoint: str) -> Any:
    """The run's model as its training config builds it, with the checkpoint's weights."""
    from lavis.common.registry import registry

    from lavis_syncmask.baselines import BASELINE_ARCHS, build_baseline
    from lavis_syncmask.common.checkpoint import load_model_weights

    model_cfg = OmegaConf.load(run_dir / "config.yaml").model
    if model_cfg.arch in BASELINE_ARCHS:
        model = build_baseline(OmegaConf.to_container(model_cfg, resolve=True))
    else:
        model = registry.get_model_class(model_cfg.arch).from_config(model_cfg)
    load_model_weights(model, checkpoint, "benchmark checkpoint")
    return model.eval()


def validation_split(run_dir: Path) -> Any:
    from lavis.common.registry import registry

    cfg = OmegaConf.load(run_dir / "eval.yaml").datasets.fashiongen_retrieval
    return registry.get_builder_class("fashiongen_retrieval")(cfg).build_datasets()["val"]


@torch.no_grad()
def spread(result_file: Path, rows: int) -> dict[str, Any]:
    from lavis_syncmask.models import inference

    result = json.loads(result_file.read_text())
    evaluate = shlex.split(next(c for k, c in result["commands"].items() if k != "train"))
    checkpoint = evaluate[evaluate.index("--checkpoint") + 1]
    run_dir = result_file.parent
    model, val = build_trained(run_dir, checkpoint), validation_split(run_dir)
    index = torch.arange(min(rows, len(val)))
    tokens = inference.row_encoder(model, val, 64).get(index).float()
    images = model.vision_proj(tokens[:, 0])
    texts = inference.text_features(model, val.text[:rows])[0]
    return {
        "arm": result["arm"],
        "seed": result["seed"],
        "image_cosine": mean_off_diagonal_cosine(images),
        "text_cosine": mean_off_diagonal_cosine(texts),
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", required=True, help="a python -m lavis_syncmask.bench --out")
    parser.add_argument("--rows", type=int, default=256, help="validation rows (and texts)")
    parser.add_argument("--out", default=None, help="write the figures here as JSON")
    args = parser.parse_args(argv)
    import lavis_syncmask  # noqa: F401  registers the model, builders and processors

    torch.set_num_threads(1)
    files = sorted(Path(args.bench).glob("runs/*/result.json"))
    if not files:
        raise SystemExit(f"{args.bench}: no finished benchmark run (runs/*/result.json)")
    results = [spread(f, args.rows) for f in files]
    print("| arm | seed | image cosine | text cosine |\n|---|---|---|---|")
    for r in results:
        print(f"| {r['arm']} | {r['seed']} | {r['image_cosine']:.3f} | {r['text_cosine']:.3f} |")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    return results


if __name__ == "__main__":
    main()
