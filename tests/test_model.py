"""The tiny `syncmask_fashion`: construction, losses, gradients, learning, save / load."""

from __future__ import annotations

import pytest
import torch
from model_fixtures import batch, tiny_config, write_vocab

import lavis_syncmask  # noqa: F401  (registers the model)
from lavis_syncmask.models.syncmask_fashion import SyncMaskFashion


@pytest.fixture(scope="module")
def vocab_dir(tmp_path_factory: pytest.TempPathFactory):
    return write_vocab(tmp_path_factory.mktemp("vocab"))


def build(vocab_dir, **overrides) -> SyncMaskFashion:
    torch.manual_seed(0)
    return SyncMaskFashion.from_config(tiny_config(vocab_dir, **overrides))


def test_unknown_config_key_lists_valid_keys(vocab_dir) -> None:
    with pytest.raises(ValueError, match=r"model.mlm_ration \(did you mean 'mlm_ratio'\?\)"):
        build(vocab_dir, mlm_ration=0.2)


def test_forward_returns_every_term_and_all_trainable_params_get_gradients(vocab_dir) -> None:
    model = build(vocab_dir)
    model.train()
    out = model(batch())
    for term in ("loss_itc", "loss_itm", "loss_mlm", "loss_mim"):
        value = getattr(out, term)
        assert torch.isfinite(value) and value > 0, term
    expected = out.loss_itc + out.loss_itm + out.loss_mlm + out.loss_mim
    assert torch.allclose(out.loss, expected)
    out.loss.backward()
    missing = [
        name
        for name, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())
    ]
    # The pooler-free BERT has no unused parameters; the temperature gets ITC's gradient.
    assert missing == []
    teacher = [n for n, p in model.named_parameters() if n.split(".")[0].endswith("_m")]
    assert teacher and all(not model.get_parameter(n).requires_grad for n in teacher)


def test_mask_statistics_are_reported(vocab_dir) -> None:
    model = build(vocab_dir)
    out = model(batch())
    assert 0.0 <= out.mask_stats["content_word_share"] <= 1.0
    assert 0.0 <= out.mask_stats["attention_mass_covered"] <= 1.0


