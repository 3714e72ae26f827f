"""bnnbook.train.fit: it optimises, keeps every step, and stops loudly on NaN."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from bnnbook import nets, train


def _linear_problem(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    w_true = np.array([[1.0], [-2.0], [0.5]], np.float32)
    return x, x @ w_true, w_true


def _squared_error(params, batch, key):
    x, y = batch
    return jnp.mean((x @ params["w"] - y) ** 2), {"abs_w": jnp.sum(jnp.abs(params["w"]))}


def test_fit_recovers_least_squares_and_keeps_every_step():
    x, y, w_true = _linear_problem()
    result = train.fit(_squared_error, {"w": jnp.zeros((3, 1))}, optax.adam(0.05), (x, y),
                       num_steps=400, key=jax.random.key(0), num_updates=7, progress=False)
    np.testing.assert_allclose(result.params["w"], w_true, atol=1e-3)
    assert set(result.history) == {"loss", "abs_w", "grad_norm"}
    assert all(len(v) == 400 for v in result.history.values())
    assert result.history["loss"][-1] < 1e-5 < result.history["loss"][0]


def test_minibatches_visit_every_example_once_per_epoch():
    n, batch = 24, 6
    data = (np.arange(n, dtype=np.float32)[:, None],)

    def loss(params, batch, key):
        return jnp.sum(params["w"] * 0.0), {"batch_sum": jnp.sum(batch[0]), "batch_min": jnp.min(batch[0])}

    result = train.fit(loss, {"w": jnp.zeros(())}, optax.sgd(0.1), data, num_steps=2 * n // batch,
                       batch_size=batch, key=jax.random.key(3), progress=False)
    sums = result.history["batch_sum"].reshape(2, -1).sum(1)
    np.testing.assert_allclose(sums, [n * (n - 1) / 2] * 2)  # each epoch is a permutation of all examples


def test_eval_fn_is_called_at_each_update():
    x, y, _ = _linear_problem()
    result = train.fit(_squared_error, {"w": jnp.zeros((3, 1))}, optax.sgd(0.01), (x, y), num_steps=10,
                       key=jax.random.key(0), num_updates=5, progress=False,
                       eval_fn=lambda p: {"w0": p["w"][0, 0]})
    assert [step for step, _ in result.evaluations] == [2, 4, 6, 8, 10]


def test_nan_guard_names_the_step_and_the_term_and_keeps_finite_params():
    x, y, _ = _linear_problem()
    bad_step = 13

    def loss(params, batch, key):
        value, metrics = _squared_error(params, batch, key)
        # a metric that blows up at a known step (the step count is carried in an extra leaf)
        step = params["step"]
        blown = jnp.where(step >= bad_step, jnp.nan, 0.0)
        return value + 0.0 * step, {**metrics, "kl_term": blown}

    def optimizer_counting_steps():
        # sgd on w; the "step" leaf counts up by exactly one each step
        def init(params):
            return ()

        def update(grads, state, params=None):
            return {"w": -0.01 * grads["w"], "step": jnp.ones(())}, state

        return optax.GradientTransformation(init, update)

    with pytest.raises(train.NonFiniteError) as info:
        train.fit(loss, {"w": jnp.zeros((3, 1)), "step": jnp.zeros(())}, optimizer_counting_steps(), (x, y),
                  num_steps=50, key=jax.random.key(0), num_updates=5, progress=False)
    error = info.value
    assert error.step == bad_step and error.terms == ["kl_term"]
    assert f"step {bad_step}" in str(error) and "kl_term" in str(error)
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(error.params))
    assert len(error.history["loss"]) == bad_step + 1


def test_diverging_learning_rate_raises_on_the_loss():
    x, y, _ = _linear_problem()
    with pytest.raises(train.NonFiniteError) as info:
        train.fit(_squared_error, {"w": jnp.ones((3, 1))}, optax.sgd(1e3), (x, y), num_steps=200,
                  key=jax.random.key(0), progress=False)
    assert "loss" in info.value.terms or "grad_norm" in info.value.terms


@pytest.mark.parametrize("kwargs, match", [
    ({"num_steps": 0}, "num_steps=0"),
    ({"num_steps": 5, "batch_size": 65}, "batch_size=65"),
    ({"num_steps": 5, "num_updates": 0}, "num_updates=0"),
])
def test_bad_arguments(kwargs, match):
    x, y, _ = _linear_problem()
    with pytest.raises(ValueError, match=match):
        train.fit(_squared_error, {"w": jnp.zeros((3, 1))}, optax.sgd(0.1), (x, y),
                  key=jax.random.key(0), progress=False, **kwargs)


def test_data_with_mismatched_lengths_is_rejected():
    with pytest.raises(ValueError, match="same leading"):
        train.fit(_squared_error, {"w": jnp.zeros((3, 1))}, optax.sgd(0.1),
                  (np.zeros((5, 3)), np.zeros((4, 1))), num_steps=1, key=jax.random.key(0), progress=False)


def test_mlp_shapes_and_validation():
    net = nets.mlp((8, 4), 3)
    params = net.init(jax.random.key(0), jnp.zeros((2, 5, 5)))
    assert net.apply(params, jnp.zeros((7, 5, 5))).shape == (7, 3)
    assert nets.count_params(params) == 25 * 8 + 8 + 8 * 4 + 4 + 4 * 3 + 3
    with pytest.raises(ValueError, match="layer sizes"):
        nets.mlp((0,), 3)


def test_smooth_is_a_running_mean():
    np.testing.assert_allclose(train.smooth(np.arange(5.0), 2), [0.5, 1.5, 2.5, 3.5])
    with pytest.raises(ValueError, match="window=0"):
        train.smooth(np.arange(3.0), 0)


def test_each_epoch_is_a_fresh_permutation():
    n, batch = 24, 6
    data = (np.arange(n, dtype=np.float32)[:, None],)

    def loss(params, batch, key):  # record which examples each step saw, position by position
        return jnp.sum(params["w"] * 0.0), {f"slot{i}": batch[0][i, 0] for i in range(6)}

    result = train.fit(loss, {"w": jnp.zeros(())}, optax.sgd(0.1), data, num_steps=3 * n // batch,
                       batch_size=batch, key=jax.random.key(3), progress=False)
    seen = np.stack([result.history[f"slot{i}"] for i in range(batch)], 1).reshape(3, n)  # epoch x order
    for order in seen:
        np.testing.assert_array_equal(np.sort(order), np.arange(n))  # every example once per epoch
    assert not np.array_equal(seen[0], np.arange(n))  # shuffled
    assert not np.array_equal(seen[0], seen[1]) and not np.array_equal(seen[1], seen[2])  # anew each epoch


def test_fit_stacked_trains_each_member_as_if_alone():
    # Two members with different per-member scales: side by side equals one at a time (Adam is elementwise).
    x = jnp.linspace(-1, 1, 16)[:, None]
    y = 3 * x + 1
    def loss(params, batch, key, scale):
        xs, ys = batch
        return scale * jnp.mean((xs * params["w"] + params["b"] - ys) ** 2), {"mse": jnp.mean((xs * params["w"] - ys) ** 2)}
    stacked = {"w": jnp.array([0.0, -1.0]), "b": jnp.array([0.5, 0.0])}
    scales = jnp.array([1.0, 0.1])
    together = train.fit_stacked(loss, stacked, optax.adam(0.05), (x, y), member_args=(scales,), num_steps=50,
                                 key=jax.random.key(0), progress=False).params
    for m in range(2):
        alone = train.fit(lambda p, b, k: loss(p, b, k, scales[m]), {"w": stacked["w"][m], "b": stacked["b"][m]},
                          optax.adam(0.05), (x, y), num_steps=50, key=jax.random.key(0), progress=False).params
        np.testing.assert_allclose(together["w"][m], alone["w"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(together["b"][m], alone["b"], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="leading member axis"):
        train.fit_stacked(loss, stacked, optax.adam(0.05), (x, y), member_args=(jnp.ones(3),), num_steps=1,
                          key=jax.random.key(0), progress=False)
