"""Product text of the synthetic catalogue (benchmarks-and-data.md, "The synthetic fashion set"):
a description grammar (several opening templates, synonyms, detail sentences in random order,
non-visual filler) and a short product name, both carrying, for every whitespace-delimited
word, its character span and the attribute it names (``None`` for function and non-visual
words). Whether a word is visible in a view is then its attribute's visibility there.

Phrase tables mark content words with a leading ``*``: in ``"*zip *closure at *back"`` the
words "zip", "closure" and "back" name the attribute, "at" does not.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lavis_syncmask.synthetic.taxonomy import COLOURS, Kind

Token = tuple[str, str | None]  # (word, attribute); a word may end in punctuation
TRAILING_PUNCTUATION = ".,;:!?"


@dataclass(frozen=True)
class TaggedText:
    """A text and, per whitespace-delimited word, ``(start, end, attribute)`` with ``[start,
    end)`` indexing ``text`` and trailing punctuation left out of the span."""

    text: str
    words: tuple[tuple[int, int, str | None], ...]

    def sidecar_words(self, visible: Collection[str]) -> list[list[object]]:
        """``[[start, end, visible 0/1, attribute or None], ...]`` for a view whose visible
        attributes are ``visible``."""
        return [[s, e, int(a is not None and a in visible), a] for s, e, a in self.words]


def compose(
    sentences: Sequence[Sequence[Token]], capitalise: bool = True, end: str = "."
) -> TaggedText:
    """Join sentences (each a token list) into one tagged text: words separated by one space,
    each sentence capitalised and closed by ``end``."""
    pieces: list[str] = []
    words: list[tuple[int, int, str | None]] = []
    cursor = 0
    for sentence in sentences:
        tokens = [t for t in sentence if t[0]]
        for i, (word, attribute) in enumerate(tokens):
            if capitalise and i == 0:
                word = word[0].upper() + word[1:]
            if i == len(tokens) - 1 and end and not word.endswith(end):
                word += end
            if pieces:
                cursor += 1
            core = word.rstrip(TRAILING_PUNCTUATION)
            if not core or any(ch.isspace() for ch in word):
                raise ValueError(f"bad token {word!r}: tokens are single words with letters")
            words.append((cursor, cursor + len(core), attribute))
            pieces.append(word)
            cursor += len(word)
    text = " ".join(pieces)
    text.encode("latin-1")  # FashionGen stores Latin-1: fail here, not in the writer
    return TaggedText(text, tuple(words))


def phrase(markup: str, attribute: str | None) -> list[Token]:
    """``"*long *sleeves with rib *cuffs"`` -> tokens, starred words tagged ``attribute``."""
    return [(w[1:], attribute) if w.startswith("*") else (w, None) for w in markup.split()]


# --- phrase tables ------------------------------------------------------------------------

#: attribute -> value -> (pre-noun adjectives, stand-alone phrases).
PHRASES: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "sleeves": {
        "sleeveless": (("*sleeveless",), ("*sleeveless", "*sleeveless *armholes with *binding")),
        "short": (
            ("*short *sleeve", "*short-sleeved"),
            ("*short *sleeves", "*short *sleeves with *hemmed *ends"),
        ),
        "three-quarter": (
            ("*three-quarter *sleeve",),
            ("*three-quarter *length *sleeves", "*cropped *sleeves"),
        ),
        "long": (
            ("*long *sleeve", "*long-sleeved"),
            ("*long *sleeves", "*long *sleeves with *ribbed *cuffs"),
        ),
    },
    "pattern": {
        "stripes": (("*striped",), ("*striped *pattern throughout", "*stripes throughout")),
        "checks": (("*checked", "*gingham"), ("*check *pattern throughout", "*gingham *check")),
        "dots": (
            ("*polka-dot", "*dotted"),
            ("*polka *dots throughout", "*dot *pattern throughout"),
        ),
        "chevron": (("*chevron",), ("*chevron *pattern throughout", "*zigzag *knit *pattern")),
    },
    "neckline": {
        "crew": (("*crewneck",), ("*rib-knit *crewneck", "*crew *neckline")),
        "v-neck": (("*v-neck",), ("*v-neck *collar", "*plunging *v-neck")),
        "scoop": (("*scoop-neck",), ("*scoop *neckline", "*wide *scoop *neck")),
        "turtleneck": (("*turtleneck",), ("*rolled *turtleneck *collar", "*ribbed *turtleneck")),
        "spread collar": ((), ("*spread *collar", "*classic *spread *collar")),
        "point collar": ((), ("*point *collar", "*pointed *collar")),
        "notch lapels": ((), ("*notched *lapel *collar", "*notch *lapels")),
        "stand collar": ((), ("*stand *collar", "*high *stand *collar")),
    },
    "front_print": {
        "logo": (("*logo",), ("*logo *print at *chest", "*printed *logo at *front")),
        "graphic": (
            ("*graphic",),
            ("*graphic *print at *front", "*graphic *motif *printed at *chest"),
        ),
        "slogan": (("*slogan",), ("*text *print at *front", "*slogan *printed at *chest")),
        "appliqué": (
            ("*appliqué",),
            ("*appliqué *star at *front", "*embroidered *appliqué at *chest"),
        ),
        "floral": (
            ("*floral-print",),
            ("*naïve *floral *print at *front", "*floral *graphic at *chest"),
        ),
    },
    "back_detail": {
        "zip": ((), ("*zip *closure at *back", "concealed *zip *fastening at *back")),
        "bow": (("*bow-back",), ("*bow *detail at *back", "*tie *bow at *back")),
        "cut-out": (("*cut-out",), ("*cut-out at *back", "*keyhole *cut-out at *back")),
        "lace-up": (("*lace-up",), ("*lace-up *fastening at *back", "*lace-up *back")),
        "back pockets": ((), ("*patch *pockets at *back", "*two *back *pockets")),
        "half-belt": ((), ("*half-belt at *back", "*buttoned *half-belt at *back")),
        "vent": ((), ("*vent at *back", "*centre *back *vent")),
    },
    "pockets": {
        "chest": ((), ("*patch *pocket at *chest", "*chest *pocket")),
        "kangaroo": ((), ("*kangaroo *pocket", "*pouch *pocket at *front")),
        "patch": ((), ("*patch *pockets at *front", "*two *patch *pockets")),
        "flap": ((), ("*flap *pockets at *waist", "*two *flap *pockets")),
        "slant": ((), ("*slant *pockets", "*slanted *side *pockets")),
        "front": ((), ("*zip *pocket at *front", "*patch *pocket at *front")),
    },
    "closure": {
        "buttons": (
            (),
            ("*button *closure at *front", "*buttoned *placket", "*front *button *fastening"),
        ),
        "zip": ((), ("*zip *closure at *front", "*two-way *zip *closure")),
        "fly": ((), ("*zip *fly", "*button *fly")),
    },
    "length": {
        "mini": (("*mini",), ("*mini *length", "*short *hemline")),
        "knee": (("*knee-length",), ("*knee *length", "falls to the *knee")),
        "midi": (("*midi",), ("*midi *length", "falls to *mid-calf")),
        "maxi": (("*maxi",), ("*maxi *length", "*floor-length *hem")),
        "cropped": (("*cropped",), ("*cropped *hem", "*cropped *silhouette")),
        "longline": (("*longline",), ("*longline *silhouette", "*extended *hem")),
        "full": (("*full-length",), ("*full-length *leg", "*straight *full-length *leg")),
    },
}
#: Pants are cropped at the leg, not at the hem.
PANTS_CROPPED = ("*cropped *leg", "*cropped at the *ankle")

OPENINGS: tuple[str, ...] = (
    "{sleeve_adj} {material} {noun} in {colour}",
    "{fit} {pattern_adj} {noun} in {colour} {material}",
    "{colour} {material} {noun} {with_sleeves}",
    "{article} {quality} {length_adj} {colour} {noun} in {material}",
    "{pattern_adj} {colour} {noun}, cut from {material}",
    "{neck_adj} {fit} {noun} in {colour}",
    "{quality} {colour} {pattern_adj} {print_adj} {noun} in {material}",
)
#: Attributes a name may mention before the garment noun, in that order.
NAME_MODIFIERS = ("pattern", "front_print", "length", "neckline", "sleeves", "back_detail")
PLURAL_NOUNS = ("jeans", "trousers", "pants", "shorts")
FITS = ("relaxed-fit", "slim-fit", "regular-fit", "tailored", "easy")
QUALITIES = ("classic", "timeless", "versatile", "refined", "modern", "comfortable", "essential")
FILLERS: tuple[str, ...] = (
    "Tonal stitching",
    "Fully lined",
    "Unlined",
    "Made in Portugal",
    "Made in Italy",
    "Designed in Zürich",
    "Machine wash cold",
    "Dry clean only",
    "Comfortable and classic for everyday wear",
    "Soft hand feel",
    "Relaxed fit",
    "True to size",
    "Lightweight and breathable",
    "A naïve charm for the weekend",
    "Silver-tone hardware",
    "Finished by hand",
    "Part of the café collection",
)


def colour_words(colour: str, rng: np.random.Generator) -> str:
    """One of the colour's names, as ``*``-marked markup."""
    names = COLOURS[colour][1]
    return " ".join("*" + w for w in names[int(rng.integers(len(names)))].split())


