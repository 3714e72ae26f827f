"""The two Monte Carlo estimators of ``grad E_q[f(w)]``: reparameterisation (pathwise) and
score function (REINFORCE).

Taught in chapter "The reparameterization trick and Bayes by Backprop".
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from bnnbook.vi._checks import _check_num_samples, _per_draw
from bnnbook.vi.meanfield import log_prob, sample


# --------------------------------------------------------------------------
# Gradient estimators of an expectation under q.
# --------------------------------------------------------------------------

def reparameterized_gradient(f: Callable[[Any], jax.Array], q, key: jax.Array, num_samples: int = 1):
    """Reparameterisation (pathwise) estimate of the gradient of ``E_q[f(w)]`` w.r.t. ``q``.

    With ``w_s = mean + scale * eps_s``, ``eps_s ~ N(0, I)``, the estimate is
    ``(1/S) sum_s d f(mean + scale * eps_s) / d q``: the noise is outside the
    parameters, so the gradient passes through ``f`` itself. Unbiased for any
    differentiable ``f``; returns a tree like ``q``. ``f`` maps one weight tree
    to a scalar.

    Taught in chapter "The reparameterization trick and Bayes by Backprop".
    """
    num_samples = _check_num_samples(num_samples)

    def objective(q):
        return jnp.mean(_per_draw(jax.vmap(f)(sample(q, key, num_samples)), num_samples, "f"))

    return jax.grad(objective)(q)


def score_function_gradient(f: Callable[[Any], jax.Array], q, key: jax.Array, num_samples: int = 1,
                            baseline: bool = False):
    """Score-function (REINFORCE) estimate of the gradient of ``E_q[f(w)]`` w.r.t. ``q``.

    Uses ``grad E_q[f] = E_q[f(w) grad log q(w)]``: the draws ``w_s`` are held
    fixed and only the density is differentiated, so ``f`` need not be
    differentiable, but the estimate is much noisier than
    :func:`reparameterized_gradient` (Williams 1992). With ``baseline=True``
    each draw uses ``f(w_s) - b_s`` where ``b_s`` is the mean of ``f`` over the
    *other* draws (leave one out); ``b_s`` does not depend on ``w_s``, so the
    estimate stays unbiased (needs ``num_samples >= 2``).

    Taught in chapter "The reparameterization trick and Bayes by Backprop".
    """
    num_samples = _check_num_samples(num_samples)
    if baseline and num_samples < 2:
        raise ValueError(f"baseline=True needs num_samples >= 2 (the baseline of one draw is the mean of the "
                         f"others); got num_samples={num_samples}")
    draws = jax.lax.stop_gradient(sample(q, key, num_samples))
    values = jax.lax.stop_gradient(_per_draw(jax.vmap(f)(draws), num_samples, "f"))
    if baseline:
        values = values - (jnp.sum(values) - values) / (num_samples - 1)

    def surrogate(q):
        return jnp.mean(values * jax.vmap(lambda w: log_prob(q, w))(draws))

    return jax.grad(surrogate)(q)
