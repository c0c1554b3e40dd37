"""The synthetic renderer and text grammar, in memory (no files): the ground truth the sidecar
is made of must be true pixel by pixel, and word spans must slice back to their words."""

from __future__ import annotations

import numpy as np
import pytest

from lavis_syncmask.synthetic.catalogue import (
    sample_product,
    sample_products,
    sample_view,
    sample_views,
)
from lavis_syncmask.synthetic.render import GRID, PATCH, render_image, render_view
from lavis_syncmask.synthetic.subcategories import SUBCATEGORIES
from lavis_syncmask.synthetic.taxonomy import ATTRIBUTES, POSES
from lavis_syncmask.synthetic.text import TRAILING_PUNCTUATION


def changed_patches(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(256,) bool: 16x16 patches where two (256, 256, 3) images differ."""
    return (a != b).any(-1).reshape(GRID, PATCH, GRID, PATCH).any(axis=(1, 3)).ravel()


@pytest.fixture(scope="module")
def every_subcategory_in_every_pose():
    rng = np.random.default_rng(7)
    items = []
    for i, sub in enumerate(SUBCATEGORIES):
        product = sample_product(rng, i, sub)
        items += [(product, sample_view(product, pose, rng)) for pose in POSES]
    return items


def test_image_is_uint8_rgb_256(every_subcategory_in_every_pose):
    product, view = every_subcategory_in_every_pose[0]
    rendered = render_view(product, view)
    assert rendered.image.shape == (256, 256, 3) and rendered.image.dtype == np.uint8
    assert np.array_equal(
        rendered.image, render_image(product, view)
    )  # pure: same input, same pixels


def test_omitting_an_attribute_changes_pixels_only_in_its_listed_patches(
    every_subcategory_in_every_pose,
):
    for product, view in every_subcategory_in_every_pose:
        rendered = render_view(product, view)
        assert set(rendered.patches) <= set(ATTRIBUTES)
        assert {"category", "colour"} <= set(rendered.patches), "the garment is in every view"
        for attribute in ATTRIBUTES:
            changed = changed_patches(rendered.image, render_image(product, view, omit=attribute))
            where = f"{product.subcategory.name} {view.pose}/{view.face} {attribute}"
            if attribute in rendered.patches:
                listed = np.zeros(GRID * GRID, dtype=bool)
                listed[rendered.patches[attribute]] = True
                assert changed.any(), f"{where}: listed as visible but omitting it changes nothing"
                assert not (changed & ~listed).any(), f"{where}: pixels change outside its patches"
            else:
                assert not changed.any(), f"{where}: invisible, yet omitting it changes pixels"


def test_view_dependent_visibility(every_subcategory_in_every_pose):
    seen = {
        (p.subcategory.name, v.pose): set(render_view(p, v).patches)
        for p, v in every_subcategory_in_every_pose
    }
    for (name, pose), visible in seen.items():
        if pose == "front":
            assert "back_detail" not in visible, name
        if pose in ("back", "side"):
            assert not visible & {"neckline", "front_print", "pockets", "closure"}, (name, pose)
        if pose == "side":
            assert "back_detail" not in visible, name
    fronts = set().union(*(v for (_, pose), v in seen.items() if pose == "front"))
    assert {"neckline", "front_print", "pockets", "closure", "sleeves", "length"} <= fronts


def test_patch_lists_are_sorted_and_in_range(every_subcategory_in_every_pose):
    for product, view in every_subcategory_in_every_pose[:24]:
        for patches in render_view(product, view).patches.values():
            assert patches == sorted(set(patches)) and 0 <= patches[0] and patches[-1] < GRID * GRID


def test_bad_omit_names_the_attribute(every_subcategory_in_every_pose):
    product, view = every_subcategory_in_every_pose[0]
    with pytest.raises(ValueError, match="sleevez"):
        render_view(product, view, omit="sleevez")


def test_word_spans_slice_back_to_the_words():
    rng = np.random.default_rng(3)
    for product in sample_products(list(range(80)), rng):
        for tagged in (product.description, product.name):
            words = tagged.text.split()
            assert len(words) == len(tagged.words)
            for word, (start, end, attribute) in zip(words, tagged.words):
                assert tagged.text[start:end] == word.rstrip(TRAILING_PUNCTUATION)
                assert attribute is None or attribute in ATTRIBUTES
            tagged.text.encode("latin-1")
        text = product.description.text
        nouns = {text[s:e].lower() for s, e, a in product.description.words if a == "category"}
        assert nouns and nouns <= set(product.attributes["category"].split())


def test_near_duplicates_share_text_and_views_count_one_to_six():
    rng = np.random.default_rng(11)
    products = sample_products(list(range(100, 140)), rng)
    copies = [p for p in products if p.duplicate_of is not None]
    by_id = {p.product_id: p for p in products}
    assert len(copies) >= 2
    for copy in copies:
        assert copy.description == by_id[copy.duplicate_of].description
    counts = [len(sample_views(p, rng)) for p in products for _ in range(5)]
    assert min(counts) >= 1 and max(counts) <= 6 and len(set(counts)) >= 4
    assert all(sample_views(p, rng)[0].pose == "front" for p in products)
