"""Stopping a training run cleanly: SIGTERM (what schedulers send before pre-empting a job) and
SIGINT (Ctrl-C) are recorded instead of killing the process mid-step; the runner checks the
record after each optimizer update, writes a checkpoint at that batch, and stops with
:class:`TrainingStopped`. A second SIGINT raises KeyboardInterrupt at once, for a user who
does not want to wait for the checkpoint.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType, TracebackType
from typing import Any

logger = logging.getLogger(__name__)

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)


class TrainingStopped(Exception):
    """The run stopped before its end, after writing a checkpoint; `exit_code` is what the
    launcher exits with (128 + the signal number for a signal, as a shell reports it)."""

    def __init__(self, message: str, exit_code: int, checkpoint: str | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.checkpoint = checkpoint


class NonFiniteLossError(TrainingStopped):
    """`run.max_bad_steps` bad steps (non-finite loss or gradients) in a row."""


class StopRequests:
    """Context manager: while active, SIGTERM / SIGINT set `signum` instead of ending the
    process. Handlers are only installed in the main thread (Python allows no other)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: the user does not want to wait
        self.signum = signum
        logger.warning(
            "received %s: a checkpoint is written after the current step, then the run stops",
            signal.Signals(signum).name,
        )

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
