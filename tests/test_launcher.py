"""The launchers as a user runs them: `python -m lavis_syncmask.train` (one CPU process, then
two gloo processes under torchrun) and `python -m lavis_syncmask.evaluate` on the checkpoint,
all on the toy plugin in subprocesses, plus the evaluate launcher's config handling."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import toy_plugin
from omegaconf import OmegaConf

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
TWO_STEPS = ("run.max_epoch=1", "run.output_dir=out", "datasets.syncmask_toy_data.num_train=16")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS_DIR), str(REPO_ROOT), env.get("PYTHONPATH", "")])
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


def _run(args: list[str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=_env(), capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return done


def _launch(module: str, cwd: Path, *extra: str) -> subprocess.CompletedProcess:
    cfg = str(toy_plugin.RUN_CONFIG)
    return _run(["-m", module, "--cfg-path", cfg, "--import", "toy_plugin", *extra], cwd)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-step CPU run (16 samples, batch 8) in a relative output dir; returns the cwd."""
    cwd = tmp_path_factory.mktemp("launch")
    _launch("lavis_syncmask.train", cwd, "--job-id", "j1", "--options", *TWO_STEPS)
    return cwd


def test_train_launcher_writes_checkpoint_config_and_log(trained: Path) -> None:
    job = trained / "out" / "j1"
    checkpoint = torch.load(job / "checkpoint_0.pth", weights_only=True)
    assert checkpoint["epoch"] == 0 and "encoder_m.weight" in checkpoint["model"]
    resolved = OmegaConf.load(job / "config.yaml")
    assert resolved.run.max_epoch == 1 and resolved.run.distributed is False
    assert resolved.datasets.syncmask_toy_data.num_train == 16
    assert resolved.model.hidden == 12  # the model's defaults are merged in
    log = [json.loads(line) for line in (job / "log.txt").read_text().splitlines()
           if line.startswith('{"train')]  # fmt: skip
    assert len(log) == 1 and log[0]["train_steps"] == 2


def test_evaluate_launcher_scores_the_given_checkpoint(trained: Path) -> None:
    checkpoint = trained / "out" / "j1" / "checkpoint_0.pth"
    done = _launch(
        "lavis_syncmask.evaluate", trained, "--checkpoint", str(checkpoint),
        "--job-id", "e1", "--options", *TWO_STEPS,
    )  # fmt: skip
    job = trained / "out" / "e1"
    scored = json.loads((job / "eval_test.json").read_text())
    expected = toy_plugin.parameter_checksum(torch.load(checkpoint, weights_only=True)["model"])
    assert scored["checksum"] == pytest.approx(expected, rel=1e-12)
    assert not list(job.glob("checkpoint_*.pth")) and not (job / "eval_val.json").exists()
    resolved = OmegaConf.load(job / "config.yaml")
    assert resolved.run.checkpoint == str(checkpoint) and resolved.run.evaluate is True
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["results"]["test"]["acc"] == scored["acc"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_torchrun_two_gloo_processes_train_in_sync(tmp_path: Path) -> None:
    torchrun = ["-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1"]
    _run(
        [*torchrun, f"--master_port={_free_port()}", "-m", "lavis_syncmask.train",
         "--cfg-path", str(toy_plugin.RUN_CONFIG), "--import", "toy_plugin",
         "--options", "run.max_epoch=1", "run.output_dir=out", "run.batch_size_train=4"],
        tmp_path, timeout=240,
    )  # fmt: skip
    jobs = list((tmp_path / "out").iterdir())
    assert len(jobs) == 1  # both ranks agreed on the timestamped job id
    checkpoint = torch.load(jobs[0] / "checkpoint_0.pth", weights_only=True)
    assert int(checkpoint["model"]["gather_factor"]) == 2  # the queue got both ranks' keys
    ranks = [json.loads((jobs[0] / f"eval_test_rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world_size"] == 2 and ranks[0]["checksum"] == ranks[1]["checksum"]
    resolved = OmegaConf.load(jobs[0] / "config.yaml")
    assert resolved.run.distributed is True and resolved.run.dist_backend == "gloo"
    train = [json.loads(line) for line in (jobs[0] / "log.txt").read_text().splitlines()
             if line.startswith('{"train')]  # fmt: skip
    assert train[0]["train_steps"] == 48 // (4 * 2)


def _toy_config(*options: str) -> object:
    from lavis_syncmask.cli.launcher import import_modules, load_config

    import_modules(["toy_plugin"])
    args = argparse.Namespace(cfg_path=str(toy_plugin.RUN_CONFIG), options=list(options))
    return load_config(args)


def test_evaluate_config_moves_model_checkpoint_and_falls_back_to_valid_splits(
    tmp_path: Path,
) -> None:
    from lavis_syncmask.cli.evaluate import _configure

    weights = tmp_path / "w.pth"
    torch.save({"model": {}}, weights)
    cfg = _toy_config(f"model.checkpoint={weights}", "run.test_splits=[]")
    _configure(None)(cfg)
    assert "checkpoint" not in cfg.model_cfg and cfg.run_cfg.checkpoint == str(weights)
    assert list(cfg.run_cfg.test_splits) == ["val"] and cfg.run_cfg.evaluate is True
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        _configure(str(tmp_path / "missing.pth"))(_toy_config())
    with pytest.raises(ValueError, match="nothing to evaluate"):
        _configure(None)(_toy_config("run.test_splits=[]", "run.valid_splits=[]"))


def test_launcher_input_errors_are_clear(tmp_path: Path) -> None:
    from lavis_syncmask.cli.launcher import import_modules, load_config, resolve_job_id

    with pytest.raises(ModuleNotFoundError, match="no_such_plugin_module"):
        import_modules(["no_such_plugin_module"])
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(argparse.Namespace(cfg_path=str(tmp_path / "nope.yaml"), options=[]))
    with pytest.raises(ValueError, match="plain folder name"):
        resolve_job_id("../escape")
    stamp, suffix = resolve_job_id(None).split("_")
    assert resolve_job_id("mine") == "mine" and stamp.isdigit() and len(suffix) == 8
