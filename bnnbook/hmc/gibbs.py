"""Gibbs updates of prior precisions and the collapsed Gaussian-Gamma prior.

Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks"
(``chapters/06_hmc.ipynb``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from bnnbook.hmc._tree import PyTree, _check_positive, _leaf_names, _tmap, _tree_size, _tree_sum

# --------------------------------------------------------------------------
# Gibbs updates of precisions (hierarchical prior)
# --------------------------------------------------------------------------


def gibbs_precision(key: jax.Array, values: PyTree, shape, rate, temperature: float = 1.0) -> jax.Array:
    """Draw a precision from its Gamma full conditional given the values it governs.

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".
    With ``lambda ~ Gamma(shape, rate)`` (rate parametrisation) and the ``n``
    entries of ``values`` i.i.d. ``N(0, 1 / lambda)``, the conditional is
    ``Gamma(shape + n / 2, rate + ||values||^2 / 2)``, whose mean is
    ``(shape + n/2) / (rate + ||values||^2 / 2)``. Under temperature ``T`` the
    tempered joint gives ``Gamma((shape - 1 + n/2) / T + 1, (rate + ||v||^2/2) / T)``.
    ``values`` may be an array or a pytree (all its entries count).
    ``shape``, ``rate`` and ``temperature`` must be > 0; concrete values are
    checked (a negative rate would give a negative "precision"), traced ones
    pass unchecked so the function stays usable under ``jit`` and ``vmap``.
    """
    for name, value in (("shape", shape), ("rate", rate), ("temperature", temperature)):
        if not isinstance(value, jax.core.Tracer):
            _check_positive(name, value)
    n = _tree_size(values)
    sum_sq = _tree_sum(_tmap(jnp.square, values))
    post_shape = (shape - 1.0 + 0.5 * n) / temperature + 1.0
    post_rate = (rate + 0.5 * sum_sq) / temperature
    return jax.random.gamma(key, post_shape, dtype=jnp.result_type(sum_sq)) / post_rate


def log_marginal_gaussian_gamma(values: PyTree, shape, rate) -> jax.Array:
    """``log ∫ prod_i N(v_i | 0, 1/lambda) Gamma(lambda | shape, rate) dlambda`` in closed form.

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".
    Integrating the precision out of the hierarchical prior leaves a
    multivariate Student-t on the ``n`` entries of ``values``::

        log Γ(a + n/2) - log Γ(a) + a log b - (a + n/2) log(b + ||v||^2 / 2) - (n/2) log(2 pi)

    with ``a = shape`` and ``b = rate``. It is the *collapsed* form of the
    model that :func:`sample_hierarchical` samples with Gibbs moves, so a
    sampler without Gibbs steps (e.g. BlackJAX's NUTS) can target exactly the
    same marginal posterior of the weights.
    """
    shape = _check_positive("shape", shape)
    rate = _check_positive("rate", rate)
    n = _tree_size(values)
    sum_sq = _tree_sum(_tmap(jnp.square, values))
    post_shape = shape + 0.5 * n
    return (math.lgamma(post_shape) - math.lgamma(shape) + shape * math.log(rate)
            - post_shape * jnp.log(rate + 0.5 * sum_sq) - 0.5 * n * math.log(2.0 * math.pi))


def default_groups(params: PyTree) -> dict[str, PyTree]:
    """One precision group per parameter array, named by its path (e.g. ``mlp/~/linear_0/w``).

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks":
    for an MLP this gives Neal's layer-wise groups (the weights and the biases
    of each layer have their own precision).
    """
    return dict(zip(_leaf_names(params), jax.tree_util.tree_leaves(params)))
