"""The variational free energy, the minibatch loss for :func:`bnnbook.train.fit`, and how
the KL is shared among the minibatches of an epoch.

Taught in chapter "The variational free energy"; the chapters "The reparameterization
trick and Bayes by Backprop" and "Rejecting out-of-distribution inputs" train with it.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from bnnbook._checks import check_count
from bnnbook.vi._checks import _KL_MODES, _check_beta, _check_num_samples, _check_q, _is_concrete, _per_draw
from bnnbook.vi.kl import _is_gaussian, _kl_of_draws, closed_form_kl
from bnnbook.vi.meanfield import sample


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
