"""The benchmark against LAVIS's ALBEF / BLIP end to end at smoke size: `benchmarks/compare.py
--smoke` trains, scores and reports; the README's table is the one the committed JSON renders;
`python -m lavis_syncmask.evaluate` scores LAVIS's `albef_retrieval` / `blip_retrieval` from a
checkpoint; `python -m lavis_syncmask.viz` draws a mask picture."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from compare_report import paired_difference, readme_blocks, render_table  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lavis_syncmask.synthetic import generate_catalogue

    out = tmp_path_factory.mktemp("catalogue") / "default_12"
    generate_catalogue(out, 12, 105, seed=0, fashioniq_triplets=0, progress=False)
    return out


def test_paired_difference_is_a_t_interval() -> None:
    d = paired_difference([3.0, 5.0, 4.0], [1.0, 2.0, 3.0])  # differences 2, 3, 1
    assert d["mean"] == pytest.approx(2.0)
    assert d["high"] - d["mean"] == pytest.approx(4.303 * 1.0 / math.sqrt(3), rel=1e-6)


def test_feature_spread_reads_collapse_as_cosine_one() -> None:
    from feature_spread import mean_off_diagonal_cosine

    assert mean_off_diagonal_cosine(torch.ones(5, 3) * 2.0) == pytest.approx(1.0)
    assert mean_off_diagonal_cosine(torch.eye(4)) == pytest.approx(0.0)
    assert mean_off_diagonal_cosine(torch.tensor([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(-1.0)


def test_compare_smoke_writes_json_table_and_plots(catalogue: Path, tmp_path: Path) -> None:
    import compare

    out = tmp_path / "results"
    argv = ["--smoke", "--methods", "a_syncmask", "e_albef", "--jobs", "1"]
    results = compare.main([*argv, "--data-root", str(catalogue.parent), "--out", str(out)])
    summary = results["settings"]["default"]["summary"]
    assert set(summary) == {"a_syncmask", "e_albef"}
    assert summary["a_syncmask"]["seeds"] == [0, 1]
    diff = summary["a_syncmask"]["vs_reference"]["full"]
    assert diff["low"] <= diff["mean"] <= diff["high"]
    assert 0.0 <= summary["a_syncmask"]["patch_sync_precision"]["mean"] <= 1.0
    assert 0.0 <= summary["e_albef"]["word_sync_precision"]["mean"] <= 1.0
    assert results["cost"]["e_albef"]["step_ratio"] == 1.0
    saved = json.loads((out / "bench_smoke.json").read_text())
    assert (out / "bench_smoke.md").read_text() == render_table(saved)
    for name in ("bench_smoke_metrics.png", "bench_smoke_losses.png"):
        assert (out / name).stat().st_size > 1000


def test_a_repeated_method_and_seed_gives_identical_numbers(catalogue: Path) -> None:
    """One thread and deterministic algorithms: only the seed varies between benchmark runs,
    so the spread over seeds is the recipe's, not the machine's."""
    import compare
    from compare_train import run_one

    recipe = compare.KINDS["smoke"]["recipe"]
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        first, second, other = (run_one("a_syncmask", s, str(catalogue), recipe) for s in (0, 0, 1))
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    for run in (first, second, other):
        run.pop("train_s")
    # Compared as JSON text: a statistic may be NaN (no masked content word), and NaN != NaN.
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert first["history"]["loss"] != other["history"]["loss"]


def test_random_batch_epochs_put_random_batches_before_semi_hard_ones(catalogue: Path) -> None:
    """The curriculum recipe knob: a semi-hard method's first epochs are the random-batch
    method's batches, its later epochs its own; 0 leaves its stream unchanged."""
    import dataclasses

    import compare
    from compare_train import batches, datasets

    recipe = compare.KINDS["smoke"]["recipe"]
    train_set, _ = datasets(catalogue, recipe.image_size)

    def epochs(method: str, warm: int) -> dict[int, list[list[str]]]:
        out: dict[int, list[list[str]]] = {}
        changed = dataclasses.replace(recipe, random_batch_epochs=warm)
        for epoch, _, _, batch in batches(train_set, method, changed, seed=3):
            if epoch == 2:
                return out
            out.setdefault(epoch, []).append(list(batch["text_input"]))
        raise AssertionError("unreachable: the stream is endless")

    plain, semi_hard = epochs("c_random_batches", 0), epochs("a_syncmask", 0)
    assert plain[0] != semi_hard[0] and plain[1] != semi_hard[1]
    curriculum = epochs("a_syncmask", 1)
    assert curriculum[0] == plain[0] and curriculum[1] == semi_hard[1]
    # Inert on random batches, so compare.py keeps such runs when only this knob changes.
    assert epochs("c_random_batches", 1) == plain
    changed = dataclasses.asdict(dataclasses.replace(recipe, random_batch_epochs=1))
    assert compare.same_recipe("c_random_batches", changed, recipe)
    assert not compare.same_recipe("a_syncmask", changed, recipe)
    # A run logged before the knob existed was made with semi-hard batches from the start,
    # whatever the knob's default is now.
    legacy = {k: v for k, v in dataclasses.asdict(recipe).items() if k != "random_batch_epochs"}
    assert recipe.random_batch_epochs != 0
    assert not compare.same_recipe("a_syncmask", legacy, recipe)
    assert compare.same_recipe(
        "a_syncmask", legacy, dataclasses.replace(recipe, random_batch_epochs=0)
    )
    assert compare.same_recipe("c_random_batches", legacy, recipe)
    unknown = {k: v for k, v in dataclasses.asdict(recipe).items() if k != "steps"}
    assert not compare.same_recipe("c_random_batches", unknown, recipe)


