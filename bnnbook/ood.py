"""Uncertainty scores and reject rules for out-of-distribution inputs (NumPy only).

Taught in chapter "Rejecting out-of-distribution inputs".

Everything here takes *draws* of predicted class probabilities, an array of
shape ``(num_draws, n, classes)``: one row of probabilities per input and per
draw of the weights (a posterior sample, a Monte Carlo draw from a variational
posterior, or a single point estimate with ``num_draws = 1``). A 2-D array
``(n, classes)`` is read as one draw. The module is NumPy only, so the JAX and
the TensorFlow chapters share it; :mod:`bnnbook.predictive` makes the draws on
the JAX side.

Every score is oriented the same way: **higher means more uncertain**, so a
rule "reject when the score exceeds a threshold" and the AUROC of
:func:`bnnbook.metrics.auroc` (out-of-distribution = positive) read alike for
all of them.

* :func:`predictive_entropy` ``H[p_bar]`` of the mean prediction ``p_bar``
  (total uncertainty, at most ``log K``);
* :func:`expected_entropy` ``E_s H[p_s]`` (the part the draws agree on);
* :func:`mutual_information` ``H[p_bar] - E_s H[p_s] >= 0`` (disagreement
  between draws; 0 when all draws agree, so 0 for a point estimate);
* :func:`predicted_class_std`, the spread over draws of the probability of
  the predicted class (the score of the JAX mean-field recipe);
* :func:`uncertainty_scores` all of the above plus ``1 - max probability``;
* :func:`threshold_from_quantile`, :func:`reject` and
  :func:`refuse_low_confidence`: the two reject rules of the chapter;
* :func:`method_summary`: one row of the chapter's table across methods
  (accuracy, NLL, ECE, and the best score's AUROC against each probe), which
  the Flipout and HMC chapters also record for their own models.
"""

from __future__ import annotations

import numpy as np

from bnnbook import metrics
from bnnbook._checks import check_probs as _check_probs

SCORE_NAMES = ("1 - max probability", "predictive entropy", "mutual information", "std of predicted probability")


def _as_draws(prob_draws, name: str = "prob_draws") -> np.ndarray:
    """``(num_draws, n, classes)`` float64 probabilities, checked (a 2-D array is one draw)."""
    array = np.asarray(prob_draws, dtype=np.float64)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or 0 in array.shape:
        raise ValueError(f"{name} must have shape (num_draws, n, classes) or (n, classes) with every size >= 1; "
                         f"got shape {np.shape(prob_draws)}. Stack the draws along the first axis.")
    return _check_probs(array, name)


def _entropy(probs: np.ndarray) -> np.ndarray:
    """Entropy in nats along the last axis, with ``0 log 0 = 0``."""
    safe = np.where(probs > 0, probs, 1.0)  # log(1) = 0 keeps 0 * log 0 at 0 without warnings
    return -np.sum(probs * np.log(safe), axis=-1)


def predictive_mean(prob_draws) -> np.ndarray:
    """The posterior predictive ``p_bar = (1/S) sum_s p_s``, shape ``(n, classes)``.

    Taught in chapter "Rejecting out-of-distribution inputs".
    """
    return _as_draws(prob_draws).mean(0)


def predictive_entropy(prob_draws) -> np.ndarray:
    """``H[p_bar] = -sum_k p_bar_k log p_bar_k`` in nats, one per input; ``0 <= H <= log K``.

    Taught in chapter "Rejecting out-of-distribution inputs".
    """
    return _entropy(_as_draws(prob_draws).mean(0))


def expected_entropy(prob_draws) -> np.ndarray:
    """``E_s H[p_s]``, the mean over draws of each draw's entropy (nats), one per input.

    Taught in chapter "Rejecting out-of-distribution inputs".
    """
    return _entropy(_as_draws(prob_draws)).mean(0)


