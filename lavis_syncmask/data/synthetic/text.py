"""Product text of the synthetic catalogue: a varied description grammar and a short name,
each with per-word character spans and the attribute each word names (benchmarks-and-data.md,
"The synthetic fashion set"). A word's visibility in a view is its attribute's visibility
there (render.py); function and non-visual words carry no attribute and are never visible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from lavis_syncmask.data.synthetic.catalogue import Garment

#: A word of the text and the attribute it names (None: function / non-visual word).
Token = tuple[str, str | None]
#: ``(start, end, attribute)``: ``text[start:end]`` is the word without trailing punctuation.
WordSpan = tuple[int, int, str | None]
TRAILING_PUNCTUATION = ".,;:!?"

_PATTERN_ADJ = {
    "stripes": ("striped", "stripe"),
    "pinstripes": ("pinstriped", "pinstripe"),
    "checks": ("checked", "check", "gingham"),
    "dots": ("polka-dot", "dotted"),
}
_PATTERN_NOUN = {
    "stripes": ("stripes", "breton stripes"),
    "pinstripes": ("pinstripes", "fine pinstripes"),
    "checks": ("check", "gingham check", "plaid"),
    "dots": ("polka dots", "dots"),
}
_SLEEVE_ADJ = {
    "short": ("short-sleeved", "short sleeve"),
    "elbow": ("elbow-sleeved", "half-sleeve"),
    "long": ("long-sleeved", "long sleeve"),
}
_SLEEVE_NOUN = {"short": "short", "elbow": "elbow-length", "long": "long"}
_NECKLINE = {
    "crew": ("crew neck", "crewneck", "round neck"),
    "v-neck": ("V-neck", "V neckline"),
    "scoop": ("scoop neck", "scoop neckline"),
    "square": ("square neckline", "square neck"),
}
_LENGTH = {
    "mini": ("mini",),
    "knee": ("knee-length",),
    "midi": ("midi", "midi-length"),
    "maxi": ("maxi", "floor-length"),
    "mid-thigh": ("mid-thigh",),
    "cropped": ("cropped",),
    "full": ("full-length",),
    "hip": ("hip-length",),
    "long": ("longline", "ankle-length"),
}
_PRINT = {
    "graphic": ("graphic print", "bold graphic print"),
    "logo": ("logo print", "printed logo"),
    "appliqué": ("appliqué patch", "appliqué"),
    "naïve": ("naïve floral print", "naïve print"),
}
_POCKETS = {
    "patch": ("patch pockets", "two patch pockets"),
    "flap": ("flap pockets", "two flap pockets"),
    "welt": ("welt pockets", "slit pockets"),
}
_CLOSURE = {
    "buttons": ("button-front", "buttoned placket", "button closure"),
    "zip": ("zip-front", "full zip", "two-way zip"),
}
_BACK = {
    "zip": ("concealed zip", "zip closure"),
    "bow": ("tie bow", "bow"),
    "cut-out": ("cut-out", "open cut-out"),
}
_FILLERS = (
    "Relaxed fit.",
    "Regular fit.",
    "Slim fit.",
    "Tonal stitching.",
    "Made in Italy.",
    "Made in Portugal.",
    "Soft hand feel.",
    "A classic and comfortable piece.",
    "Unlined.",
    "Dry clean only.",
    "Designed for everyday wear.",
    "Style it with the matching pieces of the collection.",
)


@dataclass(frozen=True)
class ProductText:
    """A product's description and name with the spans of their words."""

    description: str
    name: str
    description_words: tuple[WordSpan, ...]
    name_words: tuple[WordSpan, ...]


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _attr(attribute: str, phrase: str) -> list[Token]:
    return [(word, attribute) for word in phrase.split()]


def _plain(phrase: str) -> list[Token]:
    return [(word, None) for word in phrase.split()]


def join_sentences(sentences: Sequence[Sequence[Token]]) -> tuple[str, tuple[WordSpan, ...]]:
    """Join token sentences into text: first letter capitalised, a full stop at the end of each
    sentence, single spaces; returns the text and one span per whitespace-delimited word."""
    pieces: list[str] = []
    spans: list[WordSpan] = []
    cursor = 0
    for sentence in sentences:
        for i, (word, attribute) in enumerate(sentence):
            if i == 0:
                word = word[:1].upper() + word[1:]
            if i == len(sentence) - 1 and word[-1] not in TRAILING_PUNCTUATION:
                word = word + "."
            if pieces:
                cursor += 1
            core = word.rstrip(TRAILING_PUNCTUATION)
            spans.append((cursor, cursor + len(core), attribute))
            pieces.append(word)
            cursor += len(word)
    return " ".join(pieces), tuple(spans)


