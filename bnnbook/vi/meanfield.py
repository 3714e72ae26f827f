"""The mean-field Gaussian variational family over any parameter tree: build ``q``, its
standard deviations, reparameterised draws and ``log q(w)``.

Taught in chapter "The variational free energy".
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from bnnbook.vi._checks import _LOG_2PI, _check_num_samples, _check_positive, _check_q


# --------------------------------------------------------------------------
# The variational family.
# --------------------------------------------------------------------------

def inverse_softplus(scale):
    """``rho`` with ``softplus(rho) = scale`` (``scale > 0``), stable for small and large scales.

    ``softplus^{-1}(s) = log(exp(s) - 1) = s + log(1 - exp(-s))``.

    Taught in chapter "The variational free energy".
    """
    _check_positive("scale", scale, "a standard deviation must be positive, e.g. 0.01")
    scale = jnp.asarray(scale, dtype=jnp.result_type(scale, jnp.float32))
    return scale + jnp.log(-jnp.expm1(-scale))


def init_mean_field(params, *, init_scale: float | None = None, init_rho: float | None = None,
                    init_log_var: float | None = None) -> dict:
    """A mean-field Gaussian ``q`` whose means are ``params``.

    Pass the network's own initial parameters (e.g. ``net.init(key, x)``) so the
    means start where ordinary training would. Give at most one of:

    * ``init_scale``: every standard deviation starts at this value, stored
      as ``rho = softplus^{-1}(init_scale)`` (``scale = softplus(rho)``);
    * ``init_rho``: the same parameterisation, given by ``rho``;
    * ``init_log_var``: ``scale = exp(log_var / 2)``; e.g. ``-7`` gives a
      variance of about 0.001 (the JAX mean-field recipe).

    With none given, ``init_rho = -5`` (scale ~ 0.0067). Returns
    ``{"mean": params, "rho": tree}`` or ``{"mean": params, "log_var": tree}``.

    Taught in chapter "The variational free energy".
    """
    given = {k: v for k, v in (("init_scale", init_scale), ("init_rho", init_rho),
                               ("init_log_var", init_log_var)) if v is not None}
    if len(given) > 1:
        raise ValueError(f"give at most one of init_scale, init_rho, init_log_var; got {sorted(given)}")
    leaves = jax.tree_util.tree_leaves(params)
    if not leaves:
        raise ValueError("params has no arrays; pass the network's parameter tree, e.g. net.init(key, x)")
    for leaf in leaves:
        if not jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.floating):
            raise ValueError(f"every leaf of params must be a float array; got dtype {jnp.asarray(leaf).dtype}")
    mean = jax.tree_util.tree_map(jnp.asarray, params)
    if "init_log_var" in given:
        value = float(init_log_var)
        if not math.isfinite(value):
            raise ValueError(f"init_log_var={init_log_var!r} must be finite, e.g. -7.0")
        return {"mean": mean, "log_var": jax.tree_util.tree_map(lambda m: jnp.full_like(m, value), mean)}
    if "init_scale" in given:
        _check_positive("init_scale", init_scale, "pass the initial standard deviation, e.g. init_scale=0.01")
        rho = float(inverse_softplus(float(init_scale)))
    else:
        rho = float(given.get("init_rho", -5.0))
        if not math.isfinite(rho):
            raise ValueError(f"init_rho={init_rho!r} must be finite, e.g. -5.0")
    return {"mean": mean, "rho": jax.tree_util.tree_map(lambda m: jnp.full_like(m, rho), mean)}


def parameterization(q) -> str:
    """``"softplus"`` if ``q`` stores ``rho``, ``"log_var"`` if it stores the log-variance.

    Taught in chapter "The variational free energy".
    """
    return "softplus" if _check_q(q) == "rho" else "log_var"


def stddev(q):
    """The tree of standard deviations of ``q``.

    Taught in chapter "The variational free energy".
    """
    key = _check_q(q)
    if key == "rho":
        return jax.tree_util.tree_map(jax.nn.softplus, q["rho"])
    return jax.tree_util.tree_map(lambda v: jnp.exp(0.5 * v), q["log_var"])


# Below this rho, softplus(rho) = exp(rho) to float precision, and log(softplus(rho))
# would underflow to -inf near rho = -104 in float32; use rho itself there.
_LOG_SOFTPLUS_SWITCH = -20.0


def _log_softplus(rho):
    """``log(softplus(rho))``, finite for every finite ``rho`` (and its gradient too)."""
    safe = jnp.maximum(rho, _LOG_SOFTPLUS_SWITCH)  # the unused branch must not produce NaN gradients
    return jnp.where(rho < _LOG_SOFTPLUS_SWITCH, rho, jnp.log(jax.nn.softplus(safe)))


def _log_stddev(q):
    key = _check_q(q)
    if key == "rho":
        return jax.tree_util.tree_map(_log_softplus, q["rho"])
    return jax.tree_util.tree_map(lambda v: 0.5 * v, q["log_var"])


def _sample_one(mean, scale, key):
    leaves, treedef = jax.tree_util.tree_flatten(mean)
    scales = treedef.flatten_up_to(scale)
    keys = jax.random.split(key, len(leaves))  # one fresh key per leaf: no key is used twice
    draws = [m + s * jax.random.normal(k, jnp.shape(m), jnp.result_type(m))
             for m, s, k in zip(leaves, scales, keys)]
    return jax.tree_util.tree_unflatten(treedef, draws)


def sample(q, key: jax.Array, num_samples: int | None = None):
    """Reparameterised draws ``w = mean + scale * eps``, ``eps ~ N(0, I)``.

    Every leaf gets its own key (``jax.random.split(key, num_leaves)``), so two
    leaves with identical shapes and identical ``q`` still get independent
    noise. With ``num_samples=None`` returns one tree like ``q["mean"]``; with
    an integer ``S`` returns a tree whose leaves have a leading axis of size
    ``S`` (the keys ``jax.random.split(key, S)``, mapped with ``jax.vmap``).
    Gradients flow to ``mean`` and to the scale parameters.

    Taught in chapter "The variational free energy".
    """
    scale = stddev(q)
    if num_samples is None:
        return _sample_one(q["mean"], scale, key)
    num_samples = _check_num_samples(num_samples)
    keys = jax.random.split(key, num_samples)
    return jax.vmap(lambda k: _sample_one(q["mean"], scale, k))(keys)


def log_prob(q, w) -> jax.Array:
    """``log q(w)``: the sum over all weights of ``log N(w_j; mean_j, scale_j^2)``.

    ``w`` has the structure of ``q["mean"]`` (no sample axis; ``jax.vmap`` it
    for many draws).

    Taught in chapter "The variational free energy".
    """
    _check_q(q)
    log_scale = _log_stddev(q)
    scale = stddev(q)

    def leaf(m, s, log_s, x):
        z = (x - m) / s
        return jnp.sum(-0.5 * z * z - log_s - 0.5 * _LOG_2PI)

    treedef = jax.tree_util.tree_structure(q["mean"])
    means, weights = treedef.flatten_up_to(q["mean"]), treedef.flatten_up_to(w)
    for m, x in zip(means, weights):
        if jnp.shape(x) != jnp.shape(m):
            raise ValueError(f"w has a leaf of shape {jnp.shape(x)} where q['mean'] has {jnp.shape(m)}; pass one "
                             f"weight tree (for a stack of draws, jax.vmap(lambda w: log_prob(q, w)))")
    terms = [leaf(*args) for args in zip(means, treedef.flatten_up_to(scale), treedef.flatten_up_to(log_scale),
                                         weights)]
    return sum(terms)
