"""Properties of bnnbook.likelihoods: NLL constants, reductions, MAP loss, validation."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from bnnbook import likelihoods as L
from bnnbook import priors


def _regression(n=9, d=1, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, d)).astype(np.float32), rng.normal(size=(n, d)).astype(np.float32))


def test_gaussian_matches_scipy_and_the_closed_form():
    y, mean = _regression(n=11, d=2)
    sigma = 0.7
    expected = stats.norm.logpdf(y, mean, sigma)
    assert float(L.gaussian_log_likelihood(y, mean, sigma)) == pytest.approx(expected.sum(), rel=1e-5)
    np.testing.assert_allclose(L.gaussian_log_likelihood(y, mean, sigma, "none"), expected.sum(1), rtol=1e-5)
    assert float(L.gaussian_log_likelihood(y, mean, sigma, "mean")) == pytest.approx(expected.sum(1).mean(), rel=1e-5)
    # -sum = SSE / (2 sigma^2) + n log(sigma sqrt(2 pi)),  n = number of scalars
    sse = float(np.sum((y.astype(np.float64) - mean) ** 2))
    closed = sse / (2 * sigma ** 2) + y.size * math.log(sigma * math.sqrt(2 * math.pi))
    assert -float(L.gaussian_log_likelihood(y, mean, sigma)) == pytest.approx(closed, rel=1e-5)


def test_gaussian_with_per_example_noise():
    y, mean = _regression(n=6)
    sigma = np.linspace(0.2, 2.0, 6).reshape(6, 1).astype(np.float32)
    np.testing.assert_allclose(L.gaussian_log_likelihood(y, mean, sigma, "none"),
                               stats.norm.logpdf(y, mean, sigma)[:, 0], rtol=1e-5)
    # learned noise: d/d sigma of the log-likelihood is -1/sigma + r^2/sigma^3
    g = jax.grad(lambda s: L.gaussian_log_likelihood(y, mean, s))(jnp.float32(0.9))
    r2 = float(np.sum((y.astype(np.float64) - mean) ** 2))
    assert float(g) == pytest.approx(-y.size / 0.9 + r2 / 0.9 ** 3, rel=1e-4)


def test_categorical_is_log_softmax_by_hand():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(8, 5)) * 3
    labels = rng.integers(0, 5, size=8)
    shifted = logits - logits.max(1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    by_hand = log_softmax[np.arange(8), labels]
    got = L.categorical_log_likelihood(jnp.asarray(logits, jnp.float32), labels, "none")
    np.testing.assert_allclose(got, by_hand, rtol=1e-5, atol=1e-6)
    assert float(L.categorical_log_likelihood(logits.astype(np.float32), labels)) == pytest.approx(by_hand.sum(), rel=1e-5)
    assert float(L.categorical_log_likelihood(logits.astype(np.float32), labels, "mean")) == pytest.approx(by_hand.mean(), rel=1e-5)


def test_categorical_is_stable_and_uniform_logits_give_log_k():
    labels = np.array([0, 3])
    huge = jnp.asarray([[1000.0, 0, 0, 0], [0, 0, 0, -1000.0]])
    values = L.categorical_log_likelihood(huge, labels, "none")
    assert np.all(np.isfinite(values))
    assert float(values[0]) == pytest.approx(0.0, abs=1e-6)
    assert float(L.categorical_log_likelihood(jnp.zeros((3, 10)), np.array([1, 2, 3]), "mean")) == pytest.approx(-math.log(10), rel=1e-6)


def test_map_loss_is_scaled_negative_log_posterior():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(20, 3)).astype(np.float32)
    y = rng.normal(size=(20, 1)).astype(np.float32)
    params = {"w": jnp.asarray(rng.normal(size=(3, 1)), jnp.float32)}
    apply = lambda p, x: x @ p["w"]
    prior = priors.Gaussian(0.5)
    n = 20
    loss_fn = L.map_loss(apply, "gaussian", prior, num_examples=n, noise_std=0.3)
    loss, metrics = loss_fn(params, (x, y), None)
    neg_log_post = -L.gaussian_log_likelihood(y, apply(params, x), 0.3) - prior.log_prob(params)
    assert float(loss) * n == pytest.approx(float(neg_log_post), rel=1e-5)
    assert float(metrics["nll"]) == pytest.approx(-float(L.gaussian_log_likelihood(y, apply(params, x), 0.3, "mean")), rel=1e-6)
    # its gradient is the mean-loss gradient plus the weight decay 1/(N s^2) * w
    mle = L.map_loss(apply, "gaussian", None, num_examples=n, noise_std=0.3)
    g_map = jax.grad(lambda p: loss_fn(p, (x, y))[0])(params)["w"]
    g_mle = jax.grad(lambda p: mle(p, (x, y))[0])(params)["w"]
    lam = priors.weight_decay_strength(prior, num_examples=n)
    np.testing.assert_allclose(g_map, g_mle + lam * params["w"], rtol=1e-5, atol=1e-6)


def test_map_loss_works_with_fit_and_categorical():
    from bnnbook.train import fit
    import optax
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    labels = (x[:, 0] > 0).astype(np.int32)
    params = {"w": jnp.zeros((4, 2)), "b": jnp.zeros(2)}
    apply = lambda p, x: x @ p["w"] + p["b"]
    loss_fn = L.map_loss(apply, "categorical", priors.Laplace(1.0), num_examples=64)
    result = fit(loss_fn, params, optax.adam(0.1), (x, labels), num_steps=50, key=jax.random.key(0),
                 num_updates=1, progress=False)
    assert result.history["loss"][-1] < result.history["loss"][0]
    assert set(result.history) >= {"loss", "nll", "neg_log_prior", "grad_norm"}


@pytest.mark.parametrize("call, name", [
    (lambda: L.gaussian_log_likelihood(np.zeros((4, 1)), np.zeros((4,)), 1.0), "mean"),
    (lambda: L.gaussian_log_likelihood(np.zeros((4, 1)), np.zeros((4, 1)), np.ones(3)), "noise_std"),
    (lambda: L.gaussian_log_likelihood(np.zeros((4, 1)), np.zeros((4, 1)), 0.0), "noise_std"),
    (lambda: L.gaussian_log_likelihood(np.zeros((4, 1)), np.zeros((4, 1)), 1.0, "avg"), "reduction"),
    (lambda: L.categorical_log_likelihood(np.zeros((4, 3)), np.zeros((5,), int)), "labels"),
    (lambda: L.categorical_log_likelihood(np.zeros((4, 3)), np.zeros((4, 3), int)), "labels"),
    (lambda: L.categorical_log_likelihood(np.zeros((4, 3)), np.zeros((4,), int), "total"), "reduction"),
    (lambda: L.map_loss(lambda p, x: x, "gaussian", num_examples=10), "noise_std"),
    (lambda: L.map_loss(lambda p, x: x, "poisson", num_examples=10), "likelihood"),
    (lambda: L.map_loss(lambda p, x: x, "categorical", num_examples=0), "num_examples"),
    (lambda: L.map_loss(lambda p, x: x, "categorical", prior=0.1, num_examples=10), "prior"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_categorical_nll_is_optax_cross_entropy():
    import optax
    rng = np.random.default_rng(4)
    logits = jnp.asarray(rng.normal(size=(16, 7)) * 2, jnp.float32)
    labels = jnp.asarray(rng.integers(0, 7, size=16))
    cross_entropy = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    np.testing.assert_allclose(-L.categorical_log_likelihood(logits, labels, "none"), cross_entropy, rtol=1e-5, atol=1e-6)


def test_gaussian_nll_with_unit_noise_is_half_sse_plus_constant():
    y, mean = _regression(n=13, d=1, seed=5)
    sse = float(np.sum((y.astype(np.float64) - mean) ** 2))
    nll = -float(L.gaussian_log_likelihood(y, mean, 1.0))
    assert nll == pytest.approx(0.5 * sse + 13 * 0.5 * math.log(2 * math.pi), rel=1e-6)
    # the constant does not depend on the predictions: shifting the mean changes only the SSE part
    shifted = -float(L.gaussian_log_likelihood(y, mean + 1.0, 1.0))
    sse_shifted = float(np.sum((y.astype(np.float64) - mean - 1.0) ** 2))
    assert shifted - nll == pytest.approx(0.5 * (sse_shifted - sse), rel=1e-5)


def test_learned_noise_mle_is_the_rms_residual():
    y, mean = _regression(n=40, d=1, seed=6)
    rms = float(np.sqrt(np.mean((y.astype(np.float64) - mean) ** 2)))
    log_lik = lambda s: L.gaussian_log_likelihood(y, mean, s)
    assert float(jax.grad(log_lik)(jnp.float32(rms))) == pytest.approx(0.0, abs=1e-3)
    for other in (0.8 * rms, 1.25 * rms):
        assert float(log_lik(other)) < float(log_lik(rms))


def test_map_loss_checks_output_and_target_shapes():
    apply = lambda p, x: x @ p["w"]
    params = {"w": jnp.zeros((3, 1))}
    x = np.zeros((5, 3), np.float32)
    loss_fn = L.map_loss(apply, "gaussian", priors.Gaussian(1.0), num_examples=5, noise_std=1.0)
    with pytest.raises(ValueError, match="targets"):
        loss_fn(params, (x, np.zeros((5,), np.float32)))
    logits_fn = L.map_loss(lambda p, x: x @ p["w"], "categorical", num_examples=5)
    with pytest.raises(ValueError, match="targets"):
        logits_fn({"w": jnp.zeros((3, 4))}, (x, np.zeros((5, 4), np.int32)))


def test_labels_outside_the_classes_are_refused_or_nan_never_wrapped():
    logits = jnp.asarray([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]])
    for bad in ([-1, 0], [3, 0]):
        with pytest.raises(ValueError, match=r"\[0, 3\)"):
            L.categorical_log_likelihood(logits, np.array(bad))
        # under jit the range cannot be checked: the bad example's term is NaN, not another class's
        traced = jax.jit(lambda y: L.categorical_log_likelihood(logits, y, "none"))(jnp.asarray(bad))
        assert np.isnan(float(traced[0])) and float(traced[1]) == pytest.approx(
            float(jax.nn.log_softmax(logits[1])[0]), rel=1e-6)
