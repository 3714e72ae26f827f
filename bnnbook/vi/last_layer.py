"""A Bayesian last layer: keep a trained network's hidden layers, put a posterior on its output weights.

Taught in chapter "Why Bayesian neural networks", in its first picture (the
cheapest Bayesian neural network there is, to show what the rest of the book
is for); the chapter "The variational free energy" derives the exact
posterior it uses.

The last hidden layer's outputs ``phi(x)`` (with a 1 appended for the bias,
from :func:`bnnbook.approximations.laplace.last_layer_features`) are fixed features,
and the output is linear in the last layer's weights ``W``. For regression with Gaussian noise the posterior of ``W`` is exact
(:func:`bnnbook.vi.linear_regression_posterior`), and :func:`regression_band`
returns the predictive mean and standard deviation.A last layer is only as
uncertain as its features allow: where they stop changing, so does the band.
"""

from __future__ import annotations

import numpy as np

from bnnbook.vi.conjugate import linear_regression_log_evidence, linear_regression_posterior


def regression_band(train_features, targets, features, noise_std: float, prior_stds=np.logspace(-2, 2, 41)):
    """Exact Bayesian last layer for regression: predictive ``(mean, std of f, prior_std)`` at ``features``.

    The prior ``W ~ N(0, s^2 I)`` takes the ``s`` of ``prior_stds`` with the
    largest log evidence (:func:`bnnbook.vi.linear_regression_log_evidence`);
    ``std`` is the standard deviation of ``f(x) = phi(x)^T W`` under the
    posterior (add ``noise_std`` in quadrature for a new ``y``).

    Taught in chapter "Why Bayesian neural networks".
    """
    train_features, features = (np.asarray(a, np.float64) for a in (train_features, features))
    targets = np.asarray(targets, np.float64).reshape(-1)
    grid = np.asarray(prior_stds, np.float64)
    if grid.ndim != 1 or grid.size < 3 or np.any(grid <= 0):
        raise ValueError(f"prior_stds must be a grid of at least 3 positive values; got {prior_stds!r}")
    evidence = [linear_regression_log_evidence(train_features, targets, noise_std, s) for s in grid]
    best = int(np.argmax(evidence))
    if best in (0, grid.size - 1):
        raise ValueError(f"the evidence is largest at the edge of prior_stds (s = {grid[best]:.3g}); widen the grid")
    mean, cov = linear_regression_posterior(train_features, targets, noise_std, grid[best])
    std = np.sqrt(np.maximum(np.einsum("nd,de,ne->n", features, cov, features), 0.0))
    return features @ mean, std, float(grid[best])


__all__ = ["regression_band"]
