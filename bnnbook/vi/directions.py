"""The two directions of the KL, worked exactly on small targets (NumPy only).

Taught in chapter "The variational free energy", in its first picture.

Variational inference minimises ``KL(q || p)``; the other direction,
``KL(p || q)``, is what moment matching (and expectation propagation)
minimises. On two targets the difference can be computed, not just drawn:

* a correlated Gaussian ``p = N(m, S)`` and a *mean-field* Gaussian ``q``:
  ``KL(q || p)`` is minimised by the variances ``1 / (S^-1)_ii`` (the
  conditional variances, too narrow), ``KL(p || q)`` by ``S_ii`` (the
  marginal variances); both keep the mean ``m``;
* a mixture of two 1-D Gaussians and a single Gaussian ``q``: ``KL(p || q)`` is
  minimised by the mixture's mean and variance (covering both modes);
  ``KL(q || p)`` has a local minimum on each mode (mode-seeking), found here by
  minimising a quadrature of the KL from a start on one mode.

The full-covariance Gaussian KL that checks the first case is
:func:`bnnbook.vi.gaussian_kl_full`.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize


def _check_covariance(covariance) -> np.ndarray:
    covariance = np.asarray(covariance, dtype=np.float64)
    if covariance.ndim != 2 or covariance.shape[0] != covariance.shape[1]:
        raise ValueError(f"covariance must be a square matrix, got shape {covariance.shape}")
    if not np.all(np.isfinite(covariance)) or not np.allclose(covariance, covariance.T):
        raise ValueError("covariance must be finite and symmetric")
    if np.linalg.eigvalsh(covariance).min() <= 0:
        raise ValueError("covariance must be positive definite (every eigenvalue > 0)")
    return covariance


def mean_field_variances(covariance) -> dict[str, np.ndarray]:
    """The variances of the best mean-field Gaussian for ``N(m, covariance)``, in each KL direction.

    Returns ``{"reverse": 1 / diag(covariance^-1), "forward": diag(covariance)}``:
    ``"reverse"`` minimises ``KL(q || p)`` (what variational inference does),
    ``"forward"`` minimises ``KL(p || q)``.
    """
    covariance = _check_covariance(covariance)
    return {"reverse": 1.0 / np.diag(np.linalg.inv(covariance)), "forward": np.diag(covariance).copy()}


def mixture_density(x, weights, means, stds):
    """The density of the 1-D Gaussian mixture at ``x`` (any shape)."""
    weights, means, stds = _check_mixture(weights, means, stds)
    x = np.asarray(x, np.float64)[..., None]
    return np.sum(weights * np.exp(-0.5 * ((x - means) / stds) ** 2) / (stds * np.sqrt(2 * np.pi)), axis=-1)


def _check_mixture(weights, means, stds):
    weights, means, stds = (np.asarray(a, np.float64).ravel() for a in (weights, means, stds))
    if not (len(weights) == len(means) == len(stds)) or len(weights) == 0:
        raise ValueError("weights, means and stds must have one entry per component")
    if np.any(weights <= 0) or not np.isclose(weights.sum(), 1.0):
        raise ValueError(f"weights must be positive and sum to 1, got {weights.tolist()}")
    if np.any(stds <= 0) or not np.all(np.isfinite(np.r_[means, stds])):
        raise ValueError("stds must be positive and every parameter finite")
    return weights, means, stds


def kl_to_mixture(mean, std, weights, means, stds, direction: str = "reverse", num_points: int = 1201) -> float:
    """``KL(q || p)`` (``"reverse"``) or ``KL(p || q)`` (``"forward"``) for ``q = N(mean, std^2)`` and a
    Gaussian mixture ``p``, by the trapezoid rule on a wide grid."""
    weights, means, stds = _check_mixture(weights, means, stds)
    if direction not in ("reverse", "forward"):
        raise ValueError(f"direction={direction!r}: use 'reverse' (KL(q || p)) or 'forward' (KL(p || q))")
    low = min(means.min() - 10 * stds.max(), mean - 10 * std)
    high = max(means.max() + 10 * stds.max(), mean + 10 * std)
    x = np.linspace(low, high, num_points)
    q = np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * np.sqrt(2 * np.pi))
    p = mixture_density(x, weights, means, stds)
    tiny = 1e-300
    a, b = (q, p) if direction == "reverse" else (p, q)
    return float(np.trapezoid(a * (np.log(a + tiny) - np.log(b + tiny)), x))


def gaussian_fits_to_mixture(weights, means, stds, start: float | None = None) -> dict[str, tuple[float, float]]:
    """The single Gaussian ``(mean, std)`` closest to a mixture in each KL direction.

    ``"forward"`` (``KL(p || q)``) is the moment match, exact; ``"reverse"``
    (``KL(q || p)``) is a local minimum found from ``start`` (default: the
    heaviest component's mean), which for well-separated modes sits on one
    mode with about that mode's width.
    """
    weights, means, stds = _check_mixture(weights, means, stds)
    mixture_mean = float(np.sum(weights * means))
    mixture_var = float(np.sum(weights * (stds ** 2 + means ** 2)) - mixture_mean ** 2)
    first = means[np.argmax(weights)] if start is None else float(start)
    objective = lambda z: kl_to_mixture(z[0], np.exp(z[1]), weights, means, stds, "reverse")  # noqa: E731
    found = optimize.minimize(objective, x0=[first, np.log(stds[np.argmax(weights)])], method="Nelder-Mead",
                              options={"xatol": 1e-4, "fatol": 1e-8, "maxiter": 400})
    return {"forward": (mixture_mean, float(np.sqrt(mixture_var))),
            "reverse": (float(found.x[0]), float(np.exp(found.x[1])))}


__all__ = ["gaussian_fits_to_mixture", "kl_to_mixture", "mean_field_variances", "mixture_density"]
