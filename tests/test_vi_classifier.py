"""bnnbook.vi.classifier: the fast Bayes by Backprop MLP against the readable pieces it replaces."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bnnbook import priors, vi
from bnnbook.vi import classifier

SIZES = (6, 5, 4, 3)


def _blobs(num, seed):
    """Three well-separated Gaussian blobs in 6-D: a problem any reasonable classifier solves."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, num).astype(np.int32)
    centres = 3.0 * np.eye(6, dtype=np.float32)[:3]
    return (centres[labels] + rng.normal(size=(num, 6)).astype(np.float32)), labels


def test_logits_match_a_dense_forward_pass():
    flat = classifier.init_means(jax.random.key(0), SIZES) + 0.01
    x = jax.random.normal(jax.random.key(1), (7, SIZES[0]))
    # Rebuild the layers from the documented layout: W (fan_in x fan_out) then b, layer by layer.
    h, offset = np.asarray(x, np.float64), 0
    flat64 = np.asarray(flat, np.float64)
    for index, (fan_in, fan_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        w = flat64[offset: offset + fan_in * fan_out].reshape(fan_in, fan_out)
        offset += fan_in * fan_out
        b = flat64[offset: offset + fan_out]
        offset += fan_out
        h = h @ w + b
        if index < len(SIZES) - 2:
            h = np.maximum(h, 0.0)
    assert offset == classifier.num_parameters(SIZES)
    np.testing.assert_allclose(classifier.logits(flat, x, SIZES, bf16=False), h, rtol=1e-5, atol=1e-5)
    # bfloat16 operands: the same logits to about three significant digits.
    np.testing.assert_allclose(classifier.logits(flat, x, SIZES, bf16=True), h, rtol=0.05, atol=0.05)


def test_gaussian_complexity_cost_is_the_closed_form_kl():
    key_m, key_r = jax.random.split(jax.random.key(2))
    mean = 0.3 * jax.random.normal(key_m, (50,))
    rho = jax.random.normal(key_r, (50,)) - 2.0
    prior = priors.Gaussian(0.7)
    expected = float(jnp.sum(vi.gaussian_kl(mean, jax.nn.softplus(rho), 0.0, 0.7)))
    eps = jax.random.normal(jax.random.key(3), (50,))  # unused by the closed form
    np.testing.assert_allclose(float(classifier.complexity_cost(mean, rho, eps, prior)), expected, rtol=1e-5)


def test_mixture_complexity_cost_is_log_q_minus_log_p_and_unbiased():
    key_m, key_r = jax.random.split(jax.random.key(4))
    mean = 0.05 * jax.random.normal(key_m, (20,))
    rho = jax.random.normal(key_r, (20,)) - 4.0
    prior = priors.ScaleMixture(pi=0.5, sigma1=1.0, sigma2=float(np.exp(-6.0)))
    scale = jax.nn.softplus(rho)
    eps = jax.random.normal(jax.random.key(5), (20,))
    w = mean + scale * eps
    # One draw: exactly log q(w) - log p(w) with the library's log densities (the fast logaddexp is exact).
    log_q = jnp.sum(priors.gaussian_log_prob(w, scale, mean))
    log_p = jnp.sum(priors.scale_mixture_log_prob(w, 0.5, 1.0, float(np.exp(-6.0))))
    np.testing.assert_allclose(float(classifier.complexity_cost(mean, rho, eps, prior)), float(log_q - log_p),
                               rtol=1e-4)
    # Many draws: the Monte Carlo mean agrees with the quadrature KL within its standard error.
    draws = jax.random.normal(jax.random.key(6), (20000, 20))
    mc = np.asarray(jax.vmap(lambda e: classifier.complexity_cost(mean, rho, e, prior))(draws))
    exact = float(jnp.sum(vi.quadrature_kl({"mean": mean, "rho": rho}, prior)))
    assert abs(mc.mean() - exact) < 4 * mc.std() / np.sqrt(len(mc))


@pytest.mark.parametrize("method,options", [("plain", {}), ("dropout", {}),
                                            ("bayes_by_backprop", {"prior": priors.Gaussian(1.0)})])
def test_train_learns_separable_blobs_for_every_seed(method, options):
    fit = classifier.train(_blobs(1024, 0), _blobs(256, 1), method=method, hidden=(16, 16), seeds=(0, 1),
                           epochs=8, batch_size=32, learning_rate=1e-2, progress=False, **options)
    assert fit.mean.shape == (2, classifier.num_parameters((6, 16, 16, 3)))
    assert fit.history["validation_error"].shape == (8, 2)
    x_test, y_test = _blobs(512, 2)
    errors = classifier.error_rate(classifier.predictive_probs(fit, x_test, jax.random.key(0), 5), y_test)
    assert errors.shape == (2,) and np.all(errors < 0.08)
    # The kept epoch is the one of lowest validation error.
    best = fit.history["validation_error"][fit.best_epoch, np.arange(2)]
    np.testing.assert_allclose(best, fit.history["validation_error"].min(0))


def test_seeds_differ_and_prior_settings_vmap():
    prior = priors.ScaleMixture(pi=np.array([0.25, 0.75]), sigma1=np.ones(2), sigma2=np.exp(-np.array([6.0, 7.0])))
    fit = classifier.train(_blobs(512, 0), _blobs(128, 1), prior=prior, hidden=(8,), seeds=(0, 1), epochs=2,
                           batch_size=64, progress=False)
    assert fit.mean.shape[0] == 4  # 2 settings x 2 seeds
    assert not np.allclose(fit.mean[0], fit.mean[1])
    assert np.all(np.isfinite(fit.history["complexity_cost"])) and np.all(fit.history["complexity_cost"] > 0)


def test_bayes_by_backprop_lowers_the_complexity_cost_of_a_gaussian_prior():
    # Start far from the prior (tiny scales): the KL term must fall as training trades it against the fit.
    fit = classifier.train(_blobs(1024, 0), _blobs(256, 1), prior=priors.Gaussian(1.0), hidden=(16,), seeds=(0,),
                           epochs=6, batch_size=32, learning_rate=1e-2, init_rho=-6.0, progress=False)
    complexity = fit.history["complexity_cost"][:, 0]
    assert complexity[-1] < complexity[0]


def test_rho_learning_rate_moves_only_the_scales():
    # With a zero rate for rho the scales stay exactly at init_rho while the means still train; with the
    # means' rate given explicitly the run is the default one, draw for draw.
    common = dict(prior=priors.Gaussian(1.0), hidden=(8,), seeds=(0,), epochs=2, batch_size=32, learning_rate=1e-2,
                  init_rho=-4.0, progress=False)
    frozen = classifier.train(_blobs(256, 0), _blobs(64, 1), rho_learning_rate=0.0, **common)
    np.testing.assert_array_equal(np.asarray(frozen.rho), -4.0)
    default = classifier.train(_blobs(256, 0), _blobs(64, 1), **common)
    assert not np.allclose(np.asarray(default.rho), -4.0)
    explicit = classifier.train(_blobs(256, 0), _blobs(64, 1), rho_learning_rate=1e-2, **common)
    np.testing.assert_allclose(np.asarray(explicit.rho), np.asarray(default.rho), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(explicit.mean), np.asarray(default.mean), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs,message", [
    ({"method": "bayes_by_backprop", "prior": priors.Gaussian(1.0), "batch_size": 16, "rho_learning_rate": -1.0},
     "rho_learning_rate=-1.0"),
    ({"method": "sgd"}, "method='sgd'"),
    ({"method": "bayes_by_backprop", "prior": None}, "needs a prior"),
    ({"method": "plain", "epochs": 0}, "epochs=0"),
    ({"method": "plain", "batch_size": 10_000}, "batch_size=10000"),
])
def test_train_rejects_bad_arguments_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        classifier.train(_blobs(64, 0), _blobs(16, 1), progress=False, **kwargs)


def test_prune_by_magnitude_removes_the_smallest_means():
    q = {"mean": jnp.array([0.1, -3.0, 0.5, 2.0]), "rho": jnp.array([5.0, 5.0, -5.0, 5.0])}
    pruned, kept = vi.prune_by_magnitude(q, 0.5)
    np.testing.assert_array_equal(np.asarray(kept), [False, True, False, True])
    np.testing.assert_allclose(pruned, [0.0, -3.0, 0.0, 2.0])
    # Signal-to-noise ranks differently: the 0.5 mean has a tiny scale, so it stays.
    _, kept_snr = vi.prune_by_signal_to_noise(q, 0.5)
    assert bool(kept_snr[2]) and not bool(kept_snr[0])
    with pytest.raises(ValueError, match="fraction=1.0"):
        vi.prune_by_magnitude(q, 1.0)
