"""Run benchmark scripts' `--smoke` modes one after another in this one process, then print one
line `SMOKE_RESULTS {script: {"ok": bool, "output": str}}` (used by tests/test_bench_smoke.py).

One process for several scripts pays `import lavis` (~8 s) once instead of once per script.
Each script still runs as `__main__` with its own `sys.argv`; what a script expects of a fresh
process is restored between scripts: `sys.path`, and the paths LAVIS's registry refuses to
register twice.

    python tests/bench_smoke_runner.py benchmarks/bench_search.py benchmarks/bench_sampler.py
"""

from __future__ import annotations

import contextlib
import io
import json
import runpy
import sys
import traceback
from pathlib import Path

OUTPUT_TAIL = 6000  # characters of each script's output kept for the report


def run_script(path: Path) -> dict[str, object]:
    """`python PATH --smoke`, in this process."""
    from lavis.common.registry import registry

    saved_path, saved_registry = list(sys.path), dict(registry.mapping["paths"])
    sys.argv = [str(path), "--smoke"]
    sys.path.insert(0, str(path.parent))  # as `python PATH` puts the script's folder first
    out, ok = io.StringIO(), True
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            runpy.run_path(str(path), run_name="__main__")
    except SystemExit as stop:
        ok = stop.code in (None, 0)
        out.write(f"\nSystemExit({stop.code!r})")
    except Exception:  # noqa: BLE001 - any failure is the script's result, reported whole
        ok = False
        out.write("\n" + traceback.format_exc())
    finally:
        sys.path[:] = saved_path
        registry.mapping["paths"].clear()
        registry.mapping["paths"].update(saved_registry)
    return {"ok": ok, "output": out.getvalue()[-OUTPUT_TAIL:]}


def main(argv: list[str]) -> None:
    import lavis_syncmask  # noqa: F401 - LAVIS's registry as every script finds it

    results = {Path(p).name: run_script(Path(p).resolve()) for p in argv}
    print("SMOKE_RESULTS " + json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1:])
