"""Metrics of category / subcategory recognition (CR / SCR) on FashionGen (benchmarks-and-data.md,
"Category / subcategory recognition"): per-image accuracy and macro-F1, as FAME-ViL and
Kaleido-BERT report them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score


def _as_labels(values: object, name: str) -> np.ndarray:
    if torch.is_tensor(values):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of labels, got shape {array.shape}")
    return array


def classification_metrics(
    y_true: Sequence | np.ndarray | torch.Tensor,
    y_pred: Sequence | np.ndarray | torch.Tensor,
    labels: Sequence | np.ndarray | None = None,
) -> dict:
    """Accuracy and macro-F1 in percent, and the number of samples `n`.

    Args:
        y_true: `(n,)` true labels (ints or strings).
        y_pred: `(n,)` predicted labels.
        labels: the classes macro-F1 averages over; by default those occurring in `y_true` or
            `y_pred` (scikit-learn's rule). Passing every class (e.g. all 121 subcategories)
            counts classes absent from both as F1 = 0, which lowers the macro average.

    Returns:
        `{"accuracy": float, "macro_f1": float, "n": int}`.

    Example:
        >>> classification_metrics([0, 1, 1, 2], [0, 1, 2, 2])
        {'accuracy': 75.0, 'macro_f1': 77.77777777777777, 'n': 4}
    """
    truth, predicted = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    if truth.size == 0:
        raise ValueError("y_true is empty")
    if truth.shape != predicted.shape:
        raise ValueError(f"y_true has {truth.size} labels but y_pred has {predicted.size}")
    f1 = f1_score(
        truth,
        predicted,
        labels=None if labels is None else list(labels),
        average="macro",
        zero_division=0,
    )
    return {
        "accuracy": 100.0 * float(accuracy_score(truth, predicted)),
        "macro_f1": 100.0 * float(f1),
        "n": int(truth.size),
    }
