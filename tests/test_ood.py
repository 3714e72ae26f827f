"""Tests of bnnbook.ood: uncertainty scores, thresholds and reject rules."""

import numpy as np
import pytest

from bnnbook import metrics, ood


def random_draws(num_draws=7, n=200, classes=10, concentration=0.5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.full(classes, concentration), size=(num_draws, n))


def test_entropy_is_between_zero_and_log_k():
    draws = random_draws()
    entropy = ood.predictive_entropy(draws)
    assert np.all(entropy >= 0) and np.all(entropy <= np.log(10) + 1e-12)
    # The bounds are reached: a one-hot prediction and the uniform one.
    extremes = np.stack([np.eye(10)[3], np.full(10, 0.1)])
    np.testing.assert_allclose(ood.predictive_entropy(extremes), [0.0, np.log(10)], atol=1e-12)


def test_mutual_information_is_nonnegative_and_equals_mean_kl_to_the_mean():
    draws = random_draws(concentration=0.3)
    mi = ood.mutual_information(draws)
    assert np.all(mi >= -1e-12)
    mean = draws.mean(0)
    mean_kl = np.mean(np.sum(draws * (np.log(draws) - np.log(mean)), axis=-1), axis=0)
    np.testing.assert_allclose(mi, mean_kl, rtol=1e-9, atol=1e-12)
    # Entropy of the mean = expected entropy + mutual information.
    np.testing.assert_allclose(ood.predictive_entropy(draws), ood.expected_entropy(draws) + mi, atol=1e-12)


def test_mutual_information_and_std_vanish_when_all_draws_agree():
    one = random_draws(num_draws=1)
    agreeing = np.repeat(one, 5, axis=0)
    np.testing.assert_allclose(ood.mutual_information(agreeing), 0.0, atol=1e-12)
    np.testing.assert_allclose(ood.predicted_class_std(agreeing), 0.0, atol=1e-12)
    # A point estimate (a 2-D array) is one draw: no disagreement at all.
    np.testing.assert_allclose(ood.mutual_information(one[0]), 0.0, atol=1e-12)


def test_predicted_class_std_matches_direct_computation():
    draws = random_draws(num_draws=4, n=3, classes=3, seed=2)
    predicted = draws.mean(0).argmax(-1)
    expected = [np.std(draws[:, i, predicted[i]]) for i in range(3)]
    np.testing.assert_allclose(ood.predicted_class_std(draws), expected, rtol=1e-12)


def test_uncertainty_scores_agree_with_the_single_functions():
    draws = random_draws(seed=3)
    scores = ood.uncertainty_scores(draws)
    assert tuple(scores) == ood.SCORE_NAMES
    np.testing.assert_allclose(scores["1 - max probability"], 1 - draws.mean(0).max(-1))
    np.testing.assert_allclose(scores["predictive entropy"], ood.predictive_entropy(draws))
    np.testing.assert_allclose(scores["mutual information"], ood.mutual_information(draws))
    np.testing.assert_allclose(scores["std of predicted probability"], ood.predicted_class_std(draws))


@pytest.mark.parametrize("quantile", [0.99, 0.9, 0.5])
def test_quantile_threshold_rejects_the_complementary_share_of_its_own_data(quantile):
    scores = np.random.default_rng(4).standard_normal(10_000)
    threshold = ood.threshold_from_quantile(scores, quantile)
    share = ood.reject(scores, threshold).mean()
    assert abs(share - (1 - quantile)) <= 1.0 / len(scores)


def test_refuse_low_confidence_refuses_only_flat_predictions():
    probs = np.array([[0.1] * 10, [0.2] * 5 + [0.0] * 5, [0.21, 0.79] + [0.0] * 8])
    np.testing.assert_array_equal(ood.refuse_low_confidence(probs, 0.2), [True, True, False])


