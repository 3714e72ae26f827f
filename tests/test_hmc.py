"""Properties of bnnbook.hmc: the integrator, the Metropolis test, the adaptation,
the Gibbs moves, and the samples against exact answers (Gaussians, a grid
posterior) and against BlackJAX's NUTS."""

import math

import blackjax
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from bnnbook import hmc, priors


def _z(estimate, exact, standard_error):
    return np.abs(np.asarray(estimate) - np.asarray(exact)) / np.asarray(standard_error)


def _mc_error(draws, num_batches=20):
    """Monte Carlo standard error of the mean of draws shaped (chains, draws, ...),
    by batch means (NumPy only: no compilation, valid for correlated chains)."""
    draws = np.asarray(draws, np.float64)
    chains, length = draws.shape[:2]
    size = length // num_batches
    batches = draws[:, : size * num_batches].reshape(chains * num_batches, size, *draws.shape[2:]).mean(1)
    return batches.std(0, ddof=1) / math.sqrt(len(batches))


# --------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------

def _std_normal(params):
    return -0.5 * jnp.sum(params["x"] ** 2)


@pytest.mark.parametrize("step_size", [0.0, -0.1, float("nan"), float("inf")])
def test_bad_step_size_is_a_value_error(step_size):
    with pytest.raises(ValueError, match="step_size"):
        hmc.sample(_std_normal, {"x": jnp.zeros(2)}, jax.random.key(0), num_samples=2, step_size=step_size)
    with pytest.raises(ValueError, match="step_size"):
        hmc.leapfrog(lambda p: -_std_normal(p), {"x": jnp.zeros(2)}, {"x": jnp.ones(2)}, step_size, 3)


@pytest.mark.parametrize("num_leapfrog", [0, -3, 2.5, True])
def test_bad_leapfrog_count_is_a_value_error(num_leapfrog):
    with pytest.raises(ValueError, match="num_leapfrog"):
        hmc.sample(_std_normal, {"x": jnp.zeros(2)}, jax.random.key(0), num_samples=2, num_leapfrog=num_leapfrog)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_initial_position_is_a_value_error(bad):
    start = {"x": jnp.array([0.0, bad])}
    with pytest.raises(ValueError, match="initial_position.*non-finite"):
        hmc.sample(_std_normal, start, jax.random.key(0), num_samples=2)
    with pytest.raises(ValueError, match="initial_position.*non-finite"):
        hmc.sample_hierarchical(lambda p: 0.0, start, jax.random.key(0), num_samples=2)


def test_mismatched_shapes_are_value_errors():
    start = {"x": jnp.zeros(3)}
    with pytest.raises(ValueError, match="inverse_mass.*shape"):
        hmc.sample(_std_normal, start, jax.random.key(0), num_samples=2, inverse_mass={"x": jnp.ones(2)})
    with pytest.raises(ValueError, match="inverse_mass.*structure"):
        hmc.sample(_std_normal, start, jax.random.key(0), num_samples=2, inverse_mass={"y": jnp.ones(3)})
    with pytest.raises(ValueError, match="num_chains=4"):
        hmc.sample(_std_normal, start, jax.random.key(0), num_samples=2, num_chains=4)
    with pytest.raises(ValueError, match="momentum.*shape"):
        hmc.leapfrog(lambda p: -_std_normal(p), start, {"x": jnp.ones(2)}, 0.1, 3)


# --------------------------------------------------------------------------
# The integrator and one transition
# --------------------------------------------------------------------------

def _quadratic_potential(precision):
    return lambda p: 0.5 * jnp.sum(precision * p["x"] ** 2)


def test_leapfrog_is_time_reversible():
    potential = _quadratic_potential(jnp.array([1.0, 4.0, 0.25]))
    start = {"x": jnp.array([0.3, -1.2, 2.0])}
    momentum = {"x": jnp.array([1.0, 0.5, -0.7])}
    inverse_mass = {"x": jnp.array([1.0, 0.5, 2.0])}
    end, end_momentum = hmc.leapfrog(potential, start, momentum, 0.1, 25, inverse_mass)
    back, back_momentum = hmc.leapfrog(potential, end, jax.tree.map(jnp.negative, end_momentum), 0.1, 25,
                                       inverse_mass)
    np.testing.assert_allclose(back["x"], start["x"], atol=1e-5)
    np.testing.assert_allclose(-back_momentum["x"], momentum["x"], atol=1e-5)


