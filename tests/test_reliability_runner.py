"""runner_syncmask under faults (issue 9): SIGTERM mid-epoch then an exact resume, periodic
mid-epoch checkpoints bounded by `run.keep_last`, stale partial files removed, and non-finite
losses skipped, counted, and stopping the run after `run.max_bad_steps` in a row."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import toy_plugin

from lavis_syncmask.cli.launcher import make_runner, prepare
from lavis_syncmask.common.checkpoint import load_checkpoint
from lavis_syncmask.runner.signals import NonFiniteLossError

TESTS_DIR = Path(__file__).resolve().parent
# 20 iterations per epoch, 2 epochs, a mid-epoch checkpoint every 4 iterations.
RUN = (
    "datasets.syncmask_toy_data.num_train=160",
    "run.save_every_iters=4",
    "run.keep_last=3",
)


def runner_for(out: Path, job_id: str, *options: str):
    args = argparse.Namespace(
        cfg_path=str(toy_plugin.RUN_CONFIG),
        options=[f"run.output_dir={out}", *options],
        job_id=job_id,
        imports=["toy_plugin"],
    )
    return make_runner(prepare(args))


def log_entries(job_dir: Path) -> list[dict]:
    lines = (job_dir / "log.txt").read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith('{"')]


def train_losses(job_dir: Path) -> dict[int, float]:
    """Epoch -> mean train loss, from the last complete line of each epoch in log.txt."""
    losses = {}
    for entry in log_entries(job_dir):
        if "train_loss" in entry and not entry.get("train_stopped"):
            losses[int(entry["train_toy_epoch"])] = entry["train_loss"]
    return losses


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ref")
    runner_for(out, "ref", *RUN).train()
    return out / "ref"


def test_sigterm_mid_epoch_writes_a_checkpoint_and_resume_matches(
    uninterrupted: Path, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(
        PYTHONPATH=os.pathsep.join([str(TESTS_DIR), str(TESTS_DIR.parent)]),
        OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOY_STEP_SLEEP="0.05",
    )  # fmt: skip
    cmd = [sys.executable, "-m", "lavis_syncmask.train", "--import", "toy_plugin", "--cfg-path",
           str(toy_plugin.RUN_CONFIG), "--job-id", "cut", "--options",
           f"run.output_dir={tmp_path}", *RUN]  # fmt: skip
    job = tmp_path / "cut"
    # Two DataLoader workers, and the signal to the whole process group, as schedulers send it.
    cmd.append("run.num_workers=2")
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (job / "checkpoint_0_iter4.pth").exists():  # well into epoch 0
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-3000:]
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert "stopped by SIGTERM" in stderr and "Traceback" not in stderr
    saved = sorted(job.glob("checkpoint_0_iter*.pth"), key=lambda p: p.stat().st_mtime)
    cut = load_checkpoint(saved[-1])
    iteration = cut["resume"]["ranks"][0]["iteration"]
    assert 4 <= iteration < 20 and cut["epoch"] == 0, iteration  # mid-epoch
    assert not (job / "checkpoint_0.pth").exists()
    # A stale partial file of a killed writer is removed when the resumed run starts.
    stale = tmp_path / "resumed" / ".checkpoint_0.pth.4194305.tmp"
    stale.parent.mkdir()
    stale.write_bytes(b"torn")
    runner_for(tmp_path, "resumed", *RUN, f"run.resume_ckpt_path={saved[-1]}").train()
    assert not stale.exists()
    resumed = tmp_path / "resumed"
    reference, final = (
        weights(uninterrupted / "checkpoint_1.pth"),
        weights(resumed / "checkpoint_1.pth"),
    )
    for key in reference:
        torch.testing.assert_close(final[key], reference[key], rtol=1e-5, atol=1e-6, msg=key)
    expected = train_losses(uninterrupted)
    assert sorted(expected) == [0, 1]
    assert train_losses(resumed) == pytest.approx(expected, rel=1e-6)


def test_keep_last_bounds_the_checkpoints_on_disk(uninterrupted: Path) -> None:
    numbered = sorted(p.name for p in uninterrupted.glob("checkpoint_[0-9]*.pth"))
    # Saved: 0_iter4..0_iter16, 0, 1_iter4..1_iter16, 1; the 3 newest stay.
    assert numbered == ["checkpoint_1.pth", "checkpoint_1_iter12.pth", "checkpoint_1_iter16.pth"]
    assert (uninterrupted / "checkpoint_best.pth").exists()


def test_non_finite_losses_are_skipped_and_counted(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(toy_plugin.ToyTask, "nan_steps", frozenset({(0, 2), (0, 3), (1, 5)}))
    runner = runner_for(tmp_path, "nan")
    runner.train()
    logged = log_entries(tmp_path / "nan")
    skipped = [e["train_skipped_steps"] for e in logged if "train_skipped_steps" in e]
    assert skipped == [2, 1]
    assert all(
        torch.isfinite(v).all() for v in weights(tmp_path / "nan" / "checkpoint_1.pth").values()
    )


def test_max_bad_steps_in_a_row_stop_the_run_with_a_checkpoint(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(toy_plugin.ToyTask, "nan_steps", frozenset((0, i) for i in range(1, 6)))
    runner = runner_for(tmp_path, "bad", "run.max_bad_steps=3")
    with pytest.raises(NonFiniteLossError, match=r"3 bad steps in a row.*iteration 3") as err:
        runner.train()
    assert err.value.exit_code == 1
    saved = load_checkpoint(err.value.checkpoint)
    assert saved["resume"]["ranks"][0]["skipped"] == 3
    assert all(torch.isfinite(v).all() for v in saved["model"].values())


def test_reliability_keys_are_checked() -> None:
    from lavis_syncmask.runner.settings import RunSettings

    with pytest.raises(ValueError, match=r"run.max_bad_steps must be >= 1, got 0"):
        RunSettings.from_run_cfg({"max_bad_steps": 0})
    with pytest.raises(ValueError, match=r"run.save_every_iters must be an int, got 2.5"):
        RunSettings.from_run_cfg({"save_every_iters": 2.5})


def test_sigint_is_recorded_once_then_a_second_one_interrupts() -> None:
    from lavis_syncmask.runner.signals import StopRequests

    previous = signal.getsignal(signal.SIGINT)
    with StopRequests() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert stop.signum == signal.SIGINT  # recorded, the process goes on
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
    assert signal.getsignal(signal.SIGINT) is previous
