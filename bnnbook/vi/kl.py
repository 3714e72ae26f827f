"""KL divergences of a mean-field ``q`` from a prior: elementwise and summed closed forms
for a Gaussian prior, Monte Carlo for any prior, and 1-D quadrature as the reference.

Taught in chapter "The variational free energy".
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from bnnbook import priors
from bnnbook._checks import check_count, check_finite
from bnnbook.vi._checks import (_LOG_2PI, _check_num_samples, _check_positive, _check_q, _check_q_finite,
                               _per_draw)
from bnnbook.vi.meanfield import _log_stddev, log_prob, sample, stddev


# --------------------------------------------------------------------------
# KL divergences.
# --------------------------------------------------------------------------

def gaussian_kl(mean_q, scale_q, mean_p, scale_p, *, log_scale_q=None):
    """Elementwise ``KL(N(mean_q, scale_q^2) || N(mean_p, scale_p^2))`` in nats.

    ``log(scale_p / scale_q) + (scale_q^2 + (mean_q - mean_p)^2) / (2 scale_p^2) - 1/2``.
    Always ``>= 0``, and ``0`` only when both means and both scales agree.
    ``log_scale_q`` (optional) is used instead of ``log(scale_q)`` when given,
    which is more accurate for tiny scales. Broadcasts like NumPy.

    Taught in chapter "The variational free energy".
    """
    _check_positive("scale_q", scale_q, "the standard deviation of q must be positive")
    _check_positive("scale_p", scale_p, "the standard deviation of the prior must be positive")
    check_finite("mean_q", mean_q, "the mean of q must be a finite number")
    check_finite("mean_p", mean_p, "the mean of the prior must be a finite number")
    if log_scale_q is not None:
        check_finite("log_scale_q", log_scale_q, "pass log(scale_q) as finite numbers, or leave it out")
    return _gaussian_kl(mean_q, scale_q, mean_p, scale_p, log_scale_q)


def _gaussian_kl(mean_q, scale_q, mean_p, scale_p, log_scale_q=None):
    log_q = jnp.log(scale_q) if log_scale_q is None else log_scale_q
    ratio = (jnp.square(scale_q) + jnp.square(mean_q - mean_p)) / (2.0 * jnp.square(scale_p))
    return jnp.log(scale_p) - log_q + ratio - 0.5


def _is_gaussian(prior) -> bool:
    return isinstance(prior, priors.Gaussian)


def closed_form_kl(q, prior) -> jax.Array:
    """``KL(q || prior)`` summed over the tree, for a :class:`bnnbook.priors.Gaussian` prior.

    The prior's ``scale`` and ``mean`` (scalars) apply to every weight.

    Taught in chapter "The variational free energy".
    """
    if not _is_gaussian(prior):
        raise ValueError(f"prior={prior!r} has no closed-form KL here; only bnnbook.priors.Gaussian has. "
                         f"Use monte_carlo_kl (or kl_divergence, which picks Monte Carlo for you).")
    _check_q(q)
    _check_q_finite(q)
    _check_positive("prior.scale", prior.scale, "the prior standard deviation must be positive")
    check_finite("prior.mean", prior.mean, "the prior mean must be a finite number, e.g. Gaussian(1.0, mean=0.0)")
    # q's scales are positive by construction (softplus or exp); only log(scale) enters
    # through the stable _log_stddev, so a scale that underflowed to 0 still gives a finite KL.
    scale, log_scale = stddev(q), _log_stddev(q)
    treedef = jax.tree_util.tree_structure(q["mean"])
    terms = [jnp.sum(_gaussian_kl(m, s, prior.mean, prior.scale, log_scale_q=ls))
             for m, s, ls in zip(treedef.flatten_up_to(q["mean"]), treedef.flatten_up_to(scale),
                                 treedef.flatten_up_to(log_scale))]
    return sum(terms)


def _prior_log_prob(prior):
    if hasattr(prior, "log_prob"):
        return prior.log_prob
    if callable(prior):
        return prior
    raise ValueError(f"prior={prior!r} must be a bnnbook.priors object (Gaussian, Laplace, ScaleMixture) "
                     f"or a function tree -> log p(w)")


def _kl_of_draws(q, prior, draws, num_samples: int) -> jax.Array:
    """The mean of ``log q(w_s) - log p(w_s)`` over stacked draws ``w_s ~ q``."""
    prior_log_prob = _prior_log_prob(prior)
    return jnp.mean(_per_draw(jax.vmap(lambda w: log_prob(q, w) - prior_log_prob(w))(draws), num_samples,
                              "the prior's log density"))


def monte_carlo_kl(q, prior, key: jax.Array, num_samples: int = 1) -> jax.Array:
    """Unbiased Monte Carlo estimate of ``KL(q || prior)``.

    The mean of ``log q(w_s) - log p(w_s)`` over ``num_samples`` draws
    ``w_s ~ q`` (reparameterised, so it can be differentiated). ``prior`` is
    any :mod:`bnnbook.priors` object or a function ``tree -> log p(w)``; use it
    for priors without a closed form, such as the scale mixture. Its standard
    deviation shrinks like ``1 / sqrt(num_samples)``.

    Taught in chapter "The variational free energy".
    """
    num_samples = _check_num_samples(num_samples)
    _check_q(q)
    _check_q_finite(q)
    return _kl_of_draws(q, prior, sample(q, key, num_samples), num_samples)


def kl_divergence(q, prior, key: jax.Array | None = None, num_samples: int = 1) -> jax.Array:
    """``KL(q || prior)`` over the tree: closed form when ``prior`` is a
    :class:`bnnbook.priors.Gaussian`, else :func:`monte_carlo_kl` (which needs ``key``).

    Taught in chapter "The variational free energy".
    """
    if _is_gaussian(prior):
        return closed_form_kl(q, prior)
    if key is None:
        raise ValueError(f"prior={prior!r} has no closed-form KL, so the Monte Carlo estimate needs a PRNG "
                         f"key; pass key=jax.random.key(0)")
    return monte_carlo_kl(q, prior, key, num_samples)


def quadrature_kl(q, prior, num_points: int = 2001, chunk_size: int = 1024) -> jax.Array:
    """``KL(q || prior)`` by numerical integration, one 1-D integral per weight.

    For a mean-field ``q`` and a prior that is independent across weights
    (every :mod:`bnnbook.priors` object), the KL is a sum of one-dimensional
    terms ``KL_j = -H[q_j] - E_{q_j}[log p(w_j)]``. The entropy of a Gaussian
    is exact (``log(scale_j) + (1 + log 2 pi) / 2``); the expectation is the
    trapezoidal rule on ``w_j = mean_j + scale_j * z`` over ``num_points``
    equally spaced ``z`` in ``[-10, 10]`` (the Gaussian mass outside is
    ``1.5e-23``). A fine uniform grid, rather than a few Gauss-Hermite nodes,
    because the log of a scale mixture bends sharply on the scale of its
    narrow component, which a low-order rule misses. Weights are processed
    ``chunk_size`` at a time (``jax.lax.map``) so memory stays bounded.
    Deterministic: the reference :func:`monte_carlo_kl` is measured against
    when no closed form exists.

    Taught in chapter "The variational free energy".
    """
    for name, value, low in (("num_points", num_points, 3), ("chunk_size", chunk_size, 1)):
        check_count(name, value, low, hint="e.g. num_points=2001, chunk_size=1024")
    if not hasattr(prior, "log_prob_elementwise"):
        raise ValueError(f"prior={prior!r} must be a bnnbook.priors object (Gaussian, Laplace, "
                         f"ScaleMixture): quadrature needs its elementwise log density")
    _check_q(q)
    _check_q_finite(q)
    flat = [jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree_util.tree_leaves(tree)])
            for tree in (q["mean"], stddev(q), _log_stddev(q))]
    mean, scale, log_scale = flat
    dtype = mean.dtype
    z = jnp.linspace(-10.0, 10.0, int(num_points), dtype=dtype)
    # trapezoid weights times the standard normal density: sum_k weights_k f(z_k) ~ E[f(Z)]
    step = 20.0 / (int(num_points) - 1)
    trapezoid = np.full(int(num_points), step)
    trapezoid[[0, -1]] *= 0.5
    weights = jnp.asarray(trapezoid, dtype) * jnp.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    size = mean.shape[0]
    padded = -(-size // chunk_size) * chunk_size
    pad = padded - size
    # padding: mean 0, scale 1, log scale 0; masked out below
    mean = jnp.pad(mean, (0, pad)).reshape(-1, chunk_size)
    scale = jnp.pad(scale, (0, pad), constant_values=1.0).reshape(-1, chunk_size)
    log_scale = jnp.pad(log_scale, (0, pad)).reshape(-1, chunk_size)
    mask = (jnp.arange(padded) < size).reshape(-1, chunk_size)

    def chunk_kl(args):
        m, s, ls, keep = args
        points = m[:, None] + s[:, None] * z
        expected_log_prior = prior.log_prob_elementwise(points) @ weights
        entropy = ls + 0.5 * (1.0 + _LOG_2PI)
        return jnp.sum(jnp.where(keep, -entropy - expected_log_prior, 0.0))

    return jnp.sum(jax.lax.map(chunk_kl, (mean, scale, log_scale, mask)))
