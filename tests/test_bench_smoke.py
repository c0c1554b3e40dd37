"""Every benchmark script runs: its `--smoke` mode (seconds, smallest inputs), so an import or an
interface change breaks this test rather than a user's benchmark command.

Two subprocesses (the machine's two cores) each run half of the scripts one after another
(`tests/bench_smoke_runner.py`: one `import lavis`, ~8 s, per subprocess instead of per
script); each test reads its own script's result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
RUNNER = Path(__file__).resolve().parent / "bench_smoke_runner.py"

#: script -> a line its smoke run prints only when it got to the end.
SMOKE_SCRIPTS: dict[str, str] = {  # the longest first, so the two workers finish together
    "bench_sharded_eval.py": "2-rank metrics equal 1-process metrics: True",
    "gpu_step_bench.py": '"ratios"',
    "bench_retrieval_vs_lavis.py": "ratio ours/LAVIS",
    "bench_train_step.py": "[tiny] peak memory",
    "bench_load_check.py": "file handles leaked after the run: 0",
    "bench_full_retrieval.py": "metrics identical: True",
    "bench_head_memory.py": "cls: after / before",
    "bench_sampler.py": "epoch_statistics",
    "bench_synthetic.py": "generator:",
    "bench_search.py": "text query over 64 items",
    "bench_step_guard.py": "guard copy:",
    "load_search.py": "the goals: 0 errors",
    "bench_ann.py": "hnsw: recall@10",
    "profile_train_step.py": '"shares_of_step"',
}
#: Scripts with a `__main__` that this file does not run, and why.
NOT_HERE: dict[str, str] = {
    "gpu_check.py": "its CPU mode (--device cpu --tiny) is tests/test_gpu_check.py",
    "compare_report.py": "its tables are checked against the results JSON by tests/test_docs.py",
    "feature_spread.py": "run on a smoke benchmark's folder by tests/test_bench_compare.py",
    "plateau_exit.py": "run on a smoke benchmark's folder by tests/test_bench_compare.py",
    "probe_collapse.py": "run on a smoke benchmark's run by tests/test_bench_compare.py",
}
TIMEOUT_S = 300


def _scripts_with_main() -> set[str]:
    return {
        p.name
        for p in BENCHMARKS.glob("*.py")
        if 'if __name__ == "__main__":' in p.read_text(encoding="utf-8")
    }


def _run_group(scripts: list[str], cwd: Path) -> dict[str, dict[str, object]]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env["TRANSFORMERS_OFFLINE"] = "1"
    cmd = [sys.executable, str(RUNNER), *(str(BENCHMARKS / s) for s in scripts)]
    done = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("SMOKE_RESULTS ")]
    if not lines:  # the runner itself failed: every script of the group reports it
        failure = {"ok": False, "output": f"runner failed:\n{done.stderr[-4000:]}"}
        return {script: failure for script in scripts}
    return json.loads(lines[-1].removeprefix("SMOKE_RESULTS "))


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    """Every smoke run, the scripts dealt longest first to two concurrent runners."""
    ordered = list(SMOKE_SCRIPTS)
    groups = [ordered[0::2], ordered[1::2]]
    with ThreadPoolExecutor(max_workers=len(groups)) as pool:
        futures = [pool.submit(_run_group, g, tmp_path_factory.mktemp("smoke")) for g in groups]
        return {k: v for f in futures for k, v in f.result().items()}


def test_every_benchmark_script_is_smoked_or_says_why_not() -> None:
    scripts = _scripts_with_main()
    missing = sorted(scripts - SMOKE_SCRIPTS.keys() - NOT_HERE.keys())
    assert not missing, f"benchmarks/ scripts without a --smoke test: {missing}"
    stale = sorted((SMOKE_SCRIPTS.keys() | NOT_HERE.keys()) - scripts)
    assert not stale, f"listed here but not a script in benchmarks/: {stale}"


@pytest.mark.parametrize("script", sorted(SMOKE_SCRIPTS))
def test_smoke_mode_runs_to_the_end(
    script: str, smoke_results: dict[str, dict[str, object]]
) -> None:
    result = smoke_results[script]
    output = str(result["output"])
    assert result["ok"], f"{script} --smoke failed:\n{output}"
    assert SMOKE_SCRIPTS[script] in output, f"{script} --smoke did not finish:\n{output}"
