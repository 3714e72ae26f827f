"""Scores of a classifier's predicted probabilities (NumPy only).

Taught in chapter "Why Bayesian neural networks" (accuracy, NLL, confidence);
chapter "Rejecting out-of-distribution inputs" adds calibration and
uncertainty scores.
"""

from __future__ import annotations

import numpy as np

from bnnbook._checks import check_count
from bnnbook._checks import check_probs as _check_probs


def _check_prob_matrix(probs) -> np.ndarray:
    """``probs`` of shape ``(n, classes)``: one distribution per example, not a stack of draws."""
    probs = _check_probs(probs)
    if probs.ndim != 2:
        raise ValueError(f"probs must have shape (n, classes); got {probs.shape}. For a stack of predictive "
                         f"draws (num_draws, n, classes) pass their mean, probs.mean(0)")
    return probs


def _check_labels(labels, n: int, num_classes: int) -> np.ndarray:
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels has dtype {labels.dtype}; pass integer class indices (e.g. labels.astype(int))")
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) to match probs; got {labels.shape}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must be in [0, {num_classes}); got range [{labels.min()}, {labels.max()}]")
    return labels.astype(np.int64)


def accuracy(probs, labels) -> float:
    """Share of rows whose most probable class is the label.

    Taught in chapter "Why Bayesian neural networks".
    """
    probs = _check_prob_matrix(probs)
    labels = _check_labels(labels, probs.shape[0], probs.shape[1])
    return float(np.mean(np.argmax(probs, -1) == labels))


def nll(probs, labels, eps: float = 1e-12) -> float:
    """Mean negative log-likelihood (natural log) of the labels, in nats.

    Taught in chapter "Why Bayesian neural networks".
    """
    probs = _check_prob_matrix(probs)
    labels = _check_labels(labels, probs.shape[0], probs.shape[1])
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], eps, 1.0))))


def max_probability(probs) -> np.ndarray:
    """The confidence of each prediction: the largest class probability.

    Taught in chapter "Why Bayesian neural networks".
    """
    return _check_probs(probs).max(-1)


# --------------------------------------------------------------------------
# Calibration, detection of out-of-distribution inputs, rejection curves.
# Taught in chapter "Rejecting out-of-distribution inputs".
# --------------------------------------------------------------------------

def _check_num_bins(num_bins) -> int:
    return check_count("num_bins", num_bins, hint="e.g. num_bins=15")