def test_plateau_exit_finds_the_first_window_below_chance() -> None:
    from plateau_exit import analyse, plateau_exit

    chance = math.log(64)
    flat = [chance] * 100
    assert plateau_exit(flat, chance, margin=0.25, window=10) is None
    # Loss drops by 1 nat at step 61 (index 60): the first 10-step window whose mean is 0.25
    # below chance holds 3 dropped steps and ends at step 63.
    assert plateau_exit(flat[:60] + [chance - 1.0] * 40, chance, 0.25, 10) == 63

    def run(method: str, seed: int, exit_at: int | None, recall: float) -> dict:
        loss = flat if exit_at is None else flat[:exit_at] + [2.0] * (100 - exit_at)
        return {
            "catalogue": "c",
            "method": method,
            "seed": seed,
            "recipe": {"batch_size": 32, "queue_size": 32, "steps": 100},
            "history": {"loss_itc": loss},
            "full": {"r_mean": recall},
            "itm_auc": 0.9,
        }

    runs = [run("m", 0, 20, 40.0), run("m", 1, 50, 31.0), run("m", 2, None, 5.0)]
    runs += [run("n", s, e, r) for s, (e, r) in enumerate([(30, 52.0), (40, 45.0), (60, 41.0)])]
    result = analyse(runs, margin=0.25, window=10)
    # A 2.16-nat drop: two dropped steps in the window suffice.
    assert [r["exit_step"] for r in result["runs"]][:3] == [22, 52, None]
    assert result["correlation"]["within_method"]["spearman_rho"] == pytest.approx(-1.0)


def test_recipe_overrides_parse_as_the_field_type() -> None:
    import compare

    base = compare.KINDS["smoke"]["recipe"]
    changed = compare.override_recipe(base, ["random_batch_epochs=3", "init_lr=1e-3"])
    assert (changed.random_batch_epochs, changed.init_lr) == (3, 1e-3)
    assert compare.override_recipe(base, ["learn_temp=true"]).learn_temp is True
    for bad in ("random_batch_epochs=1.5", "no_such_field=1", "steps", "model=x"):
        with pytest.raises(SystemExit, match="--recipe"):
            compare.override_recipe(base, [bad])


