"""Training launcher: `python -m lavis_syncmask.train --cfg-path X.yaml [--options k=v ...]`.

Single process: run it directly (CPU or one GPU). Several processes: `torchrun
--nproc_per_node=N -m lavis_syncmask.train ...` (NCCL on GPUs, gloo on CPUs; `run.dist_backend`
overrides). Writes checkpoints, `log.txt` and the resolved `config.yaml` to
`run.output_dir/<job id>/` (a relative `run.output_dir` is taken from the working directory).
Resume with `--options run.resume_ckpt_path=<.../checkpoint_N.pth>` (or a mid-epoch
`checkpoint_N_iterK.pth`). SIGTERM / SIGINT write a checkpoint and exit with 128 + the signal
number; `run.max_bad_steps` non-finite losses in a row write one and exit with 1.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from lavis_syncmask.cli.launcher import build_parser, make_runner, prepare


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `syncmask-train`; returns the exit status."""
    parser = build_parser("syncmask-train", "Train a LAVIS model with runner_syncmask.")
    args = parser.parse_args(argv)
    from lavis_syncmask.common.distributed import cleanup
    from lavis_syncmask.common.paths import release_job_folders
    from lavis_syncmask.runner.signals import TrainingStopped

    try:
        runner = make_runner(prepare(args))
        runner.train()
    except TrainingStopped as stopped:  # a checkpoint is written: no traceback, a clear exit
        print(f"syncmask-train: {stopped}", file=sys.stderr)
        return stopped.exit_code
    finally:
        cleanup()
        release_job_folders()
    return 0


if __name__ == "__main__":
    sys.exit(main())
