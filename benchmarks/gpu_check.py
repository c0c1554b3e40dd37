"""One command that proves the GPU path on a single-GPU machine (issue 10, item 2) and writes one
JSON with the GPU's name and every step's outcome:

1. imports and registry (versions, GPU name, bf16 support);
2. a small synthetic catalogue, then `python -m lavis_syncmask.train` of `tiny` for 2 epochs on
   CUDA with `run.amp=bf16`;
3. the same under `torchrun --nproc_per_node=1` (NCCL);
4. `python -m lavis_syncmask.evaluate`, full retrieval protocol, from that checkpoint;
5. the base-size training-step benchmark (`gpu_step_bench.py`): images/s, peak memory and MFU
   of SyncMask, random masks, no MIM and LAVIS's `AlbefPretrain`, interleaved.

The machine needs PyTorch (+ torchvision, numpy, OpenCV, h5py, pandas, scikit-learn) and no
network: `--wheels DIR` (from `benchmarks/gpu_wheels.sh DIR`) is unpacked into a private folder
put first on every child's PYTHONPATH, with the import shims of `gpu_env/` (see
`syncmask_gpu_shims.py`). Steps run in subprocesses, each in its own process group that is
ended whole at its time limit or when this script is signalled (`common/processes.py`); the
limits add up to under 8 minutes; a failed step is recorded and the next one still runs.

    bash benchmarks/gpu_check.sh /path/to/wheels [OUT.json]             # on the GPU machine
    python benchmarks/gpu_check.py --device cpu --tiny --out check.json  # CPU, in seconds
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import platform
import socket
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHIMS = HERE / "gpu_env"
PROJECTS = ROOT / "projects" / "syncmask"
DEADLINE = [float("inf")]  # perf_counter() time by which every step must have ended
#: Most seconds per step, on a GPU and in the CPU `--tiny` mode; every step also stops at the
#: overall `--budget` (default 450 s), so the JSON is written within gpu_check.sh's 8 minutes.
LIMITS = {
    "gpu": {"imports": 90, "train": 75, "torchrun": 75, "evaluate": 60, "bench": 240},
    "cpu": {"imports": 120, "train": 120, "torchrun": 120, "evaluate": 90, "bench": 120},
}


def _load_processes() -> ModuleType:
    """`lavis_syncmask/common/processes.py` (standard library only) without importing the
    package, whose `__init__` imports LAVIS: here only the children see the unpacked wheels."""
    path = ROOT / "lavis_syncmask" / "common" / "processes.py"
    spec = importlib.util.spec_from_file_location("syncmask_processes", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


PROCESSES = _load_processes()


def child_env(site: Path | None) -> dict[str, str]:
    """Environment of every child: offline, the shims and the unpacked wheels first."""
    paths = [str(ROOT), str(SHIMS)] + ([str(site)] if site else [])
    old = os.environ.get("PYTHONPATH")
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(paths + ([old] if old else [])),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def run_step(name: str, cmd: list[str], env: dict, cwd: Path, limit: float) -> dict[str, Any]:
    """Run one child command for at most `limit` seconds, and never past the overall deadline;
    the record keeps its exit status, time and output tail."""
    start = time.perf_counter()
    limit = min(limit, DEADLINE[0] - start)
    if limit < 5:
        print(f"[gpu_check] {name}: skipped (out of time)")
        return {"ok": False, "error": "skipped: the overall time budget ran out", "_stdout": ""}
    # Its own process group, ended whole at the limit: torchrun's worker and the worker's
    # DataLoader processes outlived a plain subprocess timeout (issue 20).
    done = PROCESSES.run_group(cmd, cwd=cwd, env=env, timeout=limit)
    status = "timeout" if done.timed_out else done.returncode
    out, err = done.stdout, done.stderr
    record: dict[str, Any] = {
        "ok": status == 0,
        "seconds": round(time.perf_counter() - start, 1),
        "command": " ".join(cmd),
    }
    if status != 0:
        record["exit"] = status
        record["stderr_tail"] = err[-3000:]
        record["stdout_tail"] = out[-1000:]
    print(f"[gpu_check] {name}: {'ok' if record['ok'] else 'FAILED'} ({record['seconds']} s)")
    return record | {"_stdout": out}


PROBE = r"""
import json, sys, time, torch
import lavis_syncmask, lavis, transformers, timm, numpy
from lavis.common.registry import registry
import lavis.runners, lavis.common.optims
need = {"model": ["syncmask_fashion", "syncmask_fashion_cls", "syncmask_fashion_tgir"],
        "task": ["syncmask_pretrain", "syncmask_retrieval"], "runner": ["runner_syncmask"]}