def test_leapfrog_energy_error_shrinks_like_step_squared():
    potential = _quadratic_potential(jnp.array([1.0, 3.0]))
    start, momentum = {"x": jnp.array([1.0, -0.5])}, {"x": jnp.array([0.3, 1.0])}

    def energy_error(step, steps):
        end, end_momentum = hmc.leapfrog(potential, start, momentum, step, steps)
        return abs(float(potential(end) + hmc.kinetic_energy(end_momentum)
                         - potential(start) - hmc.kinetic_energy(momentum)))

    coarse, fine = energy_error(0.2, 10), energy_error(0.1, 20)  # the same trajectory length
    assert 0.15 < fine / coarse < 0.35  # 1/4 for a second-order integrator


def test_gaussian_prior_gradient_is_weight_decay_in_the_momentum_update():
    precision = 3.0
    prior = priors.Gaussian(1.0 / math.sqrt(precision))
    params = {"w": jnp.array([0.5, -2.0, 1.0])}
    potential = hmc.make_potential(hmc.log_posterior(lambda p: jnp.zeros(()), prior.log_prob))
    momentum = {"w": jnp.zeros(3)}
    step = 0.01
    # One leapfrog step with no likelihood: r <- r - (eps/2)(lambda w) - (eps/2)(lambda w'),
    # with w' = w + eps r_half, i.e. pure weight decay on the momentum.
    _, new_momentum = hmc.leapfrog(potential, params, momentum, step, 1)
    half = -0.5 * step * precision * params["w"]
    moved = params["w"] + step * half
    np.testing.assert_allclose(new_momentum["w"], half - 0.5 * step * precision * moved, rtol=1e-5)


def test_divergent_proposals_are_rejected_and_counted():
    # U = x^4 explodes for a huge step: every proposal diverges.
    result = hmc.sample(lambda p: -jnp.sum(p["x"] ** 4), {"x": jnp.array([0.5])}, jax.random.key(0),
                        num_samples=20, step_size=5.0, num_leapfrog=5, adapt_step_size=False)
    assert result.divergences == 20
    np.testing.assert_array_equal(result.accept_prob, 0.0)
    np.testing.assert_array_equal(result.samples["x"], 0.5)


def test_dual_averaging_update_moves_the_step_toward_the_target():
    state = hmc.dual_averaging_init(0.1)
    up = hmc.dual_averaging_update(state, accept_prob=1.0, target=0.8)
    down = hmc.dual_averaging_update(state, accept_prob=0.0, target=0.8)
    assert float(up.log_step) > float(down.log_step)


# --------------------------------------------------------------------------
# Samples against exact moments
# --------------------------------------------------------------------------

def test_correlated_2d_gaussian_mean_and_covariance():
    mean = np.array([1.0, -2.0])
    cov = np.array([[1.0, 1.8], [1.8, 4.0]])  # correlation 0.9
    precision = jnp.asarray(np.linalg.inv(cov), jnp.float32)

    def log_density(p):
        d = p["x"] - mean
        return -0.5 * d @ precision @ d

    result = hmc.sample(log_density, {"x": jnp.zeros((4, 2))}, jax.random.key(0), num_samples=1500,
                        num_warmup=400, num_leapfrog=10, num_chains=4, adapt_mass=True)
    draws = np.asarray(result.samples["x"], np.float64)  # (chains, draws, 2)
    flat = draws.reshape(-1, 2)
    # Each moment is checked against the Monte Carlo error of its own statistic.
    assert np.all(_z(draws.mean((0, 1)), mean, _mc_error(draws)) < 4.5)
    squares = (draws - mean) ** 2
    assert np.all(_z(squares.mean((0, 1)), np.diag(cov), _mc_error(squares)) < 4.5)
    products = (draws[..., 0] - mean[0]) * (draws[..., 1] - mean[1])
    assert _z(products.mean(), cov[0, 1], _mc_error(products)) < 4.5
    # Warm-up tuned the step size to the target acceptance (0.8 by default).
    np.testing.assert_allclose(result.warmup_accept_prob, 0.8, atol=0.05)
    assert result.divergences.sum() == 0


