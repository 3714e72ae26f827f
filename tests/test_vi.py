"""Properties of bnnbook.vi: KL identities, the ELBO bound against exact Bayesian
linear regression, independent noise per leaf, minibatch KL weights, validation."""

import math

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from bnnbook import likelihoods, priors, vi


def _tree(seed=0, shapes=((4, 3), (3,), (3, 2))):
    rng = np.random.default_rng(seed)
    return {f"leaf{i}": jnp.asarray(rng.normal(size=s), jnp.float32) for i, s in enumerate(shapes)}


def _random_q(seed=0, parameterization="rho"):
    rng = np.random.default_rng(seed)
    mean = _tree(seed)
    if parameterization == "rho":
        scale = jax.tree_util.tree_map(lambda m: jnp.asarray(rng.uniform(-3, 1, m.shape), jnp.float32), mean)
        return {"mean": mean, "rho": scale}
    log_var = jax.tree_util.tree_map(lambda m: jnp.asarray(rng.uniform(-6, 1, m.shape), jnp.float32), mean)
    return {"mean": mean, "log_var": log_var}


def _flat(tree):
    return np.concatenate([np.asarray(leaf, np.float64).ravel() for leaf in jax.tree_util.tree_leaves(tree)])


def _regression_problem(seed, n=None, d=None):
    """A random conjugate problem with correlated features (so mean field is not exact)."""
    rng = np.random.default_rng(seed)
    n = n or int(rng.integers(5, 40))
    d = d or int(rng.integers(1, 6))
    mixing = rng.normal(size=(d, d))
    x = rng.normal(size=(n, d)) @ mixing
    noise_std, prior_std = float(rng.uniform(0.2, 2.0)), float(rng.uniform(0.3, 3.0))
    w = rng.normal(size=d) * prior_std
    y = x @ w + noise_std * rng.normal(size=n)
    return x, y, noise_std, prior_std


# ---------------------------------------------------------------- Gaussian KL

def test_gaussian_kl_matches_numerical_integration():
    rng = np.random.default_rng(0)
    for _ in range(10):
        mq, mp = rng.normal(size=2)
        sq, sp = rng.uniform(0.1, 3.0, size=2)
        integrand = lambda w: stats.norm.pdf(w, mq, sq) * (stats.norm.logpdf(w, mq, sq) - stats.norm.logpdf(w, mp, sp))
        numeric = integrate.quad(integrand, mq - 15 * sq, mq + 15 * sq, limit=200)[0]
        assert float(vi.gaussian_kl(mq, sq, mp, sp)) == pytest.approx(numeric, rel=1e-4, abs=1e-6)


def test_kl_is_nonnegative_and_zero_only_at_the_prior():
    rng = np.random.default_rng(1)
    mq, mp = rng.normal(size=1000), rng.normal(size=1000)
    sq, sp = rng.uniform(0.05, 4.0, size=1000), rng.uniform(0.05, 4.0, size=1000)
    kl = np.asarray(vi.gaussian_kl(mq, sq, mp, sp))
    assert np.all(kl >= 0)
    assert np.all(kl > 0)  # random parameters never coincide
    np.testing.assert_allclose(vi.gaussian_kl(mp, sp, mp, sp), 0.0, atol=1e-6)
    # a tree q equal to the prior, in both parameterisations, has KL 0; any change makes it positive
    prior = priors.Gaussian(0.7, mean=0.2)
    like = _tree(2)
    for q in (vi.init_mean_field(jax.tree_util.tree_map(lambda m: jnp.full_like(m, 0.2), like), init_scale=0.7),
              vi.init_mean_field(jax.tree_util.tree_map(lambda m: jnp.full_like(m, 0.2), like),
                                 init_log_var=2 * math.log(0.7))):
        assert float(vi.closed_form_kl(q, prior)) == pytest.approx(0.0, abs=1e-5)
        moved = dict(q, mean=jax.tree_util.tree_map(lambda m: m + 0.05, q["mean"]))
        assert float(vi.closed_form_kl(moved, prior)) > 1e-4


