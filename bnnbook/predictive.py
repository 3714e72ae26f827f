"""Posterior predictive draws by one jitted vmap: network outputs for
regression, class probabilities for classification (JAX).

Taught in chapter "The reparameterization trick and Bayes by Backprop";
chapter "Rejecting out-of-distribution inputs" uses it for every method it
compares.

A Bayesian network predicts with the average over weight draws,
``p(y | x, D) ~ (1/S) sum_s p(y | x, w_s)``, ``w_s ~ q``, and the spread of the
``S`` per-draw predictions is the (epistemic) uncertainty. All draws are
computed by **one** jitted ``jax.vmap`` over the weights (mapped in
cache-sized blocks of draws), never a Python loop of predict calls
(``bench/bench_predictive.py`` measures the difference).

* Regression: :func:`variational_predictive` returns the mean, the standard
  deviation and the per-draw outputs (:class:`Predictive`);
  :func:`variational_outputs` / :func:`sample_outputs` return the raw draws.
* Classification: :func:`variational_probs`, :func:`sample_probs` and
  :func:`point_probs` return softmax probabilities of shape
  ``(num_draws, n, classes)``, so the NumPy scores of :mod:`bnnbook.ood` and
  :mod:`bnnbook.metrics` apply to a variational posterior, to posterior
  samples (e.g. HMC) and to a point estimate (``num_draws = 1``) alike.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from bnnbook import vi
from bnnbook._checks import check_count, check_finite

ApplyFn = Callable[[Any, jax.Array], jax.Array]


def _check_num_draws(num_draws) -> int:
    return check_count("num_draws", num_draws, hint="the number of weight draws w ~ q, e.g. num_draws=50")


def _check_inputs(inputs) -> jax.Array:
    inputs = jnp.asarray(inputs)
    if inputs.ndim < 1 or inputs.shape[0] == 0:
        raise ValueError(f"inputs must have a leading example axis with at least one example; got shape {inputs.shape}")
    check_finite("inputs", inputs, "the inputs must be finite; look for NaN in the data")
    return inputs


# Draws per step of the map over draws: enough that one step of the network is
# a solid block of work, few enough that its activations (draws x inputs x
# width) stay in the CPU cache. One vmap over all 500 draws of a 1,000-input
# predictive streams ~40 MB per layer through memory and runs about 4x slower
# on a 2-core CPU than ``lax.map`` in blocks of 32 (bench/bench_predictive.py).
# An accelerator wants large blocks to fill the device; the cap only bounds memory.
_VALUES_PER_STEP = {"cpu": 2**15}


def _values_per_step() -> int:
    return _VALUES_PER_STEP.get(jax.default_backend(), 2**22)


def _map_draws(per_draw, draws, num_inputs: int, block: int | None = None):
    """``jax.vmap(per_draw)(draws)`` computed in blocks of ``block`` draws (a ``lax.map`` over vmapped blocks).

    ``draws`` is a tree whose leaves share a leading draw axis (weight draws, or
    one PRNG key per draw); ``block=None`` sizes the blocks from the cache budget
    above. Also used by :func:`bnnbook.flipout.predictive_draws`.
    """
    num_draws = jax.tree_util.tree_leaves(draws)[0].shape[0]
    if block is None:
        block = _values_per_step() // max(num_inputs, 1)
    block = max(1, min(num_draws, block))
    if block >= num_draws:
        return jax.vmap(per_draw)(draws)
    return jax.lax.map(per_draw, draws, batch_size=block)


@functools.partial(jax.jit, static_argnames=("apply_fn", "num_draws"))
def _variational_draws(apply_fn, q, inputs, key, num_draws):
    weights = vi.sample(q, key, num_draws)  # a tree with a leading draw axis
    return _map_draws(lambda w: jax.nn.softmax(apply_fn(w, inputs), axis=-1), weights, inputs.shape[0])


@functools.partial(jax.jit, static_argnames=("apply_fn",))
def _stacked_draws(apply_fn, weight_draws, inputs):
    return _map_draws(lambda w: jax.nn.softmax(apply_fn(w, inputs), axis=-1), weight_draws, inputs.shape[0])


class Predictive(NamedTuple):
    """A Monte Carlo posterior predictive: ``mean`` and ``std`` over the draws
    (shape ``(n, outputs)``) and the per-draw outputs ``draws``
    (shape ``(num_draws, n, outputs)``).

    Taught in chapter "The reparameterization trick and Bayes by Backprop".
    """

    mean: jax.Array
    std: jax.Array
    draws: jax.Array


@functools.partial(jax.jit, static_argnames=("apply_fn", "num_draws"))
def _variational_outputs(apply_fn, q, inputs, key, num_draws):
    weights = vi.sample(q, key, num_draws)
    return _map_draws(lambda w: apply_fn(w, inputs), weights, inputs.shape[0])


@functools.partial(jax.jit, static_argnames=("apply_fn",))
def _stacked_outputs(apply_fn, weight_draws, inputs):
    return _map_draws(lambda w: apply_fn(w, inputs), weight_draws, inputs.shape[0])


def variational_outputs(apply_fn: ApplyFn, q: dict, inputs, key: jax.Array, num_draws: int) -> jax.Array:
    """Network outputs under ``num_draws`` weight draws ``w_s ~ q``: shape ``(num_draws, n, outputs)``.

    ``apply_fn(w, inputs) -> outputs`` (e.g. ``net.apply``); the draws are
    those of ``vi.sample(q, key, num_draws)``, all computed in one jitted
    ``jax.vmap`` (in cache-sized blocks of draws on a CPU; compiled once per
    ``apply_fn`` object and ``num_draws``).

    Taught in chapter "The reparameterization trick and Bayes by Backprop".
    """
    return _variational_outputs(apply_fn, _check_posterior(q), _check_inputs(inputs), key, _check_num_draws(num_draws))


def _check_posterior(q) -> dict:
    """A mean-field ``q`` of :func:`bnnbook.vi.init_mean_field` with finite parameters."""
    vi.parameterization(q)  # a ValueError naming q unless it has 'mean' and one of 'rho' or 'log_var'
    check_finite("q", q, "every mean and scale parameter of q must be finite; a NaN usually comes from a "
                 "diverged fit (lower the learning rate)")
    return q


def _check_weight_draws(weight_draws) -> None:
    leaves = jax.tree_util.tree_leaves(weight_draws)
    if not leaves or any(jnp.ndim(leaf) < 1 for leaf in leaves):
        raise ValueError("weight_draws must be a parameter tree whose leaves have a leading draw axis")
    sizes = {int(jnp.shape(leaf)[0]) for leaf in leaves}
    if len(sizes) != 1:
        raise ValueError(f"every leaf of weight_draws needs the same number of draws; got {sorted(sizes)}")
    check_finite("weight_draws", weight_draws, "every weight draw must be finite; a NaN usually comes from a "
                 "diverged sampler or fit")


def sample_outputs(apply_fn: ApplyFn, weight_draws: Any, inputs) -> jax.Array:
    """Network outputs under given weight draws (leading draw axis): shape ``(num_draws, n, outputs)``.

    Taught in chapter "The reparameterization trick and Bayes by Backprop".
    """
    _check_weight_draws(weight_draws)
    return _stacked_outputs(apply_fn, weight_draws, _check_inputs(inputs))


def summarize(draws) -> Predictive:
    """:class:`Predictive` (mean, std over axis 0, and the draws) of per-draw outputs.

    Taught in chapter "The reparameterization trick and Bayes by Backprop".
    """
    draws = jnp.asarray(draws)
    if draws.ndim < 2 or 0 in draws.shape:
        raise ValueError(f"draws must have shape (num_draws, n, ...) with every size >= 1; got {draws.shape}")
    return Predictive(mean=draws.mean(0), std=draws.std(0), draws=draws)


def variational_predictive(apply_fn: ApplyFn, q: dict, inputs, key: jax.Array, num_draws: int) -> Predictive:
    """The regression predictive of a mean-field ``q``: mean, std and per-draw outputs.

    ``mean`` and ``std`` have shape ``(n, outputs)``, ``draws`` has shape
    ``(num_draws, n, outputs)``; ``std`` is the epistemic spread of the
    network's output (add the noise variance for the spread of new ``y``).
    One jitted ``jax.vmap`` over ``num_draws`` weight draws (in blocks on a CPU).

    Taught in chapter "The reparameterization trick and Bayes by Backprop".
    """
    return summarize(variational_outputs(apply_fn, q, inputs, key, num_draws))


def variational_probs(apply_fn: ApplyFn, q: dict, inputs, key: jax.Array, num_draws: int) -> jax.Array:
    """Class probabilities under ``num_draws`` weight draws ``w_s ~ q``: shape ``(num_draws, n, classes)``.

    ``apply_fn(w, inputs) -> logits`` (e.g. ``net.apply`` of a Haiku network);
    ``q`` is a mean-field posterior of :func:`bnnbook.vi.init_mean_field`. The
    draws use the keys of ``vi.sample(q, key, num_draws)``, so a fixed ``key``
    gives the same draws every time. Compiled once per ``apply_fn`` and
    ``num_draws``; pass the same ``apply_fn`` object to reuse the compilation.

    Taught in chapter "The reparameterization trick and Bayes by Backprop";
    used in chapter "Rejecting out-of-distribution inputs".
    """
    return _variational_draws(apply_fn, _check_posterior(q), _check_inputs(inputs), key, _check_num_draws(num_draws))


def sample_probs(apply_fn: ApplyFn, weight_draws: Any, inputs) -> jax.Array:
    """Class probabilities under given weight draws (e.g. HMC samples): shape ``(num_draws, n, classes)``.

    ``weight_draws`` is a parameter tree whose leaves carry a leading draw
    axis (as :func:`bnnbook.vi.sample` with ``num_samples`` or a stack of
    posterior samples returns).

    Taught in chapter "The reparameterization trick and Bayes by Backprop";
    used in chapter "Rejecting out-of-distribution inputs".
    """
    _check_weight_draws(weight_draws)
    return _stacked_draws(apply_fn, weight_draws, _check_inputs(inputs))


def point_probs(apply_fn: ApplyFn, params: Any, inputs) -> jax.Array:
    """Class probabilities of a single weight setting (MLE, MAP), shaped ``(1, n, classes)`` like the draws.

    Taught in chapter "The reparameterization trick and Bayes by Backprop";
    used in chapter "Rejecting out-of-distribution inputs".
    """
    return sample_probs(apply_fn, jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf)[None], params), inputs)


def mean_and_std(prob_draws) -> tuple[jax.Array, jax.Array]:
    """The predictive mean and the per-class standard deviation over draws (axis 0).

    Taught in chapter "The reparameterization trick and Bayes by Backprop";
    used in chapter "Rejecting out-of-distribution inputs".
    """
    prob_draws = jnp.asarray(prob_draws)
    if prob_draws.ndim != 3 or 0 in prob_draws.shape:
        raise ValueError(f"prob_draws must have shape (num_draws, n, classes) with every size >= 1; "
                         f"got {prob_draws.shape}")
    return prob_draws.mean(0), prob_draws.std(0)


__all__ = ["Predictive", "variational_outputs", "sample_outputs", "summarize", "variational_predictive",
           "variational_probs", "sample_probs", "point_probs", "mean_and_std"]