def test_100d_gaussian_means_and_variances():
    dim = 100
    scales = np.geomspace(0.1, 3.0, dim)
    centre = np.linspace(-1.0, 1.0, dim)

    def log_density(p):
        return -0.5 * jnp.sum(((p["x"] - centre) / scales) ** 2)

    # The jitter matters: with a fixed trajectory length some of the 100 scales
    # would be sampled with an almost exactly periodic trajectory (tiny ESS).
    result = hmc.sample(log_density, {"x": jnp.zeros((2, dim))}, jax.random.key(2), num_samples=800,
                        num_warmup=400, num_leapfrog=12, num_chains=2, adapt_mass=True, step_jitter=0.2)
    draws = np.asarray(result.samples["x"], np.float64)
    z_mean = _z(draws.mean((0, 1)), centre, _mc_error(draws))
    squares = (draws - centre) ** 2
    z_var = _z(squares.mean((0, 1)), scales ** 2, _mc_error(squares))
    assert z_mean.max() < 5.0 and np.mean(z_mean ** 2) < 2.0
    assert z_var.max() < 5.0 and np.mean(z_var ** 2) < 2.0
    # The adapted mass matrix learnt the scales (inverse mass ~ variance).
    ratio = np.asarray(result.inverse_mass["x"]) / scales ** 2
    assert np.all((ratio > 0.4) & (ratio < 2.5))


def test_temperature_scales_the_variance():
    result = hmc.sample(_std_normal, {"x": jnp.zeros((2, 5))}, jax.random.key(3), num_samples=1000,
                        num_warmup=300, num_chains=2, temperature=2.0)
    squares = np.asarray(result.samples["x"], np.float64) ** 2  # exp(-U/T): E[x^2] = T = 2
    assert np.all(_z(squares.mean((0, 1)), 2.0, _mc_error(squares)) < 4.5)


# --------------------------------------------------------------------------
# Gibbs moves and the hierarchical prior
# --------------------------------------------------------------------------

def test_gibbs_precision_matches_the_conjugate_gamma():
    values = {"a": jnp.array([0.5, -1.0, 2.0]), "b": jnp.array([[0.1, 0.3]])}
    shape, rate = 2.0, 0.5
    keys = jax.random.split(jax.random.key(4), 20000)
    draws = np.asarray(jax.vmap(lambda k: hmc.gibbs_precision(k, values, shape, rate))(keys), np.float64)
    post_shape, post_rate = shape + 5 / 2, rate + (0.25 + 1 + 4 + 0.01 + 0.09) / 2
    exact = stats.gamma(post_shape, scale=1 / post_rate)
    assert _z(draws.mean(), exact.mean(), exact.std() / math.sqrt(len(draws))) < 4.5
    assert stats.kstest(draws, exact.cdf).pvalue > 1e-3


def test_tempered_gibbs_precision_follows_the_tempered_conditional():
    # Under temperature T the conditional of lambda is proportional to
    # [N(v | 0, 1/lambda)^n Gamma(lambda | a, b)]^(1/T); its CDF here comes from quadrature.
    values = jnp.array([0.5, -1.0, 2.0, 0.1, 0.3])
    shape, rate, temperature = 2.0, 0.5, 0.5
    n, sum_sq = 5, float(jnp.sum(values ** 2))

    def log_unnormalised(lam):
        return ((0.5 * n + shape - 1.0) * np.log(lam) - lam * (rate + 0.5 * sum_sq)) / temperature

    grid = np.linspace(1e-6, 6.0, 20001)
    density = np.exp(log_unnormalised(grid) - log_unnormalised(grid).max())
    cdf = integrate.cumulative_trapezoid(density, grid, initial=0.0)
    cdf /= cdf[-1]
    keys = jax.random.split(jax.random.key(5), 20000)
    draws = np.asarray(jax.vmap(lambda k: hmc.gibbs_precision(k, values, shape, rate, temperature))(keys))
    assert draws.max() < grid[-1]
    assert stats.kstest(draws, lambda x: np.interp(x, grid, cdf)).pvalue > 1e-3
    untempered = np.asarray(jax.vmap(lambda k: hmc.gibbs_precision(k, values, shape, rate))(keys))
    assert stats.kstest(untempered, lambda x: np.interp(x, grid, cdf)).pvalue < 1e-6  # T matters