@pytest.mark.parametrize("parameterization", ["rho", "log_var"])
def test_closed_form_kl_of_a_tree_is_the_sum_of_elementwise_kls(parameterization):
    q = _random_q(3, parameterization)
    prior = priors.Gaussian(0.8)
    scales = _flat(vi.stddev(q))
    expected = np.sum(np.log(0.8 / scales) + (scales ** 2 + _flat(q["mean"]) ** 2) / (2 * 0.64) - 0.5)
    assert float(vi.closed_form_kl(q, prior)) == pytest.approx(expected, rel=1e-5)
    assert float(vi.kl_divergence(q, prior)) == pytest.approx(expected, rel=1e-5)


def test_monte_carlo_kl_is_unbiased_for_the_closed_form():
    q = _random_q(4, "log_var")
    prior = priors.Gaussian(1.3)
    exact = float(vi.closed_form_kl(q, prior))
    keys = jax.random.split(jax.random.key(0), 400)
    estimates = np.asarray(jax.jit(jax.vmap(lambda k: vi.monte_carlo_kl(q, prior, k, 8)))(keys), np.float64)
    standard_error = estimates.std() / math.sqrt(len(estimates))
    assert abs(estimates.mean() - exact) < 5 * standard_error
    # averaging more draws shrinks the spread like 1 / sqrt(S)
    single = np.asarray(jax.jit(jax.vmap(lambda k: vi.monte_carlo_kl(q, prior, k, 1)))(keys), np.float64)
    assert single.std() / estimates.std() == pytest.approx(math.sqrt(8), rel=0.25)


def test_quadrature_kl_matches_closed_form_and_integration_for_the_scale_mixture():
    q = _random_q(5, "log_var")
    q = {name: {"leaf0": tree["leaf0"][:2], "leaf1": tree["leaf1"]} for name, tree in q.items()}
    gaussian = priors.Gaussian(0.9, mean=-0.1)
    assert float(vi.quadrature_kl(q, gaussian)) == pytest.approx(float(vi.closed_form_kl(q, gaussian)), rel=1e-5)
    # in chunks smaller than the tree (a remainder chunk included) it is the same sum
    assert float(vi.quadrature_kl(q, gaussian, chunk_size=4)) == pytest.approx(
        float(vi.closed_form_kl(q, gaussian)), rel=1e-5)
    mixture = priors.ScaleMixture(0.3, 1.0, 0.05)
    means, scales = _flat(q["mean"]), _flat(vi.stddev(q))
    numeric = 0.0
    for m, s in zip(means, scales):
        integrand = lambda w: stats.norm.pdf(w, m, s) * (
            stats.norm.logpdf(w, m, s) - np.log(0.3 * stats.norm.pdf(w, 0, 1.0) + 0.7 * stats.norm.pdf(w, 0, 0.05)))
        numeric += integrate.quad(integrand, m - 12 * s, m + 12 * s, limit=400, points=[0.0] if abs(m) < 12 * s else None)[0]
    assert float(vi.quadrature_kl(q, mixture)) == pytest.approx(numeric, rel=1e-4)
    # and Monte Carlo is unbiased for it (no closed form exists)
    keys = jax.random.split(jax.random.key(1), 300)
    estimates = np.asarray(jax.jit(jax.vmap(lambda k: vi.kl_divergence(q, mixture, k, 4)))(keys), np.float64)
    assert abs(estimates.mean() - numeric) < 5 * estimates.std() / math.sqrt(len(estimates))


def test_log_scale_is_finite_when_softplus_underflows():
    like = _tree(6)
    q = vi.init_mean_field(like, init_rho=-120.0)  # softplus(-120) underflows to 0 in float32
    kl = vi.closed_form_kl(q, priors.Gaussian(1.0))
    assert np.isfinite(float(kl))
    grads = jax.grad(lambda q: vi.closed_form_kl(q, priors.Gaussian(1.0)))(q)
    assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree_util.tree_leaves(grads))
    # d/d rho of -log softplus(rho) is -1 for very negative rho (softplus ~ exp)
    np.testing.assert_allclose(_flat(grads["rho"]), -1.0, rtol=1e-5)


# ---------------------------------------------------------------- the family

