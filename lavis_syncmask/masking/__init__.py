"""SyncMask's synchronized attentional masking (method.md section 3), pure and batched.

The model runs the momentum teacher and hands over its cross-attention probabilities; this
package turns them into MLM word masks and MIM patch masks:

    >>> tables = TokenTables.from_tokenizer(tokenizer)  # doctest: +SKIP
    >>> units = word_units(tok.input_ids, tok.attention_mask, tables)  # doctest: +SKIP
    >>> attention = reduce_cross_attention(per_layer_probs)  # (B, T, P)  # doctest: +SKIP
    >>> masks = synchronized_masks(attention, units, 256, MaskingConfig(), step=step)  # doctest: +SKIP
    >>> ids, labels = apply_mlm_replacement(tok.input_ids, masks.token_mask, tables, len(tokenizer))  # doctest: +SKIP

Modules: ``config`` (settings), ``tokens`` (candidate words), ``select`` (scores and top-k),
``mlm`` (80/10/10 replacement), ``stats`` (logging figures).
"""

from __future__ import annotations

from lavis_syncmask.masking.config import MaskingConfig
from lavis_syncmask.masking.mlm import IGNORE_INDEX, apply_mlm_replacement
from lavis_syncmask.masking.select import (
    SyncMasks,
    reduce_cross_attention,
    select_top,
    synchronized_masks,
    token_mask_from_words,
    word_attention,
    word_scores,
)
from lavis_syncmask.masking.stats import mask_statistics
from lavis_syncmask.masking.tokens import (
    DEFAULT_STOP_WORDS,
    FASHION_CONTENT_WORDS,
    TokenTables,
    WordUnits,
    word_units,
)

__all__ = [
    "DEFAULT_STOP_WORDS",
    "FASHION_CONTENT_WORDS",
    "IGNORE_INDEX",
    "MaskingConfig",
    "SyncMasks",
    "TokenTables",
    "WordUnits",
    "apply_mlm_replacement",
    "mask_statistics",
    "reduce_cross_attention",
    "select_top",
    "synchronized_masks",
    "token_mask_from_words",
    "word_attention",
    "word_scores",
    "word_units",
]