def test_result_records_untempered_log_density_thinning_and_gradient_count():
    def log_density(p):
        return -0.5 * jnp.sum(p["x"] ** 2)

    chains, warmup, kept, thin, leapfrog = 2, 20, 7, 3, 4
    result = hmc.sample(log_density, {"x": jnp.zeros((chains, 3))}, jax.random.key(0), num_samples=kept,
                        num_warmup=warmup, num_leapfrog=leapfrog, temperature=2.0, thin=thin, num_chains=chains)
    x = np.asarray(result.samples["x"])
    assert x.shape == (chains, kept, 3)
    assert result.log_density.shape == result.accept_prob.shape == (chains, kept * thin)
    # every thin-th iteration is kept, and its log density is the target's, not the tempered -U / T
    np.testing.assert_allclose(result.log_density[:, thin - 1::thin], -0.5 * (x ** 2).sum(-1), rtol=1e-5,
                               atol=1e-6)
    # one gradient at the start, then num_leapfrog per iteration, for every chain
    assert result.num_grad_evals == chains * (1 + (warmup + kept * thin) * leapfrog)


def test_log_marginal_gaussian_gamma_matches_quadrature():
    values = jnp.array([0.3, -0.8, 1.5])
    shape, rate = 1.5, 0.7

    def integrand(lam):
        return (np.prod(stats.norm.pdf(np.asarray(values), scale=1 / math.sqrt(lam)))
                * stats.gamma.pdf(lam, shape, scale=1 / rate))

    exact = math.log(integrate.quad(integrand, 0, np.inf)[0])
    assert abs(float(hmc.log_marginal_gaussian_gamma(values, shape, rate)) - exact) < 1e-4


def test_hierarchical_sampler_recovers_the_hyperprior_without_data():
    # No data: the joint is the prior, so lambda ~ Gamma(a, b) and E[w^2] = E[1/lambda] = b / (a - 1).
    shape, rate = 4.0, 2.0
    start = {"w": jnp.zeros((4, 3))}
    result = hmc.sample_hierarchical(lambda p: jnp.zeros(()), start, jax.random.key(5), num_samples=1500,
                                     prior_shape=shape, prior_rate=rate, num_warmup=300, num_leapfrog=8,
                                     num_chains=4)
    lam = np.asarray(result.precisions["w"], np.float64)  # (chains, draws)
    assert _z(lam.mean(), shape / rate, _mc_error(lam)) < 4.5
    w_sq = np.asarray(result.samples["w"], np.float64) ** 2
    assert np.all(_z(w_sq.mean((0, 1)), rate / (shape - 1), _mc_error(w_sq)) < 4.5)


