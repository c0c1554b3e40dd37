"""Child processes that never outlive their time limit or their parent (issue 20).

`subprocess.run(..., timeout=...)` kills only the direct child: a `torchrun` killed that way
leaves its worker and the worker's DataLoader processes running, orphaned, holding GPU memory.
Here every child starts in its own process group (`start_new_session=True`), and a time limit,
an exception or a SIGTERM / SIGINT to the parent ends the whole group: SIGTERM first (so a
training run may write its checkpoint), then SIGKILL after a grace period (DataLoader workers
ignore SIGTERM on purpose, runner/loaders.py). A SIGKILL of the parent itself cannot be
caught; then the group is left to the caller's scheduler.

    >>> done = run_group(["python", "-c", "print('hi')"], timeout=30)
    >>> done.returncode, done.stdout
    (0, 'hi\\n')
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

#: Seconds a group has between SIGTERM and SIGKILL.
GRACE_S = 5.0


@dataclass(frozen=True)
class Finished:
    """How a child ended: `returncode` (None when it was killed at its time limit), its output
    (empty strings when not captured) and its wall time."""

    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    pgid: int

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def group_alive(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group `pgid`; empty once the group is gone.
    Zombies are left out: an orphan's zombie waits for init to reap it, but runs nothing."""
    proc = Path("/proc")
    if not proc.is_dir():  # no procfs (macOS): the group's existence is all one can see
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    alive = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended while we looked
            continue
        # Fields after the command name, which may itself hold spaces and parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


def kill_group(proc: subprocess.Popen, grace: float = GRACE_S) -> None:
    """End `proc`'s whole process group: SIGTERM, up to `grace` seconds for the leader, then
    SIGKILL for every process of the group still there."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return  # nobody left in the group
        if wait is not None:
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                pass


@contextmanager
def _signals_end_group(proc: subprocess.Popen) -> Iterator[None]:
    """While active, SIGTERM / SIGINT to this process end the child's group, then this process
    exits as that signal would have it (SystemExit 128 + signal, or KeyboardInterrupt)."""

    def handle(signum: int, frame: FrameType | None) -> None:
        kill_group(proc)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    if threading.current_thread() is not threading.main_thread():
        yield  # Python installs handlers only in the main thread
        return
    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_group(
    cmd: Sequence[str],
    *,
    timeout: float | None = None,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    capture: bool = True,
    grace: float = GRACE_S,
) -> Finished:
    """Run `cmd` in a new process group for at most `timeout` seconds (None: no limit) and
    return how it ended; at the limit, on an exception or on SIGTERM / SIGINT, the whole group
    is ended (:func:`kill_group`). `capture=False` lets the output through to this process."""
    pipe = subprocess.PIPE if capture else None
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd), cwd=cwd, env=None if env is None else dict(env), stdout=pipe, stderr=pipe,
        text=True, start_new_session=True,
    )  # fmt: skip
    returncode: int | None
    try:
        with _signals_end_group(proc):
            try:
                out, err = proc.communicate(timeout=timeout)
                returncode = proc.returncode
            except subprocess.TimeoutExpired:
                kill_group(proc, grace)
                out, err = proc.communicate()
                returncode = None
    finally:
        # An exception above, or a leader that exited and left grandchildren of its group.
        if group_alive(proc.pid):
            kill_group(proc, grace if proc.poll() is None else 0.0)
    seconds = time.perf_counter() - start
    return Finished(returncode, out or "", err or "", seconds, proc.pid)


def check_finished(done: Finished, what: str) -> Finished:
    """`done`, or a RuntimeError naming `what`, how it ended and its error output's tail."""
    if done.returncode != 0:
        how = "timed out" if done.timed_out else f"exited with {done.returncode}"
        raise RuntimeError(f"{what} {how}:\n{done.stderr[-3000:]}")
    return done