def test_bad_input_raises_clear_value_errors():
    with pytest.raises(ValueError, match="sum to 1"):
        ood.predictive_entropy(np.array([[0.5, 0.6]]))
    with pytest.raises(ValueError, match="shape"):
        ood.mutual_information(np.zeros((3, 0, 10)))
    with pytest.raises(ValueError, match="non-empty"):
        ood.threshold_from_quantile(np.array([]), 0.99)
    for bad in (0.0, 1.0, 1.5, -0.1, 99):
        with pytest.raises(ValueError, match="quantile"):
            ood.threshold_from_quantile(np.arange(10.0), bad)
    with pytest.raises(ValueError, match="min_probability"):
        ood.refuse_low_confidence(np.full((2, 10), 0.1), 0.05)


def _agreeing_and_disagreeing_draws(rng, num_draws=8, n=200, classes=10):
    """Digits: every draw puts 0.91 on the true class. Probe: each draw is confident about a random class."""
    labels = rng.integers(0, classes, n)
    test = np.full((num_draws, n, classes), 0.01)
    test[:, np.arange(n), labels] = 0.91
    probe = np.full((num_draws, n, classes), 0.01)
    picks = rng.integers(0, classes, (num_draws, n))
    np.put_along_axis(probe, picks[..., None], 0.91, axis=-1)
    return test, labels, probe


def test_method_summary_picks_the_score_that_separates_and_reports_it():
    rng = np.random.default_rng(0)
    test, labels, probe = _agreeing_and_disagreeing_draws(rng)
    row = ood.method_summary(test, labels, {"disagreeing probe": probe, "few": probe[:, :30]})
    assert row["accuracy"] == 1.0 and row["num_draws"] == 8 and row["num_test"] == 200
    assert row["disagreeing probe"]["num_images"] == 200 and row["few"]["num_images"] == 30
    assert row["nll"] == pytest.approx(-np.log(0.91))
    assert row["ece"] == pytest.approx(1.0 - 0.91)  # always 0.91 sure, always right
    # The draws disagree on the probe and agree on the digits: a perfect separation, no false positives.
    assert row["disagreeing probe"]["auroc"] == pytest.approx(1.0)
    assert row["disagreeing probe"]["fpr95"] == pytest.approx(0.0)
    # The winning score is one whose AUROC equals the reported one.
    best = row["disagreeing probe"]["score"]
    scores_test, scores_probe = ood.uncertainty_scores(test), ood.uncertainty_scores(probe)
    assert metrics.auroc(scores_test[best], scores_probe[best]) == pytest.approx(row["disagreeing probe"]["auroc"])
    # Every candidate score is kept, so a table can fix its score in advance; the best is the maximum of them.
    by_score = row["disagreeing probe"]["by_score"]
    assert set(by_score) == set(ood.SCORE_NAMES)
    for name, entry in by_score.items():
        assert entry["auroc"] == pytest.approx(metrics.auroc(scores_test[name], scores_probe[name]))
        assert entry["fpr95"] == pytest.approx(metrics.fpr_at_tpr(scores_test[name], scores_probe[name]))
    assert max(e["auroc"] for e in by_score.values()) == row["disagreeing probe"]["auroc"]


def test_method_summary_of_a_point_estimate_uses_only_the_non_constant_scores():
    rng = np.random.default_rng(1)
    test, labels, probe = _agreeing_and_disagreeing_draws(rng)
    row = ood.method_summary(test[:1], labels, {"probe": probe[:1]})
    assert row["num_draws"] == 1
    assert row["probe"]["score"] in ood.SCORE_NAMES[:2] and set(row["probe"]["by_score"]) == set(ood.SCORE_NAMES[:2])
    # A single draw of the probe is as confident as a digit: no score separates them.
    assert row["probe"]["auroc"] == pytest.approx(0.5)


def test_method_summary_rejects_bad_input():
    rng = np.random.default_rng(2)
    test, labels, probe = _agreeing_and_disagreeing_draws(rng)
    with pytest.raises(ValueError, match="probe_draws is empty"):
        ood.method_summary(test, labels, {})
    with pytest.raises(ValueError, match="scores="):
        ood.method_summary(test, labels, {"probe": probe}, scores=("confidence",))
    with pytest.raises(ValueError, match="sum"):
        ood.method_summary(test, labels, {"probe": probe * 2})