def test_init_from_haiku_params_and_scales():
    net = hk.without_apply_rng(hk.transform(lambda x: hk.nets.MLP([5, 2])(x)))
    params = net.init(jax.random.key(0), jnp.zeros((1, 3)))
    q = vi.init_mean_field(params, init_scale=0.02)
    assert jax.tree_util.tree_structure(q["mean"]) == jax.tree_util.tree_structure(params)
    for a, b in zip(jax.tree_util.tree_leaves(q["mean"]), jax.tree_util.tree_leaves(params)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(_flat(vi.stddev(q)), 0.02, rtol=1e-5)
    assert vi.parameterization(q) == "softplus"
    q = vi.init_mean_field(params, init_log_var=-7.0)
    np.testing.assert_allclose(_flat(vi.stddev(q)) ** 2, math.exp(-7.0), rtol=1e-5)
    assert vi.parameterization(q) == "log_var"
    scales = jnp.asarray([1e-4, 0.01, 1.0, 30.0])
    np.testing.assert_allclose(jax.nn.softplus(vi.inverse_softplus(scales)), scales, rtol=1e-5)


@pytest.mark.parametrize("parameterization", ["rho", "log_var"])
def test_sample_moments_and_independent_noise_per_leaf(parameterization):
    # two leaves with identical shape, mean and scale: their noise must not be shared
    like = {"a": jnp.zeros((100, 100)), "b": jnp.zeros((100, 100))}
    q = (vi.init_mean_field(jax.tree_util.tree_map(lambda m: m + 1.0, like), init_scale=0.5)
         if parameterization == "rho" else
         vi.init_mean_field(jax.tree_util.tree_map(lambda m: m + 1.0, like), init_log_var=2 * math.log(0.5)))
    draw = vi.sample(q, jax.random.key(0))
    a, b = np.asarray(draw["a"], np.float64).ravel(), np.asarray(draw["b"], np.float64).ravel()
    n = a.size
    for leaf in (a, b):
        assert abs(leaf.mean() - 1.0) < 5 * 0.5 / math.sqrt(n)
        assert leaf.std() == pytest.approx(0.5, rel=0.05)
    assert abs(np.corrcoef(a, b)[0, 1]) < 5 / math.sqrt(n)
    # several draws: independent across draws too, and the key fixes them
    draws = vi.sample(q, jax.random.key(1), num_samples=3)
    assert draws["a"].shape == (3, 100, 100)
    first, second = np.asarray(draws["a"][0]).ravel(), np.asarray(draws["a"][1]).ravel()
    assert abs(np.corrcoef(first, second)[0, 1]) < 5 / math.sqrt(n)
    np.testing.assert_array_equal(vi.sample(q, jax.random.key(1), 3)["b"], draws["b"])


def test_log_prob_matches_scipy_and_gradients_reach_every_parameter():
    q = _random_q(7, "rho")
    w = vi.sample(q, jax.random.key(2))
    expected = stats.norm.logpdf(_flat(w), _flat(q["mean"]), _flat(vi.stddev(q))).sum()
    assert float(vi.log_prob(q, w)) == pytest.approx(expected, rel=1e-5)
    grads = jax.grad(lambda q: jnp.sum(jnp.stack([jnp.sum(x ** 2) for x in jax.tree_util.tree_leaves(
        vi.sample(q, jax.random.key(3)))])))(q)
    assert all(np.all(np.asarray(g) != 0) for g in jax.tree_util.tree_leaves(grads))


# ---------------------------------------------------------------- exact references

def test_log_evidence_is_the_marginal_gaussian_density():
    x, y, s, a = _regression_problem(0)
    cov = a ** 2 * x @ x.T + s ** 2 * np.eye(len(y))
    expected = stats.multivariate_normal(np.zeros(len(y)), cov).logpdf(y)
    assert vi.linear_regression_log_evidence(x, y, s, a) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("seed", range(8))
def test_elbo_is_below_the_log_evidence_with_equality_at_the_posterior(seed):
    x, y, s, a = _regression_problem(seed)
    d = x.shape[1]
    log_evidence = vi.linear_regression_log_evidence(x, y, s, a)
    post_mean, post_cov = vi.linear_regression_posterior(x, y, s, a)
    assert vi.linear_regression_elbo(x, y, s, a, post_mean, post_cov) == pytest.approx(log_evidence, abs=1e-8)
    rng = np.random.default_rng(100 + seed)
    for _ in range(20):
        mean = post_mean + rng.normal(size=d)
        root = rng.normal(size=(d, d))
        cov = root @ root.T + 1e-3 * np.eye(d)
        for c in (cov, np.diag(cov)):
            elbo = vi.linear_regression_elbo(x, y, s, a, mean, c)
            assert elbo <= log_evidence
            # the gap is exactly KL(q || posterior)
            c_full = np.diag(c) if c.ndim == 1 else c
            gap = vi.gaussian_kl_full(mean, c_full, post_mean, post_cov)
            assert log_evidence - elbo == pytest.approx(gap, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("seed", range(4))
def test_best_mean_field_gap_and_optimality(seed):
    x, y, s, a = _regression_problem(seed, d=4)
    log_evidence = vi.linear_regression_log_evidence(x, y, s, a)
    mean, variances, gap = vi.linear_regression_mean_field(x, y, s, a)
    best = vi.linear_regression_elbo(x, y, s, a, mean, variances)
    assert log_evidence - best == pytest.approx(gap, rel=1e-6, abs=1e-10)
    assert gap >= 0
    # no nearby mean-field q does better (it is the optimum of a smooth objective)
    rng = np.random.default_rng(seed)
    for _ in range(30):
        m = mean + 0.05 * rng.normal(size=4)
        v = variances * np.exp(0.1 * rng.normal(size=4))
        assert vi.linear_regression_elbo(x, y, s, a, m, v) <= best + 1e-12
    # mean field under-estimates every marginal variance
    _, post_cov = vi.linear_regression_posterior(x, y, s, a)
    assert np.all(variances <= np.diag(post_cov) * (1 + 1e-9))


def _linear_model_problem():
    x, y, s, a = _regression_problem(11, n=30, d=3)
    model = hk.without_apply_rng(hk.transform(lambda inputs: hk.Linear(1)(inputs)))
    params = model.init(jax.random.key(0), jnp.zeros((1, 3)))
    features = np.concatenate([x, np.ones((len(y), 1))], axis=1)  # hk.Linear adds a bias

    def log_likelihood(w, batch=(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))):
        inputs, targets = batch
        return likelihoods.gaussian_log_likelihood(targets, model.apply(w, inputs)[:, 0], s)

    def to_vector(tree):  # weights then bias, the column order of `features`
        return np.concatenate([np.asarray(tree["linear"]["w"], np.float64)[:, 0],
                               np.asarray(tree["linear"]["b"], np.float64)])

    return features, y, s, a, params, log_likelihood, to_vector


def test_jax_free_energy_estimates_the_exact_elbo():
    features, y, s, a, params, log_likelihood, to_vector = _linear_model_problem()
    q = vi.init_mean_field(params, init_scale=0.3)
    q["mean"] = jax.tree_util.tree_map(lambda m: m + 0.2, q["mean"])
    exact = vi.linear_regression_elbo(features, y, s, a, to_vector(q["mean"]), to_vector(vi.stddev(q)) ** 2)
    prior = priors.Gaussian(a)
    keys = jax.random.split(jax.random.key(4), 200)

    @jax.jit
    @jax.vmap
    def both_estimates(key):  # closed-form KL, and Monte Carlo KL on the same draws
        return jnp.stack([-vi.free_energy(q, log_likelihood, prior, key, num_samples=16, kl=kl)[0]
                          for kl in ("closed_form", "monte_carlo")])

    for estimates in np.asarray(both_estimates(keys), np.float64).T:
        assert abs(estimates.mean() - exact) < 5 * estimates.std() / math.sqrt(len(estimates)) + 1e-4 * abs(exact)


def test_free_energy_terms_beta_and_minibatch_weights():
    features, y, s, a, params, log_likelihood, _ = _linear_model_problem()
    q = vi.init_mean_field(params, init_scale=0.1)
    prior, key = priors.Gaussian(a), jax.random.key(5)
    f, terms = vi.free_energy(q, log_likelihood, prior, key, num_samples=4)
    assert float(f) == pytest.approx(float(terms["complexity_cost"] + terms["likelihood_cost"]), rel=1e-6)
    assert float(terms["likelihood_cost"]) == pytest.approx(-float(terms["expected_log_likelihood"]))
    f_half, terms_half = vi.free_energy(q, log_likelihood, prior, key, num_samples=4, beta=0.5)
    assert float(terms_half["complexity_cost"]) == pytest.approx(0.5 * float(terms["kl"]), rel=1e-6)
    f_zero, _ = vi.free_energy(q, log_likelihood, prior, key, num_samples=4, beta=0.0)
    assert float(f_zero) == pytest.approx(float(terms["likelihood_cost"]), rel=1e-6)
    # free_energy_loss on a minibatch: KL * B / N, per example or summed
    x32, y32 = jnp.asarray(features[:, :3], jnp.float32), jnp.asarray(y, jnp.float32)
    batch = (x32[:10], y32[:10])
    summed = vi.free_energy_loss(log_likelihood, prior, num_examples=30, per_example=False)
    per_example = vi.free_energy_loss(log_likelihood, prior, num_examples=30)
    loss_sum, metrics_sum = summed(q, batch, key)
    loss_mean, _ = per_example(q, batch, key)
    assert float(loss_mean) == pytest.approx(float(loss_sum) / 10, rel=1e-6)
    assert float(metrics_sum["complexity_cost"]) == pytest.approx(float(metrics_sum["kl"]) / 3, rel=1e-6)
    # summed over the three minibatches of an epoch, the KL shares add up to one whole KL
    epoch = sum(float(summed(q, (x32[i:i + 10], y32[i:i + 10]), key)[1]["complexity_cost"]) for i in (0, 10, 20))
    assert epoch == pytest.approx(float(terms["kl"]), rel=1e-5)
    # jit and grad pass through the loss
    grads = jax.jit(jax.grad(lambda q: per_example(q, batch, key)[0]))(q)
    assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree_util.tree_leaves(grads))


