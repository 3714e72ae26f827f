"""Properties of bnnbook.data.silhouettes: deterministic per seed, height labels equal the rows
the drawn figure covers, rescaling within range, validation."""

import numpy as np
import pytest

from bnnbook import data


def _rows_covered(images):
    rows = images.any(axis=2)
    return np.array([np.flatnonzero(r)[-1] - np.flatnonzero(r)[0] + 1 for r in rows])


@pytest.mark.parametrize("kind", data.SILHOUETTE_KINDS)
def test_same_seed_same_images_other_seed_other_images(kind):
    images, heights = data.silhouettes(20, kind, seed=3)
    again, heights_again = data.silhouettes(20, kind, seed=3)
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(heights, heights_again)
    other, _ = data.silhouettes(20, kind, seed=4)
    assert not np.array_equal(images, other)
    assert images.shape == (20, 126, 126) and images.dtype == np.float32 and heights.shape == (20,)
    assert set(np.unique(images)) <= {0.0, 1.0}


def test_child_heights_match_the_drawn_pixels():
    images, heights = data.silhouettes(300, "child", seed=0)
    np.testing.assert_array_equal(_rows_covered(images), heights)
    # Nothing is cut off by the border: the figure never touches the left or right edge.
    columns = images.any(axis=1)
    assert not columns[:, 0].any() and not columns[:, -1].any()


def test_rescaling_spreads_the_heights_over_the_range():
    _, heights = data.silhouettes(400, "child", seed=1)
    assert heights.min() >= 15 * 0.5 and heights.max() <= 122
    _, narrow = data.silhouettes(400, "child", seed=1, scale_range=(1.0, 1.0))
    assert narrow.min() >= 30 - 1 and narrow.max() <= 60 + 1  # the base heights only
    assert heights.std() > 1.5 * narrow.std()


def test_spiders_are_sized_like_children_and_unlike_them_in_shape():
    children, child_heights = data.silhouettes(200, "child", seed=0)
    spiders, spider_heights = data.silhouettes(200, "spider", seed=0)
    np.testing.assert_array_equal(_rows_covered(spiders), spider_heights)
    assert 0.5 < np.median(spider_heights) / np.median(child_heights) < 2.0
    # A spider is wider than tall on average; a standing child is taller than wide.
    def aspect(images):
        cols = images.any(axis=1)
        widths = np.array([np.flatnonzero(c)[-1] - np.flatnonzero(c)[0] + 1 for c in cols])
        return np.median(_rows_covered(images) / widths)
    assert aspect(children) > 1.0 > aspect(spiders)


def test_bad_input_raises_value_error_naming_the_argument():
    with pytest.raises(ValueError, match="n="):
        data.silhouettes(0)
    with pytest.raises(ValueError, match="kind="):
        data.silhouettes(3, "cat")
    with pytest.raises(ValueError, match="scale_range="):
        data.silhouettes(3, scale_range=(0.5, 3.0))


def test_hairs_only_add_pixels_near_the_figure_and_are_deterministic():
    from scipy import ndimage

    spiders, _ = data.silhouettes(6, "spider", seed=0)
    hairy = data.add_hairs(spiders, seed=1, length=(2.0, 5.0))
    assert hairy.shape == spiders.shape and hairy.dtype == np.float32
    np.testing.assert_array_equal(hairy, data.add_hairs(spiders, seed=1, length=(2.0, 5.0)))
    assert not np.array_equal(hairy, data.add_hairs(spiders, seed=2, length=(2.0, 5.0)))
    for before, after in zip(spiders > 0.5, hairy > 0.5):
        assert np.all(after[before])  # the figure is kept
        added = after & ~before
        assert added.sum() > 0.05 * before.sum()  # hairs were grown
        distance = ndimage.distance_transform_edt(~before)
        assert distance[added].max() <= 5.0 + 1.5  # and none reaches further than its longest hair


def test_more_density_grows_more_hair_and_one_image_works_alone():
    child, _ = data.silhouettes(1, "child", seed=0)
    sparse = data.add_hairs(child, seed=0, density=0.1).sum()
    dense = data.add_hairs(child, seed=0, density=0.8).sum()
    assert child.sum() < sparse < dense
    np.testing.assert_array_equal(data.add_hairs(child[0], seed=0), data.add_hairs(child, seed=0)[0])


def test_add_hairs_rejects_bad_input_with_the_value_and_a_fix():
    child, _ = data.silhouettes(1, "child", seed=0)
    with pytest.raises(ValueError, match="density=0"):
        data.add_hairs(child, density=0)
    with pytest.raises(ValueError, match=r"length=\(3, 2\)"):
        data.add_hairs(child, length=(3, 2))
    with pytest.raises(ValueError, match="shape"):
        data.add_hairs(np.zeros((2, 3, 4, 5)))
