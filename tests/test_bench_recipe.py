"""The shipped tiny recipe is the benchmark's arm (a), and every other arm's yaml differs from
it only in the keys that define that arm; the recipe's keys are read by the product (fixed
temperature, same-product pairs, distillation ramp) and a rerun reproduces a run exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from bench_fixtures import BENCH_DIR, make_catalogue, tiny_options

from lavis_syncmask.bench.arms import (
    ARMS,
    SHARED_OBJECTIVE_KEYS,
    arm_path,
    effective_model,
    load_flat,
    recipe_drift,
    recipe_path,
)


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_catalogue(tmp_path_factory)


def test_pretrain_tiny_carries_the_benchmark_recipe() -> None:
    recipe = load_flat(recipe_path())
    expected = {
        "run.init_lr": 1e-3,
        "run.lr_sched": "syncmask_warmup_cosine_step",
        "run.warmup_share": 0.05,
        "run.deterministic": True,
        "run.sampler.random_epochs": 3,
        "model.learn_temp": False,
        "model.queue_size": 32,
    }
    assert {k: recipe.get(k) for k in expected} == expected
    # Arm (a) is the shipped file itself, and `make demo` / projects/ train that same file.
    assert arm_path("a_syncmask").resolve() == recipe_path().resolve()
    demo = Path(__file__).resolve().parents[1] / "projects" / "syncmask" / "pretrain_tiny.yaml"
    assert demo.resolve() == recipe_path().resolve()


@pytest.mark.parametrize("arm", sorted(ARMS))
def test_each_arm_differs_from_the_recipe_only_in_its_own_keys(arm: str) -> None:
    assert recipe_drift(arm) == set()
    mine, base = load_flat(arm_path(arm)), load_flat(recipe_path())
    for key in ARMS[arm].defining_keys - {"model"}:
        assert mine.get(key) != base.get(key), f"{arm}: {key} is the recipe's value"


@pytest.mark.parametrize("arm", [a for a, spec in ARMS.items() if spec.baseline])
def test_lavis_baselines_share_the_recipes_itc_and_queue(arm: str) -> None:
    recipe = effective_model(recipe_path())
    mine = effective_model(arm_path(arm))
    assert {k: mine[k] for k in SHARED_OBJECTIVE_KEYS} == {
        k: recipe[k] for k in SHARED_OBJECTIVE_KEYS
    }


def test_drift_is_caught(tmp_path: Path) -> None:
    for arm in ("a_syncmask", "b_random_masks"):
        text = arm_path(arm).read_text()
        (tmp_path / f"{arm}.yaml").write_text(text.replace("init_lr: 1e-3", "init_lr: 2e-3"))
    assert recipe_drift("b_random_masks", tmp_path) == {"run.init_lr"}
    assert sorted(p.stem for p in BENCH_DIR.glob("*.yaml")) == sorted(ARMS)


def test_learn_temp_false_negatives_and_alpha_ramp_are_honoured(tmp_path: Path) -> None:
    from model_fixtures import batch, tiny_config, write_vocab

    from lavis_syncmask.baselines import build_baseline
    from lavis_syncmask.models.syncmask_fashion import SyncMaskFashion

    vocab = write_vocab(tmp_path / "vocab")
    fixed = SyncMaskFashion.from_config(tiny_config(vocab, learn_temp=False, queue_size=16))
    assert not fixed.temp.requires_grad
    assert SyncMaskFashion.from_config(tiny_config(vocab, queue_size=16)).temp.requires_grad
    albef = {"arch": "albef_pretrain", "size_preset": "tiny", "tokenizer": str(vocab)}
    assert not build_baseline({**albef, "learn_temp": False}).temp.requires_grad
    assert build_baseline(albef).temp.requires_grad

    samples = batch(8)  # two views per product
    ids, texts = samples["product_id"], samples["text_id"]
    lavis_like = SyncMaskFashion.from_config(
        tiny_config(vocab, queue_size=16, false_negatives=False, alpha_ramp_epochs=2)
    )
    assert fixed.itc_positives(ids, texts)[0, :2].tolist() == [True, True]
    assert lavis_like.itc_positives(ids, texts)[0, :2].tolist() == [True, False]
    assert lavis_like.itm_forbidden(samples, ids, texts).sum() == 8
    assert fixed.itm_forbidden(samples, ids, texts).sum() == 16
    ramp = [
        lavis_like.distill_alpha({"epoch": e, "iters": i, "num_iters_per_epoch": 10})
        for e, i in ((0, 0), (1, 0), (2, 5))
    ]
    assert ramp == pytest.approx([0.0, 0.2, 0.4])
    assert fixed.distill_alpha({"epoch": 0, "iters": 0, "num_iters_per_epoch": 10}) == 0.4


def test_two_identical_runs_give_identical_metrics(catalogue: Path, tmp_path: Path) -> None:
    """The recorded command run again, in the same folder (`--overwrite`), writes the same
    per-step metrics (not appended to the first run's); another seed does not."""
    from lavis_syncmask.cli.train import main

    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    lines = []
    try:
        for job, seed in (("first", 0), ("first", 0), ("other", 1)):
            options = [*tiny_options(catalogue, tmp_path, steps=3), f"run.seed={seed}"]
            argv = ["--cfg-path", str(arm_path("a_syncmask")), "--job-id", job, "--overwrite"]
            assert main([*argv, "--options", *options]) == 0
            assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()
            lines.append((tmp_path / job / "metrics.jsonl").read_text())
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    assert len(lines[0].splitlines()) == 3
    assert lines[0] == lines[1] and lines[0] != lines[2]
    assert json.loads(lines[0].splitlines()[0])["lr"] == pytest.approx(1e-5)
