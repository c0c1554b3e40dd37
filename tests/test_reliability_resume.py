"""Runs and resume under faults (issue 20, "Runs and resume"): child process groups that end
whole, a run folder two runs can never share, a full disk named with its path, the
`max_bad_steps` checkpoint holding the last finite state, and a mid-epoch resume that checks
the batch size, world size and training data it resumes."""

from __future__ import annotations

import argparse
import errno
import importlib.util
import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

# A child that starts two grandchildren ignoring SIGTERM (as DataLoader workers do), prints
# their pids, then waits: what torchrun and its worker looked like when a step timed out.
SPAWNER = """
import subprocess, sys, time
code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
kids = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(2)]
print(" ".join(str(kid.pid) for kid in kids), flush=True)
time.sleep(600)
"""


def _load(name: str, path: Path) -> ModuleType:
    """A module by file path, without importing `lavis_syncmask` (and LAVIS) first."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


processes = _load("syncmask_processes_test", ROOT / "lavis_syncmask/common/processes.py")


def _running(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie (an orphan's zombie waits for init)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _gone(pids: list[int], pgid: int | None = None, within: float = 10.0) -> bool:
    """Whether every pid (and the group `pgid`) has ended, polling for `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(map(_running, pids)) and not (pgid and processes.group_alive(pgid)):
            return True
        time.sleep(0.05)
    return False


def _kill_leftovers(pids: list[int]) -> None:
    for pid in pids:  # only the processes this test started
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_timeout_ends_the_child_and_its_grandchildren() -> None:
    done = processes.run_group([sys.executable, "-c", SPAWNER], timeout=4.0, grace=0.5)
    grandchildren = [int(pid) for pid in done.stdout.split()]
    try:
        assert done.timed_out and len(grandchildren) == 2, done
        assert _gone(grandchildren, done.pgid), processes.group_alive(done.pgid)
    finally:
        _kill_leftovers(grandchildren)


def test_gpu_check_step_past_its_limit_leaves_nothing_running(tmp_path: Path) -> None:
    """The issue's case: `gpu_check.py` killed only torchrun, its worker lived on."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        gpu_check = _load("gpu_check_under_test", ROOT / "benchmarks" / "gpu_check.py")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    record = gpu_check.run_step("spawner", [sys.executable, "-c", SPAWNER], {**os.environ},
                                tmp_path, limit=5.0)  # fmt: skip
    grandchildren = [int(pid) for pid in record["_stdout"].split()]
    try:
        assert record["exit"] == "timeout" and len(grandchildren) == 2, record
        assert _gone(grandchildren), [pid for pid in grandchildren if _running(pid)]
    finally:
        _kill_leftovers(grandchildren)


def test_sigterm_to_the_parent_ends_the_whole_child_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids.txt"
    parent = f"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location("p", {str(ROOT / "lavis_syncmask/common/processes.py")!r})
p = importlib.util.module_from_spec(spec); sys.modules["p"] = p; spec.loader.exec_module(p)
code = {SPAWNER!r}.replace("flush=True)", "file=open({str(pids)!r}, 'w'), flush=True)")
p.run_group([sys.executable, "-c", code], grace=0.5)
"""
    proc = subprocess.Popen([sys.executable, "-c", parent], start_new_session=True)
    deadline = time.monotonic() + 60
    while not pids.exists() or len(pids.read_text().split()) < 2:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    grandchildren = [int(pid) for pid in pids.read_text().split()]
    try:
        os.kill(proc.pid, signal.SIGTERM)  # the parent only, as `timeout` sends it
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
        assert _gone(grandchildren), [pid for pid in grandchildren if _running(pid)]
    finally:
        _kill_leftovers([*grandchildren, proc.pid])


# ---------------------------------------------------------------- a full disk
TORCH_FULL = (
    "[enforce fail at inline_container.cc:858] . PytorchStreamWriter failed writing file "
    "data/0: file write failed"
)


def _save_tiny(path: Path) -> Path:
    from lavis_syncmask.common.checkpoint import save_checkpoint

    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return save_checkpoint(path, model=model, optimizer=optimizer, scaler=None, epoch=0,
                           config_yaml="run: {}\n")  # fmt: skip


def _torch_save_failing(error: BaseException):
    def save(obj: object, f: str | os.PathLike[str], *args: object, **kwargs: object) -> None:
        Path(f).write_bytes(b"partial")  # what a writer leaves before the device fills up
        raise error

    return save


@pytest.mark.parametrize(
    "error", [OSError(errno.ENOSPC, "No space left on device"), RuntimeError(TORCH_FULL)]
)
def test_a_full_disk_names_the_checkpoint_and_leaves_no_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    monkeypatch.setattr(torch, "save", _torch_save_failing(error))
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10, 10, 0))
    target = tmp_path / "run" / "checkpoint_0.pth"
    with pytest.raises(OSError, match=rf"^\[Errno 28\] no space left on device writing {target}"):
        _save_tiny(target)
    assert not target.exists() and not list(target.parent.glob(".*.tmp"))


def test_a_torch_write_failure_with_space_left_names_the_path_not_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch, "save", _torch_save_failing(RuntimeError(TORCH_FULL)))
    target = tmp_path / "checkpoint_0.pth"
    with pytest.raises(OSError, match=rf"writing {target} failed, cause unknown .*free there"):
        _save_tiny(target)
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_full_disk_writing_metrics_or_the_log_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lavis_syncmask.evaluation import write_metrics
    from lavis_syncmask.runner.output import append_log

    (tmp_path / "log.txt").write_text('{"train_loss": 1.0}\n')
    real_write = os.write

    def write_half_then_fail(fd: int, data: bytes) -> int:
        if len(data) > 4:
            return real_write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", write_half_then_fail)
    with pytest.raises(OSError, match=rf"no space left on device writing {tmp_path / 'log.txt'}"):
        append_log(tmp_path, {"loss": 0.123456789}, "train")
    monkeypatch.undo()
    assert (tmp_path / "log.txt").read_text() == '{"train_loss": 1.0}\n'  # no half line

    def no_room(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", no_room)
    metrics = tmp_path / "metrics.json"
    with pytest.raises(OSError, match=rf"no space left on device writing {metrics}"):
        write_metrics(tmp_path, {"r_mean": 1.0}, task="t", protocol=None, gallery=None,
                      seeds=None, checkpoint=None, data_files=[], config=None)  # fmt: skip
    assert not metrics.exists() and not list(tmp_path.glob(".*.tmp"))


# ---------------------------------------------------------------- one run a folder
def _claim(out: str, job_id: str, barrier: Any, results: Any, release: Any) -> None:
    from lavis_syncmask.cli.launcher import refuse_existing_results  # imported before the fork
    from lavis_syncmask.runner.settings import RunSettings

    barrier.wait(30)
    try:
        refuse_existing_results(RunSettings(output_dir=out), job_id, False)
        results.put("claimed")
    except FileExistsError as error:
        results.put(str(error))
    release.wait(60)  # hold the folder as a live run would, until the other has tried


def test_two_runs_started_together_with_one_job_id_never_share_its_folder(tmp_path: Path) -> None:
    import lavis_syncmask.cli.launcher  # noqa: F401  (imported once, before the forks)

    context = multiprocessing.get_context("fork")
    barrier, results, release = context.Barrier(2), context.Queue(), context.Event()
    procs = [
        context.Process(target=_claim, args=(str(tmp_path), "same", barrier, results, release))
        for _ in range(2)
    ]
    for proc in procs:
        proc.start()
    try:
        outcomes = sorted(results.get(timeout=60) for _ in procs)
    finally:
        release.set()
        for proc in procs:
            proc.join(30)
    assert outcomes[0] == "claimed", outcomes
    assert re.fullmatch(
        rf"run folder {tmp_path / 'same'} is in use by another run \(process \d+ on .+\); "
        r"choose another --job-id, or wait for that run to end",
        outcomes[1],
    ), outcomes
    # Once the holder has ended, the folder (still without results) can be used again.
    later = context.Process(
        target=_claim, args=(str(tmp_path), "same", _Passing(), results, _Passing())
    )
    later.start()
    later.join(30)
    assert results.get(timeout=30) == "claimed"


class _Passing:
    """A barrier / event that never waits."""

    def wait(self, timeout: float | None = None) -> bool:
        return True


# ---------------------------------------------------------------- what a resume resumes
# 12 iterations an epoch (96 rows, batches of 8), a mid-epoch checkpoint at iteration 6.
MID = ("datasets.syncmask_toy_data.num_train=96", "run.save_every_iters=6", "run.max_epoch=1")


def runner_for(out: Path, job_id: str, *options: str) -> Any:
    import toy_plugin

    from lavis_syncmask.cli.launcher import make_runner, prepare

    args = argparse.Namespace(
        cfg_path=str(toy_plugin.RUN_CONFIG), options=[f"run.output_dir={out}", *options],
        job_id=job_id, imports=["toy_plugin"],
    )  # fmt: skip
    return make_runner(prepare(args))


@pytest.fixture(scope="module")
def mid_epoch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mid")
    runner_for(out, "first", *MID).train()
    return out / "first" / "checkpoint_0_iter6.pth"


@pytest.mark.parametrize(
    ("changed", "message"),
    [
        ("run.batch_size_train=16", r"batch_size_train=8, this run has 16"),
        ("run.seed=8", r"seed=7, this run has 8"),
        (
            "datasets.syncmask_toy_data.num_train=112",
            r"training data of 96 rows \(fingerprint \w{12}\), this run has training data of "
            r"112 rows",
        ),
        ("datasets.syncmask_toy_data.seed=4", r"training data of 96 rows \(fingerprint"),
    ],
)
def test_a_mid_epoch_resume_with_other_batches_is_an_error_naming_the_change(
    mid_epoch: Path, tmp_path: Path, changed: str, message: str
) -> None:
    """It said "epoch 0 resumes at iteration 6" and skipped rows never trained on."""
    runner = runner_for(tmp_path, "again", *MID, f"run.resume_ckpt_path={mid_epoch}", changed)
    with pytest.raises(
        ValueError, match=rf"checkpoint {mid_epoch} was written with {message}.*epoch 0 iteration 6"
    ):
        runner.train()
    assert not list((tmp_path / "again").glob("checkpoint_*.pth"))  # nothing trained


def test_the_flag_restarts_the_epoch_at_its_first_batch(mid_epoch: Path, tmp_path: Path) -> None:
    options = (f"run.resume_ckpt_path={mid_epoch}", "run.batch_size_train=16")
    runner = runner_for(tmp_path, "restart", *MID, *options, "run.resume_from_epoch_start=true")
    runner.train()
    logged = (tmp_path / "restart" / "log.txt").read_text().splitlines()
    steps = [json.loads(line)["train_steps"] for line in logged if '"train_steps"' in line]
    assert steps == [6]  # all 96 rows in batches of 16, none skipped
    assert runner.task.started_epochs == [0]


def test_a_mid_epoch_checkpoint_records_what_its_batches_depend_on(mid_epoch: Path) -> None:
    from lavis_syncmask.common.checkpoint import load_checkpoint

    recorded = load_checkpoint(mid_epoch)["resume"]["run"]
    assert {k: recorded[k] for k in ("batch_size_train", "world_size", "seed")} == {
        "batch_size_train": 8, "world_size": 1, "seed": 7,
    }  # fmt: skip
    assert recorded["data"]["rows"] == 96 and len(recorded["data"]["sha256"]) == 64
    assert recorded["data"]["rows_only"] is False


# ---------------------------------------------------------------- the max_bad_steps checkpoint
# 12 iterations: a run that blew up at iteration 3 used to stop at 6, with NaN weights.
BAD_RUN = ("datasets.syncmask_toy_data.num_train=96", "run.max_epoch=1", "run.max_bad_steps=3")


def _nan_batches(task: Any, model: Any, samples: dict[str, Any]) -> Any:
    """Iterations 3-5 get a NaN input: NaN features reach the queue, the loss is NaN."""
    if samples["epoch"] == 0 and samples["iters"] in (3, 4, 5):
        samples = {**samples, "x": samples["x"] * float("nan")}
    return model(samples)["loss"]


def _gradient_blow_up(task: Any, model: Any, samples: dict[str, Any]) -> Any:
    """Iterations 3-5 have a finite loss with infinite gradients: one optimizer step on them
    made every weight NaN, and the following losses NaN."""
    loss = model(samples)["loss"]
    if samples["epoch"] == 0 and samples["iters"] in (3, 4, 5):
        loss.register_hook(lambda grad: grad * float("inf"))
    return loss


@pytest.fixture(scope="module")
def last_good(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The state after iterations 0-2 of an undisturbed run."""
    from lavis_syncmask.common.checkpoint import load_checkpoint

    out = tmp_path_factory.mktemp("good")
    runner_for(out, "good", *BAD_RUN[:2], "run.save_every_iters=3").train()
    return load_checkpoint(out / "good" / "checkpoint_0_iter3.pth")


@pytest.mark.parametrize("fault", [_nan_batches, _gradient_blow_up])
def test_the_max_bad_steps_checkpoint_holds_the_last_finite_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, last_good: dict[str, Any], fault: Any
) -> None:
    """Its queues were NaN, and so were its weights when the blow-up came in one step."""
    import toy_plugin

    from lavis_syncmask.common.checkpoint import load_checkpoint
    from lavis_syncmask.runner.signals import NonFiniteLossError

    monkeypatch.setattr(toy_plugin.ToyTask, "train_step", fault)
    runner = runner_for(tmp_path, "bad", *BAD_RUN)
    with pytest.raises(NonFiniteLossError) as stop:
        runner.train()
    assert re.search(
        r"3 bad steps in a row .* the last at epoch 0 iteration 5: .* holds the state after "
        r"iteration 2: every weight, buffer and optimizer value in it is finite",
        str(stop.value),
    ), stop.value
    saved = load_checkpoint(stop.value.checkpoint)
    assert saved["model"].keys() == last_good["model"].keys()
    for key, value in last_good["model"].items():
        assert torch.isfinite(saved["model"][key].float()).all(), key
        assert torch.equal(saved["model"][key], value), key  # queues and teacher too
    for pid, state in last_good["optimizer"]["state"].items():
        for name, value in state.items():
            assert torch.equal(saved["optimizer"]["state"][pid][name], value), (pid, name)
