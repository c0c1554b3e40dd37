"""Have a benchmark run's ITC features collapsed? Mean pairwise cosine similarity of the
validation images' (and texts') ITC features of every checkpoint that
`benchmarks/compare.py --save-checkpoints DIR` kept: near 1 means every image maps to almost
the same feature, so retrieval sits at chance whatever the ITM head does.

    python benchmarks/feature_spread.py --checkpoints data/bench/checkpoints \
        --out benchmarks/results/feature_spread.json
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare import KINDS, ROOT  # noqa: E402
from compare_train import build_model, datasets  # noqa: E402

NAME = re.compile(
    r"(?P<catalogue>.+?)_(?P<method>[a-f]_[a-z_]+)_s(?P<seed>\d+)_(?P<steps>\d+)steps"
)


def mean_off_diagonal_cosine(features: torch.Tensor) -> float:
    """Mean cosine similarity over distinct pairs of rows of `features` `(N, D)`."""
    unit = F.normalize(features.float(), dim=-1)
    sims = unit @ unit.T
    n = sims.shape[0]
    return float((sims.sum() - sims.diagonal().sum()) / (n * (n - 1)))


@functools.cache
def validation_split(data: Path, image_size: int):  # noqa: ANN201  a LAVIS dataset
    """The catalogue's validation split, read once for all of its checkpoints."""
    return datasets(data, image_size)[1]


@torch.no_grad()
def spread(checkpoint: Path, data_root: Path, rows: int) -> dict:
    from lavis_syncmask.models import inference

    match = NAME.fullmatch(checkpoint.stem)
    if match is None:
        raise ValueError(f"{checkpoint.name}: not a compare.py checkpoint name")
    recipe = KINDS["full"]["recipe"]
    data = data_root / match["catalogue"]
    val = validation_split(data, recipe.image_size)
    model = build_model(match["method"], recipe, data / "vocab")
    model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    model.eval()
    index = torch.arange(min(rows, len(val)))
    tokens = inference.row_encoder(model, val, 64).get(index).float()
    images = model.vision_proj(tokens[:, 0])
    texts = inference.text_features(model, val.text[:rows])[0]
    return {
        **{k: match[k] for k in ("catalogue", "method")},
        "seed": int(match["seed"]),
        "image_cosine": mean_off_diagonal_cosine(images),
        "text_cosine": mean_off_diagonal_cosine(texts),
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoints", default=str(ROOT / "data" / "bench" / "checkpoints"))
    parser.add_argument("--data-root", default=str(ROOT / "data" / "bench"))
    parser.add_argument("--rows", type=int, default=256, help="validation rows (and texts)")
    parser.add_argument("--out", default=None, help="write the figures here as JSON")
    args = parser.parse_args(argv)
    import lavis_syncmask  # noqa: F401  registers the dataset builders

    torch.set_num_threads(1)
    files = sorted(Path(args.checkpoints).glob("*.pth"))
    if not files:
        raise SystemExit(f"no checkpoints in {args.checkpoints}: run compare.py --save-checkpoints")
    results = [spread(f, Path(args.data_root), args.rows) for f in files]
    print("| catalogue | method | seed | image cosine | text cosine |\n|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['catalogue']} | {r['method']} | {r['seed']} | "
            f"{r['image_cosine']:.3f} | {r['text_cosine']:.3f} |"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    return results


if __name__ == "__main__":
    main()
