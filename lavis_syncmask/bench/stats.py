"""Paired comparisons over seeds: mean difference, 95% t-interval, two-sided p-value (paired
t-test), and Holm's adjustment within each family of comparisons (and over the whole table)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """Mean and sample standard deviation (ddof=1; 0 for one value) and the count."""
    arr = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(arr.mean()),
        "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
        "n": int(arr.size),
    }


def paired_difference(values: Sequence[float], reference: Sequence[float]) -> dict[str, float]:
    """Mean of the per-seed differences `values - reference` (paired by position), its 95%
    t-interval and the paired t-test's two-sided p-value (NaN below 2 pairs, or when every
    difference is the same: no spread to test against)."""
    diff = np.asarray(values, dtype=np.float64) - np.asarray(reference, dtype=np.float64)
    n, mean = int(diff.size), float(diff.mean())
    spread = float(diff.std(ddof=1)) if n > 1 else 0.0
    if n < 2 or spread == 0.0:
        return {"mean": mean, "low": math.nan, "high": math.nan, "p": math.nan, "n": n}
    half = float(stats.t.ppf(0.975, n - 1)) * spread / math.sqrt(n)
    p = float(2 * stats.t.sf(abs(mean) / (spread / math.sqrt(n)), n - 1))
    return {"mean": mean, "low": mean - half, "high": mean + half, "p": p, "n": n}


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input's order (NaN stays NaN and is not counted)."""
    valid = [(p, i) for i, p in enumerate(p_values) if not math.isnan(p)]
    adjusted = [math.nan] * len(p_values)
    running, m = 0.0, len(valid)
    for rank, (p, i) in enumerate(sorted(valid)):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def compare_arms(
    values: dict[str, dict[int, float]], pairs: Sequence[tuple[str, str]], metric: str
) -> list[dict[str, Any]]:
    """Each `(arm, other)` pair on the seeds both ran: its paired difference on `metric`.
    `values[arm][seed]` is the arm's figure for that seed."""
    rows = []
    for arm, other in pairs:
        seeds = sorted(set(values.get(arm, {})) & set(values.get(other, {})))
        if not seeds:
            continue
        diff = paired_difference([values[arm][s] for s in seeds], [values[other][s] for s in seeds])
        rows.append({"arm": arm, "vs": other, "metric": metric, "seeds": seeds, **diff})
    return rows


def adjust_family(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`rows` with `p_holm`: Holm's adjustment within each row's `family` (all of them one
    family when no row names one) and, where rows name families, `p_holm_table`: Holm's over
    the whole table, so that a reader can see what survives without the split."""
    families: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        families.setdefault(row.get("family", ""), []).append(i)
    for members in families.values():
        for i, adjusted in zip(members, holm([rows[i]["p"] for i in members])):
            rows[i]["p_holm"] = adjusted
    if any("family" in row for row in rows):
        for row, adjusted in zip(rows, holm([r["p"] for r in rows])):
            row["p_holm_table"] = adjusted
    return rows
