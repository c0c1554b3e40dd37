"""One benchmark run, (arm, seed): train through `lavis_syncmask.train`, then score the last
checkpoint through `lavis_syncmask.evaluate` with each protocol; record the commands.

Each run lives in `<out>/runs/<arm>_s<seed>/`: the training run folder (checkpoints,
`log.txt`, the per-step `metrics.jsonl`), `eval.yaml` (the arm's model section with the
retrieval task's datasets and run settings), `eval/<protocol>/metrics.json`, and
`result.json`, written last, which holds the commands, a fingerprint of everything the run
depends on, and its figures. A run whose `result.json` has the same fingerprint is not redone.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from lavis_syncmask.bench.arms import arm_path
from lavis_syncmask.common.paths import config_path
from lavis_syncmask.runner.step_log import read_step_log

RESULT = "result.json"


@dataclass(frozen=True)
class EvalSettings:
    """How every run is scored (the retrieval task's `run.*` keys)."""

    protocols: tuple[str, ...] = ("sample100", "full")
    full_scoring: tuple[str, ...] = ("itm", "itm_itc")  # full protocol: each is one evaluation
    repeats: int = 5  # sample-100 draws
    n_queries: int = 1000
    k_test: int = 16


@dataclass(frozen=True)
class RunSpec:
    arm: str
    seed: int
    data_root: str
    out: str  # the benchmark's run folder
    steps: int | None = None  # run.max_steps (None: the recipe's epochs)
    device: str = "cpu"
    nproc: int = 1  # > 1: torchrun with that many processes
    evaluation: EvalSettings = field(default_factory=EvalSettings)
    overrides: tuple[str, ...] = ()  # extra `KEY=VALUE` config options of every run

    @property
    def name(self) -> str:
        return f"{self.arm}_s{self.seed}"

    @property
    def folder(self) -> Path:
        return Path(self.out) / "runs" / self.name

    def launcher(self, module: str) -> list[str]:
        if self.nproc > 1:
            return ["torchrun", f"--nproc_per_node={self.nproc}", "-m", module]
        return [sys.executable, "-m", module]

    def train_argv(self) -> list[str]:
        data = Path(self.data_root)
        options = [
            f"datasets.fashiongen_pretrain.data_root={data}",
            f"run.output_dir={self.folder.parent}",
            f"run.seed={self.seed}",
            f"run.device={self.device}",
        ]
        if (data / "vocab").is_dir():  # the catalogue's own WordPiece vocabulary
            options.append(f"model.tokenizer={data / 'vocab'}")
        if self.steps is not None:
            options.append(f"run.max_steps={self.steps}")
        options += list(self.overrides)
        cfg = ["--cfg-path", str(arm_path(self.arm)), "--job-id", self.name, "--overwrite"]
        return [*cfg, "--options", *options]

    def eval_runs(self, checkpoint: str) -> list[tuple[str, list[str]]]:
        """(name, argv) of each evaluation of `checkpoint` (a file name in the run folder):
        sample-100, and the full protocol once per scoring."""
        ev = self.evaluation
        runs = []
        for protocol in ev.protocols:
            scorings = ev.full_scoring if protocol == "full" else ("itm",)
            for scoring in scorings:
                name = protocol if protocol != "full" else f"full_{scoring}"
                options = [
                    f"run.protocol={protocol}",
                    f"run.full_scoring={scoring}",
                    f"run.output_dir={self.folder / 'eval'}",
                ]
                argv = ["--cfg-path", str(self.folder / "eval.yaml"), "--job-id", name]
                argv += ["--overwrite", "--checkpoint", str(self.folder / checkpoint)]
                runs.append((name, [*argv, "--options", *options]))
        return runs

    def commands(self, checkpoint: str) -> dict[str, str]:
        """The shell commands that reproduce this run, as run (from the working directory)."""
        out = {"train": shlex.join(self.launcher("lavis_syncmask.train") + self.train_argv())}
        for name, argv in self.eval_runs(checkpoint):
            out[f"evaluate_{name}"] = shlex.join(self.launcher("lavis_syncmask.evaluate") + argv)
        return out

    def fingerprint(self) -> str:
        """What the run's result depends on: this spec and the arm's recipe file."""
        text = json.dumps(asdict(self), sort_keys=True) + arm_path(self.arm).read_text()
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def last_checkpoint(folder: Path) -> str:
    """File name of the last epoch checkpoint a training run wrote in `folder`."""
    epochs = [p for p in folder.glob("checkpoint_*.pth") if p.stem.split("_")[1].isdigit()]
    epochs = [p for p in epochs if "_iter" not in p.stem]
    if not epochs:
        raise FileNotFoundError(f"{folder}: training wrote no checkpoint_<epoch>.pth")
    return max(epochs, key=lambda p: int(p.stem.split("_")[1])).name


def eval_config(spec: RunSpec) -> dict[str, Any]:
    """The evaluation yaml of a run: the arm's model section as trained, the retrieval
    task's datasets and run sections (`retrieval_tiny.yaml`) on the same catalogue."""
    arm = OmegaConf.merge(
        OmegaConf.load(arm_path(spec.arm)), OmegaConf.from_dotlist(list(spec.overrides))
    )
    base = OmegaConf.load(config_path("recipes", "retrieval_tiny.yaml"))
    model = OmegaConf.to_container(arm.model, resolve=True)
    data = Path(spec.data_root)
    if (data / "vocab").is_dir() and "model.tokenizer" not in " ".join(spec.overrides):
        model["tokenizer"] = str(data / "vocab")
    size = arm.datasets.fashiongen_pretrain.vis_processor.train.image_size
    datasets = OmegaConf.to_container(base.datasets, resolve=True)
    datasets["fashiongen_retrieval"]["data_root"] = str(data)
    datasets["fashiongen_retrieval"]["vis_processor"]["eval"]["image_size"] = size
    run = OmegaConf.to_container(base.run, resolve=True)
    ev = spec.evaluation
    run.update(repeats=ev.repeats, n_queries=ev.n_queries, k_test=ev.k_test,
               device=spec.device, deterministic=True)  # fmt: skip
    return {"model": model, "datasets": datasets, "run": run}


def read_result(spec: RunSpec) -> dict[str, Any] | None:
    """The run's recorded result when it was made with this spec and recipe, else None."""
    path = spec.folder / RESULT
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    return result if result.get("fingerprint") == spec.fingerprint() else None


def read_any_result(spec: RunSpec) -> dict[str, Any] | None:
    """The run's recorded result whatever settings made it (`--report-only`: a table of runs
    made by several invocations, e.g. each arm at its own tuned `--set`); None when absent."""
    path = spec.folder / RESULT
    return json.loads(path.read_text()) if path.is_file() else None


def run_in_subprocess(spec: RunSpec, threads: int = 1) -> dict[str, Any]:
    """Train and score one run in its own process group (`python -m
    lavis_syncmask.cli.bench_worker`); returns its result. Raises with the log's tail on failure."""
    spec.folder.mkdir(parents=True, exist_ok=True)
    (spec.folder / "spec.json").write_text(json.dumps(asdict(spec), indent=1))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}  # fmt: skip
    log = spec.folder / "bench.log"
    with open(log, "w", encoding="utf-8") as handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lavis_syncmask.cli.bench_worker", str(spec.folder / "spec.json")],
            stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
        try:
            code = proc.wait()
        except BaseException:  # interrupted: the run's whole process group goes too
            os.killpg(proc.pid, 15)
            raise
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise RuntimeError(f"{spec.name} failed (exit {code}); {log}:\n{tail}")
    result = read_result(spec)
    if result is None:
        raise RuntimeError(f"{spec.name}: the worker wrote no {RESULT} in {spec.folder}")
    return result


