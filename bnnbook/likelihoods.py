"""Log-likelihoods of regression and classification nets, and the MLE/MAP loss.

Taught in chapter "MLE and MAP".

* :func:`gaussian_log_likelihood`: ``log N(y; mean, noise_std^2)``; its
  negative is the sum of squares over ``2 noise_std^2`` plus
  ``n log(noise_std sqrt(2 pi))``.
* :func:`categorical_log_likelihood`: ``log softmax(logits)[label]``; its
  negative is the cross entropy.
* :func:`map_loss`: a loss for :func:`bnnbook.train.fit` that is the negative
  log posterior ``-log p(D | w) - log p(w)`` (MLE when there is no prior),
  averaged per training example so that the learning rate does not depend on
  the data-set size.

``reduction`` is one of ``"sum"`` (over every example), ``"mean"`` (over
examples) or ``"none"`` (one value per example). An *example* is one entry of
the leading axis: for a Gaussian with ``y`` of shape ``(n, d)`` the ``d``
outputs of an example are summed.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from bnnbook._checks import check_count, check_finite, is_concrete
from bnnbook._checks import check_positive as _check_positive

REDUCTIONS = ("sum", "mean", "none")
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction={reduction!r} is not one of {REDUCTIONS}; "
                         f"use 'sum' (total), 'mean' (per example) or 'none' (one value per example)")


def _reduce(per_example, reduction: str):
    if reduction == "sum":
        return jnp.sum(per_example)
    if reduction == "mean":
        return jnp.mean(per_example)
    return per_example


def gaussian_log_likelihood(y, mean, noise_std, reduction: str = "sum"):
    """``log N(y; mean, noise_std^2)`` of regression targets.

    Args:
        y: targets, shape ``(n,)`` or ``(n, d)``.
        mean: the net's predictions, the same shape as ``y``.
        noise_std: the noise standard deviation sigma: a scalar (fixed noise)
            or an array that broadcasts to ``y`` (e.g. a learned, per-example
            sigma of shape ``(n, 1)``). Must be > 0.
        reduction: ``"sum"``, ``"mean"`` (over the n examples) or ``"none"``
            (shape ``(n,)``; outputs of one example are summed).

    For scalar sigma, ``-sum = SSE / (2 sigma^2) + n d log(sigma sqrt(2 pi))``,
    so maximising it over the weights is least squares. Taught in chapter "MLE and MAP".
    """
    _check_reduction(reduction)
    y, mean, noise_std = jnp.asarray(y), jnp.asarray(mean), jnp.asarray(noise_std)
    if y.shape != mean.shape:
        raise ValueError(f"mean has shape {mean.shape} but y has shape {y.shape}; they must match "
                         f"(reshape the predictions, e.g. mean.reshape(y.shape))")
    if y.ndim == 0:
        raise ValueError("y is a scalar; pass an array of examples with shape (n,) or (n, d)")
    try:
        fits = np.broadcast_shapes(noise_std.shape, y.shape) == y.shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"noise_std has shape {noise_std.shape}, which does not broadcast to y's shape "
                         f"{y.shape}; pass a scalar or an array of shape {y.shape}")
    _check_positive("noise_std", noise_std, "The noise standard deviation must be positive "
                    "(for a learned one use softplus or exp of a free parameter).")
    check_finite("y", y, "regression targets must be finite; drop or impute the NaN rows of the data")
    check_finite("mean", mean, "the predictions must be finite; a NaN usually means the network diverged")
    z = (y - mean) / noise_std
    log_density = -0.5 * z * z - jnp.log(noise_std) - _LOG_SQRT_2PI
    log_density = jnp.broadcast_to(log_density, y.shape)
    per_example = jnp.sum(log_density.reshape(y.shape[0], -1), axis=1)
    return _reduce(per_example, reduction)


def categorical_log_likelihood(logits, labels, reduction: str = "sum"):
    """``log softmax(logits)[label]`` of integer class labels.

    Args:
        logits: unnormalised log probabilities, shape ``(..., n, classes)``.
        labels: integer labels, shape ``logits.shape[:-1]``.
        reduction: ``"sum"``, ``"mean"`` or ``"none"`` (shape of ``labels``).

    Its negative is the cross entropy between the one-hot labels and the
    softmax probabilities. Computed with ``jax.nn.log_softmax`` (stable for
    large logits). Taught in chapter "MLE and MAP".
    """
    _check_reduction(reduction)
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    if logits.ndim < 1 or labels.shape != logits.shape[:-1]:
        raise ValueError(f"labels has shape {labels.shape} but logits has shape {logits.shape}; labels must "
                         f"have shape logits.shape[:-1] = {logits.shape[:-1]} (integer class indices, not one-hot)")
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(f"labels has dtype {labels.dtype}; pass integer class indices")
    check_finite("logits", logits, "the logits must be finite; a NaN usually means the network diverged")
    return _reduce(_label_log_probs(jax.nn.log_softmax(logits, axis=-1), labels), reduction)


def _label_log_probs(log_probs, labels):
    """``log_probs[..., label]`` for integer ``labels`` of shape ``log_probs.shape[:-1]``.

    A label outside ``[0, classes)`` raises a ValueError when the labels are
    concrete; inside ``jax.jit`` it gives NaN (never a silently wrapped class),
    which :func:`bnnbook.train.fit`'s NaN guard then reports.

    Taught in chapter "MLE and MAP".
    """
    num_classes = log_probs.shape[-1]
    if is_concrete(labels) and jnp.size(labels):
        # NumPy, not jnp: inside a trace jnp would stage even a concrete array's min into the program.
        low, high = int(np.min(np.asarray(labels))), int(np.max(np.asarray(labels)))
        if low < 0 or high >= num_classes:
            raise ValueError(f"labels range over [{low}, {high}] but there are {num_classes} classes; "
                             f"labels must be class indices in [0, {num_classes})")
    valid = (labels >= 0) & (labels < num_classes)
    picked = jnp.take_along_axis(log_probs, jnp.clip(labels, 0, num_classes - 1)[..., None], axis=-1)[..., 0]
    return jnp.where(valid, picked, jnp.nan)


def _likelihood_fn(likelihood, noise_std):
    if callable(likelihood):
        return likelihood
    if likelihood == "gaussian":
        if noise_std is None:
            raise ValueError("likelihood='gaussian' needs noise_std (the noise standard deviation), e.g. noise_std=1.0")
        _check_positive("noise_std", noise_std)
        def gaussian(outputs, targets):
            if jnp.shape(outputs) != jnp.shape(targets):
                raise ValueError(f"targets have shape {jnp.shape(targets)} but apply_fn returns outputs of shape "
                                 f"{jnp.shape(outputs)}; they must match (e.g. y of shape (n, 1) for a net "
                                 f"with one output)")
            return gaussian_log_likelihood(targets, outputs, noise_std, reduction="none")
        return gaussian
    if likelihood == "categorical":
        def categorical(outputs, targets):
            if jnp.shape(targets) != jnp.shape(outputs)[:-1]:
                raise ValueError(f"targets have shape {jnp.shape(targets)} but apply_fn returns logits of shape "
                                 f"{jnp.shape(outputs)}; targets must be integer labels of shape "
                                 f"{jnp.shape(outputs)[:-1]}")
            return categorical_log_likelihood(outputs, targets, reduction="none")
        return categorical
    raise ValueError(f"likelihood={likelihood!r}; use 'gaussian', 'categorical' or a function "
                     f"f(outputs, targets) -> log-likelihood per example")


def map_loss(apply_fn: Callable, likelihood: str | Callable = "categorical", prior: Any = None, *,
             num_examples: int, noise_std: float | None = None) -> Callable:
    """Build ``loss_fn(params, batch, key) -> (loss, metrics)`` for :func:`bnnbook.train.fit`.

    The loss is the negative log posterior divided by the training-set size N::

        loss = -(1/B) sum_{batch} log p(y_i | x_i, w)  -  (1/N) log p(w)

    On a minibatch of B examples the first term estimates ``-(1/N) log p(D | w)``
    without bias, so ``N * loss`` estimates ``-log p(D | w) - log p(w)``: the
    minimiser is the MAP estimate. Note the ``1/N`` in front of the prior: it
    is what turns the prior's strength ``1/s^2`` into a per-example weight decay
    ``1/(N s^2)``. With ``prior=None`` this is the MLE loss (mean NLL).

    Args:
        apply_fn: ``apply_fn(params, x) -> outputs`` (e.g. ``bnnbook.nets.mlp(...).apply``).
        likelihood: ``"categorical"`` (outputs are logits, targets integer labels),
            ``"gaussian"`` (outputs are means; pass ``noise_std``) or a function
            ``f(outputs, targets) -> per-example log-likelihood``.
        prior: an object with ``log_prob(params)`` (see :mod:`bnnbook.priors`) or ``None``.
        num_examples: training-set size N.
        noise_std: the Gaussian noise standard deviation (only for ``"gaussian"``).

    ``batch`` is ``(x, y)``; the metrics are ``nll`` (mean negative
    log-likelihood of the batch) and ``neg_log_prior`` (``-log p(w)``, 0 for MLE).
    Taught in chapter "MLE and MAP".
    """
    check_count("num_examples", num_examples, hint="the training-set size N")
    if prior is not None and not hasattr(prior, "log_prob"):
        raise ValueError(f"prior={prior!r} has no log_prob(params); pass e.g. bnnbook.priors.Gaussian(1.0) or None")
    log_lik = _likelihood_fn(likelihood, noise_std)
    scale = 1.0 / float(num_examples)

    def loss_fn(params, batch, key=None):
        x, y = batch
        nll = -jnp.mean(log_lik(apply_fn(params, x), y))
        neg_log_prior = -prior.log_prob(params) if prior is not None else jnp.zeros((), nll.dtype)
        return nll + scale * neg_log_prior, {"nll": nll, "neg_log_prior": neg_log_prior}

    return loss_fn


__all__ = ["REDUCTIONS", "gaussian_log_likelihood", "categorical_log_likelihood", "map_loss"]
