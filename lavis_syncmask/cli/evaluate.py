"""Evaluation launcher: `python -m lavis_syncmask.evaluate --cfg-path X.yaml --checkpoint C.pth`.

Runs only evaluation, on `run.test_splits` (or `run.valid_splits` when no test split is set).
The weights come from `--checkpoint PATH`, or equivalently `--options model.checkpoint=PATH`
(the flag wins when both are given): a checkpoint written by `runner_syncmask` or a bare state
dict, loaded strictly with `weights_only=True` into the model built from the config. The key
is taken out of the model config before the model is built (model configs reject unknown
keys) and recorded as `run.checkpoint` in the resolved `config.yaml`. Without either, the
model is evaluated as the config builds it (e.g. `model.finetuned` with `load_finetuned`).
Works under torchrun like the training launcher.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lavis_syncmask.cli.launcher import build_parser, make_runner, prepare
from lavis_syncmask.models.config import take_model_key
from lavis_syncmask.runner.settings import RunSettings

logger = logging.getLogger(__name__)


def _configure(flag_checkpoint: str | None) -> Callable[[Any], None]:
    """The config edit of an evaluation run: checkpoint key moved to `run`, splits chosen."""

    def configure(cfg: Any) -> None:
        from_cfg = take_model_key(cfg, "checkpoint")
        chosen = flag_checkpoint or from_cfg
        if flag_checkpoint and from_cfg and str(from_cfg) != flag_checkpoint:
            logger.warning("--checkpoint %s overrides model.checkpoint=%s", chosen, from_cfg)
        if chosen is not None and not Path(str(chosen)).expanduser().is_file():
            raise FileNotFoundError(f"--checkpoint / model.checkpoint: no file at {chosen}")
        settings = RunSettings.of(cfg)
        splits = settings.test_splits or settings.valid_splits
        if not splits:
            raise ValueError(
                "nothing to evaluate: run.test_splits and run.valid_splits are both empty"
            )
        RunSettings.update(
            cfg,
            checkpoint=str(Path(str(chosen)).expanduser().resolve()) if chosen else None,
            evaluate=True,
            test_splits=splits,
        )

    return configure


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `syncmask-evaluate`; returns the exit status."""
    parser = build_parser("syncmask-evaluate", "Evaluate a LAVIS model with runner_syncmask.")
    parser.add_argument(
        "--checkpoint",
        default=None,
        help="weights to evaluate (a runner checkpoint or a state dict); "
        "same as --options model.checkpoint=PATH",
    )
    args = parser.parse_args(argv)
    from lavis_syncmask.common.checkpoint import load_model_weights
    from lavis_syncmask.common.distributed import cleanup, is_main_process
    from lavis_syncmask.common.paths import release_job_folders

    try:
        session = prepare(args, configure=_configure(args.checkpoint))
        checkpoint = session.settings.checkpoint
        if checkpoint:
            # A model may name keys evaluation leaves out (e.g. a queue of another size).
            skips = getattr(session.model, "checkpoint_skips", None)
            load_model_weights(
                session.model, checkpoint, "--checkpoint / model.checkpoint", skip=skips
            )
            logger.info("evaluating weights from %s", checkpoint)
        runner = make_runner(session)
        logs = runner.evaluate(skip_reload=True)
        if is_main_process():
            print(json.dumps({"job_dir": str(runner.output_dir), "results": logs}, default=str))
    finally:
        cleanup()
        release_job_folders()
    return 0


if __name__ == "__main__":
    sys.exit(main())