def test_hierarchical_sampler_with_noise_precision_matches_a_grid_posterior():
    # y_i ~ N(m, 1/tau), m ~ N(0, 1/lambda), lambda ~ Gamma(a, b), tau ~ Gamma(a0, b0).
    # Integrating lambda and tau out leaves a 1-D posterior of m, computed on a grid.
    y = jnp.asarray(np.random.default_rng(0).normal(0.8, 0.5, size=8), jnp.float32)
    a, b, a0, b0 = 2.0, 1.0, 2.0, 0.5
    y64 = np.asarray(y, np.float64)
    grid = np.linspace(-3, 4, 4001)
    sse = ((y64[None, :] - grid[:, None]) ** 2).sum(1)
    # log p(m | y) up to a constant: the Student-t prior of m times the Student-t likelihood.
    log_post = -(a + 0.5) * np.log(b + grid ** 2 / 2) - (a0 + len(y64) / 2) * np.log(b0 + sse / 2)
    weights = np.exp(log_post - log_post.max())
    weights /= weights.sum()
    exact_mean = np.sum(weights * grid)
    exact_sd = math.sqrt(np.sum(weights * (grid - exact_mean) ** 2))
    exact_tau = np.sum(weights * (a0 + len(y) / 2) / (b0 + sse / 2))

    result = hmc.sample_hierarchical(None, {"m": jnp.zeros(4)}, jax.random.key(6), num_samples=1500,
                                     residual_fn=lambda p: y - p["m"], prior_shape=a, prior_rate=b,
                                     noise_shape=a0, noise_rate=b0, num_warmup=300, num_leapfrog=6,
                                     num_chains=4)
    m = np.asarray(result.samples["m"], np.float64)
    tau = np.asarray(result.precisions["noise"], np.float64)
    assert _z(m.mean(), exact_mean, _mc_error(m)) < 4.5
    assert _z(((m - exact_mean) ** 2).mean(), exact_sd ** 2, _mc_error((m - exact_mean) ** 2)) < 4.5
    assert _z(tau.mean(), exact_tau, _mc_error(tau)) < 4.5


# --------------------------------------------------------------------------
# Diagnostics and a small BNN against BlackJAX's NUTS
# --------------------------------------------------------------------------

def test_chain_diagnostics_from_blackjax():
    rng = np.random.default_rng(7)
    iid = rng.normal(size=(4, 500))
    found = hmc.chain_diagnostics(iid)
    assert 0.7 * 2000 < float(found["ess"]) < 1.3 * 2000
    assert float(found["rhat"]) < 1.02
    stuck = iid + np.array([0.0, 0.0, 0.0, 3.0])[:, None]  # one chain elsewhere
    assert float(hmc.chain_diagnostics(stuck)["rhat"]) > 1.1
    with pytest.raises(ValueError, match="draws"):
        hmc.chain_diagnostics(iid[:1])


def test_chain_diagnostics_compiles_once_per_shape():
    # Chapter 6 calls it in loops: a second call with the same shape must reuse the compiled program.
    draws = np.random.default_rng(9).normal(size=(3, 40, 5))
    hmc.chain_diagnostics(draws)
    size = hmc._ess_and_rhat._cache_size()
    again = hmc.chain_diagnostics(draws + 1.0)
    assert hmc._ess_and_rhat._cache_size() == size
    np.testing.assert_allclose(again["rhat"], hmc.chain_diagnostics(draws)["rhat"], rtol=1e-5)