def reliability_bins(probs, labels, num_bins: int = 15) -> dict[str, np.ndarray]:
    """Confidence against accuracy in ``num_bins`` equal-width bins of confidence.

    The confidence of a prediction is its largest probability; the bins split
    ``[0, 1]`` into equal widths: bin ``k`` holds the confidences ``c`` with
    ``floor(c * num_bins) = k``, so one on an edge goes to the bin above, and
    1.0 to the last. Returns ``{"edges", "confidence", "accuracy", "count"}``:
    the ``num_bins + 1`` edges, and per bin the mean confidence, the accuracy
    and the number of predictions (empty bins hold NaN and count 0). Plotting
    ``accuracy`` against ``confidence`` gives the reliability diagram; a
    calibrated model lies on the diagonal.

    Taught in chapter "Rejecting out-of-distribution inputs".
    """
    probs = _check_prob_matrix(probs)
    labels = _check_labels(labels, probs.shape[0], probs.shape[1])
    num_bins = _check_num_bins(num_bins)
    confidence = probs.max(-1)
    correct = (probs.argmax(-1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    # Bin k holds floor(confidence * num_bins) == k: exact at the edges k / num_bins, which
    # linspace's rounded edges are not (0.6 would fall below an edge stored as 0.6000000000000001).
    which = np.clip(np.floor(confidence * num_bins).astype(np.int64), 0, num_bins - 1)
    count = np.bincount(which, minlength=num_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(which, confidence, minlength=num_bins) / count
        bin_accuracy = np.bincount(which, correct, minlength=num_bins) / count
    return {"edges": edges, "confidence": mean_confidence, "accuracy": bin_accuracy, "count": count}


def expected_calibration_error(probs, labels, num_bins: int = 15) -> float:
    """ECE: the count-weighted mean of ``|accuracy - confidence|`` over the bins of :func:`reliability_bins`.

    ``ECE = sum_b (n_b / n) |acc_b - conf_b|``; 0 for a model whose confidence
    equals its accuracy in every bin, at most 1.

    Taught in chapter "Rejecting out-of-distribution inputs".
    """
    bins = reliability_bins(probs, labels, num_bins)
    filled = bins["count"] > 0
    weights = bins["count"][filled] / bins["count"].sum()
    return float(np.sum(weights * np.abs(bins["accuracy"][filled] - bins["confidence"][filled])))


def brier_score(probs, labels) -> float:
    """Mean over inputs of ``sum_k (p_k - [y = k])^2``: 0 for certain and right, 2 for certain and wrong.

    A proper score like the NLL, but bounded, so one confident mistake cannot
    dominate it.

    Taught in chapter "Practical approximations".
    """
    probs = _check_prob_matrix(probs)
    labels = _check_labels(labels, probs.shape[0], probs.shape[1])
    one_hot = np.zeros_like(probs)
    one_hot[np.arange(len(labels)), labels] = 1.0
    return float(np.mean(np.sum((probs - one_hot) ** 2, axis=1)))


def _check_score_array(scores, name: str) -> np.ndarray:
    array = np.asarray(scores, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of scores; got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} has {int(np.sum(~np.isfinite(array)))} non-finite entries; scores must be finite")
    return array


def auroc(in_distribution_scores, out_of_distribution_scores) -> float:
    """Area under the ROC curve for telling out-of-distribution inputs by a high score.

    The probability that a random out-of-distribution input scores higher
    than a random in-distribution one, ties counting one half (the
    Mann-Whitney statistic, from average ranks). 1: perfect separation;
    0.5: no better than chance. Scores are oriented *higher = more
    uncertain*, as in :mod:`bnnbook.ood`.

    Taught in chapter "Rejecting out-of-distribution inputs".
    """
    inside = _check_score_array(in_distribution_scores, "in_distribution_scores")
    outside = _check_score_array(out_of_distribution_scores, "out_of_distribution_scores")
    pooled = np.concatenate([inside, outside])
    order = np.argsort(pooled, kind="mergesort")
    sorted_scores = pooled[order]
    ranks = np.empty(len(pooled))
    ranks[order] = np.arange(1, len(pooled) + 1)
    # Tied scores share the average of their ranks.
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], len(pooled)]
    average = (starts + 1 + ends) / 2.0
    ranks[order] = np.repeat(average, ends - starts)
    rank_sum = ranks[len(inside):].sum()
    return float((rank_sum - len(outside) * (len(outside) + 1) / 2.0) / (len(inside) * len(outside)))


def fpr_at_tpr(in_distribution_scores, out_of_distribution_scores, tpr: float = 0.95) -> float:
    """Share of out-of-distribution inputs still accepted when ``tpr`` of the in-distribution ones are.

    "FPR at 95% TPR": accept an input when its score is at most ``t``, with
    ``t`` the smallest score that accepts at least ``tpr`` of the
    in-distribution inputs; return the share of out-of-distribution inputs
    with score ``<= t``. Lower is better; 0 is perfect.

    Taught in chapter "Rejecting out-of-distribution inputs".
    """
    inside = np.sort(_check_score_array(in_distribution_scores, "in_distribution_scores"))
    outside = _check_score_array(out_of_distribution_scores, "out_of_distribution_scores")
    if not 0.0 < tpr <= 1.0:
        raise ValueError(f"tpr={tpr!r} must be in (0, 1], the share of in-distribution inputs to accept, e.g. 0.95")
    # The k-th smallest in-distribution score accepts at least k of them (more with ties).
    needed = int(np.ceil(tpr * len(inside) - 1e-9))
    threshold = inside[max(needed, 1) - 1]
    return float(np.mean(outside <= threshold))


def accuracy_rejection_curve(probs, labels, scores, rejection_rates) -> np.ndarray:
    """Accuracy on the inputs kept after rejecting the most uncertain share.

    For each rate ``r`` in ``rejection_rates`` (each in ``[0, 1)``) the
    ``round(r n)`` inputs with the highest ``scores`` are rejected (ties broken
    by position) and the accuracy of the rest is returned. A useful score
    gives a curve that rises with ``r``; a score unrelated to mistakes gives a
    flat one.

    Taught in chapter "Rejecting out-of-distribution inputs".
    """
    probs = _check_prob_matrix(probs)
    labels = _check_labels(labels, probs.shape[0], probs.shape[1])
    scores = _check_score_array(scores, "scores")
    if scores.shape[0] != probs.shape[0]:
        raise ValueError(f"scores has {scores.shape[0]} entries but probs has {probs.shape[0]} rows; "
                         f"pass one score per prediction")
    rates = np.asarray(rejection_rates, dtype=np.float64)
    if rates.ndim != 1 or rates.size == 0 or np.any(~(rates >= 0)) or np.any(rates >= 1):
        raise ValueError(f"rejection_rates must be a non-empty 1-D array of values in [0, 1), "
                         f"e.g. np.linspace(0, 0.5, 11); got {rejection_rates!r}")
    correct = (probs.argmax(-1) == labels).astype(np.float64)
    kept_correct = correct[np.argsort(scores, kind="stable")]  # most certain first
    cumulative = np.cumsum(kept_correct)
    num_kept = np.maximum(len(scores) - np.round(rates * len(scores)).astype(int), 1)
    return cumulative[num_kept - 1] / num_kept


__all__ = ["accuracy", "nll", "brier_score", "max_probability", "reliability_bins", "expected_calibration_error",
           "auroc", "fpr_at_tpr", "accuracy_rejection_curve"]
