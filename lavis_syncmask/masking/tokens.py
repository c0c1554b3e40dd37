"""Which tokens may be masked, grouped into whole words (method.md section 3, [ours] step 3).

:class:`TokenTables` turns a tokenizer's vocabulary into three boolean lookup tables once;
:func:`word_units` then groups a batch of token ids into candidate words with tensor ops only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from transformers import PreTrainedTokenizerBase

# scikit-learn's list is a general-purpose one; these entries name garment parts, positions and
# materials ("zip closure at back", "down jacket"), exactly the view-dependent words SyncMask
# must be able to mask, so they stay candidates.
FASHION_CONTENT_WORDS = frozenset(
    {"back", "bottom", "front", "top", "side", "full", "thick", "thin", "detail", "down"}
)
DEFAULT_STOP_WORDS = frozenset(ENGLISH_STOP_WORDS) - FASHION_CONTENT_WORDS


@dataclass(frozen=True)
class TokenTables:
    """Per-vocabulary lookup tables, each `(V,)` bool, indexed by token id."""

    is_special: torch.Tensor  # [CLS] [SEP] [PAD] [MASK] [UNK] and every other special token
    is_continuation: torch.Tensor  # word-pieces starting with "##"
    is_filtered: torch.Tensor  # punctuation / symbols / stop-words (used when filtering)
    mask_token_id: int

    @classmethod
    def from_tokenizer(
        cls, tokenizer: PreTrainedTokenizerBase, stop_words: Iterable[str] | None = None
    ) -> TokenTables:
        """Tables for every id below ``len(tokenizer)``. ``stop_words`` defaults to
        :data:`DEFAULT_STOP_WORDS`; a token is punctuation when no character is alphanumeric."""
        if tokenizer.mask_token_id is None:
            raise ValueError(f"tokenizer {type(tokenizer).__name__} has no [MASK] token")
        stops = DEFAULT_STOP_WORDS if stop_words is None else frozenset(stop_words)
        size = len(tokenizer)
        tokens = tokenizer.convert_ids_to_tokens(list(range(size)))
        special_ids = set(tokenizer.all_special_ids)
        special, continuation, filtered = [], [], []
        for index, token in enumerate(tokens):
            token = token or ""
            is_cont = token.startswith("##") and len(token) > 2
            text = (token[2:] if is_cont else token).lower()
            special.append(index in special_ids)
            continuation.append(is_cont)
            filtered.append(text in stops or not any(ch.isalnum() for ch in text))
        return cls(
            is_special=torch.tensor(special, dtype=torch.bool),
            is_continuation=torch.tensor(continuation, dtype=torch.bool),
            is_filtered=torch.tensor(filtered, dtype=torch.bool),
            mask_token_id=int(tokenizer.mask_token_id),
        )

    @property
    def vocab_size(self) -> int:
        return int(self.is_special.numel())

    def to(self, device: torch.device | str) -> TokenTables:
        """A copy whose tables live on ``device``."""
        return TokenTables(
            self.is_special.to(device),
            self.is_continuation.to(device),
            self.is_filtered.to(device),
            self.mask_token_id,
        )


@dataclass(frozen=True)
class WordUnits:
    """Candidate words of a batch; ``W`` is the largest number of candidates in one sample.

    ``word_ids`` `(B, T)` long: the candidate word (0..W-1) each token belongs to, -1 for tokens
    that are not candidates. ``candidate`` `(B, W)` bool: which word slots exist. ``first_token``
    `(B, W)` long: position of each word's first piece (0 where the slot does not exist).
    """

    word_ids: torch.Tensor
    candidate: torch.Tensor
    first_token: torch.Tensor

    @property
    def num_candidates(self) -> torch.Tensor:
        """`(B,)` long: candidate words per sample."""
        return self.candidate.sum(dim=1)


def word_units(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    tables: TokenTables,
    filter_words: bool = True,
) -> WordUnits:
    """Group `(B, T)` token ids into candidate whole words.

    A word is a first piece followed by its "##" continuations; a stray continuation right
    after a non-candidate token starts a word of its own. Special and padding tokens are never
    candidates. With ``filter_words`` a single-piece word whose token is filtered (stop-word,
    punctuation) is dropped; a multi-piece word is kept even when its first piece is a
    stop-word, since "be" + "##ige" is "beige", not "be".

    >>> units = word_units(ids, att, tables)  # doctest: +SKIP
    >>> units.word_ids.shape, units.candidate.shape  # (B, T), (B, W)  # doctest: +SKIP
    """
    if input_ids.dim() != 2 or attention_mask.shape != input_ids.shape:
        raise ValueError(
            f"input_ids and attention_mask must both be (B, T), got {tuple(input_ids.shape)} "
            f"and {tuple(attention_mask.shape)}"
        )
    if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= tables.vocab_size):
        raise ValueError(f"input_ids must lie in [0, {tables.vocab_size}) (the tables' vocab)")
    batch, length = input_ids.shape
    device = input_ids.device
    valid = attention_mask.bool() & ~tables.is_special[input_ids]
    cont = tables.is_continuation[input_ids] & valid
    prev_valid = torch.nn.functional.pad(valid[:, :-1], (1, 0), value=False)
    start = valid & (~cont | ~prev_valid)
    keep = start
    if filter_words:
        next_cont = torch.nn.functional.pad(cont[:, 1:], (0, 1), value=False)
        keep = start & ~(tables.is_filtered[input_ids] & ~next_cont)
    # A token belongs to the word of the latest start at or before it; it is a candidate when
    # that start was kept. The latest start's position is a running max over start positions.
    positions = torch.arange(length, device=device).expand(batch, length)
    last_start = torch.where(start, positions, torch.full_like(positions, -1)).cummax(dim=1).values
    in_kept = valid & keep.gather(1, last_start.clamp(min=0)) & (last_start >= 0)
    word_ids = torch.where(in_kept, keep.long().cumsum(dim=1) - 1, torch.full_like(positions, -1))
    counts = keep.sum(dim=1)
    width = int(counts.max()) if batch else 0
    candidate = torch.arange(width, device=device).expand(batch, width) < counts[:, None]
    first_token = torch.zeros(batch, width + 1, dtype=torch.long, device=device)
    slot = torch.where(keep, word_ids, torch.full_like(word_ids, width))
    first_token.scatter_(1, slot, positions)
    first_token = first_token[:, :width].masked_fill(~candidate, 0)
    return WordUnits(word_ids=word_ids, candidate=candidate, first_token=first_token)
