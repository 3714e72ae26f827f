"""Scores of a classifier's predicted probabilities (NumPy only).

Taught in chapter "Why Bayesian neural networks" (accuracy, NLL, confidence);
chapter "Rejecting out-of-distribution inputs" adds calibration and
uncertainty scores.
"""

from __future__ import annotations

import numpy as np


def _check_probs(probs, name: str = "probs", atol: float = 1e-3) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim < 2 or probs.shape[0] == 0 or probs.shape[-1] < 2:
        raise ValueError(f"{name} must have shape (..., n, classes) with n >= 1 and classes >= 2; got {probs.shape}")
    if not np.all(np.isfinite(probs)) or probs.min() < -atol:
        raise ValueError(f"{name} has negative or non-finite entries")
    total = probs.sum(-1)
    if np.max(np.abs(total - 1.0)) > atol:
        worst = float(total.flat[np.argmax(np.abs(total - 1.0))])
        raise ValueError(f"{name} rows must sum to 1 (worst row sums to {worst:.6g}); apply softmax first")
    return probs


def _check_labels(labels, n: int, num_classes: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) to match probs; got {labels.shape}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must be in [0, {num_classes}); got range [{labels.min()}, {labels.max()}]")
    return labels.astype(np.int64)


def accuracy(probs, labels) -> float:
    """Share of rows whose most probable class is the label."""
    probs = _check_probs(probs)
    labels = _check_labels(labels, probs.shape[0], probs.shape[1])
    return float(np.mean(np.argmax(probs, -1) == labels))


def nll(probs, labels, eps: float = 1e-12) -> float:
    """Mean negative log-likelihood (natural log) of the labels, in nats."""
    probs = _check_probs(probs)
    labels = _check_labels(labels, probs.shape[0], probs.shape[1])
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], eps, 1.0))))


def max_probability(probs) -> np.ndarray:
    """The confidence of each prediction: the largest class probability."""
    return _check_probs(probs).max(-1)


__all__ = ["accuracy", "nll", "max_probability"]
