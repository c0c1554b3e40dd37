"""FashionIQ galleries, TGIR recall with reference exclusion, and the gallery-tagged report
(evaluation/tgir.py)."""

from __future__ import annotations

import pytest
import torch

from lavis_syncmask.evaluation import build_gallery, tgir_recall, tgir_report, triplet_indices

SPLIT = ["B09", "B01", "B05", "B01", "B07", "B03"]
TRIPLETS = [
    {"candidate": "B05", "target": "B01", "captions": ["is red", "longer"]},
    {"candidate": "B03", "target": "B09", "captions": ["is blue", "no sleeves"]},
    {"candidate": "B11", "target": "B05", "captions": ["plain", "shorter"]},
]


def test_both_gallery_conventions() -> None:
    assert build_gallery(SPLIT, TRIPLETS, "original") == ["B09", "B01", "B05", "B07", "B03"]
    union = build_gallery(SPLIT, TRIPLETS, "val_union")
    assert union == ["B01", "B03", "B05", "B09", "B11"]
    assert build_gallery(SPLIT, list(reversed(TRIPLETS)), "val_union") == union
    with pytest.raises(ValueError, match="one of"):
        build_gallery(SPLIT, TRIPLETS, "test")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lacks 'candidate' or 'target'"):
        build_gallery(SPLIT, [{"candidate": "B01", "captions": []}], "val_union")


def test_triplet_indices_per_gallery() -> None:
    original = build_gallery(SPLIT, TRIPLETS, "original")
    target, reference = triplet_indices(original, TRIPLETS)
    assert target.tolist() == [1, 0, 2] and reference.tolist() == [2, 4, -1]  # B11 not there
    with pytest.raises(ValueError, match="not in the gallery"):
        triplet_indices(["B01"], TRIPLETS)


def test_tgir_recall_exact_with_and_without_reference_exclusion() -> None:
    g = 60
    # gallery = identity, so query row q holds the scores of query q against the gallery
    scores = torch.linspace(1.0, 0.0, g).repeat(4, 1)  # item j beaten by j items
    target = torch.tensor([0, 12, 30, 55])
    reference = torch.tensor([5, 0, 30, -1])  # q2: reference == target; q3: not in gallery
    on = tgir_recall(scores, torch.eye(g), target, reference, exclude_reference=True)
    off = tgir_recall(scores, torch.eye(g), target, reference, exclude_reference=False)
    # ranks with exclusion: 0, 11 (item 0 removed), 30 (reference == target stays: dropping it
    # would cost R@50), 55; without: 0, 12, 30, 55
    assert (on["r10"], on["r50"]) == (25.0, 75.0)
    assert (off["r10"], off["r50"]) == (25.0, 75.0)
    near = torch.tensor([0, 10, 50, 55])  # exclusion moves 10 -> 9 and nothing else
    near_ref = torch.tensor([59, 0, 51, -1])
    assert tgir_recall(scores, torch.eye(g), near, near_ref, exclude_reference=True)["r10"] == 50.0
    assert tgir_recall(scores, torch.eye(g), near, None, exclude_reference=False)["r10"] == 25.0
    assert on["n_queries"] == 4 and on["gallery_size"] == g


def test_tgir_recall_rejects_bad_input() -> None:
    s, eye = torch.rand(2, 5), torch.eye(5)
    with pytest.raises(ValueError, match="needs reference_index"):
        tgir_recall(s, eye, torch.tensor([0, 1]), None, exclude_reference=True)
    with pytest.raises(ValueError, match=r"target_index values must be in \[0, 4\]"):
        tgir_recall(s, eye, torch.tensor([0, 5]), None, exclude_reference=False)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        tgir_recall(s, eye, torch.tensor([0]), None, exclude_reference=False)


def test_tgir_report_averages_and_names_the_gallery_everywhere() -> None:
    per_cat = {
        "dress": {"r10": 30.0, "r50": 60.0},
        "shirt": {"r10": 36.0, "r50": 62.0},
        "toptee": {"r10": 45.0, "r50": 70.0},
    }
    out = tgir_report(per_cat, "val_union", exclude_reference=False)
    assert out["dress_r10"] == 30.0 and out["toptee_r50"] == 70.0
    assert out["avg_r10"] == pytest.approx(37.0) and out["avg_r50"] == pytest.approx(64.0)
    assert out["r_mean"] == pytest.approx(50.5)
    assert out["gallery"] == "val_union" and out["categories"] == ["dress", "shirt", "toptee"]
    lines = out["table"].splitlines()
    assert len(lines) == 6 and all("gallery=val_union reference=kept" in line for line in lines)
    assert out["exclude_reference"] is False
    removed = tgir_report(per_cat, "val_union", exclude_reference=True)
    assert all("reference=removed" in line for line in removed["table"].splitlines())
    assert "37.00" in lines[4] and "50.50" in lines[5]
    with pytest.raises(ValueError, match="gallery must be one of"):
        tgir_report(per_cat, "mine", exclude_reference=False)
    with pytest.raises(ValueError, match="lacks"):
        tgir_report({"dress": {"r10": 1.0}}, "original", exclude_reference=False)
