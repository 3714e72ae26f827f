"""Mean-field Gaussian variational inference over any parameter tree, the
variational free energy, and exact references to check it against.

Taught in chapter "The variational free energy"; the chapters "The
reparameterization trick and Bayes by Backprop" and "Rejecting
out-of-distribution inputs" train with it.

The variational posterior ``q`` is a plain dict of two trees with the
structure of the network's parameters (for example a Haiku ``params`` dict)::

    {"mean": tree, "rho": tree}       # scale = softplus(rho)  (Bayes by Backprop)
    {"mean": tree, "log_var": tree}   # scale = exp(log_var / 2)

so every weight ``w_j`` has its own ``q(w_j) = N(mean_j, scale_j^2)``, all
independent (mean field). The dict is an ordinary pytree: optax optimises it,
:func:`bnnbook.train.fit` trains it, ``jax.jit``/``jax.vmap`` pass it through.

The objective is the variational free energy

    F(q) = beta * KL(q || p) - E_q[log p(D | w)],

the *complexity cost* plus the *likelihood cost*. With ``beta = 1``,
``F(q) = KL(q || p(w | D)) - log p(D) >= -log p(D)``, and ``-F`` is the
evidence lower bound (ELBO).

Pieces:

* :func:`init_mean_field`, :func:`stddev`, :func:`sample`, :func:`log_prob`:
  the variational family.
* :func:`gaussian_kl` (elementwise, closed form), :func:`kl_divergence`
  (a tree against a prior: closed form for a :class:`bnnbook.priors.Gaussian`,
  Monte Carlo otherwise), :func:`monte_carlo_kl`, and :func:`quadrature_kl`
  (deterministic 1-D quadrature per weight: the reference for priors without
  a closed form).
* :func:`free_energy` (the terms separately) and :func:`free_energy_loss`
  (a ``loss_fn(q, batch, key)`` for :func:`bnnbook.train.fit`, with the KL
  scaled for minibatches).
* :func:`kl_weights`: how the KL is shared among the minibatches of an epoch
  (``1/M`` each, ``1/N`` per example, or the Blundell et al. schedule).
* :func:`reparameterized_gradient` and :func:`score_function_gradient`:
  the two Monte Carlo estimators of ``grad E_q[f(w)]``, and
  :func:`signal_to_noise` / :func:`prune_by_signal_to_noise` (chapter "The
  reparameterization trick and Bayes by Backprop").
* Exact references in NumPy float64 for Bayesian linear regression
  (:func:`linear_regression_posterior`, :func:`linear_regression_log_evidence`,
  :func:`linear_regression_elbo`, :func:`linear_regression_mean_field`,
  :func:`gaussian_kl_full`), against which the chapter checks all of the above.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from bnnbook import priors
from bnnbook._checks import check_count

_SCALE_KEYS = ("rho", "log_var")
_KL_MODES = ("auto", "closed_form", "monte_carlo")
_LOG_2PI = math.log(2.0 * math.pi)


# --------------------------------------------------------------------------
# Validation. Values are checked only when concrete (tracers pass unchecked).
# --------------------------------------------------------------------------

# The same checks as the priors use (one definition, one wording of the errors).
_is_concrete = priors._is_concrete
_check_positive = priors._check_positive


def _check_beta(beta: Any) -> None:
    if not _is_concrete(beta):
        return
    value = float(np.asarray(beta))
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"beta={value!r} must be a finite number >= 0 (1 is the free energy; "
                         f"0 < beta < 1 down-weights the KL); pass e.g. beta=1.0")


def _check_num_samples(num_samples: Any) -> int:
    return check_count("num_samples", num_samples, hint="the number of Monte Carlo draws of w ~ q, e.g. 1")


def _per_draw(values, num_samples: int, what: str) -> jax.Array:
    """``values``, one scalar per weight draw; a wrong shape means the function summed nothing up."""
    if jnp.shape(values) != (num_samples,):
        raise ValueError(f"{what} returned shape {jnp.shape(values)[1:]} per weight draw; it must return one "
                         f"scalar per draw (a likelihood summed over the examples, e.g. reduction='sum' in "
                         f"bnnbook.likelihoods)")
    return values


def _check_q(q: Any) -> str:
    """Return the scale key of ``q`` ("rho" or "log_var") after checking its shape."""
    if not isinstance(q, dict) or "mean" not in q:
        raise ValueError(f"q must be a dict {{'mean': tree, 'rho' or 'log_var': tree}} as made by "
                         f"init_mean_field; got {type(q).__name__}")
    found = [k for k in _SCALE_KEYS if k in q]
    extra = set(q) - {"mean", *_SCALE_KEYS}
    if len(found) != 1 or extra:
        raise ValueError(f"q has keys {sorted(q)}; it needs 'mean' and exactly one of 'rho' (scale = "
                         f"softplus(rho)) or 'log_var' (scale = exp(log_var / 2)). Build it with init_mean_field.")
    key = found[0]
    if jax.tree_util.tree_structure(q["mean"]) != jax.tree_util.tree_structure(q[key]):
        raise ValueError(f"q['mean'] and q[{key!r}] must have the same tree structure")
    return key


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
    _check_positive("prior.scale", prior.scale, "the prior standard deviation must be positive")
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


# --------------------------------------------------------------------------
# The free energy.
# --------------------------------------------------------------------------

def free_energy(q, log_likelihood_fn: Callable[[Any], jax.Array], prior, key: jax.Array, *,
                num_samples: int = 1, beta: float = 1.0, kl_weight: float = 1.0,
                kl: str = "auto") -> tuple[jax.Array, dict[str, jax.Array]]:
    """Monte Carlo estimate of ``F = beta * kl_weight * KL(q || p) - E_q[log p(D | w)]``.

    Args:
        q: the variational posterior (see :func:`init_mean_field`).
        log_likelihood_fn: ``w -> log p(D | w)``, summed over the examples of
            ``D`` (one draw of the weights in, one scalar out).
        prior: a :mod:`bnnbook.priors` object (or a function ``w -> log p(w)``).
        key: PRNG key for the draws ``w_s ~ q``.
        num_samples: number of draws averaged in the expectation.
        beta: weight of the complexity cost (1: the free energy; < 1: a
            "tempered" objective that lets the data dominate).
        kl_weight: the share of the KL this data set carries (1 for the full
            data set, see :func:`kl_weights` for minibatches).
        kl: ``"closed_form"`` (Gaussian prior only), ``"monte_carlo"`` (the
            mean of ``log q(w_s) - log p(w_s)`` on the same draws), or
            ``"auto"`` (closed form when the prior is Gaussian).

    Returns:
        ``(F, terms)`` where ``terms`` has ``"kl"`` (``KL(q || p)``, unweighted),
        ``"complexity_cost"`` (``beta * kl_weight * kl``), ``"likelihood_cost"``
        (``-E_q[log p(D | w)]``) and ``"expected_log_likelihood"``;
        ``F = complexity_cost + likelihood_cost``. With ``beta = kl_weight = 1``,
        ``-F`` is the evidence lower bound.

    Taught in chapter "The variational free energy".
    """
    num_samples = _check_num_samples(num_samples)
    _check_beta(beta)
    if _is_concrete(kl_weight) and not (float(np.asarray(kl_weight)) >= 0):
        raise ValueError(f"kl_weight={kl_weight!r} must be >= 0 (the share of the KL for this batch; "
                         f"1 for the full data set)")
    if kl not in _KL_MODES:
        raise ValueError(f"kl={kl!r}; use one of {', '.join(_KL_MODES)}")
    if kl == "closed_form" and not _is_gaussian(prior):
        raise ValueError(f"kl='closed_form' needs a bnnbook.priors.Gaussian prior, got {prior!r}; "
                         f"use kl='monte_carlo' or kl='auto'")
    _check_q(q)
    draws = sample(q, key, num_samples)
    expected_ll = jnp.mean(_per_draw(jax.vmap(log_likelihood_fn)(draws), num_samples, "log_likelihood_fn"))
    if kl == "monte_carlo" or (kl == "auto" and not _is_gaussian(prior)):
        kl_value = _kl_of_draws(q, prior, draws, num_samples)  # the likelihood's draws, reused
    else:
        kl_value = closed_form_kl(q, prior)
    complexity = beta * kl_weight * kl_value
    likelihood_cost = -expected_ll
    terms = {"kl": kl_value, "complexity_cost": complexity, "likelihood_cost": likelihood_cost,
             "expected_log_likelihood": expected_ll}
    return complexity + likelihood_cost, terms


def _batch_size(batch) -> int:
    leaves = jax.tree_util.tree_leaves(batch)
    if not leaves or not jnp.ndim(leaves[0]):
        raise ValueError("batch must be a pytree of arrays with a leading example axis, e.g. (x, y)")
    return int(jnp.shape(leaves[0])[0])


def free_energy_loss(log_likelihood_fn: Callable[[Any, Any], jax.Array], prior, *, num_examples: int,
                     num_samples: int = 1, beta: float = 1.0, kl: str = "auto",
                     per_example: bool = True) -> Callable:
    """A ``loss_fn(q, batch, key) -> (loss, metrics)`` for :func:`bnnbook.train.fit`.

    On a minibatch of ``B`` of the ``num_examples`` = ``N`` training examples,
    the KL gets weight ``B / N`` (``1 / M`` for ``M = N / B`` minibatches), so
    that over an epoch, and in expectation over a random minibatch, the
    objective is the full-data free energy:

    * ``per_example=True`` (default): ``loss = beta * KL / N - mean over the
      batch of E_q[log p(y_i | x_i, w)]``, i.e. ``F / N`` in expectation
      (learning rates then do not depend on ``N``);
    * ``per_example=False``: ``loss = beta * (B / N) * KL - E_q[log p(D_batch | w)]``,
      whose sum over the ``M`` minibatches of an epoch is ``F``.

    Args:
        log_likelihood_fn: ``(w, batch) -> log p(batch | w)`` summed over the
            examples of the batch (e.g. with ``bnnbook.likelihoods``).
        prior, num_samples, beta, kl: as in :func:`free_energy`.
        num_examples: the size ``N`` of the full training set.
        per_example: divide the loss by the batch size (see above).

    ``metrics`` holds ``kl`` (unweighted ``KL(q || p)``), ``complexity_cost``
    and ``likelihood_cost`` in the units of ``loss`` (they add up to it).
    For the Blundell et al. schedule, which needs the minibatch's position in
    the epoch, see :func:`kl_weights` and call :func:`free_energy` directly.

    Taught in chapter "The variational free energy".
    """
    num_examples = check_count("num_examples", num_examples,
                               hint="the size N of the training set, not of one minibatch")
    num_samples = _check_num_samples(num_samples)
    _check_beta(beta)
    if kl not in _KL_MODES:
        raise ValueError(f"kl={kl!r}; use one of {', '.join(_KL_MODES)}")

    def loss_fn(q, batch, key):
        batch_size = _batch_size(batch)
        if batch_size > num_examples:
            raise ValueError(f"the batch has {batch_size} examples but num_examples={num_examples}; "
                             f"pass the size of the whole training set as num_examples")
        loss, terms = free_energy(q, lambda w: log_likelihood_fn(w, batch), prior, key,
                                  num_samples=num_samples, beta=beta, kl_weight=batch_size / num_examples,
                                  kl=kl)
        scale = 1.0 / batch_size if per_example else 1.0
        metrics = {"kl": terms["kl"], "complexity_cost": scale * terms["complexity_cost"],
                   "likelihood_cost": scale * terms["likelihood_cost"]}
        return scale * loss, metrics

    return loss_fn


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


# --------------------------------------------------------------------------
# Pruning by signal-to-noise ratio.
# --------------------------------------------------------------------------

def signal_to_noise(q):
    """The tree of signal-to-noise ratios ``|mean| / scale`` of every weight of ``q``.

    Taught in chapter "The reparameterization trick and Bayes by Backprop".
    """
    return jax.tree_util.tree_map(lambda m, s: jnp.abs(m) / s, q["mean"], stddev(q))


def prune_by_signal_to_noise(q, fraction: float):
    """The posterior means with the ``fraction`` of weights of lowest signal-to-noise ratio set to 0.

    One threshold over all weights of the tree (biases included), as in
    Blundell et al. (2015), section 5.1: a weight whose mean is small compared
    with its posterior standard deviation can be removed at little cost.
    Exactly ``round(fraction * num_weights)`` weights are removed (ties are
    broken by position). Returns ``(pruned_means, kept_mask)``, two trees like
    ``q["mean"]``.

    Taught in chapter "The reparameterization trick and Bayes by Backprop".
    """
    fraction_value = float(fraction)
    if not 0.0 <= fraction_value < 1.0:
        raise ValueError(f"fraction={fraction!r} must be in [0, 1) (the share of weights removed), "
                         f"e.g. fraction=0.95")
    _check_q(q)
    snr = signal_to_noise(q)
    leaves, treedef = jax.tree_util.tree_flatten(snr)
    flat = jnp.concatenate([jnp.ravel(leaf) for leaf in leaves])
    num_removed = int(round(fraction_value * flat.size))
    keep = jnp.ones(flat.size, bool).at[jnp.argsort(flat)[:num_removed]].set(False)
    sizes = np.cumsum([leaf.size for leaf in leaves])[:-1]
    masks = [part.reshape(leaf.shape) for part, leaf in zip(jnp.split(keep, sizes), leaves)]
    kept = jax.tree_util.tree_unflatten(treedef, masks)
    pruned = jax.tree_util.tree_map(lambda m, k: jnp.where(k, m, jnp.zeros_like(m)), q["mean"], kept)
    return pruned, kept


# --------------------------------------------------------------------------
# Sharing the KL among minibatches.
# --------------------------------------------------------------------------

KL_SCHEMES = ("uniform", "blundell", "per_example")


def kl_weights(num_batches: int, scheme: str = "uniform", num_examples: int | None = None) -> np.ndarray:
    """The weight ``pi_i`` of the KL in minibatch ``i = 1..M`` of an epoch.

    The objective of minibatch ``i`` is ``pi_i * KL(q || p) - E_q[log p(D_i | w)]``.

    * ``"uniform"``: ``pi_i = 1 / M``. They sum to 1, so the epoch's
      objectives add up to the full-data ``F``.
    * ``"blundell"``: ``pi_i = 2^(M - i) / (2^M - 1)`` (Blundell et al. 2015):
      the first minibatches carry most of the KL, the last almost none; they
      also sum to 1. Computed as ``2^-i / (1 - 2^-M)`` so large ``M`` does not
      overflow.
    * ``"per_example"``: ``pi_i = 1 / N`` (needs ``num_examples`` = N); pair it
      with the *mean* log-likelihood over the batch: the minibatch objective
      is then ``F / N`` in expectation, and ``N`` times the mean over an epoch
      of equal-size minibatches is ``F``.

    Taught in chapter "The variational free energy".
    """
    m = check_count("num_batches", num_batches, hint="minibatches per epoch, M")
    if scheme == "uniform":
        return np.full(m, 1.0 / m)
    if scheme == "blundell":
        i = np.arange(1, m + 1, dtype=np.float64)
        return np.exp2(-i) / -np.expm1(-m * math.log(2.0))
    if scheme == "per_example":
        if isinstance(num_examples, bool) or not isinstance(num_examples, (int, np.integer)) or num_examples < 1:
            raise ValueError(f"scheme='per_example' needs num_examples (the training-set size N) as a "
                             f"positive integer; got num_examples={num_examples!r}")
        return np.full(m, 1.0 / int(num_examples))
    raise ValueError(f"scheme={scheme!r}; use one of {', '.join(KL_SCHEMES)}")


# --------------------------------------------------------------------------
# Exact references: Bayesian linear regression (NumPy, float64).
# --------------------------------------------------------------------------

def _check_regression(features, targets, noise_std, prior_std):
    features = np.asarray(features, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64).reshape(-1)
    if features.ndim != 2 or features.shape[0] != targets.shape[0]:
        raise ValueError(f"features must have shape (N, D) and targets (N,); got {features.shape} and "
                         f"{targets.shape}")
    _check_positive("noise_std", noise_std, "the noise standard deviation must be positive, e.g. 0.5")
    _check_positive("prior_std", prior_std, "the prior standard deviation must be positive, e.g. 1.0")
    return features, targets, float(noise_std), float(prior_std)


def linear_regression_posterior(features, targets, noise_std: float, prior_std: float):
    """Exact posterior ``N(mean, cov)`` of ``w`` in ``y = features @ w + eps``.

    Prior ``w ~ N(0, prior_std^2 I)``, noise ``eps ~ N(0, noise_std^2 I)``.
    Precision ``Lambda = I / prior_std^2 + X^T X / noise_std^2``,
    ``cov = Lambda^-1``, ``mean = cov X^T y / noise_std^2``. Returns
    ``(mean, cov)`` as float64 arrays.

    Taught in chapter "The variational free energy".
    """
    x, y, s, a = _check_regression(features, targets, noise_std, prior_std)
    precision = np.eye(x.shape[1]) / a ** 2 + x.T @ x / s ** 2
    cov = np.linalg.inv(precision)
    cov = 0.5 * (cov + cov.T)
    return cov @ (x.T @ y) / s ** 2, cov


def linear_regression_log_evidence(features, targets, noise_std: float, prior_std: float) -> float:
    """Exact ``log p(y)`` of Bayesian linear regression (see :func:`linear_regression_posterior`).

    Integrating out ``w`` leaves ``y ~ N(0, prior_std^2 X X^T + noise_std^2 I)``,
    evaluated with a Cholesky factor.

    Taught in chapter "The variational free energy".
    """
    x, y, s, a = _check_regression(features, targets, noise_std, prior_std)
    cov = a ** 2 * x @ x.T + s ** 2 * np.eye(x.shape[0])
    chol = np.linalg.cholesky(cov)
    z = np.linalg.solve(chol, y)
    return float(-0.5 * z @ z - np.sum(np.log(np.diag(chol))) - 0.5 * len(y) * _LOG_2PI)


def gaussian_kl_full(mean_q, cov_q, mean_p, cov_p) -> float:
    """``KL(N(mean_q, cov_q) || N(mean_p, cov_p))`` for full covariance matrices (NumPy float64).

    ``(tr(S_p^-1 S_q) + d^T S_p^-1 d - D + log|S_p| - log|S_q|) / 2`` with
    ``d = mean_p - mean_q``.

    Taught in chapter "The variational free energy".
    """
    mq, mp = np.asarray(mean_q, np.float64), np.asarray(mean_p, np.float64)
    sq, sp = np.asarray(cov_q, np.float64), np.asarray(cov_p, np.float64)
    chol_p = np.linalg.cholesky(sp)
    try:
        chol_q = np.linalg.cholesky(sq)
    except np.linalg.LinAlgError:
        raise ValueError("cov_q is not positive definite; a covariance needs positive variances") from None
    a = np.linalg.solve(chol_p, chol_q)
    d = np.linalg.solve(chol_p, mp - mq)
    logdet_p = 2.0 * np.sum(np.log(np.diag(chol_p)))
    logdet_q = 2.0 * np.sum(np.log(np.diag(chol_q)))
    return float(0.5 * (np.sum(a * a) + d @ d - len(mq) + logdet_p - logdet_q))


def linear_regression_elbo(features, targets, noise_std: float, prior_std: float, mean, cov) -> float:
    """Closed-form ELBO ``= -F`` of a Gaussian ``q = N(mean, cov)`` in Bayesian linear regression.

    ``cov`` is a full ``(D, D)`` covariance or a vector of ``D`` variances
    (mean field). ``E_q[log p(y | w)] = -N/2 log(2 pi s^2) - (|y - X m|^2 +
    tr(X cov X^T)) / (2 s^2)`` and ``KL(q || N(0, prior_std^2 I))`` are both
    exact, so this is the value :func:`free_energy` estimates by Monte Carlo.
    It never exceeds :func:`linear_regression_log_evidence`, with equality
    only at the exact posterior.

    Taught in chapter "The variational free energy".
    """
    x, y, s, a = _check_regression(features, targets, noise_std, prior_std)
    m = np.asarray(mean, np.float64).reshape(-1)
    c = np.asarray(cov, np.float64)
    if c.ndim == 1:
        _check_positive("cov", c, "mean-field variances must be positive")
        c = np.diag(c)
    if m.shape != (x.shape[1],) or c.shape != (x.shape[1],) * 2:
        raise ValueError(f"mean must have shape ({x.shape[1]},) and cov ({x.shape[1]}, {x.shape[1]}) or "
                         f"({x.shape[1]},); got {m.shape} and {np.shape(cov)}")
    residual = y - x @ m
    expected_ll = (-0.5 * len(y) * (_LOG_2PI + 2.0 * math.log(s))
                   - (residual @ residual + np.sum((x @ c) * x)) / (2.0 * s ** 2))
    try:
        kl = gaussian_kl_full(m, c, np.zeros_like(m), a ** 2 * np.eye(len(m)))
    except ValueError:
        raise ValueError("cov is not positive definite; pass a covariance matrix (symmetric, positive "
                         "eigenvalues) or a vector of positive variances") from None
    return float(expected_ll - kl)


def linear_regression_mean_field(features, targets, noise_std: float, prior_std: float):
    """The best mean-field ``q`` for Bayesian linear regression, in closed form.

    For a Gaussian posterior ``N(mu, Lambda^-1)`` the factorised ``q`` that
    minimises ``KL(q || posterior)`` has means ``mu`` and variances
    ``1 / Lambda_jj`` (Bishop 2006, section 10.1.2), so it keeps the mean but
    under-estimates every marginal variance ``(Lambda^-1)_jj``. Its gap below
    the log evidence is ``(sum_j log Lambda_jj - log|Lambda|) / 2``.
    Returns ``(mean, variances, gap)``.

    Taught in chapter "The variational free energy".
    """
    x, y, s, a = _check_regression(features, targets, noise_std, prior_std)
    precision = np.eye(x.shape[1]) / a ** 2 + x.T @ x / s ** 2
    mean = np.linalg.solve(precision, x.T @ y) / s ** 2
    diag = np.diag(precision)
    gap = 0.5 * (np.sum(np.log(diag)) - np.linalg.slogdet(precision)[1])
    return mean, 1.0 / diag, float(gap)


__all__ = [
    "init_mean_field", "inverse_softplus", "parameterization", "stddev", "sample", "log_prob",
    "gaussian_kl", "closed_form_kl", "monte_carlo_kl", "quadrature_kl", "kl_divergence",
    "free_energy", "free_energy_loss", "kl_weights", "KL_SCHEMES",
    "reparameterized_gradient", "score_function_gradient", "signal_to_noise", "prune_by_signal_to_noise",
    "linear_regression_posterior", "linear_regression_log_evidence", "linear_regression_elbo",
    "linear_regression_mean_field", "gaussian_kl_full",
]