def test_teacher_follows_student_by_ema_and_queue_fills(vocab_dir) -> None:
    model = build(vocab_dir, momentum=0.5)
    with torch.no_grad():
        model.vision_proj.weight.add_(1.0)
    before = model.vision_proj_m.weight.clone()
    model(batch())
    expected = 0.5 * before + 0.5 * model.vision_proj.weight
    assert torch.allclose(model.vision_proj_m.weight, expected, atol=1e-6)
    assert int(model.queue.queue_ptr) == 8
    assert torch.equal(model.queue.idx_queue[:8], torch.arange(8) // 2)
    assert int(model.global_step) == 1


def test_random_strategy_skips_the_teacher_fusion_pass(vocab_dir, monkeypatch) -> None:
    model = build(vocab_dir, strategy="random")
    calls = []
    monkeypatch.setattr(model, "teacher_attention", lambda *a: calls.append(a))
    out = model(batch())
    assert calls == [] and torch.isfinite(out.loss)


def test_loss_falls_on_a_fixed_batch(vocab_dir) -> None:
    model = build(vocab_dir)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    samples = batch()
    losses = []
    for _ in range(30):
        torch.manual_seed(1)  # same masks and negatives every step: only the weights change
        out = model(samples)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(float(out.loss))
    # The queue and the teacher move too, so the fall is gentler than on a plain classifier.
    assert sum(losses[-5:]) / 5 < 0.85 * sum(losses[:5]) / 5


def test_save_then_load_gives_identical_outputs(vocab_dir, tmp_path) -> None:
    model = build(vocab_dir)
    model(batch())  # move the queue and the step counter away from their initial values
    model.eval()
    path = tmp_path / "checkpoint.pth"
    torch.save({"model": model.state_dict()}, path)
    clone = build(vocab_dir, load_finetuned=True, finetuned=str(path))
    clone.eval()
    for key, value in model.state_dict().items():
        assert torch.equal(value, clone.state_dict()[key]), key
    samples = batch(seed=3)
    a = model.extract_features(samples, mode="multimodal")
    b = clone.extract_features(samples, mode="multimodal")
    assert torch.equal(a.multimodal_embeds, b.multimodal_embeds)
    assert torch.equal(a.image_embeds_proj, b.image_embeds_proj)


def test_extract_features_shapes(vocab_dir) -> None:
    model = build(vocab_dir)
    model.eval()
    samples = batch(4)
    image = model.extract_features(samples, mode="image")
    text = model.extract_features(samples, mode="text")
    assert image.image_embeds.shape == (4, 1 + 16, 96) and image.text_embeds is None
    assert text.text_embeds_proj.shape[-1] == 64 and text.image_embeds is None
    with pytest.raises(ValueError, match="mode"):
        model.extract_features(samples, mode="audio")


def test_missing_weights_fail_fast_with_a_clear_message(vocab_dir, tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"`model.pretrained`: no file at"):
        build(vocab_dir, pretrained=str(tmp_path / "ALBEF_14M.pth"))
    with pytest.raises(FileNotFoundError, match="tokenizer"):
        build(vocab_dir, tokenizer="no-such-tokenizer-xyz")


def test_itm_never_draws_a_near_duplicate_text_as_negative(vocab_dir, monkeypatch) -> None:
    """Distinct products and texts, but texts 0 and 1 are near-duplicates (similarity 0.95
    >= near_duplicate_sim 0.9): neither may be the other's hard negative, whatever the
    batch sampler did (before the fix only same product / same text were excluded)."""
    from lavis_syncmask.models import syncmask_fashion

    seen: list[torch.Tensor] = []
    real = syncmask_fashion.sample_hard_negatives

    def spy(sim: torch.Tensor, forbidden: torch.Tensor):
        seen.append(forbidden.clone())
        return real(sim, forbidden)

    monkeypatch.setattr(syncmask_fashion, "sample_hard_negatives", spy)
    samples = batch(4)
    samples["product_id"] = samples["text_id"] = torch.arange(4)
    similarity = torch.eye(4)
    similarity[0, 1] = similarity[1, 0] = 0.95
    similarity[2, 3] = similarity[3, 2] = 0.85  # similar, but below the threshold
    model = build(vocab_dir)
    model({**samples, "text_similarity": similarity})
    assert len(seen) == 2
    for forbidden in seen:
        assert forbidden[0, 1] and forbidden[1, 0]
        assert not forbidden[2, 3] and not forbidden[0, 2]


def test_warmup_and_ema_count_optimizer_updates_not_micro_batches(vocab_dir, monkeypatch) -> None:
    """Four micro-batches with accum_grad_iters=2 are two updates: two EMA steps, and the
    mask warm-up sees steps 0, 0, 1, 1 (before the fix: four EMA steps, steps 0..3)."""
    from lavis_syncmask.models import syncmask_fashion
    from lavis_syncmask.runner.loop import LoopSettings, train_one_epoch

    ema_calls, steps = [], []
    real_ema, real_masks = syncmask_fashion.ema_update, syncmask_fashion.synchronized_masks
    monkeypatch.setattr(
        syncmask_fashion, "ema_update", lambda *a: (ema_calls.append(1), real_ema(*a))[1]
    )

    def masks(*args, step: int):
        steps.append(step)
        return real_masks(*args, step=step)

    monkeypatch.setattr(syncmask_fashion, "synchronized_masks", masks)

    class Task:
        def train_step(self, model, samples):
            return model(samples).loss

    class NoSchedule:
        def step(self, cur_epoch: int, cur_step: int) -> None:
            pass

    model = build(vocab_dir)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    stats = train_one_epoch(
        task=Task(),
        model=model,
        loader=[batch(4, seed=i) for i in range(4)],
        optimizer=optimizer,
        lr_scheduler=NoSchedule(),
        scaler=None,
        device=torch.device("cpu"),
        epoch=0,
        settings=LoopSettings(accum_grad_iters=2),
    )
    assert stats["updates"] == 2
    assert int(model.global_step) == 2 and len(ema_calls) == 2 and steps == [0, 0, 1, 1]
