"""Mixed precision (`run.amp`): the setting, and SyncMask's fp32 islands under bf16 autocast.

CPU autocast to bfloat16 stands in for CUDA's: the same ops drop to 16 bits, so a mask or loss
that stays within tolerance here is computed in fp32 where it matters.
"""

from __future__ import annotations

import pytest
import torch
from model_fixtures import batch, tiny_config, write_vocab
from omegaconf import OmegaConf

import lavis_syncmask  # noqa: F401  (registers the model)
import lavis_syncmask.models.syncmask_fashion as model_module
from lavis_syncmask.common.precision import autocast
from lavis_syncmask.masking import MaskingConfig, synchronized_masks, word_units
from lavis_syncmask.models.syncmask_fashion import SyncMaskFashion
from lavis_syncmask.runner.loop import LoopSettings
from lavis_syncmask.runner.settings import RunSettings

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def vocab_dir(tmp_path_factory: pytest.TempPathFactory):
    return write_vocab(tmp_path_factory.mktemp("vocab"))


@pytest.mark.parametrize(
    ("value", "mode"),
    [("bf16", "bf16"), ("fp16", "fp16"), (True, "fp16"), (False, None)],
)
def test_amp_setting(value: object, mode: str | None) -> None:
    assert (RunSettings.from_run_cfg(OmegaConf.create({"amp": value})).amp or None) == mode
    assert not RunSettings.from_run_cfg(OmegaConf.create({})).amp
    assert LoopSettings(amp=mode).use_amp is (mode is not None)


def test_bad_amp_setting_names_the_key() -> None:
    with pytest.raises(ValueError, match="run.amp"):
        RunSettings.from_run_cfg(OmegaConf.create({"amp": "int8"}))


def test_masks_under_autocast_equal_fp32_masks(vocab_dir) -> None:
    model = SyncMaskFashion.from_config(tiny_config(vocab_dir))
    tok = model.tokenize(batch(8)["text_input"])
    units = word_units(tok.input_ids, tok.attention_mask, model.token_tables())
    patches = model.grid**2
    # Scores close together, as a teacher's attention often is: 16-bit rounding would tie them.
    gen = torch.Generator().manual_seed(0)
    attention = 1.0 / patches + 1e-4 * torch.rand(8, tok.input_ids.shape[1], patches, generator=gen)
    config = MaskingConfig()
    ref = synchronized_masks(attention, units, patches, config, generator=torch.manual_seed(1))
    with autocast("bf16", CPU):
        amp = synchronized_masks(attention, units, patches, config, generator=torch.manual_seed(1))
    assert amp.patch_scores.dtype == torch.float32
    assert torch.equal(amp.patch_scores, ref.patch_scores)
    assert torch.equal(amp.patch_mask, ref.patch_mask)
    assert torch.equal(amp.token_mask, ref.token_mask)


def test_teacher_attention_and_itc_logits_stay_fp32_under_autocast(vocab_dir) -> None:
    model = SyncMaskFashion.from_config(tiny_config(vocab_dir)).eval()
    sample = batch(4)
    tok = model.tokenize(sample["text_input"])
    with torch.no_grad():
        image_m = model_module.encode_image(model.visual_encoder_m, sample["image"])
        text_m = model.encode_text(tok.input_ids, tok.attention_mask, model.text_encoder_m)
        hidden = text_m.last_hidden_state
        ref = model.teacher_attention(hidden, tok.attention_mask, image_m)
        feat = torch.nn.functional.normalize(torch.randn(4, 16), dim=-1)
        ref_logits = model.itc_logits(feat, feat.T)
        with autocast("bf16", CPU):
            amp = model.teacher_attention(hidden, tok.attention_mask, image_m)
            amp_logits = model.itc_logits(feat, feat.T)
            plain = feat @ feat.T / model.temp  # what autocast does without the fp32 island
    assert amp.dtype == torch.float32 and amp_logits.dtype == torch.float32
    torch.testing.assert_close(amp, ref, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(amp_logits, ref_logits, rtol=1e-6, atol=1e-6)
    assert plain.dtype == torch.bfloat16  # so the check above can fail


def _forward(model: SyncMaskFashion, mode: str | None, monkeypatch) -> tuple[dict, list]:
    masks: list = []
    original = model_module.synchronized_masks

    def record(*args, **kwargs):
        out = original(*args, **kwargs)
        masks.append(out)
        return out

    monkeypatch.setattr(model_module, "synchronized_masks", record)
    torch.manual_seed(5)
    with autocast(mode, CPU):
        out = model(batch(8, seed=3))
    terms = ("loss_itc", "loss_itm", "loss_mlm", "loss_mim")
    return {term: float(getattr(out, term)) for term in terms}, masks


def test_bf16_step_matches_fp32_losses_and_masks(vocab_dir, monkeypatch) -> None:
    torch.manual_seed(0)
    model = SyncMaskFashion.from_config(tiny_config(vocab_dir)).train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    ref_losses, ref_masks = _forward(model, None, monkeypatch)
    model.load_state_dict(state)  # the step moved the queue, the EMA and global_step
    amp_losses, amp_masks = _forward(model, "bf16", monkeypatch)
    for term, value in ref_losses.items():
        assert amp_losses[term] == pytest.approx(value, rel=0.03), term
    ref, amp = ref_masks[0], amp_masks[0]
    # The teacher's inputs pass through bf16 encoders, so a few near-tied picks may differ.
    assert (ref.patch_mask == amp.patch_mask).float().mean() >= 0.95
    assert (ref.word_mask == amp.word_mask).float().mean() >= 0.9
    assert ref.patch_mask.sum() == amp.patch_mask.sum()  # budgets are exact either way


class _RecordingTask:
    """Records the autocast state its step runs under."""

    def __init__(self) -> None:
        self.dtypes: list[torch.dtype] = []

    def train_step(self, model: torch.nn.Module, samples: dict) -> torch.Tensor:
        out = model(samples["x"])
        self.dtypes.append(out.dtype)
        return out.float().pow(2).mean()


class _NoSchedule:
    def step(self, cur_epoch: int, cur_step: int) -> None:
        pass


@pytest.mark.parametrize(("mode", "dtype"), [("bf16", torch.bfloat16), (None, torch.float32)])
def test_loop_runs_the_step_under_the_chosen_autocast(mode: str | None, dtype) -> None:
    from lavis_syncmask.runner.loop import train_one_epoch

    model, task = torch.nn.Linear(3, 2), _RecordingTask()
    train_one_epoch(
        task=task,
        model=model,
        loader=[{"x": torch.randn(4, 3)}] * 2,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        lr_scheduler=_NoSchedule(),
        scaler=None,  # bf16: no gradient scaler
        device=CPU,
        epoch=0,
        settings=LoopSettings(amp=mode),
    )
    assert task.dtypes == [dtype, dtype]
    assert model.weight.dtype == torch.float32  # master weights stay fp32