def test_kl_weights_sum_to_one_and_follow_blundell():
    for m in (1, 2, 5, 30, 2000):
        for scheme in ("uniform", "blundell"):
            weights = vi.kl_weights(m, scheme)
            assert weights.shape == (m,) and np.all(weights >= 0)
            assert weights.sum() == pytest.approx(1.0, rel=1e-12)
        assert vi.kl_weights(m, "per_example", num_examples=64 * m).sum() * 64 == pytest.approx(1.0)
    for m in (1, 3, 10):
        i = np.arange(1, m + 1)
        np.testing.assert_allclose(vi.kl_weights(m, "blundell"), 2.0 ** (m - i) / (2.0 ** m - 1), rtol=1e-12)
    weights = vi.kl_weights(12, "blundell")
    assert np.all(np.diff(weights) < 0)  # the first minibatches carry most of the KL


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("make, name", [
    (lambda: vi.gaussian_kl(0.0, 0.0, 0.0, 1.0), "scale_q"),
    (lambda: vi.gaussian_kl(0.0, 1.0, 0.0, -2.0), "scale_p"),
    (lambda: vi.init_mean_field(_tree(), init_scale=-0.1), "init_scale"),
    (lambda: vi.inverse_softplus(0.0), "scale"),
    (lambda: vi.free_energy(_random_q(), lambda w: 0.0, priors.Gaussian(1.0), jax.random.key(0), beta=-0.1), "beta"),
    (lambda: vi.free_energy(_random_q(), lambda w: 0.0, priors.Gaussian(1.0), jax.random.key(0), num_samples=0),
     "num_samples"),
    (lambda: vi.free_energy_loss(lambda w, b: 0.0, priors.Gaussian(1.0), num_examples=10, beta=-1.0), "beta"),
    (lambda: vi.free_energy_loss(lambda w, b: 0.0, priors.Gaussian(1.0), num_examples=10, num_samples=0),
     "num_samples"),
    (lambda: vi.free_energy_loss(lambda w, b: 0.0, priors.Gaussian(1.0), num_examples=0), "num_examples"),
    (lambda: vi.monte_carlo_kl(_random_q(), priors.Gaussian(1.0), jax.random.key(0), num_samples=0), "num_samples"),
    (lambda: vi.sample(_random_q(), jax.random.key(0), num_samples=-2), "num_samples"),
    (lambda: vi.kl_divergence(_random_q(), priors.ScaleMixture(0.5, 1.0, 0.1)), "key"),
    (lambda: vi.free_energy(_random_q(), lambda w: 0.0, priors.Laplace(1.0), jax.random.key(0), kl="closed_form"),
     "closed_form"),
    (lambda: vi.kl_weights(0), "num_batches"),
    (lambda: vi.kl_weights(4, "per_example"), "num_examples"),
    (lambda: vi.kl_weights(4, "geometric"), "scheme"),
    (lambda: vi.quadrature_kl(_random_q(), priors.Gaussian(1.0), num_points=1), "num_points"),
    (lambda: vi.linear_regression_elbo(np.ones((3, 2)), np.ones(3), 1.0, 1.0, np.zeros(2), np.array([1.0, 0.0])),
     "cov"),
    (lambda: vi.linear_regression_elbo(np.ones((3, 2)), np.ones(3), 1.0, 1.0, np.zeros(2), -np.eye(2)), "cov"),
    (lambda: vi.linear_regression_log_evidence(np.ones((3, 2)), np.ones(3), 0.0, 1.0), "noise_std"),
    (lambda: vi.linear_regression_posterior(np.ones((3, 2)), np.ones(3), 1.0, -1.0), "prior_std"),
    (lambda: vi.init_mean_field({"a": jnp.zeros(3)}, init_scale=0.1, init_rho=-3.0), "init_"),
    (lambda: vi.stddev({"mean": _tree(), "scale": _tree()}), "rho"),
])
def test_bad_input_names_the_argument(make, name):
    with pytest.raises(ValueError, match=name):
        make()


