"""The benchmark as a tool, end to end at smoke size: `python -m lavis_syncmask.bench` trains
and scores each (arm, seed) through the product's launcher, tables them with paired
t-intervals, p-values and Holm, resumes, and records commands that reproduce each run; the
diagnostics read what the runner logged. Also: the README's tables are the ones their committed
JSON renders; `python -m lavis_syncmask.evaluate` scores LAVIS's `albef_retrieval` /
`blip_retrieval`; `python -m lavis_syncmask.viz` draws a mask picture."""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from bench_fixtures import make_catalogue

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from compare_report import readme_blocks, render_table  # noqa: E402


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_catalogue(tmp_path_factory)


def test_paired_difference_has_t_interval_p_value_and_holm() -> None:
    from scipy import stats

    from lavis_syncmask.bench.stats import holm, paired_difference

    d = paired_difference([3.0, 5.0, 4.0], [1.0, 2.0, 3.0])  # differences 2, 3, 1
    assert d["mean"] == pytest.approx(2.0)
    assert d["high"] - d["mean"] == pytest.approx(4.303 * 1.0 / math.sqrt(3), rel=1e-3)
    assert d["p"] == pytest.approx(stats.ttest_rel([3.0, 5.0, 4.0], [1.0, 2.0, 3.0]).pvalue)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert math.isnan(holm([math.nan, 0.2])[0]) and holm([math.nan, 0.2])[1] == 0.2


def test_holm_runs_within_each_family_and_over_the_table() -> None:
    """An ablation added to a run folder leaves the headline family's adjusted p as it was;
    the whole table's Holm p is kept beside it."""
    from lavis_syncmask.bench.report import comparisons

    def run(arm: str, seed: int, recall: float) -> dict:
        return {"arm": arm, "seed": seed, "metrics": {"full_itm_itc": {"r_mean": recall}}}

    head = [run("a_syncmask", s, 30.0 + s + (s % 2)) for s in range(4)]
    head += [run("e_albef", s, 20.0 + s) for s in range(4)]
    ablation = [run("d_no_mim", s, 31.0 + s) for s in range(4)]
    alone = comparisons(head, ["a_syncmask", "e_albef"])
    both = comparisons(head + ablation, ["a_syncmask", "e_albef", "d_no_mim"])
    assert [r["family"] for r in both] == ["headline", "ablation"]
    assert both[0]["p_holm"] == pytest.approx(alone[0]["p_holm"]) == pytest.approx(both[0]["p"])
    assert both[0]["p_holm_table"] == pytest.approx(2 * both[0]["p"])  # the smaller of two
    assert both[1]["p_holm_table"] >= both[1]["p_holm"] == pytest.approx(both[1]["p"])


