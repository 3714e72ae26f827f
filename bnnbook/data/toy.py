"""Toy regression sets: the 32-point sinusoid and Neal's 1-D regression task.

Taught in chapters "Why Bayesian neural networks" (the sinusoid) and "Hamiltonian
Monte Carlo for Bayesian neural networks" (Neal's task).
"""

from __future__ import annotations

import numpy as np

from bnnbook._checks import check_count, check_finite, check_number


def sinusoid(n: int = 32, noise_std: float = 1.0, seed: int = 0, low: float = -0.5,
             high: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """The book's toy regression set: ``y = 10 sin(2 pi x) + noise``.

    ``x ~ Uniform(low, high)`` (default [-0.5, 0.5]), Gaussian noise of standard
    deviation ``noise_std``. Returns float32 arrays ``x`` and ``y`` of shape
    ``(n, 1)``, sorted by ``x``.

    Taught in chapter "Why Bayesian neural networks".
    """
    check_count("n", n, hint="the number of points, e.g. 32")
    check_number("noise_std", noise_std, low=0.0, hint="the standard deviation of the noise, e.g. 1.0")
    low_value = check_number("low", low, hint="the left end of the inputs' interval, e.g. -0.5")
    if not check_number("high", high, hint="the right end of the inputs' interval, e.g. 0.5") > low_value:
        raise ValueError(f"high={high!r} must be above low={low!r}; the inputs are drawn from Uniform(low, high)")
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(low, high, size=n))
    y = sinusoid_mean(x) + noise_std * rng.standard_normal(n)
    return x[:, None].astype(np.float32), y[:, None].astype(np.float32)


def sinusoid_mean(x: np.ndarray) -> np.ndarray:
    """The noise-free function of :func:`sinusoid`: ``10 sin(2 pi x)``.

    Taught in chapter "Why Bayesian neural networks".
    """
    check_finite("x", x, "the inputs must be finite numbers")
    return 10.0 * np.sin(2.0 * np.pi * np.asarray(x))


def neal_regression(n: int = 100, noise_std: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neal's 1-D regression task: ``f(x) = 0.3 + 0.4 x + 0.5 sin(2.7 x) + 1.1 / (1 + x^2)``.

    ``x ~ N(0, 1)`` and ``y = f(x) + noise`` with Gaussian noise of standard
    deviation ``noise_std`` (0.1 in Neal's book, so the best possible test MSE
    is 0.01). Returns float32 arrays ``x``, ``y`` and the noise-free ``f(x)``,
    each of shape ``(n, 1)`` and sorted by ``x``. Different seeds give
    independent sets (e.g. ``seed=0`` for training, ``seed=1`` for testing).
    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".
    """
    check_count("n", n, hint="the number of points, e.g. 100")
    if not np.isfinite(noise_std) or noise_std < 0:
        raise ValueError(f"noise_std={noise_std!r} must be a finite number >= 0 (0.1 is Neal's setting)")
    rng = np.random.default_rng(seed)
    x = np.sort(rng.standard_normal(n))
    f = 0.3 + 0.4 * x + 0.5 * np.sin(2.7 * x) + 1.1 / (1.0 + x ** 2)
    y = f + noise_std * rng.standard_normal(n)
    return (x[:, None].astype(np.float32), y[:, None].astype(np.float32), f[:, None].astype(np.float32))


def two_moons(n: int = 200, noise_std: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved half circles in 2-D, ``n`` points split evenly, float32 inputs and int32 labels.

    The upper moon (label 0) is the half circle of radius 1 about ``(0, 0)``,
    the lower moon (label 1) the same shape flipped and shifted to ``(1, 0.5)``;
    each point gets Gaussian noise of standard deviation ``noise_std``. The
    classic toy for looking at a classifier's predictive *away* from the data.

    Taught in chapter "Practical approximations".
    """
    check_count("n", n, hint="the number of points, e.g. 200")
    check_number("noise_std", noise_std, low=0.0, hint="the standard deviation of the noise, e.g. 0.1")
    rng = np.random.default_rng(seed)
    upper, lower = n - n // 2, n // 2
    angle_upper = np.linspace(0.0, np.pi, upper)
    angle_lower = np.linspace(0.0, np.pi, lower)
    points = np.concatenate([np.stack([np.cos(angle_upper), np.sin(angle_upper)], 1),
                             np.stack([1.0 - np.cos(angle_lower), 0.5 - np.sin(angle_lower)], 1)])
    points = points + noise_std * rng.standard_normal(points.shape)
    labels = np.concatenate([np.zeros(upper), np.ones(lower)]).astype(np.int32)
    order = rng.permutation(n)
    return points[order].astype(np.float32), labels[order]