found = {"model": registry.list_models(), "task": registry.list_tasks(),
         "runner": registry.list_runners()}
missing = {k: [n for n in v if n not in found[k]] for k, v in need.items()}
cuda = torch.cuda.is_available()
info = {"python": sys.version.split()[0], "torch": torch.__version__,
  "cuda_runtime": torch.version.cuda, "numpy": numpy.__version__,
  "transformers": transformers.__version__, "timm": timm.__version__,
  "lavis_file": lavis.__file__, "cuda_available": cuda,
  "gpu": torch.cuda.get_device_name(0) if cuda else None,
  "capability": list(torch.cuda.get_device_capability(0)) if cuda else None,
  "bf16_supported": torch.cuda.is_bf16_supported() if cuda else None,
  "missing_registrations": {k: v for k, v in missing.items() if v}}
print("JSON" + json.dumps(info), flush=True)
if info["missing_registrations"] or not (cuda or DEVICE == "cpu"):
    sys.exit(1)
# The catalogue in the same process: one LAVIS import less (about 10 s).
from lavis_syncmask.synthetic import generate_catalogue
start = time.perf_counter()
generate_catalogue(DATA, PRODUCTS, 30, seed=0, fashioniq_triplets=12, progress=False)
print("CATALOGUE" + json.dumps({"seconds": round(time.perf_counter() - start, 1)}))
"""


def probe_and_catalogue(args, env: dict, work: Path) -> tuple[dict, dict, Path]:
    """Import the stack in a child (with the shims): versions, registry, device; then write a
    small synthetic catalogue. Returns the two step records and the catalogue folder."""
    data = work / "catalogue"
    code = PROBE.replace("DEVICE", repr(args.device)).replace("DATA", repr(str(data)))
    code = code.replace("PRODUCTS", "24" if args.tiny else "64")
    record = run_step("imports", [sys.executable, "-c", code], env, ROOT, args.limits["imports"])
    out = record["_stdout"].splitlines()
    info = [line[4:] for line in out if line.startswith("JSON")]
    done = [line[9:] for line in out if line.startswith("CATALOGUE")]
    imports = {**record, "ok": bool(info), "info": json.loads(info[-1]) if info else None}
    catalogue = {"ok": record["ok"] and bool(done), **(json.loads(done[-1]) if done else {})}
    if info and not record["ok"]:
        imports["ok"] = not imports["info"]["missing_registrations"]
        catalogue["error"] = record.get("stderr_tail", "")[-1500:]
    return imports, catalogue, data


def queue_size(args: argparse.Namespace) -> int:
    """The checkpoint's queue size, which the evaluation's model must match to load strictly."""
    return 256 if args.device == "cuda" else 64


def train_options(args: argparse.Namespace, out: Path, backend: str | None) -> list[str]:
    gpu = args.device == "cuda"
    options = [
        "run.max_epoch=2",
        f"run.device={args.device}",
        f"run.amp={'bf16' if gpu else 'false'}",
        f"run.batch_size_train={32 if gpu else 8}",
        "run.num_workers=2",  # worker processes + pinned memory: the GPU loading path
        "run.sampler.group_size=2",
        f"model.queue_size={queue_size(args)}",
        f"run.output_dir={out}",
    ]
    return options + ([f"run.dist_backend={backend}"] if backend else [])


def pretrain(args, env, work: Path, data: Path, torchrun: bool) -> dict[str, Any]:
    name = "torchrun" if torchrun else "train"
    out = work / f"output_{name}"
    prefix = [sys.executable]
    if torchrun:
        prefix += ["-m", "torch.distributed.run", "--nproc_per_node=1", "--master_addr=127.0.0.1"]
        prefix += [f"--master_port={_free_port()}"]
    backend = ("nccl" if args.device == "cuda" else "gloo") if torchrun else None
    cmd = [
        *prefix,
        "-m",
        "lavis_syncmask.train",
        "--cfg-path",
        str(PROJECTS / "pretrain_tiny.yaml"),
    ]
    cmd += ["--job-id", name, "--options", *train_options(args, out, backend)]
    record = run_step(name, cmd, env | {"SYNCMASK_DATA_ROOT": str(data)}, work, args.limits[name])
    checkpoints = sorted(glob.glob(str(out / "**" / "checkpoint_1.pth"), recursive=True))
    record["checkpoint"] = checkpoints[-1] if checkpoints else None
    logs = sorted(glob.glob(str(out / "**" / "log.txt"), recursive=True))
    if logs:
        record["log_tail"] = Path(logs[-1]).read_text()[-1500:]
    if record["ok"] and not checkpoints:
        record["ok"], record["error"] = False, "no checkpoint_1.pth after 2 epochs"
    return record


def evaluate(args, env, work: Path, data: Path, checkpoint: str | None) -> dict[str, Any]:
    if not checkpoint:
        return {"ok": False, "error": "skipped: no checkpoint from the train step"}
    out = work / "output_evaluate"
    options = [
        f"model.finetuned={checkpoint}",
        "run.protocol=full",
        f"run.device={args.device}",
        f"run.output_dir={out}",
        f"model.queue_size={queue_size(args)}",
    ]
    cmd = [sys.executable, "-m", "lavis_syncmask.evaluate", "--cfg-path"]
    cmd += [str(PROJECTS / "retrieval_tiny.yaml"), "--job-id", "evaluate", "--options", *options]
    record = run_step(
        "evaluate", cmd, env | {"SYNCMASK_DATA_ROOT": str(data)}, work, args.limits["evaluate"]
    )
    files = sorted(glob.glob(str(out / "**" / "metrics.json"), recursive=True))
    if files:
        record["metrics"] = json.loads(Path(files[-1]).read_text())["metrics"]
    elif record["ok"]:
        record["ok"], record["error"] = False, "no metrics.json written"
    return record


def bench(args, env, work: Path) -> dict[str, Any]:
    out = work / "step_bench.json"
    cmd = [sys.executable, str(HERE / "gpu_step_bench.py"), "--device", args.device]
    cmd += ["--out", str(out)]
    cmd += ["--size", "tiny", "--rounds", "1", "--steps", "1", "--warmup", "1"] if args.tiny else []
    record = run_step("bench", cmd, env, work, args.limits["bench"])
    if out.exists():
        record["result"] = json.loads(out.read_text())
    elif record["ok"]:
        record["ok"], record["error"] = False, "the benchmark wrote no result"
    return record


def run_checks(args: argparse.Namespace, work: Path, site: Path | None) -> dict[str, Any]:
    env = child_env(site)
    steps: dict[str, Any] = {}
    steps["imports"], steps["catalogue"], data = probe_and_catalogue(args, env, work)
    steps["train"] = pretrain(args, env, work, data, torchrun=False)
    steps["torchrun"] = pretrain(args, env, work, data, torchrun=True)
    steps["evaluate"] = evaluate(args, env, work, data, steps["train"].get("checkpoint"))
    if not args.skip_bench:
        steps["bench"] = bench(args, env, work)
    for record in steps.values():
        record.pop("_stdout", None)
    return steps


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny benchmark (seconds on a CPU)")
    parser.add_argument("--wheels", default=os.environ.get("SYNCMASK_GPU_WHEELS"))
    parser.add_argument("--out", default="gpu_check.json")
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--skip-bench", action="store_true")
    parser.add_argument("--budget", type=float, default=450.0, help="seconds for all the steps")
    args = parser.parse_args(argv)
    args.limits = LIMITS["gpu" if args.device == "cuda" else "cpu"]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    DEADLINE[0] = start + args.budget
    with tempfile.TemporaryDirectory(prefix="syncmask_gpu_check_") as tmp:
        work = Path(args.work or tmp).resolve()
        work.mkdir(parents=True, exist_ok=True)
        site, wheels = None, []
        if args.wheels:
            sys.path.insert(0, str(SHIMS))
            from syncmask_gpu_shims import unpack_wheels

            site = work / "site"
            wheels = unpack_wheels(Path(args.wheels), site)
        steps = run_checks(args, work, site)
    info = steps["imports"].get("info", {})
    report = {
        "gpu": info.get("gpu"),
        "ok": all(step.get("ok") for step in steps.values()),
        "device": args.device,
        "tiny": args.tiny,
        "seconds": round(time.perf_counter() - start, 1),
        "host": platform.node(),
        "commit": _commit(),
        "wheels": wheels,
        "steps": steps,
    }
    Path(args.out).write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"[gpu_check] {'ALL OK' if report['ok'] else 'SOME STEPS FAILED'}; wrote {args.out}")
    return 0 if report["ok"] else 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _commit() -> str | None:
    out = PROCESSES.run_group(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, timeout=30)
    return out.stdout.strip() or None


if __name__ == "__main__":
    sys.exit(main())