def mutual_information(prob_draws) -> np.ndarray:
    """``I[y; w | x] = H[p_bar] - E_s H[p_s]`` in nats, one per input.

    The mutual information between the label and the weights: the part of the
    predictive entropy that comes from the draws disagreeing. It is ``>= 0``
    (entropy is concave) and ``0`` when every draw predicts the same
    probabilities, hence always ``0`` for a single point estimate. It equals
    the mean over draws of ``KL(p_s || p_bar)``.

    Taught in chapter "Rejecting out-of-distribution inputs".
    """
    draws = _as_draws(prob_draws)
    return _entropy(draws.mean(0)) - _entropy(draws).mean(0)


def predicted_class_std(prob_draws) -> np.ndarray:
    """Standard deviation over draws of the probability of the predicted class.

    The predicted class is the argmax of the mean prediction ``p_bar``; the
    score is ``std_s p_s[argmax p_bar]`` (population std, ``ddof=0``), one per
    input. ``0`` for a single draw.

    Taught in chapter "Rejecting out-of-distribution inputs".
    """
    draws = _as_draws(prob_draws)
    predicted = draws.mean(0).argmax(-1)
    return np.take_along_axis(draws, predicted[None, :, None], axis=-1)[..., 0].std(0)


def uncertainty_scores(prob_draws) -> dict[str, np.ndarray]:
    """All four scores of the chapter, each ``(n,)`` and oriented *higher = more uncertain*.

    Keys (in the order of ``SCORE_NAMES``): ``"1 - max probability"`` (one minus the
    confidence of the mean prediction), ``"predictive entropy"``,
    ``"mutual information"`` and ``"std of predicted probability"``.

    Taught in chapter "Rejecting out-of-distribution inputs".
    """
    draws = _as_draws(prob_draws)
    mean = draws.mean(0)
    total = _entropy(mean)
    predicted = mean.argmax(-1)
    return {
        "1 - max probability": 1.0 - mean.max(-1),
        "predictive entropy": total,
        "mutual information": total - _entropy(draws).mean(0),
        "std of predicted probability": np.take_along_axis(draws, predicted[None, :, None], axis=-1)[..., 0].std(0),
    }


def _check_scores(scores, name: str) -> np.ndarray:
    array = np.asarray(scores, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of scores, one per input; got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} has {int(np.sum(~np.isfinite(array)))} non-finite entries; "
                         f"scores must be finite numbers")
    return array


def threshold_from_quantile(in_distribution_scores, quantile: float = 0.99) -> float:
    """The ``quantile`` of scores of in-distribution inputs, to reject above.

    With ``quantile = 0.99`` about 1% of the inputs the threshold was fitted
    on score above it (within ``1/n`` of 1% when the ``n`` scores are
    distinct; ties at the threshold stay accepted). Inputs of a new kind
    whose scores are larger are then rejected by :func:`reject`.

    Taught in chapter "Rejecting out-of-distribution inputs".
    """
    scores = _check_scores(in_distribution_scores, "in_distribution_scores")
    try:
        quantile = float(quantile)
    except (TypeError, ValueError):
        raise ValueError(f"quantile={quantile!r} must be a number strictly between 0 and 1, e.g. 0.99") from None
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile={quantile!r} must be strictly between 0 and 1 (the share of in-distribution "
                         f"inputs to accept), e.g. 0.99")
    return float(np.quantile(scores, quantile))


def reject(scores, threshold: float) -> np.ndarray:
    """Boolean mask, ``True`` where ``score > threshold`` (reject the prediction).

    Taught in chapter "Rejecting out-of-distribution inputs".
    """
    scores = _check_scores(scores, "scores")
    if not np.isfinite(threshold):
        raise ValueError(f"threshold={threshold!r} must be a finite number; fit it with threshold_from_quantile")
    return scores > threshold