def _pick(options: Sequence[str], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))] if options else ""


def _stand_alone(attribute: str, value: str, kind: Kind, rng: np.random.Generator) -> list[Token]:
    if attribute == "length" and value == "cropped" and kind == "pants":
        return phrase(_pick(PANTS_CROPPED, rng), attribute)
    return phrase(_pick(PHRASES[attribute][value][1], rng), attribute)


def _fill(template: str, slots: Mapping[str, list[Token]]) -> tuple[list[Token], set[str]]:
    """Tokens of a template whose ``{slot}`` pieces are replaced (empty slots vanish), and the
    slot names used."""
    tokens: list[Token] = []
    used: set[str] = set()
    for piece in template.split():
        core = piece.rstrip(",")
        if core.startswith("{"):
            name = core[1:-1]
            fill = list(slots.get(name, []))
            if fill:
                used.add(name)
                if core != piece:
                    fill[-1] = (fill[-1][0] + ",", fill[-1][1])
            tokens += fill
        else:
            tokens.append((piece, None))
    return tokens, used


def _opening_slots(
    kind: Kind, attrs: Mapping[str, str], material: str, rng: np.random.Generator
) -> dict[str, list[Token]]:
    def adj(attribute: str) -> list[Token]:
        value = attrs.get(attribute)
        return phrase(_pick(PHRASES[attribute][value][0], rng), attribute) if value else []

    sleeves = attrs.get("sleeves")
    with_sleeves = phrase(WITH_SLEEVES[sleeves], "sleeves") if sleeves else []
    return {
        "noun": phrase(" ".join("*" + w for w in attrs["category"].split()), "category"),
        "colour": phrase(colour_words(attrs["colour"], rng), "colour"),
        "material": phrase(material, None),
        "fit": phrase(_pick(FITS, rng), None),
        "quality": phrase(_pick(QUALITIES, rng), None),
        "article": [("{article}", None)],  # resolved once the next word is known
        "sleeve_adj": adj("sleeves"),
        "with_sleeves": with_sleeves,
        "pattern_adj": adj("pattern"),
        "length_adj": adj("length") if kind != "pants" else [],
        "neck_adj": adj("neckline"),
        "print_adj": adj("front_print"),
    }