def test_only_the_full_kind_has_a_high_setting(tmp_path: Path) -> None:
    import compare

    with pytest.raises(SystemExit, match="only the default setting"):
        compare.main(["--smoke", "--settings", "high", "--out", str(tmp_path)])


def test_probe_collapse_trains_on_the_chosen_terms_only(catalogue: Path) -> None:
    """The collapse probe behind the recipe's queue length: with `terms=("itc",)` only the ITC
    loss reaches the weights, so ALBEF's ITM head gets no gradient at all."""
    import compare
    from probe_collapse import probe

    recipe = compare.KINDS["smoke"]["recipe"]
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        itc_only = list(probe("e_albef", 0, catalogue, recipe, ("itc",)))
        every = list(probe("e_albef", 0, catalogue, recipe, None))
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    assert [r["step"] for r in itc_only] == list(range(1, recipe.steps + 1))
    for record in itc_only + every:
        assert -1.0 <= record["image_cos"] <= 1.0 and -1.0 <= record["text_cos"] <= 1.0
        assert {"loss_itc", "loss_itm", "loss_mlm"} <= set(record)
        assert record["grad_visual_encoder"] > 0.0
    assert "grad_itm_head" not in itc_only[0]
    assert every[0]["grad_itm_head"] > 0.0


def test_readme_tables_are_the_ones_the_committed_json_renders() -> None:
    blocks = readme_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    assert blocks, "the README shows no generated benchmark table"
    for block in blocks:
        source = block.split("`")[1]  # each table names the JSON it was rendered from
        results = json.loads((ROOT / source).read_text())
        assert block == render_table(results)


def _run(args: list[str], data: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SYNCMASK_DATA_ROOT": str(data), "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}"
    result = subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result


@pytest.mark.parametrize("family", ["albef", "blip"])
def test_evaluate_accepts_lavis_retrieval_models(family: str, catalogue: Path, tmp_path: Path):
    from lavis_syncmask.baselines import build_baseline

    arch = f"{family}_retrieval"
    tiny = {"size_preset": "tiny", "image_size": 64, "queue_size": 256}
    tiny["tokenizer"] = str(catalogue / "vocab")
    checkpoint = tmp_path / f"{arch}.pth"
    torch.save(build_baseline({"arch": arch, **tiny}).state_dict(), checkpoint)
    options = [f"model.{k}={v}" for k, v in tiny.items()]
    options += [
        "datasets.fashiongen_retrieval.vis_processor.eval.image_size=64",
        "run.protocol=full",
        "run.k_test=10",
        f"run.output_dir={tmp_path / 'out'}",
    ]
    config = str(ROOT / "projects" / "syncmask" / f"retrieval_{family}.yaml")
    args = ["lavis_syncmask.evaluate", "--cfg-path", config, "--checkpoint", str(checkpoint)]
    _run([*args, "--options", *options], catalogue, tmp_path)
    metrics = json.loads(next((tmp_path / "out").rglob("metrics.json")).read_text())
    assert metrics["protocol"] == "full"
    assert metrics["checkpoint"] == str(checkpoint.resolve())
    assert 0.0 <= metrics["metrics"]["r_mean"] <= 100.0


def test_viz_draws_syncmask_and_random_masks(catalogue: Path, tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from lavis_syncmask.common.paths import config_path
    from lavis_syncmask.models.syncmask_fashion import SyncMaskFashion

    cfg = OmegaConf.load(config_path("models", "syncmask_fashion_tiny.yaml")).model
    cfg.tokenizer = str(catalogue / "vocab")
    checkpoint = tmp_path / "tiny.pth"
    torch.save(SyncMaskFashion.from_config(cfg).state_dict(), checkpoint)
    out = tmp_path / "masks.png"
    h5 = catalogue / "fashiongen_256_256_validation.h5"
    args = ["--checkpoint", str(checkpoint), "--h5", str(h5), "--rows", "0,5", "--out", str(out)]
    _run(["lavis_syncmask.viz", *args], catalogue, tmp_path)
    assert out.stat().st_size > 10_000