# ------------------------------------------------ gradient estimators, pruning

def _flat_draws(tree):
    """(draws, num_weights) from a tree whose leaves have a leading draw axis."""
    leaves = jax.tree_util.tree_leaves(tree)
    return np.concatenate([np.asarray(leaf, np.float64).reshape(leaf.shape[0], -1) for leaf in leaves], axis=1)


def _quadratic_problem():
    """f(w) = sum(a w^2 + b w): E_q[f] = sum(a (m^2 + s^2) + b m) in closed form."""
    q = _random_q(3)
    rng = np.random.default_rng(4)
    a = jax.tree_util.tree_map(lambda m: jnp.asarray(rng.uniform(0.5, 2.0, m.shape), jnp.float32), q["mean"])
    b = jax.tree_util.tree_map(lambda m: jnp.asarray(rng.normal(size=m.shape), jnp.float32), q["mean"])

    def f(w):
        return sum(jnp.sum(ai * wi ** 2 + bi * wi) for ai, wi, bi in
                   zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(w), jax.tree_util.tree_leaves(b)))

    def exact_expectation(q):
        m, s = q["mean"], vi.stddev(q)
        return sum(jnp.sum(ai * (mi ** 2 + si ** 2) + bi * mi) for ai, mi, si, bi in
                   zip(*(jax.tree_util.tree_leaves(t) for t in (a, m, s, b))))

    return q, f, _flat(jax.grad(exact_expectation)(q))