WITH_SLEEVES = {
    "sleeveless": "with *sleeveless *armholes",
    "short": "with *short *sleeves",
    "three-quarter": "with *three-quarter *sleeves",
    "long": "with *long *sleeves",
}
SLOT_ATTRIBUTE = {
    "sleeve_adj": "sleeves",
    "with_sleeves": "sleeves",
    "pattern_adj": "pattern",
    "length_adj": "length",
    "neck_adj": "neckline",
    "print_adj": "front_print",
}


def describe(
    kind: Kind, attrs: Mapping[str, str], material: str, rng: np.random.Generator
) -> TaggedText:
    """A FashionGen-like description of a product with attribute values ``attrs`` (which must
    hold ``category``, the garment noun, and ``colour``), e.g. "Long sleeve poplin shirt in
    navy. Spread collar. Button closure at front. Tonal stitching."."""
    slots = _opening_slots(kind, attrs, material, rng)
    opening, used = _fill(OPENINGS[int(rng.integers(len(OPENINGS)))], slots)
    if opening[0][0] == "{article}":  # "a" / "an" by the next word, none for "trousers"
        plural = attrs["category"].split()[-1] in PLURAL_NOUNS
        article = "" if plural else ("an" if opening[1][0][:1] in "aeiou" else "a")
        opening = ([(article, None)] if article else []) + opening[1:]
    said = {SLOT_ATTRIBUTE[s] for s in used if s in SLOT_ATTRIBUTE}
    details = [
        a for a in attrs if a not in ("category", "colour") and a not in said and rng.random() < 0.9
    ]
    rng.shuffle(details)
    sentences: list[list[Token]] = [opening]
    i = 0
    while i < len(details):
        sentence = _stand_alone(details[i], attrs[details[i]], kind, rng)
        if i + 1 < len(details) and rng.random() < 0.3:  # two details in one sentence
            sentence += [("and", None)] + _stand_alone(
                details[i + 1], attrs[details[i + 1]], kind, rng
            )
            i += 1
        sentences.append(sentence)
        i += 1
    for filler in rng.choice(len(FILLERS), size=int(rng.integers(0, 4)), replace=False):
        sentences.append(phrase(FILLERS[int(filler)], None))
    if rng.random() < 0.35:
        colour = [
            (w[0].upper() + w[1:], a)
            for w, a in phrase(colour_words(attrs["colour"], rng), "colour")
        ]
        sentences.append([("Supplier", None), ("color:", None), *colour])
    return compose(sentences)


def product_name(attrs: Mapping[str, str], material: str, rng: np.random.Generator) -> TaggedText:
    """A short title-cased name, e.g. "Navy Striped Cotton Shirt" (no final full stop)."""
    modifiers = [a for a in NAME_MODIFIERS if a in attrs and PHRASES[a][attrs[a]][0]]
    count = min(len(modifiers), int(rng.integers(0, 3)))
    picked = sorted(rng.choice(len(modifiers), size=count, replace=False).tolist()) if count else []
    tokens = phrase(colour_words(attrs["colour"], rng), "colour")
    for attribute in (modifiers[i] for i in picked):
        tokens += phrase(_pick(PHRASES[attribute][attrs[attribute]][0], rng), attribute)
    if rng.random() < 0.3:
        tokens += phrase(material, None)
    tokens += phrase(" ".join("*" + w for w in attrs["category"].split()), "category")
    return compose([[(w.title(), a) for w, a in tokens]], capitalise=False, end="")
