"""runner_syncmask in one CPU process on the toy plugin: exact resume, full checkpoints, output
paths, a second runner, the training-loop fixes, the batch-sampler hook and the single-process
behaviour of the distributed helpers."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
import toy_plugin  # registers the syncmask_toy_* classes
from torch import nn

from lavis_syncmask.cli.launcher import Session, make_runner, prepare
from lavis_syncmask.common import distributed
from lavis_syncmask.common.checkpoint import CHECKPOINT_KEYS, load_checkpoint
from lavis_syncmask.runner.loop import LoopSettings, train_one_epoch
from lavis_syncmask.runner.runner import RunnerSyncMask
from lavis_syncmask.runner.settings import RunSettings
from lavis_syncmask.sampling.settings import SamplerSettings


def session(out: Path | str, job_id: str, *options: str) -> Session:
    args = argparse.Namespace(
        cfg_path=str(toy_plugin.RUN_CONFIG),
        options=[f"run.output_dir={out}", *options],
        job_id=job_id,
        imports=["toy_plugin"],
    )
    return prepare(args)


def runner_for(out: Path | str, job_id: str, *options: str) -> RunnerSyncMask:
    return make_runner(session(out, job_id, *options))


def read_log(job_dir: Path) -> list[dict]:
    lines = (job_dir / "log.txt").read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith('{"')]


RUN_A = ("run.accum_grad_iters=4", "run.max_grad_norm=0.5")


@pytest.fixture(scope="module")
def two_epoch_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunnerSyncMask, Path]:
    """A 2-epoch run with accumulation (a partial group each epoch) and clipping."""
    out = tmp_path_factory.mktemp("runs")
    runner = runner_for(out, "a", *RUN_A)
    runner.train()
    return runner, out


def test_resume_continues_exactly_like_an_uninterrupted_run(two_epoch_run) -> None:
    runner_a, out = two_epoch_run
    first = load_checkpoint(out / "a" / "checkpoint_0.pth")
    final = load_checkpoint(out / "a" / "checkpoint_1.pth")
    resume = f"run.resume_ckpt_path={out / 'a' / 'checkpoint_0.pth'}"
    resumed = runner_for(out, "b", *RUN_A, resume)
    resumed.train()
    again = load_checkpoint(out / "b" / "checkpoint_1.pth")

    assert not (out / "b" / "checkpoint_0.pth").exists()
    assert resumed.task.started_epochs == [1]
    assert any(not torch.equal(first["model"][k], final["model"][k]) for k in final["model"])
    assert again["model"].keys() == final["model"].keys()
    for key, value in final["model"].items():
        assert torch.equal(again["model"][key], value), key
    for pid, state in final["optimizer"]["state"].items():
        for name, value in state.items():
            assert torch.equal(again["optimizer"]["state"][pid][name], value), (pid, name)
    assert again["best_epoch"] == final["best_epoch"]


def test_resume_after_the_last_epoch_tests_the_best_checkpoint_of_the_first_run(
    two_epoch_run,
) -> None:
    _, out = two_epoch_run
    resume = f"run.resume_ckpt_path={out / 'a' / 'checkpoint_1.pth'}"
    finished = runner_for(out, "c", *RUN_A, resume)
    finished.train()  # nothing left to train: only the test split, on run a's best weights
    best = load_checkpoint(out / "a" / "checkpoint_best.pth")
    scored = json.loads((out / "c" / "eval_test.json").read_text())
    assert finished.task.started_epochs == [] and not (out / "c" / "checkpoint_best.pth").exists()
    assert scored["epoch"] == "best"
    assert scored["checksum"] == pytest.approx(toy_plugin.parameter_checksum(best["model"]))


def test_checkpoint_holds_frozen_parameters_buffers_and_plain_config(two_epoch_run) -> None:
    runner, out = two_epoch_run
    checkpoint = torch.load(out / "a" / "checkpoint_1.pth", weights_only=True)
    assert set(CHECKPOINT_KEYS) <= set(checkpoint)
    model = runner.unwrap_dist_model(runner.model)
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    buffers = [n for n, _ in model.named_buffers()]
    assert "encoder_m.weight" in frozen and {"queue", "queue_ptr"} <= set(buffers)
    for name in frozen + buffers:
        assert torch.equal(checkpoint["model"][name], model.state_dict()[name]), name
    assert checkpoint["epoch"] == 1
    assert isinstance(checkpoint["config"], str) and "syncmask_toy_task" in checkpoint["config"]


def test_two_epoch_run_logs_progress_and_reduces_loss(two_epoch_run) -> None:
    _, out = two_epoch_run
    train = [line for line in read_log(out / "a") if "train_loss" in line]
    assert [line["train_toy_epoch"] for line in train] == [0.0, 1.0]
    # 48 samples / batch 8 = 6 steps; groups of 4 steps plus the flushed partial group of 2.
    assert all(line["train_steps"] == 6 and line["train_updates"] == 2 for line in train)
    assert train[1]["train_loss"] < train[0]["train_loss"]
    assert (out / "a" / "checkpoint_best.pth").is_file()
    assert (out / "a" / "config.yaml").read_text().count("accum_grad_iters: 4") == 1


def test_relative_output_dir_is_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lavis.common.registry import registry

    monkeypatch.chdir(tmp_path)
    first = runner_for("rel/out", "one")
    second = runner_for("rel/out", "two")  # used to raise KeyError: path already registered
    assert first.output_dir == tmp_path / "rel" / "out" / "one"
    assert second.output_dir == tmp_path / "rel" / "out" / "two"
    assert registry.get_path("output_dir") == str(second.output_dir)
    assert (second.output_dir / "config.yaml").is_file()


def test_model_property_is_never_none_and_amp_stays_off_on_cpu(tmp_path: Path) -> None:
    runner = runner_for(tmp_path, "m", "run.amp=True")
    assert runner.model is not None and runner.model is runner.model
    assert runner.device.type == "cpu" and not runner.use_amp and runner.scaler is None
    assert runner.loop_settings.use_amp is False


class FakeSamplerRunner(RunnerSyncMask):
    def batch_sampler_class(self) -> type:
        return toy_plugin.FakeBatchSampler


def test_batch_sampler_hook_sets_epochs_refreshes_and_logs(tmp_path: Path) -> None:
    options = ("run.batch_sampler=semi_hard", "run.sampler.group_size=2")
    built = session(tmp_path, "s", *options, "run.sampler.refresh_every=1")
    runner = FakeSamplerRunner(
        cfg=built.cfg, task=built.task, model=built.model, datasets=built.datasets, job_id="s"
    )
    runner.train()
    sampler = runner._batch_sampler
    assert isinstance(sampler, toy_plugin.FakeBatchSampler)
    assert sampler.mode == "semi_hard" and sampler.group_size == 2
    assert sampler.epochs_set == [0, 1]
    assert sampler.refreshed == [(0, (48, 4)), (1, (48, 4))]
    assert runner.unwrap_dist_model(runner.model).embedding_calls == 2
    assert sampler.batches_yielded == 2 * len(sampler)
    train = [line for line in read_log(tmp_path / "s") if "train_loss" in line]
    assert [line["train_sampler_epoch"] for line in train] == [0.0, 1.0]


def test_real_semi_hard_sampler_builds_the_train_batches(tmp_path: Path) -> None:
    sampler_module = pytest.importorskip("lavis_syncmask.sampling.batch_sampler")
    options = ("run.batch_sampler=semi_hard", "run.sampler.group_size=2", "run.max_epoch=1")
    runner = runner_for(tmp_path, "r", *options)
    runner.train()
    assert isinstance(runner._batch_sampler, sampler_module.SemiHardBatchSampler)
    train = [line for line in read_log(tmp_path / "r") if "train_loss" in line]
    assert train[0]["train_steps"] == 48 // 8 == train[0]["train_sampler_num_batches"]
    with pytest.raises(ValueError, match="valid keys.*group_size"):
        runner_for(tmp_path, "bad", "run.batch_sampler=grouped", "run.sampler.bogus=1")


def test_sampler_config_errors_name_the_valid_choices() -> None:
    from omegaconf import OmegaConf

    def sampler_settings(run: dict) -> SamplerSettings:
        return RunSettings.from_run_cfg(OmegaConf.create(run)).sampler_settings.checked()

    with pytest.raises(ValueError, match="group_size"):
        sampler_settings({"batch_sampler": "grouped", "sampler": {"size": 4}})
    with pytest.raises(ValueError, match="semi_hard"):
        sampler_settings({"batch_sampler": "hardest"})
    assert sampler_settings({}).mode is None


class _MeanSquaredTask:
    def train_step(self, model: nn.Module, samples: dict) -> torch.Tensor:
        return ((model(samples["x"]) - samples["y"]) ** 2).mean()


class _NoSchedule:
    def step(self, cur_epoch: int, cur_step: int) -> None:
        pass


def _one_epoch(batches: list[dict], settings: LoopSettings) -> tuple[nn.Module, dict]:
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    stats = train_one_epoch(
        task=_MeanSquaredTask(),
        model=model,
        loader=batches,
        optimizer=torch.optim.SGD(model.parameters(), lr=1.0),
        lr_scheduler=_NoSchedule(),
        scaler=None,
        device=torch.device("cpu"),
        epoch=0,
        settings=settings,
    )
    return model, stats


def _batch(gen: torch.Generator, n: int) -> dict:
    return {"x": torch.randn(n, 3, generator=gen), "y": torch.randn(n, 2, generator=gen)}


def test_accumulation_averages_micro_batches_like_one_big_batch() -> None:
    gen = torch.Generator().manual_seed(1)
    halves = [_batch(gen, 4), _batch(gen, 4)]
    whole = [{k: torch.cat([h[k] for h in halves]) for k in ("x", "y")}]
    accumulated, stats = _one_epoch(halves, LoopSettings(accum_grad_iters=2))
    single, _ = _one_epoch(whole, LoopSettings())
    assert stats["updates"] == 1 and stats["steps"] == 2
    for a, b in zip(accumulated.parameters(), single.parameters()):
        torch.testing.assert_close(a, b)


def test_partial_group_is_applied_and_clipping_bounds_the_update() -> None:
    gen = torch.Generator().manual_seed(2)
    batches = [{k: v * 50 for k, v in _batch(gen, 4).items()} for _ in range(3)]
    _, stats = _one_epoch(batches, LoopSettings(accum_grad_iters=2))
    assert stats["updates"] == 2
    torch.manual_seed(0)
    start = torch.cat([p.detach().flatten() for p in nn.Linear(3, 2).parameters()])
    clipped, _ = _one_epoch(batches[:1], LoopSettings(max_grad_norm=0.01))
    free, _ = _one_epoch(batches[:1], LoopSettings())
    moved = [
        torch.cat([p.detach().flatten() for p in m.parameters()]) - start for m in (clipped, free)
    ]
    assert moved[0].norm() <= 0.01 + 1e-6 < moved[1].norm()
    with pytest.raises(ValueError, match="accum_grad_iters"):
        LoopSettings(accum_grad_iters=0)


def test_distributed_helpers_are_identities_in_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.init_distributed() == distributed.DistInfo(distributed=False)
    assert not distributed.is_dist() and distributed.get_rank() == 0
    assert distributed.get_world_size() == 1
    distributed.barrier()
    queue = torch.arange(6.0).reshape(3, 2)
    assert distributed.concat_all_gather(queue) is queue
    assert distributed.all_reduce_mean({"loss": 2.5}) == {"loss": 2.5}
    assert distributed.broadcast_object("job") == "job"
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ValueError, match="WORLD_SIZE"):
        distributed.init_distributed()


def test_distributed_flag_without_a_process_group_is_an_error(tmp_path: Path) -> None:
    built = session(tmp_path, "d")
    RunSettings.update(built.cfg, distributed=True)
    with pytest.raises(ValueError, match="process group"):
        make_runner(built)
