"""bnnbook.keras.layers: the Keras Bayes-by-Backprop layer against the JAX
mean-field code, its complexity cost, and its prior."""

import math

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("tf_keras")

from bnnbook.keras import layers  # noqa: E402


def _layer_with(mu, rho, bias_mu, bias_rho, prior=None, kl_weight=1.0):
    layer = layers.DenseVariational(mu.shape[1], prior or layers.ScaleMixturePrior(), kl_weight=kl_weight)
    layer.build((None, mu.shape[0]))
    layer.kernel_mu.assign(mu)
    layer.kernel_rho.assign(rho)
    layer.bias_mu.assign(bias_mu)
    layer.bias_rho.assign(bias_rho)
    return layer


def test_keras_and_jax_layers_have_the_same_output_distribution():
    jax = pytest.importorskip("jax")
    from bnnbook import vi

    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3)).astype(np.float32)
    mu, rho = rng.normal(size=(3, 2)).astype(np.float32), rng.normal(-1.0, 0.3, size=(3, 2)).astype(np.float32)
    b_mu, b_rho = rng.normal(size=2).astype(np.float32), np.full(2, -1.5, np.float32)
    draws = 4000

    tf.random.set_seed(0)
    layer = _layer_with(mu, rho, b_mu, b_rho)
    keras_out = tf.function(lambda: tf.map_fn(lambda _: layer(x), tf.range(draws),
                                              fn_output_signature=tf.float32))().numpy()

    q = {"mean": {"w": mu, "b": b_mu}, "rho": {"w": rho, "b": b_rho}}
    weights = vi.sample(q, jax.random.key(0), draws)
    jax_out = np.asarray(jax.vmap(lambda p: x @ p["w"] + p["b"])(weights))

    # exact moments of x @ w + b under q
    scale, b_scale = np.log1p(np.exp(rho)), np.log1p(np.exp(b_rho))
    exact_mean = x @ mu + b_mu
    exact_std = np.sqrt((x ** 2) @ scale ** 2 + b_scale ** 2)
    standard_error = exact_std / math.sqrt(draws)
    for out in (keras_out, jax_out):
        assert np.all(np.abs(out.mean(0) - exact_mean) < 4.5 * standard_error)
        # the std of a sample std is about std / sqrt(2 n)
        assert np.all(np.abs(out.std(0) - exact_std) < 4.5 * exact_std / math.sqrt(2 * draws))
    assert np.all(np.abs(keras_out.mean(0) - jax_out.mean(0)) < 6.5 * standard_error)


def test_added_loss_is_an_unbiased_kl_estimate_for_a_gaussian_limit():
    # With pi -> a mixture of two equal scales, the prior is one Gaussian N(0, s^2) and the
    # closed-form KL(q || p) is known; the mean of the layer's added losses must match it.
    s = 0.7
    prior = layers.ScaleMixturePrior(sigma1=s, sigma2=s, pi=0.5)
    rng = np.random.default_rng(1)
    mu = rng.normal(size=(5, 3)).astype(np.float32)
    rho = rng.normal(-1.0, 0.2, size=(5, 3)).astype(np.float32)
    b_mu, b_rho = np.zeros(3, np.float32), np.full(3, -2.0, np.float32)
    layer = _layer_with(mu, rho, b_mu, b_rho, prior=prior, kl_weight=0.25)
    x = np.ones((1, 5), np.float32)
    tf.random.set_seed(1)

    def one_estimate(_):
        layer(x)
        return layer.last_kl

    estimates = tf.function(lambda: tf.map_fn(one_estimate, tf.range(3000),
                                              fn_output_signature=tf.float32))().numpy()

    def kl(m, sd):
        return np.sum(np.log(s / sd) + (sd ** 2 + m ** 2) / (2 * s ** 2) - 0.5)

    exact = 0.25 * (kl(mu, np.log1p(np.exp(rho))) + kl(b_mu, np.log1p(np.exp(b_rho))))
    assert abs(estimates.mean() - exact) < 4.5 * estimates.std() / math.sqrt(len(estimates))