def summarize_steps(lines: list[dict[str, Any]], sync_from: int) -> dict[str, Any]:
    """Per-step curves of a run's `metrics.jsonl`, and its mean sync precisions from update
    `sync_from` on (after SyncMask's warm-up of random masks; the same window for every arm)."""
    keys = sorted({k for line in lines for k in line} - {"epoch", "iteration", "update"})
    history = {k: [line.get(k, float("nan")) for line in lines] for k in keys}
    sync = {}
    for key in ("word_sync_precision", "patch_sync_precision"):
        values = [
            x[key] for x in lines if key in x and x["update"] >= sync_from and x[key] == x[key]
        ]
        if values:
            sync[key] = sum(values) / len(values)
    return {"history": history, "sync": sync, "updates": lines[-1]["update"] + 1 if lines else 0}


def collect(spec: RunSpec, checkpoint: str, seconds: dict[str, float], sync_from: int) -> dict:
    """The run's result from its folder: every evaluation's metrics and the step log."""
    metrics = {}
    for name, _ in spec.eval_runs(checkpoint):
        path = spec.folder / "eval" / name / "metrics.json"
        metrics[name] = json.loads(path.read_text())["metrics"]
    steps = summarize_steps(read_step_log(spec.folder), sync_from)
    return {
        "arm": spec.arm,
        "seed": spec.seed,
        "fingerprint": spec.fingerprint(),
        "commands": spec.commands(checkpoint),
        "metrics": metrics,
        **{k: round(v, 1) for k, v in seconds.items()},
        **steps,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
