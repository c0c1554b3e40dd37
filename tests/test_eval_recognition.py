"""Accuracy and macro-F1 of category / subcategory recognition (evaluation/recognition.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score

from lavis_syncmask.evaluation import classification_metrics


def test_hand_computed_values() -> None:
    # class 0: F1 1; class 1: P 1, R 1/2 -> 2/3; class 2: P 1/2, R 1 -> 2/3
    m = classification_metrics([0, 1, 1, 2], [0, 1, 2, 2])
    assert m["accuracy"] == 75.0
    assert m["macro_f1"] == pytest.approx(100 * (1 + 2 / 3 + 2 / 3) / 3)
    assert m["n"] == 4


def test_equals_scikit_learn_on_random_labels_and_tensors() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 12, size=500)
    pred = np.where(rng.random(500) < 0.6, truth, rng.integers(0, 12, size=500))
    m = classification_metrics(torch.as_tensor(truth), torch.as_tensor(pred))
    assert m["accuracy"] == pytest.approx(100 * accuracy_score(truth, pred))
    assert m["macro_f1"] == pytest.approx(100 * f1_score(truth, pred, average="macro"))


def test_labels_include_absent_classes_and_strings_work() -> None:
    truth, pred = ["coat", "coat", "hat"], ["coat", "hat", "hat"]
    present = classification_metrics(truth, pred)
    every = classification_metrics(truth, pred, labels=["coat", "hat", "bag", "belt"])
    assert present["macro_f1"] == pytest.approx(100 * 2 / 3)
    assert every["macro_f1"] == pytest.approx(100 * (2 / 3 + 2 / 3) / 4)  # absent classes = 0
    assert every["accuracy"] == present["accuracy"] == pytest.approx(200 / 3)


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="3 labels but y_pred has 2"):
        classification_metrics([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        classification_metrics([], [])
    with pytest.raises(ValueError, match="1-D"):
        classification_metrics(np.zeros((2, 2)), np.zeros((2, 2)))
