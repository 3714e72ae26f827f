"""The exact ELBO identity of chapter 3 and the Bayesian last layer of chapter 1 built on the same posterior."""

import numpy as np
import pytest

from bnnbook import vi
from bnnbook.vi import last_layer


def _regression(seed=0, n=25):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(size=(n, 2)), np.ones((n, 1))], axis=1)
    return x, x @ np.array([1.0, -0.5, 0.3]) + 0.4 * rng.normal(size=n)


def test_elbo_plus_kl_to_the_posterior_is_the_log_evidence():
    x, y = _regression()
    rng = np.random.default_rng(1)
    post_mean, post_cov = vi.linear_regression_posterior(x, y, 0.4, 2.0)
    for _ in range(20):
        root = rng.normal(size=(3, 3))
        for cov in (root @ root.T + 0.1 * np.eye(3), np.exp(rng.normal(size=3))):
            terms = vi.linear_regression_elbo_gap(x, y, 0.4, 2.0, post_mean + rng.normal(size=3), cov)
            assert terms["elbo"] + terms["kl"] == pytest.approx(terms["log_evidence"], abs=1e-6)
            assert terms["kl"] > 0
    at_posterior = vi.linear_regression_elbo_gap(x, y, 0.4, 2.0, post_mean, post_cov)
    assert at_posterior["kl"] == pytest.approx(0.0, abs=1e-9)


def test_regression_band_is_the_exact_posterior_at_the_evidence_best_prior():
    x, y = _regression()
    grid = np.logspace(-2, 2, 41)
    mean, std, prior_std = last_layer.regression_band(x, y, x[:5], 0.4, grid)
    assert prior_std == grid[np.argmax([vi.linear_regression_log_evidence(x, y, 0.4, s) for s in grid])]
    post_mean, post_cov = vi.linear_regression_posterior(x, y, 0.4, prior_std)
    np.testing.assert_allclose(mean, x[:5] @ post_mean)
    np.testing.assert_allclose(std ** 2, np.diag(x[:5] @ post_cov @ x[:5].T), rtol=1e-10)
    # The band widens with the size of the features: twice the features, twice the std.
    np.testing.assert_allclose(last_layer.regression_band(x, y, 2 * x[:5], 0.4, grid)[1], 2 * std, rtol=1e-10)
    with pytest.raises(ValueError, match="edge"):
        last_layer.regression_band(x, y, x[:5], 0.4, [1e-3, 2e-3, 3e-3])
