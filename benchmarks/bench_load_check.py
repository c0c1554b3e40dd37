"""Load check: a long tiny CPU pretraining run with DataLoader workers, watched for memory growth
and leaked file handles (issue 9, item 7).

It generates a small synthetic catalogue, then trains the `tiny` model with
`projects/syncmask/pretrain_tiny.yaml` through the real launcher and runner (`num_workers=2`,
per-epoch checkpoints with `run.keep_last`), for at least `--steps` training steps. Every step
goes through a counting wrapper of the task's `train_step`, which samples:
- the resident memory (RSS) of the main process, and the proportional memory (PSS) of main +
  live worker processes (shared pages counted once);
- the number of open file descriptors of the main process.
It reports the RSS growth from step `--from-step` to the last step (target: under 5%), and the
descriptors open after the run that were not open before it (leaked handles). On a busy
machine `--time-limit-min` bounds the run: a SIGTERM then stops it through the runner's own
signal handling (checkpoint, clean stop), and the figures cover the steps done.

    nice -n 10 python benchmarks/bench_load_check.py [--steps 2000] [--workers 2] [--image-size 64]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import torch
from smoke import parse_with_smoke

SMOKE = {"steps": 4, "from_step": 2, "workers": 0, "products": 8, "image_size": 32}

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "projects" / "syncmask" / "pretrain_tiny.yaml"


def open_fds() -> dict[str, str]:
    """fd number -> what it points to, for this process."""
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            out[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass  # closed between listdir and readlink (the listdir handle itself)
    return out


def rss_mb() -> float:
    """Resident memory of this process."""
    return psutil.Process().memory_info().rss / 2**20


def pss_with_workers_mb() -> float:
    """Proportional set size of this process plus its live children (DataLoader workers):
    pages the forked workers share with the parent count once, not once per process."""
    proc = psutil.Process()
    total = proc.memory_full_info().pss
    for child in proc.children(recursive=True):
        try:
            total += child.memory_full_info().pss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


class StepProbe:
    """Wraps `task.train_step`: counts steps and samples memory and descriptors."""

    def __init__(self, task: Any, sample_at: set[int]) -> None:
        self.inner, self.sample_at = task.train_step, sample_at
        self.steps, self.samples, self.last, self.started = 0, {}, {}, time.time()
        task.train_step = self

    def measure(self) -> dict[str, float]:
        return {
            "rss_main_mb": rss_mb(),
            "pss_with_workers_mb": pss_with_workers_mb(),
            "open_fds": float(len(open_fds())),
            "elapsed_s": time.time() - self.started,
        }

    def __call__(self, model: Any, samples: dict[str, Any]) -> Any:
        loss = self.inner(model=model, samples=samples)
        self.steps += 1
        if self.steps in self.sample_at:
            self.samples[self.steps] = self.measure()
        if self.steps % 10 == 0 or self.steps in self.sample_at:
            self.last = {"step": self.steps, **self.measure()}  # the end, if the run stops here
            if self.steps % 50 == 0:
                print(json.dumps(self.last), flush=True)
        return loss


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from lavis_syncmask.cli.launcher import make_runner, prepare
    from lavis_syncmask.common.paths import release_job_folders
    from lavis_syncmask.runner.signals import TrainingStopped
    from lavis_syncmask.synthetic import generate_catalogue

    data = generate_catalogue(work / "data", args.products, 4, seed=0, progress=False)
    rows = len(__import__("h5py").File(data / "fashiongen_256_256_train.h5", "r")["index_2"])
    per_epoch = rows // args.batch_size
    epochs = -(-args.steps // per_epoch)
    options = [
        f"datasets.fashiongen_pretrain.data_root={data}",
        f"model.tokenizer={data / 'vocab'}",
        f"run.output_dir={work / 'out'}",
        f"run.max_epoch={epochs}",
        f"run.batch_size_train={args.batch_size}",
        f"run.num_workers={args.workers}",
        "run.sampler.group_size=2",
        "run.keep_last=2",
        "model.queue_size=64",
        f"model.image_size={args.image_size}",
        *(
            f"datasets.fashiongen_pretrain.vis_processor.{split}.image_size={args.image_size}"
            for split in ("train", "eval")
        ),
    ]
    fds_before = open_fds()
    ns = argparse.Namespace(
        cfg_path=str(CONFIG), options=options, job_id="load", imports=[], overwrite=False
    )
    session = prepare(ns)
    probe = StepProbe(session.task, {args.from_step, epochs * per_epoch})
    runner = make_runner(session)
    stopped = None
    if args.time_limit_min > 0:  # SIGTERM: the runner checkpoints and stops cleanly
        timer = threading.Timer(args.time_limit_min * 60, os.kill, (os.getpid(), signal.SIGTERM))
        timer.daemon = True
        timer.start()
    try:
        runner.train()
    except TrainingStopped as err:
        stopped = str(err)
    finally:
        release_job_folders()  # as `cli/train.main` does when its run ends
    del runner, session
    leaked = {fd: target for fd, target in open_fds().items() if fd not in fds_before}
    return {
        "rows": rows,
        "steps_per_epoch": per_epoch,
        "epochs": epochs,
        "steps": probe.steps,
        "at_from_step": probe.samples.get(args.from_step),
        "at_end": probe.last,
        "stopped": stopped,
        "leaked_fds": leaked,
        "checkpoints_left": sorted(p.name for p in (work / "out" / "load").glob("*.pth")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--from-step", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--products", type=int, default=100)
    parser.add_argument("--image-size", type=int, default=64, help="tiny model at this size")
    parser.add_argument(
        "--time-limit-min",
        type=float,
        default=0.0,
        help="send this process SIGTERM after so many minutes (0: none); the run then stops "
        "with a checkpoint and the figures cover the steps done",
    )
    args = parse_with_smoke(parser, SMOKE)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # workers fork after tokenizing
    # Read before the run: the checkout may move on while a long run goes.
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args, Path(tmp))
    start, end = result["at_from_step"], result["at_end"]
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} cpus, "
        f"{torch.get_num_threads()} torch threads"
    )
    print(f"commit: {commit.stdout.strip() or 'unknown'}; config: {vars(args)}")
    print(json.dumps(result, indent=2))
    for key in ("rss_main_mb", "pss_with_workers_mb"):
        growth = (end[key] - start[key]) / start[key] * 100
        print(
            f"{key}: step {args.from_step} {start[key]:.1f} MB -> step {end['step']} "
            f"{end[key]:.1f} MB: growth {growth:+.2f}% (target < 5%)"
        )
    print(
        f"open fds (main): step {args.from_step} {start['open_fds']:.0f} -> "
        f"end {end['open_fds']:.0f}"
    )
    print(f"file handles leaked after the run: {len(result['leaked_fds'])} {result['leaked_fds']}")


if __name__ == "__main__":
    sys.exit(main())
