"""Benchmark launcher: `python -m lavis_syncmask.bench --data-root D --arms a,b,e --seeds 0,1,2
--out RUN_DIR [--steps N] [--device cpu|cuda] [--nproc N]` (`make bench` runs it).

Every (arm, seed) trains with `python -m lavis_syncmask.train` on the arm's yaml in
`projects/syncmask/bench/` (arm (a) is the shipped recipe, `pretrain_tiny.yaml`) and is then
scored by `python -m lavis_syncmask.evaluate` with the retrieval task: sample-100, and the
full protocol scored both as LAVIS does (ITM logit + ITC) and by ITM probability. Each run is
a worker process in its own session, `--jobs` at a time (one thread each). A run whose
`result.json` was made with the same recipe and settings is kept, so an interrupted benchmark
resumes. Writes `bench.json`, `bench.md` (printed) and two plots into `--out`; each run in
the JSON carries the commands that reproduce it. The data root is a FashionGen-format folder
(the synthetic catalogue, FashionGen, or a catalogue converted by `lavis_syncmask.data.convert`);
`--synthetic P,V,SEED` generates the synthetic one there first when it is missing.
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import platform
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lavis_syncmask.bench.arms import ARMS

#: `--quick`: every arm still at chance after 12 updates; it checks that the whole benchmark
#: runs and tables. Evaluation is half of a quick run's time, hence the full protocol alone,
#: scored as LAVIS does (sample-100 took 26 s of a 115-s run on a loaded 2-core machine).
QUICK = {"steps": 12, "repeats": 1, "n_queries": 20, "k_test": 10, "full_scoring": "itm_itc",
         "protocols": "full"}  # fmt: skip


def _letters(value: str) -> list[str]:
    """`a,b,e` or full arm names -> arm names."""
    by_letter = {name.split("_", 1)[0]: name for name in ARMS}
    arms = []
    for item in value.split(","):
        name = by_letter.get(item.strip(), item.strip())
        if name not in ARMS:
            raise argparse.ArgumentTypeError(
                f"unknown arm {item!r}; choose among {', '.join(by_letter)} ({', '.join(ARMS)})"
            )
        arms.append(name)
    return arms


def _ints(value: str) -> list[int]:
    try:
        return [int(v) for v in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers: {value!r}") from None


def _choices(*allowed: str) -> Any:
    """An argparse type: a comma-separated subset of `allowed`, kept as the string."""

    def parse(value: str) -> str:
        wrong = [v for v in value.split(",") if v not in allowed]
        if wrong:
            raise argparse.ArgumentTypeError(f"{wrong[0]!r} is not one of {', '.join(allowed)}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lavis_syncmask.bench",
                                     description=__doc__.split("\n\n")[0])  # fmt: skip
    parser.add_argument("--data-root", help="FashionGen-format catalogue folder (required "
                        "unless --choose-from)")  # fmt: skip
    parser.add_argument("--out", required=True, help="the benchmark's run folder")
    parser.add_argument("--arms", type=_letters, default=list(ARMS), help="e.g. a,b,e (all)")
    parser.add_argument("--seeds", type=_ints, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=None,
                        help="optimizer updates per run (run.max_steps; default: the recipe's "
                        "epochs)")  # fmt: skip
    parser.add_argument("--device", default="cpu", help="run.device of every run")
    parser.add_argument("--nproc", type=int, default=1, help="> 1: torchrun with N processes")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one thread each)")
    parser.add_argument("--quick", action="store_true", help=f"a short check: {QUICK}")
    parser.add_argument("--protocols", type=_choices("sample100", "full"), default="sample100,full",
                        help="sample100, full or both (comma-separated)")  # fmt: skip
    parser.add_argument("--full-scoring", type=_choices("itm", "itm_itc"), default="itm,itm_itc",
                        help="itm (ITM probability), itm_itc (LAVIS: ITM logit + ITC) or both")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=5, help="sample-100 draws")
    parser.add_argument("--n-queries", type=int, default=1000, help="sample-100 queries a draw")
    parser.add_argument("--k-test", type=int, default=16, help="full protocol re-ranking depth")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="config options for every run, e.g. run.batch_size_train=16 "
                        "(they enter the recorded commands and the runs' fingerprints)")  # fmt: skip
    parser.add_argument("--synthetic", default=None, metavar="P,V,SEED[,BOOST]",
                        help="generate the synthetic catalogue (P train / V validation products, "
                        "generator seed, invisible_boost: 1.0 is the high-invisibility setting) "
                        "at --data-root when it is missing")  # fmt: skip
    parser.add_argument("--report-only", action="store_true", help="train nothing: table the "
                        "runs of these arms and seeds finished in --out, whatever settings made "
                        "them (each run's commands say which)")  # fmt: skip
    parser.add_argument("--choose-from", nargs="+", metavar="SWEEP_DIR", help="train nothing: "
                        "table a dev sweep (one --out folder per setting) per arm and setting, "
                        "and choose each arm's best by full-protocol mean recall; writes "
                        "choice.json and choice.md into --out")  # fmt: skip
    return parser


def specs(args: argparse.Namespace) -> list[Any]:
    from lavis_syncmask.bench.runs import EvalSettings, RunSpec

    evaluation = EvalSettings(
        protocols=tuple((QUICK["protocols"] if args.quick else args.protocols).split(",")),
        full_scoring=tuple((QUICK["full_scoring"] if args.quick else args.full_scoring).split(",")),
        repeats=QUICK["repeats"] if args.quick else args.repeats,
        n_queries=QUICK["n_queries"] if args.quick else args.n_queries,
        k_test=QUICK["k_test"] if args.quick else args.k_test,
    )
    steps = QUICK["steps"] if args.quick and args.steps is None else args.steps
    root, out = str(Path(args.data_root).resolve()), str(Path(args.out).resolve())
    # Seed-major, so that a benchmark cut short still pairs its runs.
    return [
        RunSpec(arm, seed, root, out, steps, args.device, args.nproc, evaluation, tuple(args.set))
        for seed in args.seeds
        for arm in args.arms
    ]


def ensure_catalogue(root: Path, synthetic: str | None) -> None:
    if (root / "fashiongen_256_256_train.h5").exists() or synthetic is None:
        return
    from lavis_syncmask.synthetic import generate_catalogue

    fields = synthetic.split(",")
    if len(fields) not in (3, 4):
        raise SystemExit(f"--synthetic {synthetic!r}: expected P,V,SEED or P,V,SEED,BOOST")
    products, val_products, seed = (int(v) for v in fields[:3])
    boost = float(fields[3]) if len(fields) == 4 else 0.0
    generate_catalogue(root, products, val_products, seed=seed, fashioniq_triplets=0,
                       progress=False, invisible_boost=boost)  # fmt: skip


def run_all(todo: list[Any], jobs: int) -> list[dict[str, Any]]:
    """Every spec without a matching result, `jobs` at a time; finished runs are returned,
    failed ones reported (the others go on)."""
    from lavis_syncmask.bench.runs import read_result, run_in_subprocess

    done = [r for r in map(read_result, todo) if r is not None]
    pending = [s for s in todo if read_result(s) is None]
    print(f"{len(done)} runs already done, {len(pending)} to run", flush=True)
    with futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        running = {pool.submit(run_in_subprocess, spec): spec for spec in pending}
        for finished in futures.as_completed(running):
            spec = running[finished]
            try:
                result = finished.result()
            except RuntimeError as error:
                print(f"{spec.name} FAILED: {error}", flush=True)
                continue
            recalls = ", ".join(f"{k} {v['r_mean']:.1f}" for k, v in result["metrics"].items())
            print(f"{spec.name}: mean recall {recalls} ({result['train_s']:.0f} s training, "
                  f"{result['eval_s']:.0f} s evaluation)", flush=True)  # fmt: skip
            done.append(result)
    return done


def main(argv: list[str] | None = None) -> int:
    from lavis_syncmask.bench.report import comparisons, summarize, write_outputs
    from lavis_syncmask.bench.runs import read_any_result

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.choose_from:
        from lavis_syncmask.bench.choice import write_choice

        print(write_choice([Path(f) for f in args.choose_from], Path(args.out)))
        return 0
    if args.data_root is None:
        parser.error("--data-root is required (unless --choose-from)")
    out, root = Path(args.out), Path(args.data_root)
    out.mkdir(parents=True, exist_ok=True)
    ensure_catalogue(root, args.synthetic)
    if not (root / "fashiongen_256_256_train.h5").exists() and not args.report_only:
        raise SystemExit(f"--data-root {root}: no FashionGen-format catalogue there "
                         "(fashiongen_256_256_train.h5); --synthetic P,V,SEED makes one")  # fmt: skip
    started, todo = time.time(), specs(args)
    if args.report_only:
        runs = [r for r in map(read_any_result, todo) if r is not None]
        if not runs:
            raise SystemExit(f"--report-only: no finished run of arms {','.join(args.arms)} and "
                             f"seeds {','.join(map(str, args.seeds))} in {out / 'runs'}; train "
                             "them first (the same command without --report-only)")  # fmt: skip
    else:
        runs = run_all(todo, args.jobs)
    runs.sort(key=lambda r: (r["seed"], list(ARMS).index(r["arm"])))
    results = {
        "out": str(out),
        "command": "python -m lavis_syncmask.bench "
        + " ".join(sys.argv[1:] if argv is None else argv),  # fmt: skip
        "commit": _commit(),
        "machine": f"{platform.platform()}, {platform.machine()}, jobs {args.jobs} x 1 thread",
        "wall_s": round(time.time() - started, 1),
        "length": f"{todo[0].steps} updates" if todo[0].steps else "the recipe's epochs",
        "data_root": str(root.resolve()),
        "seeds": args.seeds,
        "arms": args.arms,
        "evaluation": asdict(todo[0].evaluation),
        "missing": len(todo) - len(runs),
        "summary": summarize(runs, args.arms),
        "comparisons": comparisons(runs, args.arms),
    }
    print(write_outputs(results, runs, out))
    return 0 if results["missing"] == 0 else 1


def _commit() -> str:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, cwd=root)  # fmt: skip
    return done.stdout.strip() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
