"""SyncMask against LAVIS's own ALBEF and BLIP, with ablations: one command, honest tables.

    python benchmarks/compare.py            # the full matrix (make bench): 83 min to ~3 h on 2 cores
    python benchmarks/compare.py --quick    # fewer steps, same code (make bench QUICK=1)
    python benchmarks/compare.py --smoke --data-root /tmp/x --out /tmp/y   # seconds (tests)

On the synthetic catalogue (generated under `--data-root` when absent), every method of
`compare_train.METHODS` trains with the same tokenizer, tiny encoder sizes, image size, steps,
learning-rate schedule and seeds, then is scored by the project's retrieval protocols
(sample-100 and full) and an ITM AUC. The full matrix runs the six methods on the default
catalogue and (a), (b), (e) again on one with much more invisible text (`invisible_boost`).
Step time and peak memory are measured against ALBEF in the same invocation. Writes
`bench_<kind>.json`, `.md` (the table), `_metrics.png` and `_losses.png` into `--out`.
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import dataclasses
import json
import multiprocessing
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare_report import (  # noqa: E402
    REFERENCE,
    mean_curves,
    plot_losses,
    plot_metrics,
    render_table,
    summarize,
)
from compare_train import METHODS, Recipe, run_one  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HIGH_METHODS = ["a_syncmask", "b_random_masks", "e_albef"]
#: kind -> catalogue (products, val products, invisible_boost of "high"), recipe, seeds, cost rounds
KINDS: dict[str, dict[str, Any]] = {
    "full": {
        "catalogue": (500, 150),
        "recipe": Recipe(steps=450, eval_repeats=2),
        "seeds": [0, 1, 2],
        "high": True,
        "cost_rounds": 10,
    },
    "quick": {
        "catalogue": (500, 150),
        # Every method is still at chance after so few steps: this kind checks that the whole
        # matrix's code runs and tables, within 10 minutes on 2 cores. Evaluation is most of a
        # quick run's time (sample-100 with 50 queries took 18 s of a 66-s run), hence 20.
        "recipe": Recipe(steps=12, eval_repeats=1, eval_queries=20, k_test=10, itm_pairs=128),
        "seeds": [0, 1, 2],
        "high": False,
        "cost_rounds": 3,
    },
    "smoke": {
        "catalogue": (12, 105),
        "recipe": Recipe(
            steps=2,
            batch_size=8,
            group_size=2,
            image_size=64,
            eval_repeats=1,
            eval_queries=10,
            k_test=10,
            itm_pairs=32,
        ),
        "seeds": [0, 1],
        "high": False,
        "cost_rounds": 1,
    },
}
HIGH_BOOST = 1.0


def ensure_catalogue(folder: Path, products: int, val_products: int, boost: float) -> dict:
    """Generate the catalogue once; return its summary's invisible-word share per view type."""
    from lavis_syncmask.synthetic import generate_catalogue, summarize_catalogue

    if not (folder / "fashiongen_256_256_train.h5").exists():
        generate_catalogue(
            folder,
            products,
            val_products,
            seed=0,
            fashioniq_triplets=0,
            progress=False,
            invisible_boost=boost,
        )
    return summarize_catalogue(folder)


def run_matrix(
    jobs: list[tuple[str, int, Path]],
    recipe: Recipe,
    workers: int,
    save_dir: str | None,
    log: Path,
) -> list[dict]:
    """Every (method, seed, catalogue) in a worker process (one thread each). Each finished
    run is appended to `log` (JSON lines) at once, and runs already there are not redone, so
    an interrupted matrix resumes; `--report-only` tables whatever finished."""
    results = read_runs(log, recipe)
    done = {(r["method"], r["seed"], r["catalogue"]) for r in results}
    jobs = [(m, s, d) for m, s, d in jobs if (m, s, d.name) not in done]
    ctx = multiprocessing.get_context("spawn")
    with futures.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        pending = {
            pool.submit(run_one, m, s, str(d), recipe, save_dir): (m, s, d) for m, s, d in jobs
        }
        for done in futures.as_completed(pending):
            method, seed, data = pending[done]
            try:
                result = done.result()
            except Exception as error:  # a diverged run: reported, the matrix goes on
                print(f"[{data.name}] {method} seed {seed} FAILED: {error!r}", flush=True)
                continue
            result["catalogue"] = data.name
            result["recipe"] = dataclasses.asdict(recipe)
            with log.open("a") as handle:
                handle.write(json.dumps(result, default=float) + "\n")
            print(
                f"[{data.name}] {method} seed {seed}: sample-100 {result['sample100']['r_mean']:.1f}, "
                f"full {result['full']['r_mean']:.1f}, ITM AUC {result['itm_auc']:.3f}, "
                f"{result['train_s']:.0f} s training",
                flush=True,
            )
            results.append(result)
    return results


