"""What the benchmark tests share: the tiny synthetic catalogue (12 train products, 105
validation ones so sample-100 has its 100 negatives) and the options that shrink a benchmark
arm's yaml to a few seconds of training on it."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "projects" / "syncmask" / "bench"


def make_catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny catalogue in a fresh temporary folder (a test module's `catalogue` fixture)."""
    from lavis_syncmask.synthetic import generate_catalogue

    out = tmp_path_factory.mktemp("catalogue") / "default_12"
    generate_catalogue(out, 12, 105, seed=0, fashioniq_triplets=0, progress=False)
    return out


def tiny_options(data: Path, out: Path, steps: int = 3) -> list[str]:
    """`--options` that train an arm for `steps` updates of 8 samples at 64 px on `data`."""
    return [
        f"datasets.fashiongen_pretrain.data_root={data}",
        f"model.tokenizer={data / 'vocab'}",
        f"run.output_dir={out}",
        "run.batch_size_train=8",
        f"run.max_steps={steps}",
        "model.image_size=64",
        "datasets.fashiongen_pretrain.vis_processor.train.image_size=64",
    ]
