"""benchmarks/gpu_check.py: its CPU mode (`--device cpu --tiny`) runs every step of the GPU
check end to end, and the import shims it gives a newer Python stack behave."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "gpu_env"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import syncmask_gpu_shims as shims  # noqa: E402
from gpu_step_bench import peak_tflops  # noqa: E402


def test_cpu_tiny_check_runs_every_step(tmp_path: Path) -> None:
    out = tmp_path / "check.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu"]
    cmd += ["--tiny", "--out", str(out), "--work", str(tmp_path / "work")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    report = json.loads(out.read_text())
    failed = {k: v for k, v in report["steps"].items() if not v["ok"]}
    assert proc.returncode == 0 and not failed, (failed, proc.stderr[-2000:])
    steps = report["steps"]
    assert set(steps) == {"imports", "catalogue", "train", "torchrun", "evaluate", "bench"}
    assert steps["imports"]["info"]["missing_registrations"] == {}
    assert "dist_backend" in steps["torchrun"]["command"]
    assert steps["evaluate"]["metrics"]["scoring"] == "itc+itm"
    bench = steps["bench"]["result"]
    assert set(bench["models"]) == {"syncmask", "random", "no_mim", "albef"}
    for model in bench["models"].values():
        assert model["images_per_s"] > 0 and model["tflops_per_step"] > 0
    assert set(bench["ratios"]) == {
        "syncmask_vs_albef_step",
        "random_vs_albef_step",
        "no_mim_vs_albef_step",
    }


def test_stubbed_modules_import_and_np_inf_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in shims.STUBBED:
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    shims.install()
    shims.install()  # twice is harmless
    assert sum(isinstance(f, shims._StubFinder) for f in sys.meta_path) == 1
    import decord
    from pycocoevalcap.eval import COCOEvalCap

    decord.bridge.set_bridge("torch")
    COCOEvalCap(None, None).evaluate()

    class Sub(COCOEvalCap):  # LAVIS subclasses nothing of these, but it must not break
        pass

    import numpy

    assert numpy.Inf == float("inf")


def test_unpack_wheels_relaxes_the_tokenizers_pin(tmp_path: Path) -> None:
    wheel = tmp_path / "wheels" / "transformers-0-py3-none-any.whl"
    wheel.parent.mkdir()
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("transformers/dependency_versions_table.py", shims.TOKENIZERS_PIN + ",")
        archive.writestr("transformers-0.dist-info/METADATA", "Name: transformers\n")
    assert shims.unpack_wheels(wheel.parent, tmp_path / "site") == [wheel.name]
    table = (tmp_path / "site" / "transformers" / "dependency_versions_table.py").read_text()
    assert "<0.14" not in table and '"tokenizers>=0.11.1"' in table
    with pytest.raises(FileNotFoundError, match="gpu_wheels.sh"):
        shims.unpack_wheels(tmp_path / "site", tmp_path / "other")


def test_peak_table_matches_gpu_names() -> None:
    assert peak_tflops("NVIDIA H200") == 989.4
    assert peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert peak_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert peak_tflops("NVIDIA L4") == 121.0
    assert peak_tflops("Some Future GPU") is None