def read_runs(log: Path, recipe: Recipe) -> list[dict]:
    """The finished runs recorded in `log` with this recipe, up to fields that cannot change
    their method's result (a changed recipe redoes the rest); none when there is no `log`."""
    if not log.exists():
        return []
    runs = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [r for r in runs if same_recipe(r["method"], r.get("recipe", {}), recipe)]


#: Recipe fields added after runs were logged, with the value those earlier runs were made
#: with (not the field's current default, which may have changed since).
ADDED_LATER: dict[str, Any] = {"random_batch_epochs": 0}


def same_recipe(method: str, stored: dict[str, Any], recipe: Recipe) -> bool:
    """Whether a run of `method` logged with the `stored` recipe is one made with `recipe`.
    A stored recipe lacking a field in `ADDED_LATER` was made with the value listed there, and
    a method on random batches ignores `random_batch_epochs` (the same batches either way)."""
    then = {**ADDED_LATER, **stored}
    if set(then) != {f.name for f in dataclasses.fields(Recipe)}:
        return False  # a field unknown to this code, or one whose old value is not on record
    inert = {"random_batch_epochs": 0} if METHODS[method]["sampler"] == "random" else {}
    then_recipe = dataclasses.replace(Recipe(**then), **inert)
    return dataclasses.asdict(then_recipe) == dataclasses.asdict(
        dataclasses.replace(recipe, **inert)
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="fewer steps, default setting only")
    mode.add_argument("--smoke", action="store_true", help="a seconds-long check of the code")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (one thread each)")
    parser.add_argument("--data-root", default=str(ROOT / "data" / "bench"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument(
        "--save-checkpoints", default=None, metavar="DIR", help="keep every run's weights here"
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: table the runs already in bench_<kind>.runs.jsonl (marked partial "
        "when some are missing); the cost phase still runs unless --skip-cost",
    )
    parser.add_argument("--skip-cost", action="store_true", help="no step-time / memory phase")
    parser.add_argument(
        "--settings",
        nargs="+",
        default=["default", "high"],
        choices=["default", "high"],
        help="catalogue settings to run; only the full kind has a high one, and step time and "
        "memory are measured on the default one",
    )
    parser.add_argument(
        "--recipe",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override fields of the kind's Recipe (e.g. random_batch_epochs=3); use with --out, "
        "so the matrix's own results stay apart",
    )
    return parser.parse_args(argv)


def override_recipe(recipe: Recipe, pairs: list[str]) -> Recipe:
    """`recipe` with `KEY=VALUE` pairs applied, each value parsed as the field's type."""
    fields = {f.name: f for f in dataclasses.fields(Recipe)}
    changes: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in fields or key == "model":
            raise SystemExit(
                f"--recipe {pair!r}: expected KEY=VALUE with KEY among "
                f"{sorted(k for k in fields if k != 'model')}"
            )
        kind = type(getattr(recipe, key))
        if kind is bool:
            if value.lower() not in ("true", "false"):
                raise SystemExit(f"--recipe {pair!r}: {key} takes true or false")
            changes[key] = value.lower() == "true"
        else:
            try:
                changes[key] = kind(value)
            except ValueError:
                raise SystemExit(f"--recipe {pair!r}: {key} takes a {kind.__name__}") from None
    return dataclasses.replace(recipe, **changes)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    kind = "smoke" if args.smoke else "quick" if args.quick else "full"
    spec = KINDS[kind]
    recipe = override_recipe(spec["recipe"], args.recipe)
    products, val_products = spec["catalogue"]
    root, out = Path(args.data_root), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {}
    if "default" in args.settings:
        settings["default"] = (root / f"default_{products}", 0.0, args.methods)
    if spec["high"] and "high" in args.settings:
        high = [m for m in HIGH_METHODS if m in args.methods]
        settings["high"] = (root / f"high_{products}", HIGH_BOOST, high)
    if not settings:
        raise SystemExit(f"the {kind} kind has only the default setting")
    started = time.time()
    catalogues = {
        n: ensure_catalogue(d, products, val_products, b) for n, (d, b, _) in settings.items()
    }
    # Seed-major with the reference first, so that a matrix cut short still pairs its runs.
    jobs = [
        (m, s, d)
        for d, _, ms in settings.values()
        for s in spec["seeds"]
        for m in sorted(ms, key=lambda m: m != REFERENCE)
    ]
    log = out / f"bench_{kind}.runs.jsonl"
    if args.report_only:
        runs = read_runs(log, recipe)
    else:
        runs = run_matrix(jobs, recipe, args.jobs, args.save_checkpoints, log)
    # Counted against the whole matrix of this kind, so a run restricted by --methods or cut
    # short is labelled partial in every output.
    complete = len(spec["seeds"]) * (len(METHODS) + (len(HIGH_METHODS) if spec["high"] else 0))
    missing = complete - len({(r["method"], r["seed"], r["catalogue"]) for r in runs})
    cost = {}
    if not args.skip_cost and REFERENCE in args.methods and "default" in settings:
        from compare_cost import cost_table

        cost = cost_table(
            args.methods, settings["default"][0], recipe, spec["cost_rounds"], REFERENCE
        )
    results = build_results(kind, args, recipe, spec, settings, catalogues, runs, cost, started)
    if args.recipe:
        results["kind"] += ", recipe changed: " + " ".join(args.recipe)
    if missing:
        results["kind"] += f", PARTIAL: {missing} of {complete} runs missing"
    write_outputs(results, runs, out, kind)
    print(render_table(results))
    return results


def build_results(kind, args, recipe, spec, settings, catalogues, runs, cost, started) -> dict:  # noqa: ANN001
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    )
    blocks = {}
    for name, (folder, boost, methods) in settings.items():
        mine = [r for r in runs if r["catalogue"] == folder.name]
        blocks[name] = {
            "catalogue": str(folder.name),
            "invisible_boost": boost,
            "invisible_content_words": catalogues[name]["invisible_content_words"],
            "invisible_content_words_non_front": catalogues[name][
                "invisible_content_words_non_front"
            ],
            "summary": summarize(mine, methods, REFERENCE),
            "runs": [
                {k: v for k, v in r.items() if k != "history"}
                for r in sorted(mine, key=lambda r: (r["method"], r["seed"]))
            ],
        }
    return {
        "file": _shown(Path(args.out) / f"bench_{kind}.json"),
        "kind": kind,
        "command": "python benchmarks/compare.py " + " ".join(sys.argv[1:]),
        "commit": commit.stdout.strip() or "unknown",
        "machine": f"{platform.platform()}, {platform.processor() or platform.machine()}, jobs {args.jobs} x 1 thread",
        "wall_s": round(time.time() - started, 1),
        "recipe": dataclasses.asdict(recipe),
        "seeds": spec["seeds"],
        "labels": {m: METHODS[m]["label"] for m in args.methods},
        "settings": blocks,
        "cost": cost,
    }


def _shown(path: Path) -> str:
    """`path` relative to the repository when inside it, else absolute."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def write_outputs(results: dict, runs: list[dict], out: Path, kind: str) -> None:
    first = next(iter(results["settings"].values()))  # the default setting when it ran
    default = [r for r in runs if r["catalogue"] == first["catalogue"]]
    results["loss_curves"] = mean_curves(default)
    (out / f"bench_{kind}.json").write_text(json.dumps(results, indent=1, default=float) + "\n")
    (out / f"bench_{kind}.md").write_text(render_table(results))
    plot_metrics(results, out / f"bench_{kind}_metrics.png")
    plot_losses(results["loss_curves"], results["labels"], out / f"bench_{kind}_losses.png")


if __name__ == "__main__":
    main()
