"""The `syncmask_text` LAVIS text processor: collapse whitespace and keep at most `max_words`
words, and nothing else, so the visibility sidecar's character spans (method.md section 5) can
be carried over to the processed text.

LAVIS's own `blip_caption` lowercases and deletes punctuation, which moves characters around;
datasets drop the sidecar fields when their text processor has no `with_spans` method.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from lavis.common.registry import registry
from lavis.processors.base_processor import BaseProcessor

_WORD = re.compile(r"\S+")

Span = tuple[int, int]


@registry.register_processor("syncmask_text")
class SyncMaskTextProcessor(BaseProcessor):
    """Whitespace runs become one space, ends are stripped, text is cut after `max_words` words.

    Example:
        >>> SyncMaskTextProcessor(max_words=2).with_spans("  red\\tcotton  shirt", [(2, 5), (13, 18)])
        ('red cotton', [(0, 3)])
    """

    #: Datasets check this flag (and `with_spans`) before emitting character-span fields.
    preserves_offsets = True

    def __init__(self, max_words: int = 60) -> None:
        if int(max_words) < 1:
            raise ValueError(f"syncmask_text: max_words must be >= 1, got {max_words}")
        self.max_words = int(max_words)

    def __call__(self, text: str) -> str:
        return " ".join(m.group() for m in self._kept_words(text))

    def with_spans(self, text: str, spans: Sequence[Sequence[int]]) -> tuple[str, list[Span]]:
        """The processed text and `spans` (half-open character ranges of `text`) moved onto it.

        A span shrinks to the characters that survive (whitespace inside it is collapsed
        with the rest); a span cut away entirely by truncation is dropped.
        """
        words = self._kept_words(text)
        # new_index[i] = position of text[i] in the output, -1 where the character is dropped.
        new_index = np.full(len(text), -1, dtype=np.int64)
        cursor = 0
        for match in words:
            start, end = match.span()
            new_index[start:end] = np.arange(cursor, cursor + end - start)
            cursor += end - start + 1
        moved: list[Span] = []
        for span in spans:
            start, end = int(span[0]), int(span[1])
            if not 0 <= start <= end <= len(text):
                raise ValueError(
                    f"span ({start}, {end}) lies outside the text of length {len(text)}: "
                    f"{text[:60]!r}"
                )
            kept = new_index[start:end]
            kept = kept[kept >= 0]
            if kept.size:
                moved.append((int(kept[0]), int(kept[-1]) + 1))
        return " ".join(m.group() for m in words), moved

    def _kept_words(self, text: str) -> list[re.Match[str]]:
        if not isinstance(text, str):
            raise ValueError(f"syncmask_text expects a str, got {type(text).__name__}")
        words = []
        for match in _WORD.finditer(text):
            if len(words) == self.max_words:
                break
            words.append(match)
        return words

    @classmethod
    def from_config(cls, cfg: Any = None) -> SyncMaskTextProcessor:
        unknown = set(cfg.keys()) - {"name", "max_words"} if cfg is not None else set()
        if unknown:
            raise ValueError(
                f"syncmask_text: unknown config key(s) {sorted(unknown)}; valid: name, max_words"
            )
        return cls(max_words=60 if cfg is None else cfg.get("max_words", 60))


def tracks_offsets(text_processor: Any) -> bool:
    """Whether character spans can follow a text through `text_processor` (None = identity)."""
    if text_processor is None:
        return True
    return bool(getattr(text_processor, "preserves_offsets", False)) and callable(
        getattr(text_processor, "with_spans", None)
    )


def process_text(
    text_processor: Any, text: str, spans: Sequence[Sequence[int]] | None = None
) -> tuple[str, list[Span] | None]:
    """Apply `text_processor` (None = identity); move `spans` along when given (the processor
    must then satisfy :func:`tracks_offsets`)."""
    if spans is None:
        return (text if text_processor is None else text_processor(text)), None
    if text_processor is None:
        return text, [(int(s[0]), int(s[1])) for s in spans]
    if not tracks_offsets(text_processor):
        raise ValueError(
            f"text processor {type(text_processor).__name__} rewrites the text, so character "
            "spans cannot follow it; use `syncmask_text`"
        )
    return text_processor.with_spans(text, spans)
