"""Cheap FashionGen-like catalogue texts for the sampler benchmark (no images, no data files).

~68k products with 1-6 rows each (about 260k rows), ~120 subcategories with Zipf sizes grouped
into ~48 categories, and descriptions of 20-40 words built from a fashion vocabulary: every
subcategory has its own garment words and favourite detail phrases, so TF-IDF similarity is
high inside a subcategory and low across; 3% of products copy (almost) the previous text, as
near-duplicates do in FashionGen.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fashion_catalogue"]

COLOURS = (
    "black white navy red blue green grey beige cream ivory brown tan khaki olive burgundy pink "
    "purple yellow orange silver gold charcoal indigo camel taupe coral teal mint lilac rust"
).split()
MATERIALS = (
    "cotton wool silk linen leather suede denim cashmere polyester nylon viscose jersey twill "
    "satin velvet tweed fleece mohair alpaca canvas poplin chiffon crepe corduroy lambskin "
    "calfskin neoprene modal lyocell organza"
).split()
DETAILS = (
    "zip closure at back|button closure at front|tonal stitching|two-pocket styling|"
    "rib knit cuffs|spread collar|crewneck collar|v-neck collar|logo print at chest|"
    "patch pockets at waist|drawstring at hood|adjustable strap|buckle fastening|round toe|"
    "rubber sole|lace-up closure|pull-loop at heel|raw edge at hem|slim fit|relaxed fit|"
    "cropped hem|long sleeves|short sleeves|sleeveless|silver-tone hardware|gold-tone hardware|"
    "fully lined|unlined|mock neck|graphic print at front|embroidered logo at hip|"
    "padded shoulders|dropped shoulders|welt pockets|flap pockets|concealed placket|"
    "contrast trim|striped pattern|check pattern|floral pattern|quilted construction|"
    "ribbed texture|distressed finish|garment-dyed|five-pocket styling|belt loops|zip fly|"
    "pleated front|french seams|bonded seams|elasticized waistband|side slits|curved hem"
).split("|")


_MAX_FILLER = 26  # with ~14 garment / detail words: 20-40 words per text
_VIEWS_P = [0.10, 0.12, 0.15, 0.25, 0.22, 0.16]  # 1-6 rows per product, ~3.85 on average


def _subcategory_sizes(
    n_products: int, n_subcategories: int, rng: np.random.Generator
) -> np.ndarray:
    zipf = 1.0 / np.arange(1, n_subcategories + 1)
    return rng.choice(n_subcategories, size=n_products, p=zipf / zipf.sum())


def fashion_catalogue(
    n_products: int = 68_000,
    n_subcategories: int = 120,
    n_categories: int = 48,
    *,
    seed: int = 0,
    filler_vocab: int = 4000,
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Rows of a synthetic catalogue: `(texts, product_ids, subcategories, categories)`.

    Returns per row (N ~ 3.5 x n_products): texts (list of str), product ids `(N,)` int64,
    subcategory names `(N,)` and category names `(N,)` (numpy str arrays).
    """
    rng = np.random.default_rng(seed)
    sub_of = _subcategory_sizes(n_products, n_subcategories, rng)
    cat_of_sub = np.concatenate(
        [np.arange(n_categories), rng.integers(0, n_categories, n_subcategories - n_categories)]
    )
    favourite = [rng.choice(len(DETAILS), 10, replace=False) for _ in range(n_subcategories)]
    garment = [[f"garment{s}", f"style{s}", f"cut{s % 17}"] for s in range(n_subcategories)]
    zipf = 1.0 / np.arange(1, filler_vocab + 1) ** 1.1
    filler = rng.choice(filler_vocab, size=n_products * _MAX_FILLER, p=zipf / zipf.sum()).tolist()
    lengths = rng.integers(6, _MAX_FILLER + 1, n_products).tolist()
    colours = rng.integers(0, len(COLOURS), n_products).tolist()
    materials = rng.integers(0, len(MATERIALS), n_products).tolist()
    texts: list[str] = []
    for p in range(n_products):
        s = int(sub_of[p])
        if p and rng.random() < 0.03:  # near-duplicate (same subcategory, maybe one word more)
            sub_of[p] = sub_of[p - 1]
            texts.append(texts[-1] + ("" if rng.random() < 0.5 else f" w{filler[_MAX_FILLER * p]}"))
            continue
        details = [DETAILS[d] for d in rng.choice(favourite[s], 4, replace=False)]
        details.append(DETAILS[int(rng.integers(len(DETAILS)))])
        words = [COLOURS[colours[p]], MATERIALS[materials[p]], *garment[s], *details]
        words += [f"w{w}" for w in filler[_MAX_FILLER * p : _MAX_FILLER * p + lengths[p]]]
        texts.append(" ".join(words) + ".")
    views = rng.choice(np.arange(1, 7), size=n_products, p=_VIEWS_P)
    rows = np.repeat(np.arange(n_products, dtype=np.int64), views)
    subs = np.array([f"SUB{s}" for s in range(n_subcategories)])[sub_of[rows]]
    cats = np.array([f"CAT{c}" for c in range(n_categories)])[cat_of_sub[sub_of[rows]]]
    return [texts[p] for p in rows.tolist()], rows, subs, cats