def test_small_bnn_predictive_agrees_with_blackjax_nuts():
    rng = np.random.default_rng(8)
    x = np.sort(rng.uniform(-2, 2, 12)).astype(np.float32)[:, None]
    y = (np.sin(1.5 * x) + 0.2 * rng.normal(size=x.shape)).astype(np.float32)
    x_query = jnp.linspace(-3, 3, 7)[:, None]

    def net(p, inputs):
        return jnp.tanh(inputs @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]

    def log_density(p):
        prior = sum(jnp.sum(priors.gaussian_log_prob(leaf, 1.0)) for leaf in jax.tree_util.tree_leaves(p))
        return prior + jnp.sum(priors.gaussian_log_prob(y - net(p, x), 0.2))

    init = {"w1": jnp.zeros((1, 4)), "b1": jnp.zeros(4), "w2": jnp.zeros((4, 1)), "b2": jnp.zeros(1)}
    starts = jax.vmap(lambda k: priors.Gaussian(0.5).sample(k, init))(jax.random.split(jax.random.key(9), 4))
    ours = hmc.sample(log_density, starts, jax.random.key(10), num_samples=600, num_warmup=400,
                      num_leapfrog=16, num_chains=4, adapt_mass=True,
                      keep_fn=lambda p: net(p, x_query)[:, 0])
    ours_draws = np.asarray(ours.samples, np.float64)

    # NUTS from the same starts, with the step size and diagonal mass matrix our
    # warm-up found (NUTS is exact for any of them); only the trajectories differ.
    def nuts_chain(key, start, step_size, inverse_mass):
        kernel = blackjax.nuts(log_density, step_size, inverse_mass)

        def one(state, k):
            state, _ = kernel.step(k, state)
            return state, net(state.position, x_query)[:, 0]

        return jax.lax.scan(one, kernel.init(start), jax.random.split(key, 1000))[1][400:]

    flat_inverse_mass = jax.vmap(lambda m: jax.flatten_util.ravel_pytree(m)[0])(ours.inverse_mass)
    # One compiled chain called four times compiles faster than a vmap of NUTS's loops.
    one_chain = jax.jit(nuts_chain)
    nuts_draws = np.stack([np.asarray(one_chain(key, jax.tree.map(lambda a: a[c], starts), ours.step_size[c],
                                                flat_inverse_mass[c]), np.float64)
                           for c, key in enumerate(jax.random.split(jax.random.key(11), 4))])
    se = np.hypot(_mc_error(ours_draws), _mc_error(nuts_draws))
    assert np.all(_z(ours_draws.mean((0, 1)), nuts_draws.mean((0, 1)), se) < 4.5)
    # The band (predictive variance) agrees too, within its Monte Carlo error.
    sq_ours = (ours_draws - ours_draws.mean((0, 1))) ** 2
    sq_nuts = (nuts_draws - nuts_draws.mean((0, 1))) ** 2
    se_var = np.hypot(_mc_error(sq_ours), _mc_error(sq_nuts))
    assert np.all(_z(sq_ours.mean((0, 1)), sq_nuts.mean((0, 1)), se_var) < 4.5)
    assert ours.divergences.sum() == 0


def test_neal_regression_data():
    from bnnbook import data

    x, y, f = data.neal_regression(2000, seed=3)
    x64 = x[:, 0].astype(np.float64)
    exact = 0.3 + 0.4 * x64 + 0.5 * np.sin(2.7 * x64) + 1.1 / (1 + x64 ** 2)
    np.testing.assert_allclose(f[:, 0], exact, rtol=1e-5)
    assert np.all(np.diff(x64) >= 0)
    noise = (y - f)[:, 0]
    assert abs(noise.std() - 0.1) < 5 * 0.1 / math.sqrt(2 * 2000)
    assert abs(x64.mean()) < 5 / math.sqrt(2000)
    with pytest.raises(ValueError, match="n="):
        data.neal_regression(0)


def test_hmc_step_reproduces_blackjax_hmc_draw_for_draw():
    # Same target, step size, leapfrog count, mass matrix and random keys: our
    # transition is the same Markov chain as BlackJAX's HMC, so the positions agree.
    scales = jnp.array([0.5, 1.0, 2.0])
    log_density = lambda p: -0.5 * jnp.sum((p["x"] / scales) ** 2)  # noqa: E731
    value_and_grad = jax.value_and_grad(lambda p: -log_density(p))
    kernel = blackjax.hmc(log_density, 0.3, jnp.ones(3), 7)
    start = {"x": jnp.array([1.0, -1.0, 0.5])}

    def both(carry, key):
        ours, theirs = carry
        ours, _ = hmc.hmc_step(key, ours, value_and_grad, 0.3, 7, {"x": jnp.ones(3)})
        theirs, _ = kernel.step(key, theirs)
        return (ours, theirs), (ours.position["x"], theirs.position["x"])

    potential, grad = value_and_grad(start)
    _, (ours, theirs) = jax.jit(lambda keys: jax.lax.scan(
        both, (hmc.HMCState(start, potential, grad), kernel.init(start)), keys))(
        jax.random.split(jax.random.key(12), 50))
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    assert np.unique(np.asarray(ours)[:, 0]).size > 25  # the chain moved (most proposals accepted)