def test_mixture_prior_density_and_its_parameters():
    prior = layers.ScaleMixturePrior(sigma1=1.0, sigma2=0.1, pi=0.2)
    w = np.linspace(-4, 4, 41).astype(np.float32)

    def normal(x, s):
        return np.exp(-0.5 * (x / s) ** 2) / (s * math.sqrt(2 * math.pi))

    expected = np.log(0.2 * normal(w, 1.0) + 0.8 * normal(w, 0.1))
    np.testing.assert_allclose(prior.log_prob(w).numpy(), expected, rtol=1e-5, atol=1e-5)
    assert float(prior.stddev()) == pytest.approx(math.sqrt(0.2 * 1.0 + 0.8 * 0.01), rel=1e-5)
    assert len(prior.trainable_weights) == 3
    # far in the tail the log density stays finite (log-sum-exp, no underflow)
    assert np.isfinite(prior.log_prob(np.float32(60.0)).numpy())


def test_shared_prior_is_learned_once_and_the_model_trains():
    prior = layers.ScaleMixturePrior()
    x = np.linspace(-0.5, 0.5, 32, dtype=np.float32)[:, None]
    y = 10 * np.sin(2 * np.pi * x)
    model = keras.Sequential([keras.Input((1,)),
                              layers.DenseVariational(8, prior, 1 / 32, activation="relu", seed=0),
                              layers.DenseVariational(1, prior, 1 / 32, seed=1)])
    names = [w.name for w in model.trainable_weights]
    assert sum("log_sigma1" in n for n in names) == 1  # shared, not duplicated
    model.compile(optimizer=keras.optimizers.Adam(0.03), loss=layers.gaussian_nll(1.0))
    tf.random.set_seed(0)
    before = float(prior.log_sigma1.numpy())
    history = model.fit(x, y, epochs=150, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert float(prior.log_sigma1.numpy()) != before  # the prior's parameters received gradients
    draws = layers.predictive_draws(model, x, num_draws=50, batch_draws=20)
    assert draws.shape == (50, 32, 1) and np.isfinite(draws).all()
    assert np.all(draws.std(0) > 0)  # draws differ: fresh weights per draw


@pytest.mark.parametrize("kwargs, match", [
    ({"sigma1": 0.0}, "sigma1=0.0"), ({"sigma2": -1}, "sigma2=-1"), ({"pi": 1.0}, "pi=1.0")])
def test_prior_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        layers.ScaleMixturePrior(**kwargs)


def test_layer_and_predictive_reject_bad_arguments():
    prior = layers.ScaleMixturePrior()
    with pytest.raises(ValueError, match="units=0"):
        layers.DenseVariational(0, prior, 0.1)
    with pytest.raises(ValueError, match="kl_weight=-1"):
        layers.DenseVariational(3, prior, -1)
    with pytest.raises(ValueError, match="prior="):
        layers.DenseVariational(3, "gaussian", 0.1)
    with pytest.raises(ValueError, match="seed=-1"):
        layers.DenseVariational(3, prior, 0.1, seed=-1)
    with pytest.raises(ValueError, match="noise_std=0"):
        layers.gaussian_nll(0)
    model = keras.Sequential([keras.Input((1,)), layers.DenseVariational(1, prior, 0.1)])
    with pytest.raises(ValueError, match="num_draws=0"):
        layers.predictive_draws(model, np.zeros((2, 1)), num_draws=0)


def test_keras_side_never_starts_jax():
    import subprocess
    import sys
    # TensorFlow itself imports the jax package when installed; what must not happen is a
    # JAX backend starting (it would take GPU memory) or the JAX side of bnnbook loading.
    code = ("import sys, bnnbook.keras.layers\n"
            "started = False\n"
            "if 'jax' in sys.modules:\n"
            "    from jax._src import xla_bridge\n"
            "    started = xla_bridge.backends_are_initialized()\n"
            "jax_side = [m for m in sys.modules if m.startswith('bnnbook.') and not m.startswith('bnnbook.keras')]\n"
            "print(started, jax_side)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False []"


def test_neighbouring_seeds_share_no_initial_values():
    # With kernel seed s and bias seed s + 1, layer 0's bias would repeat layer 1's kernel.
    prior = layers.ScaleMixturePrior()
    built = []
    for seed in (0, 1, 0):
        layer = layers.DenseVariational(4, prior, 0.1, seed=seed)
        layer.build((None, 4))
        built.append(np.concatenate([layer.kernel_mu.numpy().ravel(), layer.bias_mu.numpy()]))
    np.testing.assert_array_equal(built[0], built[2])  # a seed repeats its values
    assert not np.intersect1d(built[0], built[1]).size  # and shares none with the next seed