def test_feature_cosine_reads_collapse_as_one() -> None:
    from lavis_syncmask.tasks.step_metrics import mean_off_diagonal_cosine

    assert mean_off_diagonal_cosine(torch.ones(5, 3) * 2.0) == pytest.approx(1.0)
    assert mean_off_diagonal_cosine(torch.eye(4)) == pytest.approx(0.0)
    assert mean_off_diagonal_cosine(torch.tensor([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(-1.0)


def test_arms_are_named_by_letter_or_name() -> None:
    import argparse

    from lavis_syncmask.cli.bench import _letters

    assert _letters("a,e,g") == ["a_syncmask", "e_albef", "g_syncmask_no_fn_handling"]
    assert _letters("f_blip") == ["f_blip"]
    with pytest.raises(argparse.ArgumentTypeError, match="unknown arm 'z'"):
        _letters("a,z")


def test_itm_plus_itc_adds_the_cosine_to_the_itm_score() -> None:
    from lavis_syncmask.models.inference import plus_itc

    images, texts = torch.eye(3), torch.tensor([[1.0, 0, 0], [0, 0.5, 0]])
    score = plus_itc(lambda r, t: torch.full((len(r),), 2.0), images, texts)
    assert score(torch.tensor([0, 1, 2]), torch.tensor([0, 1, 0])).tolist() == [3.0, 2.5, 2.0]


ARMS = ("a_syncmask", "e_albef")
SMOKE = [
    "--arms", "a,e", "--seeds", "0,1", "--steps", "2", "--jobs", "2", "--protocols", "full",
    "--k-test", "10", "--full-scoring", "itm_itc", "--set",
    "run.batch_size_train=8", "model.image_size=64",
    "datasets.fashiongen_pretrain.vis_processor.train.image_size=64",
]  # fmt: skip


def test_bench_trains_through_the_product_tables_resumes_and_reproduces(
    catalogue: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    from lavis_syncmask.cli.bench import main

    out = tmp_path / "bench"
    assert main(["--data-root", str(catalogue), "--out", str(out), *SMOKE]) == 0
    saved = json.loads((out / "bench.json").read_text())
    assert set(saved["summary"]) == {"a_syncmask", "e_albef"} and saved["missing"] == 0
    assert (out / "bench.md").read_text() in capsys.readouterr().out
    for name in ("bench_metrics.png", "bench_losses.png"):
        assert (out / name).stat().st_size > 1000
    [row, *_] = saved["comparisons"]
    assert (row["arm"], row["vs"], row["seeds"]) == ("a_syncmask", "e_albef", [0, 1])
    assert {"p", "p_holm", "low", "high"} <= set(row)
    run = next(r for r in saved["runs"] if r["arm"] == "a_syncmask" and r["seed"] == 0)
    assert run["metrics"]["full_itm_itc"]["full_scoring"] == "itm_itc" and run["updates"] == 2
    # Per-step values come from the runner's step log (no sync window yet after 2 updates).
    result = json.loads((out / "runs" / "a_syncmask_s0" / "result.json").read_text())
    assert len(result["history"]["word_sync_precision"]) == 2 and run["sync"] == {}
    # Resumes: nothing is redone, the same table comes out.
    assert main(["--data-root", str(catalogue), "--out", str(out), *SMOKE]) == 0
    assert "0 to run" in capsys.readouterr().out
    assert json.loads((out / "bench.json").read_text())["summary"] == saved["summary"]
    # --report-only tables runs made with other settings too (each arm at its own --set).
    other = ["--data-root", str(catalogue), "--out", str(out), "--report-only", "--arms", "a,e"]
    assert main([*other, "--seeds", "0,1"]) == 0
    assert json.loads((out / "bench.json").read_text())["summary"] == saved["summary"]
    with pytest.raises(SystemExit, match="no finished run of arms b_random_masks"):
        main([*other[:-1], "b", "--seeds", "0"])  # nothing to table: an error, not an empty one
    # The recorded training command, run again, writes the same per-step metrics.
    steps = out / "runs" / "a_syncmask_s0" / "metrics.jsonl"
    before = steps.read_text()
    command = shlex.split(run["commands"]["train"])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    subprocess.run(command, check=True, env=env, capture_output=True)
    assert steps.read_text() == before
    # The diagnostics read this folder as they would a full matrix's (so none can rot unseen).
    _diagnostics_read(out)


def _diagnostics_read(out: Path) -> None:
    import feature_spread
    import plateau_exit
    import probe_collapse

    spread = feature_spread.main(["--bench", str(out), "--rows", "16"])
    assert {(r["arm"], r["seed"]) for r in spread} == {(a, s) for a in ARMS for s in (0, 1)}
    assert all(-1.0 <= r["image_cosine"] <= 1.0 for r in spread)
    exits = plateau_exit.main(["--bench", str(out), "--window", "1"])
    assert len(exits["runs"]) == 4
    records = probe_collapse.main([str(out / "runs" / "a_syncmask_s0"), "--every", "1"])
    assert [r["update"] for r in records] == [1, 2] and "loss_itc" in records[0]


def test_plateau_exit_finds_the_first_window_below_chance() -> None:
    from plateau_exit import analyse, plateau_exit

    chance = math.log(64)
    flat = [chance] * 100
    assert plateau_exit(flat, chance, margin=0.25, window=10) is None
    # Loss drops by 1 nat at step 61 (index 60): the first 10-step window whose mean is 0.25
    # below chance holds 3 dropped steps and ends at step 63.
    assert plateau_exit(flat[:60] + [chance - 1.0] * 40, chance, 0.25, 10) == 63

    def run(arm: str, seed: int, exit_at: int | None, recall: float) -> dict:
        loss = flat if exit_at is None else flat[:exit_at] + [2.0] * (100 - exit_at)
        return {
            "catalogue": "c",
            "arm": arm,
            "seed": seed,
            "chance": chance,
            "updates": 100,
            "history": {"loss_itc": loss},
            "metrics": {"full_itm_itc": {"r_mean": recall}},
        }

    runs = [run("m", 0, 20, 40.0), run("m", 1, 50, 31.0), run("m", 2, None, 5.0)]
    runs += [run("n", s, e, r) for s, (e, r) in enumerate([(30, 52.0), (40, 45.0), (60, 41.0)])]
    result = analyse(runs, margin=0.25, window=10)
    # A 2.16-nat drop: two dropped steps in the window suffice.
    assert [r["exit_step"] for r in result["runs"]][:3] == [22, 52, None]
    assert result["correlation"]["within_method"]["spearman_rho"] == pytest.approx(-1.0)


def test_probe_collapse_reads_window_means_from_the_step_log() -> None:
    from probe_collapse import windows

    lines = [
        {"update": u // 2, "iteration": u, "loss_itc": float(u), "image_cos": 1.0}
        for u in range(10)
    ]  # 5 updates of 2 micro-batches
    records = windows(lines, every=2)
    assert [r["update"] for r in records] == [2, 4, 5]
    assert records[0]["loss_itc"] == pytest.approx(1.5) and records[2]["image_cos"] == 1.0


def test_retired_tables_are_the_ones_the_committed_json_renders() -> None:
    blocks = readme_blocks((ROOT / "docs" / "benchmark.md").read_text(encoding="utf-8"))
    assert blocks, "docs/benchmark.md shows no generated table of the retired matrix"
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


def test_the_holm_figures_quoted_are_what_the_committed_runs_give() -> None:
    from compare_report import holm_family

    results = ROOT / "benchmarks" / "results"
    lines = (results / "bench_full.runs.jsonl").read_text().splitlines()
    family = holm_family([json.loads(line) for line in lines if line.strip()])
    assert family == json.loads((results / "bench_full_holm.json").read_text())
    assert len(family) == 14  # each arm against ALBEF, per setting and protocol
    [lead] = [r for r in family if (r["catalogue"], r["method"], r["protocol"])
              == ("default_500", "a_syncmask", "full")]  # fmt: skip
    quoted = f"p = {lead['p']:.3f} and a Holm-adjusted p of {lead['p_holm']:.2f}"
    page = " ".join((ROOT / "docs" / "benchmark.md").read_text(encoding="utf-8").split())
    assert quoted in page
    assert all(r["p_holm"] >= r["p"] for r in family)
