"""bnnbook.plots draws exactly the numbers it is given, and refuses bad input."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from bnnbook import metrics, plots


@pytest.fixture
def ax():
    fig, axes = plt.subplots()
    yield axes
    plt.close(fig)


def test_predictive_band_spans_mean_plus_minus_num_std(ax):
    x = np.linspace(-1, 1, 50)
    mean, std = np.sin(3 * x), 0.1 + x ** 2
    lower, upper = plots.predictive_band(ax, x[:, None], mean[:, None], std[:, None], num_std=1.5)
    np.testing.assert_allclose(lower, mean - 1.5 * std)
    np.testing.assert_allclose(upper, mean + 1.5 * std)
    # The shaded polygon reaches exactly the band's edges, and the line is the mean.
    vertices = ax.collections[0].get_paths()[0].vertices
    assert vertices[:, 1].min() == pytest.approx(lower.min()) and vertices[:, 1].max() == pytest.approx(upper.max())
    np.testing.assert_allclose(ax.lines[0].get_ydata(), mean)
    assert ax.collections[0].get_label() == "mean ± 1.5 std"
    # A second band around the same mean, without a second mean line.
    plots.predictive_band(ax, x, mean, 2 * std, draw_mean=False)
    assert len(ax.collections) == 2 and len(ax.lines) == 1


@pytest.mark.parametrize("kwargs, message", [
    (dict(x=np.arange(3.0), mean=np.zeros(4), std=np.ones(4)), "one length"),
    (dict(x=np.arange(3.0), mean=np.zeros(3), std=-np.ones(3)), "std must be >= 0"),
    (dict(x=np.arange(3.0), mean=np.zeros((3, 2)), std=np.ones(3)), "mean must be a non-empty vector"),
    (dict(x=np.arange(3.0), mean=np.array([0, np.nan, 0]), std=np.ones(3)), "non-finite"),
])
def test_predictive_band_rejects_bad_input(ax, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plots.predictive_band(ax, **kwargs)


def test_draw_probabilities_bars_are_the_mean_and_every_draw_is_a_dot(ax):
    rng = np.random.default_rng(0)
    draws = rng.dirichlet(np.ones(10), size=30)
    mean = plots.draw_probabilities(ax, draws, jitter=0.2)
    np.testing.assert_allclose(mean, draws.mean(0))
    np.testing.assert_allclose([patch.get_height() for patch in ax.patches], draws.mean(0))
    # One line per class, each with one dot per draw, within the jitter of its class.
    assert len(ax.lines) == 10 and all(len(line.get_ydata()) == 30 for line in ax.lines)
    for k, line in enumerate(ax.lines):
        np.testing.assert_allclose(line.get_ydata(), draws[:, k])
        assert np.all(np.abs(np.asarray(line.get_xdata()) - k) <= 0.2)


def test_draw_probabilities_rejects_rows_that_are_not_probabilities(ax):
    with pytest.raises(ValueError, match="sum to 1"):
        plots.draw_probabilities(ax, np.full((5, 4), 0.3))
    with pytest.raises(ValueError, match="num_draws, classes"):
        plots.draw_probabilities(ax, np.full((2, 5, 4), 0.25))


def test_reliability_diagram_plots_the_bins_of_metrics(ax):
    rng = np.random.default_rng(1)
    logits = 3 * rng.normal(size=(4000, 10))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    labels = np.array([rng.choice(10, p=p) for p in probs])  # calibrated by construction
    bins = plots.reliability_diagram(ax, probs, labels, num_bins=10, min_count=50)
    expected = metrics.reliability_bins(probs, labels, num_bins=10)
    shown = expected["count"] >= 50
    np.testing.assert_array_equal(bins["shown"], shown)
    np.testing.assert_allclose(ax.lines[0].get_xdata(), expected["confidence"][shown])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), expected["accuracy"][shown])
    # Labels drawn from the predicted probabilities: every well-filled bin sits near the diagonal.
    assert np.all(np.abs(expected["accuracy"][shown] - expected["confidence"][shown]) < 0.1)
    with pytest.raises(ValueError, match="min_count"):
        plots.reliability_diagram(ax, probs, labels, min_count=0)


def test_gaussian_contour_is_the_set_at_the_asked_mahalanobis_distance():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cov = np.array([[2.0, 0.6], [0.6, 0.5]])
    fig, ax = plt.subplots()
    points = plots.gaussian_contour(ax, [1.0, -1.0], cov, num_std=1.5, color="k")
    offsets = points - np.array([[1.0], [-1.0]])
    distance = np.sqrt(np.einsum("in,ij,jn->n", offsets, np.linalg.inv(cov), offsets))
    np.testing.assert_allclose(distance, 1.5)
    with pytest.raises(ValueError, match="positive definite"):
        plots.gaussian_contour(ax, [0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]])
    plt.close(fig)


def test_elbo_gap_shades_exactly_the_gap_and_refuses_an_elbo_above_the_evidence(ax):
    x = np.linspace(-2, 2, 9)
    gap = plots.elbo_gap(ax, x, -10.0, -10.0 - x ** 2)
    np.testing.assert_allclose(gap, x ** 2)
    vertices = ax.collections[0].get_paths()[0].vertices
    assert vertices[:, 1].max() == pytest.approx(-10.0) and vertices[:, 1].min() == pytest.approx(-14.0)
    with pytest.raises(ValueError, match="above the log evidence"):
        plots.elbo_gap(ax, x, -10.0, -10.0 + x ** 2)


def test_norm_ball_optimum_draws_the_ball_and_the_contour_through_the_optimum(ax):
    x = np.eye(2)
    y = np.array([2.0, 0.5])
    loss = plots.norm_ball_optimum(ax, x, y, np.array([1.0, 0.0]), 1.0, 1)
    assert loss == pytest.approx(1.0 + 0.25)
    diamond = ax.lines[0].get_xydata()
    np.testing.assert_allclose(np.abs(diamond).sum(1), 1.0)  # every vertex on |w1| + |w2| = 1
    with pytest.raises(ValueError, match="norm"):
        plots.norm_ball_optimum(ax, x, y, np.zeros(2), 1.0, 3)


def test_weight_magnitudes_reports_the_shares_it_histograms(ax):
    values = np.array([0.0, 1e-9, 1e-4, 0.5, -2.0])
    stats = plots.weight_magnitudes(ax, {"net": values})["net"]
    assert stats["near_zero"] == pytest.approx(3 / 5) and stats["tiny"] == pytest.approx(2 / 5)
    assert stats["largest"] == 2.0 and stats["median_used"] == pytest.approx(1.25)
    counts = ax.patches[0].get_path().vertices  # a step histogram: one patch holding every bin
    assert len(counts) > 0


def test_confidence_histograms_and_probability_bars_report_what_they_draw(ax):
    shares = plots.confidence_histograms(ax, {"a": [0.95, 0.5, 0.99, 0.2]}, threshold=0.9)
    assert shares == {"a": 0.5}
    fig, other = plt.subplots()
    heights = plots.probability_bars(other, {"one": [0.7, 0.3], "two": [0.4, 0.6]})
    np.testing.assert_allclose([b.get_height() for b in other.patches], [0.7, 0.3, 0.4, 0.6])
    np.testing.assert_allclose(heights, [[0.7, 0.3], [0.4, 0.6]])
    plt.close(fig)
    with pytest.raises(ValueError, match="same classes"):
        plots.probability_bars(ax, {"one": [0.5, 0.5], "two": [1.0]})


def test_image_grid_and_regression_fits_draw_one_item_each(ax):
    fig, axes = plt.subplots(1, 3)
    assert plots.image_grid(axes, np.random.default_rng(0).uniform(size=(3, 784)), ["a", "b", "c"]) == 3
    assert [a.get_title() for a in axes] == ["a", "b", "c"]
    plt.close(fig)
    x = np.linspace(-1, 1, 5)
    plots.regression_fits(ax, x, np.stack([x, 2 * x]), x, x, x)
    np.testing.assert_allclose(ax.lines[2].get_ydata(), 2 * x)  # truth, then the fits in order
    np.testing.assert_allclose(ax.lines[0].get_ydata(), x)
    fig, empty = plt.subplots()
    plots.regression_fits(empty, x, [], x, x, x)  # the range, the truth and the data only
    assert len(empty.lines) == 2
    plt.close(fig)
    with pytest.raises(ValueError):
        plots.regression_fits(ax, x, np.ones(7), x, x, x)


def test_probe_gallery_shows_distinct_images_of_each_set_and_names_the_rows():
    rng = np.random.default_rng(0)
    sets = {"digits": rng.random((20, 784)), "noise": rng.random((10, 28, 28))}
    fig, axes = plt.subplots(2, 5)
    shown = plots.probe_gallery(axes, sets, seed=3)
    assert [len(np.unique(index)) for index in shown] == [5, 5]  # without replacement
    assert all(index.max() < len(images) for index, images in zip(shown, sets.values()))
    np.testing.assert_allclose(axes[1, 2].images[0].get_array(), sets["noise"][shown[1][2]])
    assert [row[0].get_ylabel() for row in axes] == ["digits", "noise"]
    with pytest.raises(ValueError, match="3 rows for 2 image sets"):
        plots.probe_gallery(plt.subplots(3, 5)[1], sets)
    with pytest.raises(ValueError, match="has 10 images for 12 axes"):
        plots.probe_gallery(plt.subplots(2, 12)[1], sets)
    plt.close("all")


def test_named_curves_draws_one_labelled_line_per_series(ax):
    values = plots.named_curves(ax, [1, 2, 4], {"a": [0.1, 0.2, 0.3], "b": [0.5, 0.4, 0.2]})
    assert values.shape == (2, 3)
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b"]
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), [0.5, 0.4, 0.2])
    with pytest.raises(ValueError, match=r"curves\['c'\] has 2 values for 3 x values"):
        plots.named_curves(ax, [1, 2, 4], {"c": [1.0, 2.0]})
