"""Loss functions on hand-made features: false negatives never act as negatives."""

from __future__ import annotations

import torch

from lavis_syncmask.models.losses import (
    itc_loss,
    mim_loss,
    patchify,
    sample_hard_negatives,
)


def test_itc_targets_spread_over_all_positives() -> None:
    # Two rows of one product: logits favouring either of them must cost the same.
    positives = torch.tensor([[True, True, False], [True, True, False]])
    sim_a = torch.tensor([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0]])
    sim_b = torch.tensor([[0.0, 5.0, 0.0], [5.0, 0.0, 0.0]])
    assert torch.allclose(itc_loss(sim_a, sim_a, positives), itc_loss(sim_b, sim_b, positives))
    # ...and favouring the other product costs more.
    sim_c = torch.tensor([[0.0, 0.0, 5.0], [0.0, 0.0, 5.0]])
    assert itc_loss(sim_c, sim_c, positives) > itc_loss(sim_a, sim_a, positives) + 1


def test_hard_negatives_never_forbidden_and_invalid_rows_flagged() -> None:
    sim = torch.randn(6, 6) * 10
    forbidden = torch.eye(6, dtype=torch.bool)
    forbidden[0, 1] = forbidden[1, 0] = True  # same product
    forbidden[5] = True  # a row with no allowed negative at all
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        index, valid = sample_hard_negatives(sim, forbidden, gen)
        assert not valid[5] and valid[:5].all()
        assert not forbidden[torch.arange(5), index[:5]].any()


def test_hard_negatives_prefer_similar_items() -> None:
    sim = torch.tensor([[0.0, 8.0, 0.0, 0.0]] * 4)
    forbidden = torch.eye(4, dtype=torch.bool)
    gen = torch.Generator().manual_seed(0)
    picks = torch.stack([sample_hard_negatives(sim, forbidden, gen)[0] for _ in range(100)])
    assert (picks[:, 0] == 1).float().mean() > 0.9


def test_patchify_is_row_major() -> None:
    images = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    patches = patchify(images, 2)
    assert patches.shape == (2, 4, 12)
    # Patch 1 is the top-right 2x2 block; its first pixel is (row 0, col 2) of each channel.
    assert patches[0, 1, :3].tolist() == [images[0, c, 0, 2].item() for c in range(3)]


def test_mim_loss_only_counts_masked_patches() -> None:
    images = torch.randn(1, 3, 4, 4)
    target = patchify(images, 2)
    pred = target.clone()
    pred[0, 3] += 10.0  # wrong only on patch 3
    mask = torch.tensor([[True, True, False, False]])
    assert mim_loss(pred, images, mask, 2, norm_pix=False) == 0
    mask[0, 3] = True
    assert mim_loss(pred, images, mask, 2, norm_pix=False) > 10
