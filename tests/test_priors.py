"""Properties of bnnbook.priors: MAP = weight decay, densities, sampling, validation."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats

from bnnbook import priors


def _params(seed=0):
    rng = np.random.default_rng(seed)
    return {"w1": jnp.asarray(rng.normal(size=(5, 3)), jnp.float32),
            "b1": jnp.asarray(rng.normal(size=(3,)), jnp.float32),
            "w2": jnp.asarray(rng.normal(size=(3, 2)), jnp.float32)}


def _close(a, b, **kw):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), **kw)


@pytest.mark.parametrize("scale", [0.1, 1.0, 3.0])
def test_gaussian_prior_gradient_is_l2_weight_decay(scale):
    params = _params()
    lam = priors.weight_decay_strength(priors.Gaussian(scale))
    assert lam == pytest.approx(1.0 / scale ** 2, rel=1e-6)
    grads = jax.grad(lambda p: -priors.Gaussian(scale).log_prob(p))(params)
    _close(grads, jax.tree_util.tree_map(lambda w: lam * w, params), rtol=1e-6, atol=1e-7)
    # and it is the gradient of the explicit penalty (lambda/2)||w||^2
    _close(grads, jax.grad(lambda p: priors.l2_penalty(p, lam))(params), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("scale", [0.05, 0.5, 2.0])
def test_laplace_prior_gradient_is_l1(scale):
    params = _params(1)
    lam = priors.weight_decay_strength(priors.Laplace(scale))
    assert lam == pytest.approx(1.0 / scale, rel=1e-6)
    grads = jax.grad(lambda p: -priors.Laplace(scale).log_prob(p))(params)
    _close(grads, jax.tree_util.tree_map(lambda w: lam * jnp.sign(w), params), rtol=1e-6)
    _close(grads, jax.grad(lambda p: priors.l1_penalty(p, lam))(params), rtol=1e-6)


def test_map_sgd_step_equals_decayed_weights_step():
    params = _params(2)
    x = jnp.asarray(np.random.default_rng(3).normal(size=(7, 5)), jnp.float32)

    def loss(p):
        h = jnp.tanh(x @ p["w1"] + p["b1"])
        return jnp.mean((h @ p["w2"]) ** 2)

    scale, lr = 0.7, 0.05
    prior = priors.Gaussian(scale)
    lam = priors.weight_decay_strength(prior)

    sgd = optax.sgd(lr)
    grads = jax.grad(lambda p: loss(p) - prior.log_prob(p))(params)
    updates, _ = sgd.update(grads, sgd.init(params), params)
    map_step = optax.apply_updates(params, updates)

    decay = optax.chain(optax.add_decayed_weights(lam), optax.sgd(lr))
    updates, _ = decay.update(jax.grad(loss)(params), decay.init(params), params)
    decay_step = optax.apply_updates(params, updates)
    _close(map_step, decay_step, rtol=1e-5, atol=1e-6)


def test_strength_for_a_mean_loss_is_divided_by_n():
    n = 250
    assert priors.l2_strength(0.5, num_examples=n) == pytest.approx(1 / (n * 0.25))
    assert priors.l1_strength(0.5, num_examples=n) == pytest.approx(1 / (n * 0.5))
    params = _params(4)
    prior = priors.Gaussian(0.5)
    # gradient of -(1/N) log p(w) is the mean-loss weight decay times w
    grads = jax.grad(lambda p: -prior.log_prob(p) / n)(params)
    lam = priors.weight_decay_strength(prior, num_examples=n)
    _close(grads, jax.tree_util.tree_map(lambda w: lam * w, params), rtol=1e-5)


def test_from_strength_round_trips():
    for lam in (0.01, 1.0, 40.0):
        assert float(priors.weight_decay_strength(priors.gaussian_from_l2(lam))) == pytest.approx(lam, rel=1e-5)
        assert float(priors.weight_decay_strength(priors.laplace_from_l1(lam))) == pytest.approx(lam, rel=1e-5)
        assert float(priors.weight_decay_strength(priors.gaussian_from_l2(lam, 100), 100)) == pytest.approx(lam, rel=1e-5)


def test_log_densities_match_scipy():
    x = np.linspace(-4, 4, 33)
    np.testing.assert_allclose(priors.gaussian_log_prob(x, 1.3, 0.4), stats.norm.logpdf(x, 0.4, 1.3), rtol=1e-5)
    np.testing.assert_allclose(priors.laplace_log_prob(x, 0.6, -0.2), stats.laplace.logpdf(x, -0.2, 0.6), rtol=1e-5)
    params = {"a": jnp.asarray(x[:10]), "b": jnp.asarray(x[10:].reshape(-1, 1))}
    assert float(priors.Gaussian(1.3, 0.4).log_prob(params)) == pytest.approx(stats.norm.logpdf(x, 0.4, 1.3).sum(), rel=1e-5)
    assert float(priors.Laplace(0.6).log_prob(params)) == pytest.approx(stats.laplace.logpdf(x, 0, 0.6).sum(), rel=1e-5)


def test_scale_mixture_matches_direct_formula_and_is_stable():
    pi, s1, s2 = 0.3, 1.0, 0.05
    x = np.linspace(-3, 3, 61)
    direct = np.log(pi * stats.norm.pdf(x, 0, s1) + (1 - pi) * stats.norm.pdf(x, 0, s2))
    np.testing.assert_allclose(priors.scale_mixture_log_prob(x, pi, s1, s2), direct, rtol=1e-5, atol=1e-6)
    # far tails: the direct formula underflows to log(0), the stable one does not
    far = priors.scale_mixture_log_prob(jnp.asarray([60.0, -60.0]), pi, s1, s2)
    assert np.all(np.isfinite(far))
    np.testing.assert_allclose(far, math.log(pi) + stats.norm.logpdf(60.0, 0, s1), rtol=1e-5)


def test_scale_mixture_integrates_to_one():
    grid = np.linspace(-12, 12, 200001)
    density = np.exp(np.asarray(priors.scale_mixture_log_prob(jnp.asarray(grid, jnp.float32), 0.2, 1.0, 0.1), np.float64))
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("prior, variance", [
    (priors.Gaussian(0.5, mean=1.0), 0.25),
    (priors.Laplace(0.5), 2 * 0.25),
    (priors.ScaleMixture(0.25, 1.0, 0.1), 0.25 * 1.0 + 0.75 * 0.01),
])
def test_sample_moments_and_independence(prior, variance):
    like = {"a": jnp.zeros((200, 200)), "b": jnp.zeros((200, 200)), "c": jnp.zeros(3, jnp.float16)}
    draw = prior.sample(jax.random.key(0), like)
    assert jax.tree_util.tree_structure(draw) == jax.tree_util.tree_structure(like)
    assert all(d.shape == l.shape and d.dtype == l.dtype
               for d, l in zip(jax.tree_util.tree_leaves(draw), jax.tree_util.tree_leaves(like)))
    a, b = np.asarray(draw["a"], np.float64).ravel(), np.asarray(draw["b"], np.float64).ravel()
    mean = float(getattr(prior, "mean", 0.0))
    n = a.size
    for leaf in (a, b):  # 40,000 draws: 5 standard errors
        assert abs(leaf.mean() - mean) < 5 * math.sqrt(variance / n)
        assert leaf.var() == pytest.approx(variance, rel=0.1)
    # same shape, yet different keys: the leaves are uncorrelated, not copies
    assert not np.allclose(a, b)
    assert abs(np.corrcoef(a, b)[0, 1]) < 5 / math.sqrt(n)
    # a fixed key gives the same draw
    _close(draw, prior.sample(jax.random.key(0), like))


def test_priors_are_pytrees_under_jit_vmap_and_grad():
    params = _params(5)
    for prior in (priors.Gaussian(0.8), priors.Laplace(0.3), priors.ScaleMixture(0.5, 1.0, 0.2)):
        eager = prior.log_prob(params)
        jitted = jax.jit(lambda p, w: p.log_prob(w))(prior, params)
        assert float(jitted) == pytest.approx(float(eager), rel=1e-6)
        leaves = jax.tree_util.tree_leaves(prior)
        assert len(leaves) == len(type(prior)._fields)
    # the prior scale is learnable: d/ds of sum log N(w; 0, s^2) = -n/s + sum w^2 / s^3
    w = jnp.asarray([0.5, -1.5, 2.0])
    grad = jax.grad(lambda p: p.log_prob(w))(priors.Gaussian(1.2))
    assert isinstance(grad, priors.Gaussian)
    expected = -3 / 1.2 + float(jnp.sum(w ** 2)) / 1.2 ** 3
    assert float(grad.scale) == pytest.approx(expected, rel=1e-5)
    # vmap over a batch of priors
    scales = jnp.asarray([0.5, 1.0, 2.0])
    batched = jax.vmap(lambda s: priors.Gaussian(s).log_prob(w))(scales)
    np.testing.assert_allclose(batched, [stats.norm.logpdf(np.asarray(w), 0, s).sum() for s in (0.5, 1.0, 2.0)], rtol=1e-5)


@pytest.mark.parametrize("make, name", [
    (lambda: priors.Gaussian(0.0), "scale"),
    (lambda: priors.Gaussian(-1.0), "scale"),
    (lambda: priors.Laplace(-0.1), "scale"),
    (lambda: priors.ScaleMixture(0.0, 1.0, 0.1), "pi"),
    (lambda: priors.ScaleMixture(1.5, 1.0, 0.1), "pi"),
    (lambda: priors.ScaleMixture(0.5, -1.0, 0.1), "sigma1"),
    (lambda: priors.ScaleMixture(0.5, 1.0, 0.0), "sigma2"),
    (lambda: priors.gaussian_log_prob(1.0, 0.0), "scale"),
    (lambda: priors.l2_penalty(_params(), -0.1), "strength"),
    (lambda: priors.l1_penalty(_params(), -2.0), "strength"),
    (lambda: priors.gaussian_from_l2(-1.0), "strength"),
    (lambda: priors.laplace_from_l1(0.0), "strength"),
    (lambda: priors.l2_strength(1.0, num_examples=0), "num_examples"),
    (lambda: priors.weight_decay_strength(priors.ScaleMixture(0.5, 1.0, 0.1)), "prior"),
    (lambda: priors.weight_decay_strength(priors.Gaussian(1.0, mean=0.5)), "prior"),
])
def test_bad_input_names_the_argument(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_bad_value_is_in_the_message():
    with pytest.raises(ValueError, match=r"-0\.25"):
        priors.Gaussian(-0.25)


@pytest.mark.parametrize("scale", [0.25, 0.5, 2.0])
def test_gaussian_prior_gradient_is_exactly_lambda_w(scale):
    # with a power-of-two scale every operation is exact in floating point, so
    # the gradient of -log N(w; 0, s^2) and lambda * w agree bit for bit
    params = _params(6)
    lam = priors.l2_strength(scale)
    grads = jax.grad(lambda p: -priors.Gaussian(scale).log_prob(p))(params)
    for g, w in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(params)):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(jnp.float32(lam) * w))


def test_laplace_gradient_is_lambda_sign_w_including_zero():
    w = jnp.asarray([-2.0, -1e-8, 0.0, 0.0, 3e-7, 5.0])
    scale = 0.2
    lam = priors.l1_strength(scale)
    grad = jax.grad(lambda v: -priors.Laplace(scale).log_prob(v))(w)
    np.testing.assert_allclose(grad, lam * np.sign(np.asarray(w)), rtol=1e-6)
    assert float(grad[2]) == 0.0  # the smallest subgradient at 0, not jnp.abs's choice of 1
    np.testing.assert_allclose(jax.grad(lambda v: priors.l1_penalty(v, lam))(w), grad, rtol=1e-6)


def _one_step(loss_fn, params, optimizer, data):
    from bnnbook.train import fit
    return fit(loss_fn, params, optimizer, data, num_steps=1, key=jax.random.key(0),
               num_updates=1, progress=False).params


def test_one_map_step_equals_one_add_decayed_weights_step_on_a_haiku_net():
    from bnnbook import likelihoods, nets
    rng = np.random.default_rng(7)
    x = rng.normal(size=(24, 3)).astype(np.float32)
    y = rng.normal(size=(24, 1)).astype(np.float32)
    net = nets.mlp((8,), 1)
    params = net.init(jax.random.key(0), x)
    n, scale, lr = len(x), 0.3, 0.05
    prior = priors.Gaussian(scale)
    map_loss = likelihoods.map_loss(net.apply, "gaussian", prior, num_examples=n, noise_std=1.0)
    mle_loss = likelihoods.map_loss(net.apply, "gaussian", None, num_examples=n, noise_std=1.0)
    # map_loss is the negative log posterior divided by N, so the decay is 1 / (N s^2)
    lam = priors.weight_decay_strength(prior, num_examples=n)
    assert lam == pytest.approx(1.0 / (n * scale ** 2))
    for make in (optax.sgd, optax.adam):
        map_step = _one_step(map_loss, params, make(lr), (x, y))
        decay_step = _one_step(mle_loss, params, optax.chain(optax.add_decayed_weights(lam), make(lr)), (x, y))
        _close(map_step, decay_step, rtol=1e-5, atol=1e-7)
    # the wrong pairing, a decay of 1 / s^2 with the mean loss, is N times too strong
    wrong = _one_step(mle_loss, params, optax.chain(optax.add_decayed_weights(1 / scale ** 2), optax.sgd(lr)), (x, y))
    map_step = _one_step(map_loss, params, optax.sgd(lr), (x, y))
    assert not np.allclose(np.asarray(wrong["mlp/~/linear_0"]["w"]), np.asarray(map_step["mlp/~/linear_0"]["w"]))
    # AdamW decays the weights *after* Adam's rescaling: not the MAP gradient step
    adamw_step = _one_step(mle_loss, params, optax.adamw(lr, weight_decay=lam), (x, y))
    map_adam = _one_step(map_loss, params, optax.adam(lr), (x, y))
    assert not np.allclose(np.asarray(adamw_step["mlp/~/linear_0"]["w"]), np.asarray(map_adam["mlp/~/linear_0"]["w"]),
                           rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("make, name", [
    (lambda: priors.laplace_log_prob(1.0, 0.0), "scale"),
    (lambda: priors.l1_strength(-0.5), "scale"),
    (lambda: priors.l2_strength(0.0), "scale"),
    (lambda: priors.scale_mixture_log_prob(0.0, 0.5, 1.0, -0.1), "sigma2"),
    (lambda: priors.l2_penalty(_params(), float("nan")), "strength"),
])
def test_more_bad_input_names_the_argument(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_unconstrained_scale_mixture_round_trips_and_any_values_are_valid():
    prior = priors.ScaleMixture(0.2, 1.0, 0.1)
    raw = priors.unconstrained_scale_mixture(prior)
    back = priors.constrained_scale_mixture(raw)
    for name in ("pi", "sigma1", "sigma2"):
        np.testing.assert_allclose(getattr(back, name), getattr(prior, name), rtol=1e-6)
    # any real coordinates give a valid prior, and the gradient reaches all three
    for values in ((-8.0, 3.0, -9.0), (8.0, -4.0, 2.0)):
        raw = dict(zip(("logit_pi", "log_sigma1", "log_sigma2"), map(jnp.float32, values)))
        mixture = priors.constrained_scale_mixture(raw)
        assert 0 < float(mixture.pi) < 1 and float(mixture.sigma1) > 0 and float(mixture.sigma2) > 0
        w = {"w": jnp.linspace(-2.0, 2.0, 9)}
        grads = jax.grad(lambda r: priors.constrained_scale_mixture(r).log_prob(w))(raw)
        assert all(np.isfinite(float(g)) and float(g) != 0.0 for g in grads.values())
    with pytest.raises(ValueError, match="prior="):
        priors.unconstrained_scale_mixture(priors.Gaussian(1.0))
    with pytest.raises(ValueError, match="raw="):
        priors.constrained_scale_mixture({"pi": 0.5})


def test_l1_optimum_sits_on_a_corner_with_an_exact_zero_where_the_l2_optimum_has_none():
    # Orthonormal design: the least-squares point is X^T y = (2, 0.5), outside both unit balls.
    x = np.linalg.qr(np.random.default_rng(0).normal(size=(20, 2)))[0]
    y = x @ np.array([2.0, 0.5])
    l1 = priors.constrained_least_squares(x, y, 1.0, norm=1)
    l2 = priors.constrained_least_squares(x, y, 1.0, norm=2)
    assert l1[1] == 0.0 and l1[0] == pytest.approx(1.0)  # soft-thresholding (2, 0.5) to L1 norm 1: a corner
    assert np.all(l2 != 0) and np.linalg.norm(l2) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(l2, np.array([2.0, 0.5]) / np.linalg.norm([2.0, 0.5]), atol=1e-9)  # shrunk, same direction
    # No point of either ball's boundary has a lower loss than the optimum found.
    angle = np.linspace(0, 2 * np.pi, 20001)
    loss = lambda w: np.sum((w @ x.T - y) ** 2, axis=-1)
    circle = np.stack([np.cos(angle), np.sin(angle)], 1)
    diamond = circle / np.abs(circle).sum(1, keepdims=True)
    assert loss(l2[None])[0] <= loss(circle).min() + 1e-9
    assert loss(l1[None])[0] <= loss(diamond).min() + 1e-9


def test_constrained_least_squares_inside_the_ball_is_least_squares_and_refuses_bad_input():
    x = np.random.default_rng(1).normal(size=(30, 2))
    y = x @ np.array([0.2, -0.1])
    for norm in (1, 2):
        np.testing.assert_allclose(priors.constrained_least_squares(x, y, 5.0, norm), np.linalg.lstsq(x, y, rcond=None)[0])
    with pytest.raises(ValueError, match="norm"):
        priors.constrained_least_squares(x, y, 1.0, norm=3)
    with pytest.raises(ValueError, match="radius"):
        priors.constrained_least_squares(x, y, -1.0, norm=1)
