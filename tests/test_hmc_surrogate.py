"""The surrogate-gradient leapfrog, the cheap Gibbs refresh, the precision-aware
mass matrix and the warm-up windows of bnnbook.hmc (chapter 6)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bnnbook import hmc, nets
from bnnbook.hmc import surrogate
from bnnbook.hmc.sample import mass_windows


def _mc_error(draws, num_batches=20):
    draws = np.asarray(draws, np.float64)
    chains, length = draws.shape[:2]
    size = length // num_batches
    batches = draws[:, : size * num_batches].reshape(chains * num_batches, size, *draws.shape[2:]).mean(1)
    return batches.std(0, ddof=1) / math.sqrt(len(batches))


SCALES_50D = np.geomspace(0.3, 2.0, 50).astype(np.float32)


def _gaussian_50d(params):
    return -0.5 * jnp.sum((params["x"] / SCALES_50D) ** 2)


def _perturbed_50d(params):
    # A deliberately wrong gradient field: 10% too strong plus a small deterministic wiggle. Its
    # leapfrog map is still reversible and volume preserving, so the exact Metropolis test keeps
    # the Gaussian invariant; only the acceptance rate may drop.
    x = params["x"]
    return 1.1 * _gaussian_50d(params) + 0.3 * jnp.sum(jnp.cos(x))


def _run_50d(surrogate_fn, key):
    return hmc.sample(_gaussian_50d, {"x": jnp.zeros((4, 50))}, key, num_samples=2000, num_warmup=300,
                      num_leapfrog=12, step_size=0.3, adapt_step_size=False, num_chains=4, step_jitter=0.2,
                      surrogate_log_density_fn=surrogate_fn)


def test_a_perturbed_gradient_field_keeps_the_target_exact_and_lowers_acceptance():
    exact = _run_50d(None, jax.random.key(0))
    perturbed = _run_50d(_perturbed_50d, jax.random.key(0))
    draws = np.asarray(perturbed.samples["x"], np.float64)
    z_mean = np.abs(draws.mean((0, 1))) / _mc_error(draws)
    squares = draws ** 2
    z_var = np.abs(squares.mean((0, 1)) - SCALES_50D.astype(np.float64) ** 2) / _mc_error(squares)
    # 50 z-scores each: their mean square is ~1 when the target is right; a biased sampler blows it up.
    assert np.mean(z_mean ** 2) < 2.0 and z_mean.max() < 4.5
    assert np.mean(z_var ** 2) < 2.0 and z_var.max() < 4.5
    assert perturbed.acceptance_rate.mean() < exact.acceptance_rate.mean() - 0.05
    # The reported log density is the exact one, not the surrogate's.
    final = perturbed.final_position["x"]
    np.testing.assert_allclose(perturbed.log_density.reshape(4, -1)[:, -1],
                               jax.vmap(lambda x: _gaussian_50d({"x": x}))(final), rtol=1e-5, atol=1e-4)


def test_without_metropolis_correction_the_perturbed_field_is_visibly_wrong():
    # Guard for the test above: the perturbation is large enough to matter. Pure leapfrog dynamics
    # of the perturbed field conserve the *surrogate* energy, whose marginal has smaller variances.
    draws = np.asarray(_run_50d(_perturbed_50d, jax.random.key(1)).samples["x"], np.float64)
    surrogate_var = np.var(np.random.default_rng(0).normal(size=(20000, 50)) * SCALES_50D / math.sqrt(1.1), 0)
    # The exact-energy chain's variances sit at the exact scales, well away from the surrogate's.
    assert np.mean(draws.var((0, 1)) / surrogate_var) > 1.05


def test_bf16_matmul_matches_float32_products_and_their_gradients():
    rng = np.random.default_rng(0)
    inputs = jnp.asarray(rng.uniform(size=(512, 784)), jnp.float32)
    weights = jnp.asarray(rng.normal(scale=0.05, size=(784, 100)), jnp.float32)
    out = surrogate.bf16_matmul(inputs.astype(jnp.bfloat16), weights)
    assert out.dtype == jnp.float32
    exact = inputs @ weights
    assert float(jnp.linalg.norm(out - exact) / jnp.linalg.norm(exact)) < 1e-2

    def loss(w, matmul):
        return jnp.sum(jnp.tanh(matmul(inputs, w)) ** 2)

    g_bf16 = jax.grad(loss)(weights, surrogate.bf16_matmul)
    g_f32 = jax.grad(loss)(weights, jnp.matmul)
    assert g_bf16.dtype == jnp.float32
    relative = float(jnp.linalg.norm(g_bf16 - g_f32) / jnp.linalg.norm(g_f32))
    assert 0.0 < relative < 1e-2  # close, but not the same computation
    # The input cotangent is right too (for inputs that are differentiated).
    gi_bf16 = jax.grad(lambda x: jnp.sum(surrogate.bf16_matmul(x, weights) ** 2))(inputs)
    gi_f32 = jax.grad(lambda x: jnp.sum((x @ weights) ** 2))(inputs)
    assert float(jnp.linalg.norm(gi_bf16 - gi_f32) / jnp.linalg.norm(gi_f32)) < 1e-2


def test_mlp_logits_is_the_haiku_forward_pass():
    net = nets.mlp((16, 8), 3, activation=jax.nn.sigmoid)
    x = jax.random.normal(jax.random.key(0), (5, 12))
    params = net.init(jax.random.key(1), x)
    np.testing.assert_allclose(surrogate.mlp_logits(params, x, jax.nn.sigmoid), net.apply(params, x),
                               rtol=1e-5, atol=1e-6)
    approx = surrogate.mlp_logits(params, x, jax.nn.sigmoid, first_layer_matmul=surrogate.bf16_matmul)
    np.testing.assert_allclose(approx, net.apply(params, x), atol=5e-2)
    with pytest.raises(ValueError, match="linear_0"):
        surrogate.mlp_logits({"conv": {}}, x)


def test_hierarchical_sampler_with_surrogate_and_precision_aware_mass_matches_a_grid_posterior():
    # y_i ~ N(m, 1/tau0), m ~ N(0, 1/lambda), lambda ~ Gamma(a, b); integrating lambda out leaves a
    # 1-D posterior of m on a grid. Chains of 4 copies of m (one group) share the model.
    y = jnp.asarray(np.random.default_rng(0).normal(0.8, 0.5, size=8), jnp.float32)
    a, b, tau0 = 2.0, 1.0, 4.0
    grid = np.linspace(-3, 4, 4001)
    sse = ((np.asarray(y, np.float64)[None, :] - grid[:, None]) ** 2).sum(1)
    log_post = -(a + 0.5) * np.log(b + grid ** 2 / 2) - tau0 * sse / 2
    weights = np.exp(log_post - log_post.max())
    weights /= weights.sum()
    exact_mean = np.sum(weights * grid)
    exact_var = np.sum(weights * (grid - exact_mean) ** 2)
    exact_lambda = np.sum(weights * (a + 0.5) / (b + grid ** 2 / 2))

    def log_lik(p):
        return -0.5 * tau0 * jnp.sum((y - p["m"]) ** 2)

    def wrong_log_lik(p):  # a 25% too strong, slightly shifted surrogate
        return -0.5 * 1.25 * tau0 * jnp.sum((y - 0.05 - p["m"]) ** 2)

    result = hmc.sample_hierarchical(log_lik, {"m": jnp.zeros(4)}, jax.random.key(3), num_samples=2000,
                                     prior_shape=a, prior_rate=b, num_warmup=300, num_leapfrog=6, num_chains=4,
                                     adapt_mass=True, surrogate_log_likelihood_fn=wrong_log_lik,
                                     precision_aware_mass=True, step_jitter=0.2)
    m = np.asarray(result.samples["m"], np.float64)
    lam = np.asarray(result.precisions["m"], np.float64)
    assert abs(m.mean() - exact_mean) / _mc_error(m) < 4.5
    assert abs(((m - exact_mean) ** 2).mean() - exact_var) / _mc_error((m - exact_mean) ** 2) < 4.5
    assert abs(lam.mean() - exact_lambda) / _mc_error(lam) < 4.5
    assert result.warmup_log_density.shape == (4, 300)
    assert result.warmup_precisions["m"].shape == (4, 300)


def test_precision_aware_mass_recovers_the_hyperprior_without_data():
    # No data: every weight is constrained by its prior only, so the rescaling is fully active.
    shape, rate = 4.0, 2.0
    result = hmc.sample_hierarchical(lambda p: jnp.zeros(()), {"w": jnp.zeros((4, 3))}, jax.random.key(5),
                                     num_samples=1500, prior_shape=shape, prior_rate=rate, num_warmup=300,
                                     num_leapfrog=8, num_chains=4, adapt_mass=True, precision_aware_mass=True)
    lam = np.asarray(result.precisions["w"], np.float64)
    assert abs(lam.mean() - shape / rate) / _mc_error(lam) < 4.5
    w_sq = np.asarray(result.samples["w"], np.float64) ** 2
    assert np.all(np.abs(w_sq.mean((0, 1)) - rate / (shape - 1)) / _mc_error(w_sq) < 4.5)


def test_precision_aware_mass_needs_groups_of_whole_arrays():
    with pytest.raises(ValueError, match="whole parameter"):
        hmc.sample_hierarchical(lambda p: jnp.zeros(()), {"w": jnp.zeros(3)}, jax.random.key(0), num_samples=2,
                                groups=lambda p: {"w": p["w"] * 2.0}, precision_aware_mass=True)


@pytest.mark.parametrize("num_warmup", [20, 100, 149, 150, 300, 1000, 3000])
def test_mass_windows_leave_a_terminal_window_for_dual_averaging(num_warmup):
    start, end = mass_windows(num_warmup)
    assert 0 < start < end < num_warmup
    if num_warmup >= 150:
        assert num_warmup - end >= 50
        assert end - start >= 0.5 * num_warmup - 50


def test_progress_bar_counts_every_iteration_of_every_chain(capsys):
    hmc.sample(lambda p: -0.5 * jnp.sum(p["x"] ** 2), {"x": jnp.zeros((3, 2))}, jax.random.key(0),
               num_samples=10, num_warmup=5, num_chains=3, progress=True, desc="toy HMC")
    out = capsys.readouterr().out
    assert "toy HMC" in out and "45/45" in out


def test_a_float64_chain_stays_float64():
    with jax.enable_x64(True):
        result = hmc.sample(lambda p: -0.5 * jnp.sum(p["x"] ** 2), {"x": jnp.zeros(2, jnp.float64)},
                            jax.random.key(0), num_samples=20, num_warmup=20, adapt_mass=True, step_jitter=0.1)
        assert result.step_size.dtype == np.float64
        assert np.asarray(result.samples["x"]).dtype == np.float64


@pytest.mark.parametrize("bad", [{"shape": -1.0}, {"rate": -0.5}, {"rate": 0.0}, {"shape": float("nan")},
                                 {"temperature": 0.0}])
def test_gibbs_precision_refuses_a_hyperprior_that_is_not_positive(bad):
    arguments = {"shape": 2.0, "rate": 1.0, "temperature": 1.0, **bad}
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        hmc.gibbs_precision(jax.random.key(0), jnp.ones(3), arguments["shape"], arguments["rate"],
                            arguments["temperature"])


def test_gibbs_precision_still_runs_under_jit_with_traced_hyperparameters():
    draw = jax.jit(lambda rate: hmc.gibbs_precision(jax.random.key(0), jnp.ones(3), 2.0, rate))(1.0)
    assert float(draw) > 0


def test_the_same_seed_gives_bit_identical_chains():
    def run():
        result = hmc.sample_hierarchical(lambda p: -0.5 * jnp.sum((p["w"] - 1.0) ** 2), {"w": jnp.zeros((2, 3))},
                                         jax.random.key(11), num_samples=30, num_warmup=40, num_chains=2,
                                         adapt_mass=True, step_jitter=0.2, precision_aware_mass=True)
        return np.asarray(result.samples["w"]), np.asarray(result.precisions["w"])

    (w1, lam1), (w2, lam2) = run(), run()
    np.testing.assert_array_equal(w1, w2)
    np.testing.assert_array_equal(lam1, lam2)


def test_a_float64_hierarchical_chain_stays_float64():
    with jax.enable_x64(True):
        result = hmc.sample_hierarchical(lambda p: -0.5 * jnp.sum(p["w"] ** 2), {"w": jnp.zeros(3, jnp.float64)},
                                         jax.random.key(0), num_samples=20, num_warmup=30, adapt_mass=True,
                                         precision_aware_mass=True, step_jitter=0.1)
        assert np.asarray(result.samples["w"]).dtype == np.float64
        assert np.asarray(result.precisions["w"]).dtype == np.float64