def refuse_low_confidence(probs, min_probability: float = 0.2) -> np.ndarray:
    """Boolean mask, ``True`` where no class probability exceeds ``min_probability``.

    ``probs`` is the predictive mean ``(n, classes)`` or draws
    ``(num_draws, n, classes)`` (averaged first). With 10 classes a
    probability vector can have all entries ``<= 0.2`` only when it spreads
    over at least five classes, so this rule refuses only very flat
    predictions. ``min_probability`` must lie in ``[1/K, 1)``: below ``1/K``
    no input is ever refused.

    Taught in chapter "Rejecting out-of-distribution inputs".
    """
    mean = _as_draws(probs, "probs").mean(0)
    num_classes = mean.shape[-1]
    if not 1.0 / num_classes <= min_probability < 1.0:
        raise ValueError(f"min_probability={min_probability!r} must be in [1/{num_classes}, 1): below 1/K every "
                         f"input has some class above it and nothing is refused; e.g. 0.2")
    return mean.max(-1) <= min_probability


def method_summary(test_draws, test_labels, probe_draws: dict, scores: tuple[str, ...] | None = None) -> dict:
    """One method's row of the table across methods: accuracy, NLL, ECE, and per probe the best score.

    ``test_draws`` are probability draws ``(num_draws, n, classes)`` on the
    in-distribution test inputs with labels ``test_labels``; ``probe_draws``
    maps a probe's name (e.g. ``"letters"``) to its draws. For each probe the
    score of ``SCORE_NAMES`` with the highest AUROC (probe = positive) is
    kept with its AUROC and FPR at 95% TPR, and ``"by_score"`` holds every
    candidate's, so a table can use one score fixed in advance (choosing the
    best on the probes themselves flatters the method). A single draw (a point estimate)
    has mutual information and spread 0 everywhere, so only the first two
    scores compete unless ``scores`` says otherwise. Returns a dict of numbers
    and strings, ready for ``run.save_results``::

        {"accuracy": ..., "nll": ..., "ece": ..., "num_draws": S, "num_test": n,
         "letters": {"auroc": ..., "score": "mutual information", "fpr95": ...,
                     "num_images": m, "by_score": {score: {"auroc": ..., "fpr95": ...}}}, ...}

    Taught in chapter "Rejecting out-of-distribution inputs"; the chapters
    "Flipout" and "Hamiltonian Monte Carlo" record their models' rows with it.
    """
    test = _as_draws(test_draws, "test_draws")
    if not probe_draws:
        raise ValueError("probe_draws is empty; pass e.g. {'letters': draws, 'uniform noise': draws}")
    candidates = tuple(scores) if scores is not None else (SCORE_NAMES if test.shape[0] > 1 else SCORE_NAMES[:2])
    unknown = [name for name in candidates if name not in SCORE_NAMES]
    if unknown or not candidates:
        raise ValueError(f"scores={scores!r}: pick from {SCORE_NAMES}")
    mean = test.mean(0)
    row: dict = {"accuracy": metrics.accuracy(mean, test_labels), "nll": metrics.nll(mean, test_labels),
                 "ece": metrics.expected_calibration_error(mean, test_labels),
                 "num_draws": int(test.shape[0]), "num_test": int(test.shape[1])}
    test_scores = uncertainty_scores(test)
    for probe, draws in probe_draws.items():
        probe_array = _as_draws(draws, f"probe_draws[{probe!r}]")
        probe_scores = uncertainty_scores(probe_array)
        aurocs = {name: metrics.auroc(test_scores[name], probe_scores[name]) for name in candidates}
        best = max(candidates, key=aurocs.get)
        by_score = {name: {"auroc": aurocs[name], "fpr95": metrics.fpr_at_tpr(test_scores[name], probe_scores[name])}
                    for name in candidates}
        row[probe] = {"auroc": aurocs[best], "score": best, "fpr95": by_score[best]["fpr95"],
                      "num_images": int(probe_array.shape[1]), "by_score": by_score}
    return row


__all__ = [
    "SCORE_NAMES", "predictive_mean", "predictive_entropy", "expected_entropy", "mutual_information",
    "predicted_class_std", "uncertainty_scores", "threshold_from_quantile", "reject", "refuse_low_confidence",
    "method_summary",
]