@pytest.mark.parametrize("estimator", ["reparameterized", "score", "score_baseline"])
def test_gradient_estimators_are_unbiased_for_a_gaussian_expectation(estimator):
    q, f, exact = _quadratic_problem()
    num_samples = 1 if estimator == "reparameterized" else 4
    one = {"reparameterized": lambda k: vi.reparameterized_gradient(f, q, k, num_samples),
           "score": lambda k: vi.score_function_gradient(f, q, k, num_samples),
           "score_baseline": lambda k: vi.score_function_gradient(f, q, k, num_samples, baseline=True)}[estimator]
    repeats = 4000
    flat = _flat_draws(jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(5), repeats)))
    standard_error = flat.std(0) / math.sqrt(repeats)
    assert np.all(np.abs(flat.mean(0) - exact) < 4.5 * standard_error + 1e-5)


def test_reparameterized_gradient_is_exact_for_linear_f_and_less_noisy_than_score():
    q, f, _ = _quadratic_problem()
    linear = lambda w: sum(jnp.sum(3.0 * leaf) for leaf in jax.tree_util.tree_leaves(w))  # noqa: E731
    keys = jax.random.split(jax.random.key(6), 200)
    grads = jax.jit(jax.vmap(lambda k: vi.reparameterized_gradient(linear, q, k, 1)))(keys)
    # d/dmean of 3 sum(mean + scale * eps) is 3 for every draw: the estimate has zero variance
    np.testing.assert_allclose(_flat_draws(grads["mean"]), 3.0, rtol=1e-6)
    path = jax.jit(jax.vmap(lambda k: vi.reparameterized_gradient(f, q, k, 2)))(keys)
    for baseline in (False, True):
        score = jax.jit(jax.vmap(lambda k: vi.score_function_gradient(f, q, k, 2, baseline=baseline)))(keys)
        assert _flat_draws(path).var(0).sum() < _flat_draws(score).var(0).sum()


