"""One training path: no backward pass and no optimizer step outside `lavis_syncmask/runner/`.
The benchmark, the probes and the micro-benchmarks train, time and profile through the
runner (`runner/loop.train_one_epoch`, or `runner/loop.one_update` for a single update), so a
recipe they measure is one the product can run (issue 19: a private loop once carried a recipe
no shipped config could express)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "lavis_syncmask" / "runner"


def _training_calls(path: Path) -> list[str]:
    """`x.backward(...)` and `<optimizer>.step(...)` calls in a file, as 'file:line call'."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner = ast.unparse(node.func.value)
        if node.func.attr == "backward" or (node.func.attr == "step" and "optim" in owner):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node.func)}")
    return found


def test_no_backward_or_optimizer_step_outside_the_runner() -> None:
    files = [*(ROOT / "lavis_syncmask").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]
    outside = [c for f in files if RUNNER not in f.parents for c in _training_calls(f)]
    assert not outside, f"training steps outside lavis_syncmask/runner/: {outside}"


def test_the_check_sees_the_runners_own_steps() -> None:
    calls = [c for f in RUNNER.rglob("*.py") for c in _training_calls(f)]
    assert any("backward" in c for c in calls) and any("optimizer.step" in c for c in calls)