def _main_sentence(
    attrs: Mapping[str, str], material: str, rng: np.random.Generator
) -> tuple[list[Token], set[str]]:
    """The opening sentence naming the garment; returns it and the attributes it covers."""
    colour = _attr("colour", attrs["colour"])
    noun = _attr("category", attrs["category"])
    pattern = attrs.get("pattern")
    form = int(rng.integers(3))
    if form == 0:
        tokens: list[Token] = []
        covered = {"category", "colour"}
        if "sleeve" in attrs and rng.random() < 0.6:
            tokens += _attr("sleeve", _pick(rng, _SLEEVE_ADJ[attrs["sleeve"]]))
            covered.add("sleeve")
        if pattern:
            tokens += _attr("pattern", _pick(rng, _PATTERN_ADJ[pattern]))
            covered.add("pattern")
        return tokens + colour + _plain(material) + noun, covered
    if form == 1:
        tail = (
            _plain("in") + _attr("pattern", _pick(rng, _PATTERN_NOUN[pattern])) if pattern else []
        )
        return colour + _plain(material) + noun + tail, {"category", "colour", "pattern"}
    head = _attr("pattern", _pick(rng, _PATTERN_ADJ[pattern])) if pattern else []
    return head + noun + _plain("in") + colour + _plain(material), {"category", "colour", "pattern"}


def _detail_sentence(attribute: str, value: str, rng: np.random.Generator) -> list[Token]:
    """One sentence about an attribute not named by the opening sentence."""
    intro = _plain("features") if rng.random() < 0.3 else []
    if attribute == "sleeve":
        return intro + _attr("sleeve", f"{_SLEEVE_NOUN[value]} sleeves")
    if attribute == "neckline":
        article = _plain("features a") if rng.random() < 0.4 else []
        return article + _attr("neckline", _pick(rng, _NECKLINE[value]))
    if attribute == "pattern":
        return _plain("all-over") + _attr("pattern", _pick(rng, _PATTERN_NOUN[value]))
    if attribute == "length":
        if rng.random() < 0.5:
            word = _pick(rng, _LENGTH[value])
            if word.endswith("length"):
                return _plain("cut") + _attr("length", word)
            return _plain("cut to a") + _attr("length", f"{word} length")
        return _attr("length", _pick(rng, _LENGTH[value])) + _plain("silhouette")
    if attribute == "print":
        return intro + _attr("print", _pick(rng, _PRINT[value])) + _plain("at chest")
    if attribute == "pockets":
        return _attr("pockets", _pick(rng, _POCKETS[value])) + _plain("at front")
    if attribute == "closure":
        return intro + _attr("closure", _pick(rng, _CLOSURE[value]))
    if attribute == "back_detail":
        return _attr("back_detail", _pick(rng, _BACK[value])) + _plain("at back")
    raise ValueError(f"no detail sentence for attribute {attribute!r}")


def _name_tokens(attrs: Mapping[str, str], rng: np.random.Generator) -> list[Token]:
    middle: list[Token] = []
    choice = int(rng.integers(3))
    if choice == 0 and "pattern" in attrs:
        middle = _attr("pattern", _PATTERN_ADJ[attrs["pattern"]][0])
    elif choice == 1 and "neckline" in attrs:
        middle = _attr("neckline", _NECKLINE[attrs["neckline"]][0])
    elif "sleeve" in attrs:
        middle = _attr("sleeve", _SLEEVE_ADJ[attrs["sleeve"]][0])
    return _attr("colour", attrs["colour"]) + middle + _attr("category", attrs["category"])


def make_text(garment: Garment, material: str, rng: np.random.Generator) -> ProductText:
    """Description (opening sentence, one sentence per other attribute in random order, one
    or two non-visual sentences) and name of a garment.

    Example:
        >>> text = make_text(garment, "cotton", np.random.default_rng(0))  # doctest: +SKIP
        >>> text.description  # doctest: +SKIP
        'Long-sleeved striped navy cotton shirt. Patch pockets at front. Relaxed fit.'
    """
    attrs = garment.attributes
    opening, covered = _main_sentence(attrs, material, rng)
    details = [
        _detail_sentence(a, v, rng)
        for a, v in attrs.items()
        if a not in covered and rng.random() < 0.92
    ]
    order = rng.permutation(len(details))
    fillers = rng.choice(len(_FILLERS), size=int(rng.integers(1, 3)), replace=False)
    sentences = [opening] + [details[i] for i in order] + [_plain(_FILLERS[i]) for i in fillers]
    description, description_words = join_sentences(sentences)
    name_text, name_words = join_sentences([_name_tokens(attrs, rng)])
    return ProductText(description, name_text.rstrip("."), description_words, name_words)
