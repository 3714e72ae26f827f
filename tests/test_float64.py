"""Float64 and determinism (issue 29): with ``jax_enable_x64`` on, VI, training and SG-MCMC keep the dtype
of the position they are given; the same seed gives bit-identical results. (HMC's are in test_hmc_surrogate.)"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from bnnbook import priors, train, vi
from bnnbook.approximations import sgmcmc


def _dtypes(tree):
    return {np.asarray(leaf).dtype for leaf in jax.tree_util.tree_leaves(tree)}


def _regression_data(dtype):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(dtype)
    return x, (x @ np.array([1.0, -2.0, 0.5], dtype) + 0.1 * rng.normal(size=64)).astype(dtype)


def _log_likelihood(w, batch):
    x, y = batch
    return jnp.sum(-0.5 * (y - x @ w["w"] - w["b"]) ** 2)


@pytest.mark.parametrize("prior", [priors.Gaussian(1.0), priors.ScaleMixture(0.5, 1.0, 0.1)], ids=["gaussian", "mixture"])
def test_mean_field_family_and_free_energy_stay_float64(prior):
    with jax.enable_x64(True):
        params = {"w": jnp.zeros(3, jnp.float64), "b": jnp.zeros((), jnp.float64)}
        q = vi.init_mean_field(params, init_scale=0.1)
        assert _dtypes(q) == {np.dtype("float64")}
        draw = vi.sample(q, jax.random.key(0))
        assert _dtypes(draw) == {np.dtype("float64")}
        assert np.asarray(vi.log_prob(q, draw)).dtype == np.float64
        assert np.asarray(vi.kl_divergence(q, prior, jax.random.key(1), 4)).dtype == np.float64
        data = _regression_data(np.float64)
        energy = lambda q: vi.free_energy(q, lambda w: _log_likelihood(w, data), prior, jax.random.key(2), num_samples=4)
        (value, _), grads = jax.value_and_grad(energy, has_aux=True)(q)
        assert np.asarray(value).dtype == np.float64 and _dtypes(grads) == {np.dtype("float64")}
        assert np.isfinite(float(value))


def test_gaussian_kl_in_float64_matches_the_formula_to_float64_precision():
    with jax.enable_x64(True):
        mean_q, scale_q = jnp.asarray([0.3, -1.2]), jnp.asarray([0.7, 1.9])
        kl = vi.gaussian_kl(mean_q, scale_q, 0.0, 1.0)
        exact = np.sum(np.log(1.0 / np.array([0.7, 1.9])) + (np.array([0.7, 1.9]) ** 2 + np.array([0.3, -1.2]) ** 2) / 2 - 0.5)
        assert np.asarray(kl).dtype == np.float64
        assert float(np.sum(kl)) == pytest.approx(exact, rel=1e-13)


def _fit_vi(dtype):
    params = {"w": jnp.zeros(3, dtype), "b": jnp.zeros((), dtype)}
    q = vi.init_mean_field(params, init_scale=0.1)
    data = _regression_data(np.dtype(dtype).type)
    loss = vi.free_energy_loss(_log_likelihood, priors.Gaussian(1.0), num_examples=64, num_samples=2)
    return train.fit(loss, q, optax.adam(1e-2), data, num_steps=30, batch_size=16, key=jax.random.key(3),
                     progress=False)


def test_fit_keeps_float64_parameters():
    with jax.enable_x64(True):
        result = _fit_vi(jnp.float64)
        assert _dtypes(result.params) == {np.dtype("float64")}


def test_the_same_seed_gives_bit_identical_variational_parameters():
    first, second = _fit_vi(jnp.float32), _fit_vi(jnp.float32)
    for a, b in zip(jax.tree_util.tree_leaves(first.params), jax.tree_util.tree_leaves(second.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("kernel", ["sgld", "sghmc"])
def test_sgmcmc_chains_stay_float64_and_repeat_bit_for_bit(kernel):
    def run():
        x, y = _regression_data(np.float64)
        positions = {"w": jnp.zeros((2, 3), jnp.float64), "b": jnp.zeros((2,), jnp.float64)}
        return sgmcmc.run_sgmcmc(kernel, lambda p: -0.5 * sum(jnp.sum(v ** 2) for v in jax.tree_util.tree_leaves(p)),
                                 lambda p, xb, yb: _log_likelihood(p, (xb, yb)), positions, x, y, num_epochs=4,
                                 batch_size=16, step_size=1e-3, keep_from_epoch=1, friction=10.0,
                                 key=jax.random.key(4), progress=False)

    with jax.enable_x64(True):
        first, second = run(), run()
        assert _dtypes(first.samples) == {np.dtype("float64")}
        for a, b in zip(jax.tree_util.tree_leaves(first.samples), jax.tree_util.tree_leaves(second.samples)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
