"""The generator's `invisible_boost` knob: 0 changes nothing, 1 gives every product the
view-limited details its subcategory can have (so more of its text is invisible in a view)."""

from __future__ import annotations

import pytest

from lavis_syncmask.synthetic.catalogue import VIEW_LIMITED_ATTRIBUTES
from lavis_syncmask.synthetic.generate import build_catalogue


def limited_share(catalogue) -> float:
    """Share of (product, view-limited attribute its subcategory offers) pairs it has."""
    offered = had = 0
    for product, _ in catalogue.train:
        for name in VIEW_LIMITED_ATTRIBUTES & set(product.subcategory.attributes):
            offered += 1
            had += name in product.attributes
    return had / offered


def test_invisible_boost_zero_is_the_default_catalogue() -> None:
    assert build_catalogue(30, 4, seed=2) == build_catalogue(30, 4, seed=2, invisible_boost=0.0)


def test_invisible_boost_one_gives_every_view_limited_detail() -> None:
    default = limited_share(build_catalogue(60, 4, seed=2))
    high = limited_share(build_catalogue(60, 4, seed=2, invisible_boost=1.0))
    assert default < 0.8 and high == 1.0


def test_invisible_boost_out_of_range_is_an_error() -> None:
    with pytest.raises(ValueError, match="invisible_boost"):
        build_catalogue(5, 2, seed=0, invisible_boost=1.5)