def test_pruning_removes_the_lowest_signal_to_noise_weights():
    q = _random_q(7)
    snr = _flat(vi.signal_to_noise(q))
    np.testing.assert_allclose(snr, np.abs(_flat(q["mean"])) / _flat(vi.stddev(q)), rtol=1e-6)
    same, kept_all = vi.prune_by_signal_to_noise(q, 0.0)
    np.testing.assert_array_equal(_flat(same), _flat(q["mean"]))
    assert _flat(kept_all).all()
    for fraction in (0.25, 0.5, 0.9):
        pruned, kept = vi.prune_by_signal_to_noise(q, fraction)
        kept, pruned = _flat(kept).astype(bool), _flat(pruned)
        assert (~kept).sum() == round(fraction * snr.size)
        assert snr[kept].min() >= snr[~kept].max()
        np.testing.assert_array_equal(pruned[~kept], 0.0)
        np.testing.assert_array_equal(pruned[kept], _flat(q["mean"])[kept])
    with pytest.raises(ValueError, match="fraction=1.0"):
        vi.prune_by_signal_to_noise(q, 1.0)
    with pytest.raises(ValueError, match="num_samples"):
        vi.score_function_gradient(lambda w: 0.0, q, jax.random.key(0), 1, baseline=True)


def test_a_per_example_log_likelihood_is_refused_not_averaged_into_the_kl():
    # A vector of per-example terms would be averaged with the draws, shrinking the likelihood N-fold.
    q = _random_q(3)
    x = np.random.default_rng(3).normal(size=(50, 4)).astype(np.float32)
    labels = np.zeros(50, np.int32)

    def per_example(w):
        return likelihoods.categorical_log_likelihood(x @ w["leaf0"], labels, "none")

    with pytest.raises(ValueError, match=r"returned shape \(50,\) per weight draw.*reduction='sum'"):
        vi.free_energy(q, per_example, priors.Gaussian(1.0), jax.random.key(0), num_samples=2)
    summed = vi.free_energy(q, lambda w: jnp.sum(per_example(w)), priors.Gaussian(1.0), jax.random.key(0))
    assert np.isfinite(float(summed[0]))
    with pytest.raises(ValueError, match="per weight draw"):
        vi.reparameterized_gradient(lambda w: w["leaf1"], q, jax.random.key(0), num_samples=3)


def test_log_prob_refuses_a_stack_of_draws():
    q = _random_q(4)
    draws = vi.sample(q, jax.random.key(1), 5)
    with pytest.raises(ValueError, match="jax.vmap"):
        vi.log_prob(q, draws)
    one_by_one = [float(vi.log_prob(q, jax.tree_util.tree_map(lambda d: d[s], draws))) for s in range(5)]
    np.testing.assert_allclose(jax.vmap(lambda w: vi.log_prob(q, w))(draws), one_by_one, rtol=1e-5)
