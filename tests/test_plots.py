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
