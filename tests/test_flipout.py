"""Properties of bnnbook.flipout and bnnbook.layers: the Flipout output equals the per-example
perturbed layer exactly, it is unbiased with the shared estimator's mean and variance, it
decorrelates examples, shapes, the KL, the gradient-variance estimator, validation."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bnnbook import flipout, layers, priors, vi


def _normal(seed, shape):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _signs(seed, shape):
    return jnp.asarray(np.random.default_rng(seed).choice([-1.0, 1.0], size=shape), jnp.float32)


def test_flipout_dense_equals_each_example_with_its_own_sign_flipped_kernel():
    n, d_in, d_out = 5, 4, 3
    x, w, b = _normal(0, (n, d_in)), _normal(1, (d_in, d_out)), _normal(2, (d_out,))
    dw, db = _normal(3, (d_in, d_out)), _normal(4, (d_out,))
    r, s = _signs(5, (n, d_in)), _signs(6, (n, d_out))
    got = flipout.flipout_dense(x, w, b, dw, db, r, s)
    for i in range(n):
        kernel = w + dw * jnp.outer(r[i], s[i])
        np.testing.assert_allclose(got[i], x[i] @ kernel + b + db * s[i], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("stride,padding", [(1, "SAME"), (2, "VALID")])
def test_flipout_conv_equals_each_example_with_its_own_sign_flipped_kernel(stride, padding):
    n, c_in, c_out = 3, 2, 4
    x = _normal(0, (n, 7, 7, c_in))
    w, b = _normal(1, (3, 3, c_in, c_out)), _normal(2, (c_out,))
    dw, db = _normal(3, (3, 3, c_in, c_out)), _normal(4, (c_out,))
    r, s = _signs(5, (n, 1, 1, c_in)), _signs(6, (n, 1, 1, c_out))
    got = flipout.flipout_conv2d(x, w, b, dw, db, r, s, stride, padding)
    for i in range(n):
        kernel = w + dw * jnp.outer(r[i, 0, 0], s[i, 0, 0])  # broadcast over the 3x3 window
        want = layers.conv2d(x[i:i + 1], kernel, stride, padding)[0] + b + db * s[i, 0, 0]
        np.testing.assert_allclose(got[i], want, rtol=1e-4, atol=1e-4)


def _dense_net(estimator, init_rho=-1.0):
    dense, _ = flipout.layer_types(estimator)
    return hk.transform(lambda x: dense(3, init_rho=init_rho)(x))


def _conv_net(estimator, init_rho=-1.0):
    _, conv = flipout.layer_types(estimator)
    return hk.transform(lambda x: conv(2, 3, init_rho=init_rho)(x))


# One layer of each kind: its network, an input batch, and its output without noise (the exact mean).
LAYERS = {
    "dense": (_dense_net, (4, 6), lambda x, w: x @ w),
    "conv": (_conv_net, (3, 5, 5, 2), lambda x, w: layers.conv2d(x, w, 1, "SAME")),
}


@pytest.mark.parametrize("kind", LAYERS)
def test_flipout_is_unbiased_with_the_shared_estimators_mean_and_variance(kind):
    make_net, shape, linear = LAYERS[kind]
    x = _normal(0, shape)
    params = make_net("flipout").init(jax.random.key(0), x)
    (p,) = params.values()
    exact_mean = linear(x, p["w_mean"]) + p["b_mean"]
    # Each output is a sum of independent Gaussians: variance = (x^2 through scale^2) + bias scale^2.
    exact_var = linear(x ** 2, jax.nn.softplus(p["w_rho"]) ** 2) + jax.nn.softplus(p["b_rho"]) ** 2
    keys = jax.random.split(jax.random.key(1), 4000)
    for estimator in flipout.ESTIMATORS:
        apply = jax.jit(jax.vmap(make_net(estimator).apply, in_axes=(None, 0, None)))
        draws = np.asarray(apply(params, keys, x), np.float64)
        standard_error = np.sqrt(exact_var / len(keys))
        assert np.all(np.abs(draws.mean(0) - exact_mean) < 5 * standard_error), estimator
        np.testing.assert_allclose(draws.var(0), exact_var, rtol=0.12)


@pytest.mark.parametrize("kind", LAYERS)
def test_flipout_decorrelates_identical_examples_and_shared_does_not(kind):
    make_net, shape, _ = LAYERS[kind]
    x = jnp.tile(_normal(0, (1, *shape[1:])), (2,) + (1,) * (len(shape) - 1))  # the same example twice
    params = make_net("flipout").init(jax.random.key(0), x)
    keys = jax.random.split(jax.random.key(1), 2000)
    draws = {e: np.asarray(jax.jit(jax.vmap(make_net(e).apply, in_axes=(None, 0, None)))(params, keys, x))
             for e in flipout.ESTIMATORS}
    np.testing.assert_array_equal(draws["shared"][:, 0], draws["shared"][:, 1])
    first, second = draws["flipout"][:, 0].reshape(2000, -1), draws["flipout"][:, 1].reshape(2000, -1)
    correlation = [np.corrcoef(first[:, j], second[:, j])[0, 1] for j in range(first.shape[1])]
    # 0 in expectation; 2000 draws give an s.e. of ~0.022 per output (3 dense, 50 conv outputs)
    assert np.max(np.abs(correlation)) < 0.1


def test_layer_shapes_and_one_parameter_tree_for_both_estimators():
    x = _normal(0, (2, 12, 12, 1))
    trees = {}
    for estimator in flipout.ESTIMATORS:
        dense, conv = flipout.layer_types(estimator)
        for kwargs, shape in (({}, (2, 12, 12, 4)), ({"padding": "VALID", "stride": 2}, (2, 4, 4, 4))):
            net = hk.transform(lambda z: conv(4, 5, **kwargs)(z))
            assert jax.eval_shape(lambda z: net.apply(net.init(jax.random.key(0), z), jax.random.key(1), z),
                                  x).shape == shape
        net = hk.transform(lambda z: dense(7)(z))
        assert jax.eval_shape(lambda z: net.apply(net.init(jax.random.key(0), z), jax.random.key(1), z),
                              x[:, 0, :, 0]).shape == (2, 7)
        cnn = flipout.bayesian_cnn((3, 5), 10, estimator, hidden_sizes=(8,))
        params = jax.eval_shape(cnn.init, jax.random.key(0), x[..., 0])
        assert jax.eval_shape(cnn.apply, params, jax.random.key(1), x[..., 0]).shape == (2, 10)
        trees[estimator] = jax.tree_util.tree_map(lambda leaf: leaf.shape, params)
    assert trees["shared"] == trees["flipout"]


def test_same_key_same_output_and_different_keys_differ():
    net = flipout.bayesian_mlp((5,), 2, "flipout", init_rho=-2.0)
    x = _normal(0, (3, 4))
    params = net.init(jax.random.key(0), x)
    np.testing.assert_array_equal(net.apply(params, jax.random.key(1), x), net.apply(params, jax.random.key(1), x))
    assert not np.allclose(net.apply(params, jax.random.key(1), x), net.apply(params, jax.random.key(2), x))


def test_kl_is_the_sum_of_the_elementwise_gaussian_kl():
    net = flipout.bayesian_cnn((2,), 3, kernel_shape=3)
    params = jax.jit(net.init)(jax.random.key(0), _normal(0, (1, 8, 8)))
    want = sum(float(jnp.sum(vi.gaussian_kl(leaf[m], jax.nn.softplus(leaf[r]), 0.0, 0.5)))
               for leaf in params.values() for m, r in (("w_mean", "w_rho"), ("b_mean", "b_rho")))
    np.testing.assert_allclose(float(layers.kl_divergence(params, 0.5)), want, rtol=1e-5)
    q = layers.to_mean_field(params)
    np.testing.assert_allclose(float(vi.closed_form_kl(q, priors.Gaussian(0.5))), want, rtol=1e-5)


def test_gradient_variance_of_a_batch_mean_is_the_population_variance_over_batch_size():
    values = jnp.asarray(np.random.default_rng(0).normal(size=(200,)) * 3.0, jnp.float32)

    def loss_fn(w, batch, key):  # gradient = the batch mean of the values
        return jnp.mean(w * batch), {}

    population_var = float(jnp.var(values))
    for batch_size in (4, 32):
        var, mean = flipout.gradient_variance(loss_fn, jnp.zeros(()), values, jax.random.key(0),
                                              batch_size=batch_size, num_repeats=4000)
        np.testing.assert_allclose(float(var), population_var / batch_size, rtol=0.1)
        np.testing.assert_allclose(float(mean), float(values.mean()), atol=4 * np.sqrt(population_var / batch_size / 4000))
    var, _ = flipout.gradient_variance(loss_fn, jnp.zeros(()), values, jax.random.key(0), batch_size=8,
                                       num_repeats=10, fixed_batch=True)
    assert float(var) < 1e-10  # no weight noise and the same batch: no variance


def test_independent_draws_is_the_mean_of_one_example_losses_each_with_its_own_key():
    net = flipout.bayesian_mlp((4,), 3, "shared", init_rho=-1.0)
    x, y = _normal(0, (5, 6)), jnp.array([0, 1, 2, 0, 1])
    params = net.init(jax.random.key(0), x)
    loss_fn = flipout.free_energy_loss(net, 50)
    loss, metrics = jax.jit(flipout.independent_draws(loss_fn))(params, (x, y), jax.random.key(1))
    keys = jax.random.split(jax.random.key(1), 5)
    singles = [loss_fn(params, (x[n:n + 1], y[n:n + 1]), keys[n]) for n in range(5)]
    np.testing.assert_allclose(float(loss), np.mean([float(s[0]) for s in singles]), rtol=1e-5)
    np.testing.assert_allclose(float(metrics["nll"]), np.mean([float(s[1]["nll"]) for s in singles]), rtol=1e-5)


def test_independent_draws_divide_the_weight_noise_by_the_batch_size_where_a_shared_draw_does_not():
    # One example repeated B times: a shared draw moves every copy's gradient the same way (variance
    # of one example's gradient, whatever B); independent draws average it down to 1/B of that.
    batch_size = 8
    net = flipout.bayesian_mlp((5,), 3, "shared", init_rho=-1.0)
    x = jnp.tile(_normal(0, (1, 6)), (batch_size, 1))
    y = jnp.zeros(batch_size, jnp.int32)
    params = net.init(jax.random.key(0), x)
    loss_fn = flipout.free_energy_loss(net, 100)

    def trace(fn, size):
        var, mean = flipout.gradient_variance(fn, params, (x, y), jax.random.key(2), batch_size=size,
                                              num_repeats=3000, fixed_batch=True)
        return sum(float(v.sum()) for v in jax.tree_util.tree_leaves(var)), mean

    one_example, mean_one = trace(loss_fn, 1)
    shared, _ = trace(loss_fn, batch_size)
    independent, mean_independent = trace(flipout.independent_draws(loss_fn), batch_size)
    np.testing.assert_allclose(shared, one_example, rtol=0.15)
    np.testing.assert_allclose(independent, one_example / batch_size, rtol=0.15)
    # Same expected gradient as one draw (unbiased): the means agree to Monte Carlo error.
    for a, b in zip(jax.tree_util.tree_leaves(mean_one), jax.tree_util.tree_leaves(mean_independent)):
        np.testing.assert_allclose(a, b, atol=0.1 * np.sqrt(one_example))


def test_free_energy_loss_is_nll_plus_kl_over_n():
    net = flipout.bayesian_mlp((4,), 3)
    x, y = _normal(0, (6, 5)), jnp.array([0, 1, 2, 0, 1, 2])
    params = jax.jit(net.init)(jax.random.key(0), x)
    loss, metrics = jax.jit(flipout.free_energy_loss(net, 60))(params, (x, y), jax.random.key(1))
    logits = jax.jit(net.apply)(params, jax.random.key(1), x)
    nll = -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(6), y])
    np.testing.assert_allclose(float(metrics["nll"]), float(nll), rtol=1e-5)
    np.testing.assert_allclose(float(loss), float(nll + layers.kl_divergence(params) / 60), rtol=1e-5)


def test_predictive_draws_shape_and_determinism():
    net = flipout.bayesian_mlp((4,), 2, "shared", init_rho=-2.0)
    x = _normal(0, (3, 5))
    params = net.init(jax.random.key(0), x)
    draws = flipout.predictive_draws(net, params, x, jax.random.key(1), 12, chunk=4)
    assert draws.shape == (12, 3, 2)
    np.testing.assert_array_equal(draws, flipout.predictive_draws(net, params, x, jax.random.key(1), 12, chunk=4))
    assert np.std(np.asarray(draws), axis=0).min() > 0


def test_step_times_times_one_training_step_of_each_estimator():
    images, labels = np.random.default_rng(0).uniform(size=(8, 5)).astype(np.float32), np.arange(8) % 3
    times = flipout.step_times(lambda e: flipout.bayesian_mlp((4,), 3, e), images, labels, num_examples=100,
                               repeats=3)
    assert set(times) == set(flipout.ESTIMATORS)
    assert all(np.isfinite(t) and 0 < t < 10 for t in times.values())
    with pytest.raises(ValueError, match="repeats=0"):
        flipout.step_times(lambda e: flipout.bayesian_mlp((4,), 3, e), images, labels, num_examples=100, repeats=0)


def test_bad_input_raises_value_error_naming_the_argument():
    with pytest.raises(ValueError, match="estimator="):
        flipout.layer_types("local")
    with pytest.raises(ValueError, match="output_size="):
        flipout.bayesian_mlp((4,), 0)
    with pytest.raises(ValueError, match="padding="):
        hk.transform(lambda x: layers.SharedConv2D(2, padding="same")(x)).init(jax.random.key(0), jnp.ones((1, 4, 4, 1)))
    with pytest.raises(ValueError, match="num_repeats="):
        flipout.gradient_variance(lambda p, b, k: (p, {}), jnp.zeros(()), jnp.ones(4), jax.random.key(0),
                                  batch_size=2, num_repeats=1)
    with pytest.raises(ValueError, match="chunk="):
        net = flipout.bayesian_mlp((2,), 2, "shared")
        flipout.predictive_draws(net, net.init(jax.random.key(0), jnp.ones((1, 3))), jnp.ones((1, 3)),
                                 jax.random.key(0), 10, chunk=3)
    with pytest.raises(ValueError, match="loss_fn="):
        flipout.independent_draws("free energy")
    with pytest.raises(ValueError, match="likelihood="):
        flipout.free_energy_loss(flipout.bayesian_mlp((2,), 2), 10, likelihood="poisson")
    with pytest.raises(ValueError, match="no Bayesian layer"):
        layers.to_mean_field({"linear": {"w": jnp.ones(2), "b": jnp.ones(1)}})
