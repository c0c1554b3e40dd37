"""`python -m lavis_syncmask.cli.bench_worker SPEC.json`: one benchmark run in this process.

Trains with `lavis_syncmask.train` and scores with `lavis_syncmask.evaluate` (their `main`,
in this process; under torchrun, as subprocesses), then writes the run's `result.json`. The
benchmark starts one worker per run in a new session, so a run can be stopped as one group.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

from lavis_syncmask.bench.arms import recipe_path
from lavis_syncmask.bench.runs import (
    RESULT,
    EvalSettings,
    RunSpec,
    collect,
    eval_config,
    last_checkpoint,
)


def load_spec(path: Path) -> RunSpec:
    raw = json.loads(path.read_text())
    ev = raw.pop("evaluation")
    evaluation = EvalSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in ev.items()})
    return RunSpec(**{**raw, "overrides": tuple(raw.get("overrides", ()))}, evaluation=evaluation)


def launch(spec: RunSpec, module: str, argv: list[str]) -> None:
    """`python -m <module> argv` in this process (one process) or through torchrun."""
    if spec.nproc > 1:
        subprocess.run([*spec.launcher(module), *argv], check=True)
        return
    if module == "lavis_syncmask.train":
        from lavis_syncmask.cli.train import main
    else:
        from lavis_syncmask.cli.evaluate import main
    code = main(argv)
    if code:
        raise SystemExit(f"{module} exited with {code}")


def sync_warmup() -> int:
    """The update from which mask sync precision is averaged, in every arm alike: the shipped
    recipe's SyncMask warm-up (its random masks before synchronized ones)."""
    model = OmegaConf.load(recipe_path()).model
    return int(model.get("sync_warmup_steps", 0) or 0)


def run(spec: RunSpec) -> dict:
    start = time.perf_counter()
    launch(spec, "lavis_syncmask.train", spec.train_argv())
    trained = time.perf_counter()
    OmegaConf.save(OmegaConf.create(eval_config(spec)), spec.folder / "eval.yaml")
    checkpoint = last_checkpoint(spec.folder)
    for _, argv in spec.eval_runs(checkpoint):
        launch(spec, "lavis_syncmask.evaluate", argv)
    seconds = {"train_s": trained - start, "eval_s": time.perf_counter() - trained}
    result = collect(spec, checkpoint, seconds, sync_warmup())
    (spec.folder / RESULT).write_text(json.dumps(result, indent=1, default=float) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m lavis_syncmask.cli.bench_worker SPEC.json", file=sys.stderr)
        return 2
    run(load_spec(Path(args[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
