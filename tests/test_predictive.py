"""Tests of bnnbook.predictive: draws of class probabilities by one vmap over weights."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bnnbook import nets, predictive, vi

NET = nets.mlp((8,), 3)
INPUTS = jax.random.normal(jax.random.key(1), (5, 4))
PARAMS = NET.init(jax.random.key(0), INPUTS)


def test_variational_draws_match_a_loop_over_the_same_weight_draws():
    q = vi.init_mean_field(PARAMS, init_log_var=-2.0)
    draws = predictive.variational_probs(NET.apply, q, INPUTS, jax.random.key(2), 6)
    assert draws.shape == (6, 5, 3)
    np.testing.assert_allclose(np.asarray(draws).sum(-1), 1.0, atol=1e-6)
    weights = jax.jit(vi.sample, static_argnums=2)(q, jax.random.key(2), 6)
    one_draw = jax.jit(lambda w: jax.nn.softmax(NET.apply(w, INPUTS)))
    for s in range(6):
        w = jax.tree_util.tree_map(lambda leaf: leaf[s], weights)
        np.testing.assert_allclose(draws[s], one_draw(w), rtol=1e-5, atol=1e-6)
    # Different draws differ, the same key repeats them.
    assert float(jnp.abs(draws[0] - draws[1]).max()) > 1e-4
    again = predictive.variational_probs(NET.apply, q, INPUTS, jax.random.key(2), 6)
    np.testing.assert_array_equal(np.asarray(draws), np.asarray(again))


def test_a_posterior_with_vanishing_variance_predicts_like_its_mean():
    q = vi.init_mean_field(PARAMS, init_log_var=-60.0)
    draws = predictive.variational_probs(NET.apply, q, INPUTS, jax.random.key(3), 6)  # 6: reuses the compilation above
    point = predictive.point_probs(NET.apply, PARAMS, INPUTS)
    assert point.shape == (1, 5, 3)
    np.testing.assert_allclose(draws, jnp.broadcast_to(point, draws.shape), rtol=1e-5, atol=1e-7)
    mean, std = predictive.mean_and_std(draws)
    np.testing.assert_allclose(std, 0.0, atol=1e-6)
    np.testing.assert_allclose(mean, point[0], rtol=1e-5, atol=1e-7)


def test_bad_input_raises_clear_value_errors():
    q = vi.init_mean_field(PARAMS)
    with pytest.raises(ValueError, match="num_draws"):
        predictive.variational_probs(NET.apply, q, INPUTS, jax.random.key(0), 0)
    with pytest.raises(ValueError, match="inputs"):
        predictive.variational_probs(NET.apply, q, INPUTS[:0], jax.random.key(0), 2)
    with pytest.raises(ValueError, match="same number of draws"):
        stacked = jax.tree_util.tree_map(lambda leaf: np.zeros((3, *leaf.shape), np.float32), PARAMS)
        stacked["mlp/~/linear_0"]["b"] = stacked["mlp/~/linear_0"]["b"][:2]
        predictive.sample_probs(NET.apply, stacked, INPUTS)


REGRESSOR = nets.mlp((8,), 2)
REG_PARAMS = REGRESSOR.init(jax.random.key(4), INPUTS)


def test_regression_predictive_shapes_dtypes_and_moments():
    q = vi.init_mean_field(REG_PARAMS, init_scale=0.3)
    result = predictive.variational_predictive(REGRESSOR.apply, q, INPUTS, jax.random.key(5), 7)
    assert isinstance(result, predictive.Predictive)
    assert result.draws.shape == (7, 5, 2) and result.mean.shape == (5, 2) and result.std.shape == (5, 2)
    assert result.draws.dtype == result.mean.dtype == result.std.dtype == jnp.float32
    np.testing.assert_allclose(result.mean, np.asarray(result.draws).mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.std, np.asarray(result.draws).std(0), rtol=1e-4, atol=1e-6)
    assert np.all(np.asarray(result.std) > 0)
    # the same draws as applying the network to vi.sample's weights one at a time
    weights = vi.sample(q, jax.random.key(5), 7)
    stacked = predictive.sample_outputs(REGRESSOR.apply, weights, INPUTS)
    np.testing.assert_allclose(stacked, result.draws, rtol=1e-5, atol=1e-6)
    first = jax.tree_util.tree_map(lambda leaf: leaf[0], weights)
    np.testing.assert_allclose(result.draws[0], REGRESSOR.apply(first, INPUTS), rtol=1e-5, atol=1e-5)
    # softmax of the raw output draws are the class-probability draws
    probs = predictive.variational_probs(REGRESSOR.apply, q, INPUTS, jax.random.key(5), 7)
    np.testing.assert_allclose(probs, jax.nn.softmax(result.draws, axis=-1), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="draws"):
        predictive.summarize(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="num_draws"):
        predictive.variational_predictive(REGRESSOR.apply, q, INPUTS, jax.random.key(0), 0)


def test_blocked_map_over_draws_equals_one_vmap(monkeypatch):
    """A small budget forces the cache-sized blocks (7 draws in blocks of 3, with a remainder)."""
    q = vi.init_mean_field(PARAMS, init_log_var=-2.0)
    apply = lambda w, x: NET.apply(w, x)  # a fresh apply_fn object: a fresh compilation with the patched budget
    whole = predictive.variational_probs(apply, q, INPUTS, jax.random.key(6), 7)
    monkeypatch.setitem(predictive._VALUES_PER_STEP, jax.default_backend(), 3 * INPUTS.shape[0])
    apply_blocked = lambda w, x: NET.apply(w, x)
    blocked = predictive.variational_probs(apply_blocked, q, INPUTS, jax.random.key(6), 7)
    np.testing.assert_allclose(blocked, whole, rtol=1e-5, atol=1e-7)
    weights = vi.sample(q, jax.random.key(6), 7)
    np.testing.assert_allclose(predictive.sample_outputs(apply_blocked, weights, INPUTS),
                               jax.vmap(lambda w: NET.apply(w, INPUTS))(weights), rtol=1e-5, atol=1e-6)
