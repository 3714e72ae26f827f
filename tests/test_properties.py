"""Identities that hold for every input, checked with hypothesis on generated inputs.

The examples are derandomised (the same ones on every run, so CI is
deterministic), few (``max_examples=50``) and tiny, so the file runs in
seconds. Each property can fail: it compares two separately computed numbers
or checks a bound that a wrong formula breaks.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from bnnbook import bootstrap, metrics, ood, vi  # noqa: E402

settings.register_profile("bnnbook", max_examples=50, deadline=None, derandomize=True, print_blob=True)
settings.load_profile("bnnbook")

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
positive = st.floats(1e-2, 1e2, allow_nan=False, allow_infinity=False)
# Scores on a grid of eighths: many ties (which the AUROC must count as one half), and no two distinct
# scores so close that a strictly increasing transform rounds them together in float64.
scores = hnp.arrays(np.float64, st.integers(1, 30), elements=st.integers(-40, 40).map(lambda i: i / 8.0))


@st.composite
def probability_rows(draw, max_rows: int = 12, max_classes: int = 6):
    """``(probs, labels)``: rows of a softmax (some rows one-hot) and integer labels."""
    n = draw(st.integers(1, max_rows))
    k = draw(st.integers(2, max_classes))
    logits = draw(hnp.arrays(np.float64, (n, k), elements=st.floats(-30, 30, allow_nan=False)))
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    labels = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    return probs, labels


# --------------------------------------------------------------------------
# AUROC
# --------------------------------------------------------------------------

@given(scores, scores)
def test_auroc_of_swapped_sets_is_one_minus(inside, outside):
    # auroc(in, out) = P(out scores higher than in) + ties / 2; swapping the roles gives the complement.
    assert metrics.auroc(inside, outside) + metrics.auroc(outside, inside) == pytest.approx(1.0, abs=1e-12)


@given(scores, scores, st.sampled_from(["exp", "cube", "affine", "arctan"]))
def test_auroc_is_invariant_under_a_strictly_increasing_transform(inside, outside, transform):
    f = {"exp": np.exp, "cube": lambda s: s ** 3, "affine": lambda s: 3.0 * s - 7.0, "arctan": np.arctan}[transform]
    assert metrics.auroc(f(inside), f(outside)) == pytest.approx(metrics.auroc(inside, outside), abs=1e-12)


@given(scores, scores)
def test_auroc_is_the_share_of_pairs_won_by_the_outside_score(inside, outside):
    # The rank formula against the definition, pair by pair.
    pairs = (outside[None, :] > inside[:, None]) + 0.5 * (outside[None, :] == inside[:, None])
    assert metrics.auroc(inside, outside) == pytest.approx(pairs.mean(), abs=1e-12)


# --------------------------------------------------------------------------
# KL divergences
# --------------------------------------------------------------------------

@given(finite, positive, finite, positive)
def test_gaussian_kl_is_nonnegative_and_zero_only_at_equality(mean_q, scale_q, mean_p, scale_p):
    kl = float(vi.gaussian_kl(np.float64(mean_q), np.float64(scale_q), np.float64(mean_p), np.float64(scale_p)))
    assert kl >= -1e-6 * max(1.0, abs(kl))
    assert float(vi.gaussian_kl(np.float64(mean_q), np.float64(scale_q), np.float64(mean_q),
                                np.float64(scale_q))) == pytest.approx(0.0, abs=1e-6)
    if abs(mean_q - mean_p) > 1e-2 * scale_p or abs(math.log(scale_q / scale_p)) > 1e-2:
        assert kl > 0.0
    # and it is the full-covariance formula in one dimension
    full = vi.gaussian_kl_full([mean_q], [[scale_q ** 2]], [mean_p], [[scale_p ** 2]])
    assert kl == pytest.approx(full, rel=1e-4, abs=1e-6)


@st.composite
def spd_pairs(draw):
    """Two symmetric positive definite ``(d, d)`` matrices and two means, well conditioned."""
    d = draw(st.integers(1, 4))
    elements = st.floats(-2, 2, allow_nan=False)
    a, b = (draw(hnp.arrays(np.float64, (d, d), elements=elements)) for _ in range(2))
    mean_q, mean_p = (draw(hnp.arrays(np.float64, (d,), elements=elements)) for _ in range(2))
    return mean_q, a @ a.T + 0.5 * np.eye(d), mean_p, b @ b.T + 0.5 * np.eye(d)


@given(spd_pairs())
def test_full_covariance_kl_is_nonnegative_and_zero_at_equality(pair):
    mean_q, cov_q, mean_p, cov_p = pair
    kl = vi.gaussian_kl_full(mean_q, cov_q, mean_p, cov_p)
    assert kl >= -1e-9
    assert vi.gaussian_kl_full(mean_q, cov_q, mean_q, cov_q) == pytest.approx(0.0, abs=1e-9)
    if not (np.allclose(mean_q, mean_p, atol=1e-3) and np.allclose(cov_q, cov_p, atol=1e-3)):
        assert kl > 0.0


@given(spd_pairs())
def test_full_covariance_kl_matches_a_monte_carlo_free_formula_for_diagonal_matrices(pair):
    # With diagonal covariances the full KL is the sum of the elementwise ones.
    mean_q, cov_q, mean_p, cov_p = pair
    sq, sp = np.sqrt(np.diag(cov_q)), np.sqrt(np.diag(cov_p))
    elementwise = float(jnp.sum(vi.gaussian_kl(mean_q, sq, mean_p, sp)))
    full = vi.gaussian_kl_full(mean_q, np.diag(sq ** 2), mean_p, np.diag(sp ** 2))
    assert full == pytest.approx(elementwise, rel=1e-4, abs=1e-5)


# --------------------------------------------------------------------------
# KL weights, softplus
# --------------------------------------------------------------------------

@given(st.integers(1, 1000), st.sampled_from(["uniform", "blundell"]))  # 2^-M underflows to 0 past M = 1074
def test_kl_weights_sum_to_one_and_are_positive(num_batches, scheme):
    weights = vi.kl_weights(num_batches, scheme)
    assert weights.shape == (num_batches,)
    assert np.all(weights > 0) and weights.sum() == pytest.approx(1.0, rel=1e-12)
    if scheme == "blundell" and num_batches > 1:
        np.testing.assert_allclose(weights[:-1] / weights[1:], 2.0, rtol=1e-12)  # each batch carries half the last


@given(st.integers(1, 500), st.integers(1, 10_000))
def test_per_example_kl_weights_give_the_full_kl_over_an_epoch_of_n_examples(num_batches, num_examples):
    weights = vi.kl_weights(num_batches, "per_example", num_examples=num_examples)
    np.testing.assert_allclose(weights, 1.0 / num_examples)
    assert num_examples * weights.mean() == pytest.approx(1.0, rel=1e-12)


@given(st.floats(1e-6, 50.0, allow_nan=False))
def test_inverse_softplus_round_trips_through_softplus(scale):
    rho = vi.inverse_softplus(np.float64(scale))
    assert float(jax.nn.softplus(rho)) == pytest.approx(scale, rel=1e-5)


@given(st.floats(-20.0, 30.0, allow_nan=False))
def test_softplus_round_trips_through_inverse_softplus(rho):
    scale = float(jax.nn.softplus(np.float32(rho)))
    assert float(vi.inverse_softplus(scale)) == pytest.approx(rho, rel=1e-4, abs=1e-4)


# --------------------------------------------------------------------------
# Scores of predicted probabilities
# --------------------------------------------------------------------------

@given(probability_rows())
def test_brier_score_lies_in_zero_two_and_is_zero_for_certain_right_answers(rows):
    probs, labels = rows
    score = metrics.brier_score(probs, labels)
    assert 0.0 <= score <= 2.0 + 1e-12
    perfect = np.eye(probs.shape[1])[labels]
    assert metrics.brier_score(perfect, labels) == 0.0
    wrong = np.eye(probs.shape[1])[(labels + 1) % probs.shape[1]]
    assert metrics.brier_score(wrong, labels) == pytest.approx(2.0)


@given(probability_rows())
def test_predictive_entropy_lies_in_zero_log_k_with_the_maximum_at_uniform(rows):
    probs, _ = rows
    k = probs.shape[1]
    entropy = ood.predictive_entropy(probs)
    assert np.all(entropy >= -1e-12) and np.all(entropy <= math.log(k) + 1e-9)
    np.testing.assert_allclose(ood.predictive_entropy(np.full((1, k), 1.0 / k)), math.log(k), rtol=1e-12)


@given(st.integers(1, 5), probability_rows(max_rows=6))
def test_mutual_information_is_nonnegative_and_zero_when_the_draws_agree(num_draws, rows):
    probs, _ = rows
    rng = np.random.default_rng(num_draws)
    draws = rng.dirichlet(np.ones(probs.shape[1]), size=(num_draws, probs.shape[0]))
    assert np.all(ood.mutual_information(draws) >= -1e-12)
    np.testing.assert_allclose(ood.mutual_information(np.stack([probs] * num_draws)), 0.0, atol=1e-9)


@given(probability_rows(), st.integers(1, 20))
def test_expected_calibration_error_lies_in_zero_one(rows, num_bins):
    probs, labels = rows
    assert 0.0 <= metrics.expected_calibration_error(probs, labels, num_bins) <= 1.0


# --------------------------------------------------------------------------
# Bootstrap
# --------------------------------------------------------------------------

@given(hnp.arrays(np.float64, st.integers(1, 40), elements=st.floats(-5, 5, allow_nan=False)),
       st.floats(0.5, 0.99), st.integers(0, 2 ** 16))
@settings(max_examples=25)
def test_bootstrap_interval_is_ordered_and_inside_the_range_of_the_data(values, level, seed):
    low, high = bootstrap.interval(np.mean, values, num_resamples=50, level=level, seed=seed)
    assert low <= high
    assert values.min() - 1e-12 <= low and high <= values.max() + 1e-12
