"""The demo's report: a text summary and one figure (loss curves per epoch, sync precision of
SyncMask against random masks, retrieval recall)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lavis_syncmask.evaluation.recall import RETRIEVAL_KEYS
from lavis_syncmask.masking.strategies import STRATEGIES

TERMS = ("loss", "loss_itc", "loss_itm", "loss_mlm", "loss_mim")
SYNC_KEYS = (
    ("word_sync_precision", "word_visible_share"),
    ("patch_sync_precision", "patch_described_share"),
    ("attention_mass_covered", None),
)
RECALL_KEYS = RETRIEVAL_KEYS


def _epoch_value(row: dict[str, Any], term: str) -> float | None:
    value = row.get(f"train_{term}", row.get(term))
    return float(value) if value is not None else None


def summarize(report: dict[str, Any]) -> str:
    lines = ["", "== SyncMask tiny demo =="]
    epochs = report.get("epochs", [])
    if epochs:
        lines.append("loss per epoch (first -> last):")
        for term in TERMS:
            values = [_epoch_value(row, term) for row in epochs]
            values = [v for v in values if v is not None]
            if values:
                lines.append(
                    f"  {term:9s} {values[0]:.3f} -> {values[-1]:.3f} over {len(values)} epochs"
                )
    masking = report.get("masking", {})
    if masking:
        lines.append(
            "masks on validation batches, same trained teacher (higher = more synchronized):"
        )
        lines.append(f"  {'statistic':24s}" + "".join(f" {name:>9s}" for name in STRATEGIES))
        for key, _baseline in SYNC_KEYS:
            values = [masking.get(name, {}).get(key) for name in STRATEGIES]
            if all(v is not None for v in values):
                lines.append(f"  {key:24s}" + "".join(f" {v:9.3f}" for v in values))
    metrics = report.get("retrieval", {}).get("metrics", {})
    if metrics:
        protocol = report["retrieval"].get("protocol", "?")
        lines.append(f"retrieval on the validation split (protocol: {protocol}):")
        lines.append("  " + "  ".join(f"{k}={metrics[k]:.1f}" for k in RECALL_KEYS if k in metrics))
    return "\n".join(lines)


def plot_report(report: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    epochs = report.get("epochs", [])
    for term in TERMS:
        values = [_epoch_value(row, term) for row in epochs]
        if any(v is not None for v in values):
            axes[0].plot(range(1, len(values) + 1), values, marker="o", label=term)
    axes[0].set(title="pretraining loss", xlabel="epoch", ylabel="mean loss")
    axes[0].legend()

    masking = report.get("masking", {})
    names = [key for key, _ in SYNC_KEYS]
    width = 0.8 / len(STRATEGIES)  # the strategies' bars side by side, centred on each tick
    for j, strategy in enumerate(STRATEGIES):
        offset = (j - (len(STRATEGIES) - 1) / 2) * width
        values = [masking.get(strategy, {}).get(k, float("nan")) for k in names]
        axes[1].bar([i + offset for i in range(len(names))], values, width=width, label=strategy)
    axes[1].set_xticks(range(len(names)), [n.replace("_", "\n") for n in names])
    axes[1].set(title="mask statistics (validation)", ylim=(0, 1))
    axes[1].legend()

    metrics = report.get("retrieval", {}).get("metrics", {})
    keys = [k for k in RECALL_KEYS if k in metrics]
    axes[2].bar(range(len(keys)), [metrics[k] for k in keys])
    axes[2].set_xticks(range(len(keys)), keys, rotation=45)
    axes[2].set(title="retrieval recall (%)", ylim=(0, 100))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
