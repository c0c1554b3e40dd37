"""The synthetic renderer's ground truth: the visibility sidecar says exactly which pixels
each attribute owns (lavis_syncmask/data/synthetic/render.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lavis_syncmask.data.synthetic.catalogue import build_products, draw_product_ids
from lavis_syncmask.data.synthetic.fashiongen_writer import sidecar_record
from lavis_syncmask.data.synthetic.render import background, render_view, render_with_patches


@pytest.fixture(scope="module")
def products():
    rng = np.random.default_rng(123)
    return build_products(draw_product_ids(40, rng).tolist(), rng)


def _patch_pixels(patches: list[int]) -> np.ndarray:
    grid = np.zeros(256, dtype=bool)
    grid[patches] = True
    return grid.reshape(16, 16).repeat(16, axis=0).repeat(16, axis=1)


def test_omitting_an_attribute_changes_exactly_its_patches(products) -> None:
    checked_visible = checked_invisible = 0
    for product in products[:14]:
        garment = product.garment
        for row, view in enumerate(product.views):
            rendered = render_with_patches(garment, view)
            record = json.loads(sidecar_record(row, product, view, rendered.patches))
            assert record["attributes"] == rendered.patches
            for attribute in garment.attributes:
                changed = (render_view(garment, view, omit={attribute}) != rendered.image).any(-1)
                if attribute in record["attributes"]:
                    patches = record["attributes"][attribute]
                    assert patches == sorted(patches) and 0 <= patches[0] and patches[-1] < 256
                    assert changed.any(), (attribute, view.pose)
                    assert not (changed & ~_patch_pixels(patches)).any(), (attribute, view.pose)
                    checked_visible += 1
                else:
                    assert not changed.any(), (attribute, view.pose)
                    checked_invisible += 1
    assert checked_visible > 60 and checked_invisible > 10


def test_words_follow_their_attribute_and_spans_slice_back(products) -> None:
    for product in products:
        rendered = render_with_patches(product.garment, product.views[-1])
        record = json.loads(sidecar_record(0, product, product.views[-1], rendered.patches))
        texts = {"input_description": product.text.description, "input_name": product.text.name}
        for key, text in texts.items():
            words = record["words"][key]
            assert [text[s:e] for s, e, *_ in words] == [w.rstrip(".,;:") for w in text.split()]
            for _, _, visible, attribute in words:
                assert visible == int(attribute is not None and attribute in rendered.patches)
        nouns = [w for w in record["words"]["input_name"] if w[3] == "category"]
        assert nouns and all(w[2] == 1 for w in nouns)


def test_render_is_deterministic_and_background_never_matches_garment(products) -> None:
    product = products[0]
    view = product.views[0]
    first, second = render_view(product.garment, view), render_view(product.garment, view)
    assert first.shape == (256, 256, 3) and first.dtype == np.uint8
    assert np.array_equal(first, second)
    assert (background(view.bg_seed)[..., 0] % 2 == 1).all()
    garment_only = render_view(product.garment, view, omit={"category"})
    garment = (first != garment_only).any(-1)
    assert garment.any() and (first[garment][:, 0] % 2 == 0).all()


def test_unknown_omit_is_an_error(products) -> None:
    with pytest.raises(ValueError, match="sparkles"):
        render_view(products[0].garment, products[0].views[0], omit={"sparkles"})
