"""Tests of bnnbook.metrics: calibration, AUROC, FPR at 95% TPR, rejection curves."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score, roc_curve

from bnnbook import metrics


def score_pair(seed, n_in=500, n_out=300, shift=1.0, rounded=False):
    rng = np.random.default_rng(seed)
    inside, outside = rng.standard_normal(n_in), rng.standard_normal(n_out) + shift
    if rounded:  # many ties
        inside, outside = np.round(inside, 1), np.round(outside, 1)
    return inside, outside


@pytest.mark.parametrize("seed,shift,rounded", [(0, 1.0, False), (1, 0.0, False), (2, 0.7, True), (3, -0.5, True)])
def test_auroc_matches_scikit_learn(seed, shift, rounded):
    inside, outside = score_pair(seed, shift=shift, rounded=rounded)
    truth = np.r_[np.zeros(len(inside)), np.ones(len(outside))]
    expected = roc_auc_score(truth, np.r_[inside, outside])
    assert metrics.auroc(inside, outside) == pytest.approx(expected, abs=1e-12)


def test_auroc_extremes_and_symmetry():
    inside, outside = np.arange(10.0), np.arange(10.0) + 100
    assert metrics.auroc(inside, outside) == 1.0
    assert metrics.auroc(outside, inside) == 0.0
    assert metrics.auroc(np.ones(5), np.ones(7)) == 0.5
    a, b = score_pair(5)
    assert metrics.auroc(a, b) + metrics.auroc(b, a) == pytest.approx(1.0)


@pytest.mark.parametrize("seed,shift,rounded,tpr", [(0, 1.0, False, 0.95), (1, 2.0, True, 0.95), (2, 0.3, False, 0.8)])
def test_fpr_at_tpr_matches_scikit_learn(seed, shift, rounded, tpr):
    inside, outside = score_pair(seed, shift=shift, rounded=rounded)
    # scikit-learn view: in-distribution is the positive class, accepted when -score is high.
    truth = np.r_[np.ones(len(inside)), np.zeros(len(outside))]
    fpr, tpr_curve, _ = roc_curve(truth, -np.r_[inside, outside], drop_intermediate=False)
    expected = fpr[np.argmax(tpr_curve >= tpr - 1e-12)]
    assert metrics.fpr_at_tpr(inside, outside, tpr) == pytest.approx(expected, abs=1e-12)


def test_ece_is_zero_for_a_perfectly_calibrated_synthetic_case():
    # 100 predictions at confidence 0.8 of which 80 are right, 50 at 0.6 of which 30 are right.
    probs = np.r_[np.tile([0.8, 0.2, 0.0], (100, 1)), np.tile([0.1, 0.3, 0.6], (50, 1))]
    labels = np.r_[np.zeros(80), np.ones(20), np.full(30, 2), np.zeros(20)].astype(int)
    assert metrics.expected_calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-12)
    bins = metrics.reliability_bins(probs, labels, num_bins=10)
    assert bins["count"].sum() == 150
    filled = bins["count"] > 0
    np.testing.assert_allclose(bins["accuracy"][filled], bins["confidence"][filled])


def test_ece_of_an_overconfident_model_is_its_confidence_gap():
    # Always 0.9 sure, right half the time: every prediction is in one bin, gap 0.4.
    probs = np.tile([0.9, 0.1], (100, 1))
    labels = np.r_[np.zeros(50), np.ones(50)].astype(int)
    assert metrics.expected_calibration_error(probs, labels) == pytest.approx(0.4)


def test_accuracy_rejection_curve_rejects_the_most_uncertain_first():
    probs = np.tile([0.6, 0.4], (10, 1))
    labels = np.r_[np.zeros(6), np.ones(4)].astype(int)  # the last four are wrong
    scores = np.arange(10.0)  # ...and the most uncertain
    curve = metrics.accuracy_rejection_curve(probs, labels, scores, [0.0, 0.2, 0.4, 0.5])
    np.testing.assert_allclose(curve, [0.6, 0.75, 1.0, 1.0])
    # A score that flags the correct ones first makes accuracy fall.
    falling = metrics.accuracy_rejection_curve(probs, labels, -scores, [0.0, 0.5])
    assert falling[1] < falling[0]


def test_bad_input_raises_clear_value_errors():
    with pytest.raises(ValueError, match="sum to 1"):
        metrics.expected_calibration_error(np.array([[0.7, 0.7]]), np.array([0]))
    with pytest.raises(ValueError, match="shape"):
        metrics.expected_calibration_error(np.zeros((0, 10)), np.zeros(0, int))
    with pytest.raises(ValueError, match="non-empty"):
        metrics.auroc(np.array([]), np.ones(3))
    with pytest.raises(ValueError, match="tpr"):
        metrics.fpr_at_tpr(np.ones(3), np.ones(3), tpr=1.5)
    with pytest.raises(ValueError, match="rejection_rates"):
        metrics.accuracy_rejection_curve(np.tile([0.5, 0.5], (3, 1)), np.zeros(3, int), np.ones(3), [1.0])
    with pytest.raises(ValueError, match="num_bins"):
        metrics.reliability_bins(np.tile([0.5, 0.5], (3, 1)), np.zeros(3, int), num_bins=0)


def test_a_confidence_on_a_bin_edge_goes_to_the_bin_above():
    # linspace stores the edge 0.6 as 0.6000000000000001; the rule must hold for 0.6 itself.
    confidences = np.array([0.3, 0.6, 0.7, 0.5, 1.0, 0.0999])
    probs = np.stack([confidences, 1.0 - confidences], -1)
    labels = np.zeros(len(confidences), int)
    bins = metrics.reliability_bins(probs, labels, num_bins=10)
    # max(c, 1 - c) is 0.7, 0.6, 0.7, 0.5, 1.0, 0.9001: bins 7, 6, 7, 5, 9 (last), 9
    np.testing.assert_array_equal(np.flatnonzero(bins["count"]), [5, 6, 7, 9])
    np.testing.assert_array_equal(bins["count"][[5, 6, 7, 9]], [1, 1, 2, 2])


def test_draws_and_float_labels_are_refused_not_misread():
    draws = np.random.default_rng(0).dirichlet(np.ones(4), size=(6, 6))  # (draws, n, classes) with draws == n
    labels = np.arange(6) % 4
    for score in (metrics.accuracy, metrics.nll, metrics.expected_calibration_error):
        with pytest.raises(ValueError, match=r"probs.mean\(0\)"):
            score(draws, labels)
    assert metrics.nll(draws.mean(0), labels) > 0
    with pytest.raises(ValueError, match="integer class indices"):
        metrics.accuracy(draws.mean(0), labels + 0.7)


def test_accuracy_nll_and_confidence_match_scikit_learn_on_random_predictions():
    rng = np.random.default_rng(11)
    probs = rng.dirichlet(np.full(5, 0.7), size=400)
    labels = rng.integers(0, 5, size=400)  # mostly not the argmax
    assert metrics.accuracy(probs, labels) == pytest.approx(accuracy_score(labels, probs.argmax(1)), abs=1e-12)
    assert metrics.nll(probs, labels) == pytest.approx(log_loss(labels, probs, labels=range(5)), rel=1e-9)
    np.testing.assert_array_equal(metrics.max_probability(probs), probs.max(1))


def test_ece_weights_each_bin_by_its_count_and_takes_absolute_gaps():
    # 100 predictions at 0.9 with half right (gap 0.4), 300 at 0.6 with 80% right (gap 0.2):
    # weighted 0.25, where an unweighted mean gives 0.30 and signed gaps 0.05.
    probs = np.r_[np.tile([0.9, 0.1], (100, 1)), np.tile([0.6, 0.4], (300, 1))]
    labels = np.r_[np.zeros(50), np.ones(50), np.zeros(240), np.ones(60)].astype(int)
    assert metrics.expected_calibration_error(probs, labels, num_bins=10) == pytest.approx(0.25)


def test_ece_equals_a_plain_loop_over_bins():
    rng = np.random.default_rng(12)
    probs = rng.dirichlet(np.full(3, 0.5), size=1000)
    labels = rng.integers(0, 3, size=1000)
    confidence, correct = probs.max(1), probs.argmax(1) == labels
    expected = 0.0
    for k in range(15):
        inside = (confidence >= k / 15) & ((confidence < (k + 1) / 15) | (k == 14))
        if inside.any():
            expected += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    assert metrics.expected_calibration_error(probs, labels) == pytest.approx(expected, rel=1e-9)
