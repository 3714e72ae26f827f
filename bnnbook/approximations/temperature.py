"""Temperature scaling (Guo et al. 2017).

Taught in chapter "Practical approximations".

A trained network's logits ``z`` are divided by one number ``T > 0`` chosen
to minimise the negative log-likelihood of *held-out* data. ``T > 1``
softens over-confident probabilities; the predicted class never changes
(``argmax z / T = argmax z``), so accuracy is untouched and only
calibration moves. It is the baseline every Bayesian method's calibration
should be compared with: one parameter, fitted in milliseconds.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize
from scipy.special import log_softmax, softmax

from bnnbook._checks import check_number


def _check(logits, labels):
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(f"logits must be (n, classes) and labels (n,); got {logits.shape} and {labels.shape}")
    if not np.all(np.isfinite(logits)):
        raise ValueError("logits contain NaN or inf")
    if labels.min() < 0 or labels.max() >= logits.shape[1]:
        raise ValueError(f"labels must be in [0, {logits.shape[1]}); got [{labels.min()}, {labels.max()}]")
    return logits, labels


def nll_at_temperature(logits, labels, temperature: float) -> float:
    """Mean negative log-likelihood of ``softmax(logits / temperature)``."""
    logits, labels = _check(logits, labels)
    check_number("temperature", temperature, low=0.0, low_open=True, hint="e.g. 1.5; fit it with fit_temperature")
    return float(-log_softmax(logits / temperature, axis=1)[np.arange(len(labels)), labels].mean())


def fit_temperature(logits, labels, bounds=(0.05, 20.0)) -> float:
    """The ``T`` minimising the held-out NLL (a 1-D convex problem in ``1/T``; bounded Brent search on ``log T``).

    Pass *validation* logits and labels, never test ones.
    """
    logits, labels = _check(logits, labels)
    rows = np.arange(len(labels))

    def objective(log_t):
        return -log_softmax(logits / np.exp(log_t), axis=1)[rows, labels].mean()

    low, high = np.log(bounds[0]), np.log(bounds[1])
    result = optimize.minimize_scalar(objective, bounds=(low, high), method="bounded",
                                      options={"xatol": 1e-5})
    if np.isclose(result.x, low, atol=1e-3) or np.isclose(result.x, high, atol=1e-3):
        raise ValueError(f"the best temperature is at the edge of bounds={bounds}; widen them")
    return float(np.exp(result.x))


def scaled_probs(logits, temperature: float) -> np.ndarray:
    """``softmax(logits / temperature)`` as float32."""
    if not temperature > 0:
        raise ValueError(f"temperature={temperature!r} must be positive")
    return softmax(np.asarray(logits, np.float64) / temperature, axis=-1).astype(np.float32)


__all__ = ["nll_at_temperature", "fit_temperature", "scaled_probs"]
