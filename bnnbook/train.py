"""A small, fast training loop for optax + Haiku (or any parameter pytree).

Taught in chapter "Why Bayesian neural networks"; every JAX chapter trains
with :func:`fit`.

Design: the steps between two progress-bar updates run inside one jitted
``jax.lax.scan`` (few dispatches, fast on CPU and GPU); minibatches are drawn
on the device from a fresh permutation each epoch; every metric of every step
is kept in the history; and a non-finite loss, metric or gradient stops
training with :class:`NonFiniteError`, which names the step and the term and
keeps the last finite parameters, so nothing is lost.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from bnnbook._checks import check_count

LossFn = Callable[[Any, Any, jax.Array], tuple[jax.Array, Mapping[str, jax.Array]]]


class NonFiniteError(FloatingPointError):
    """Training produced NaN or infinity.

    Attributes:
        step: the first step (0-based) whose loss, metric or gradient was not finite.
        terms: names of the non-finite terms at that step.
        params: the parameters at the start of the chunk that failed (all finite).
        history: the history up to that step.
    """

    def __init__(self, message: str, step: int, terms: list[str], params: Any, history: dict):
        super().__init__(message)
        self.step, self.terms, self.params, self.history = step, terms, params, history


@dataclasses.dataclass
class FitResult:
    """Output of :func:`fit`.

    Attributes:
        params: trained parameters.
        opt_state: the optimizer state (to continue training).
        history: ``{name: array of one value per step}`` for the loss, each
            metric returned by the loss function, and ``grad_norm``.
        evaluations: ``[(step, {name: value}), ...]`` from ``eval_fn``.
    """

    params: Any
    opt_state: Any
    history: dict[str, np.ndarray]
    evaluations: list[tuple[int, dict[str, float]]]


def _check_data(data) -> int:
    leaves = jax.tree_util.tree_leaves(data)
    if not leaves:
        raise ValueError("data has no arrays; pass e.g. (images, labels)")
    sizes = {int(np.shape(leaf)[0]) if np.ndim(leaf) else -1 for leaf in leaves}
    if len(sizes) != 1 or -1 in sizes:
        raise ValueError(f"every array in data needs the same leading (example) dimension; got sizes {sorted(sizes)}")
    return sizes.pop()


def fit(loss_fn: LossFn, params: Any, optimizer: optax.GradientTransformation, data: Any, *,
        num_steps: int, key: jax.Array, batch_size: int | None = None, num_updates: int = 20,
        eval_fn: Callable[[Any], Mapping[str, float]] | None = None, opt_state: Any = None,
        desc: str = "training", progress: bool = True) -> FitResult:
    """Minimise ``loss_fn`` with ``optimizer`` for ``num_steps`` steps.

    Args:
        loss_fn: ``loss_fn(params, batch, key) -> (loss, metrics)`` where
            ``batch`` has the structure of ``data`` and ``metrics`` is a dict
            of scalars (for example the likelihood and KL terms).
        params: initial parameter pytree.
        optimizer: an optax gradient transformation.
        data: a pytree of arrays sharing the leading dimension (examples).
        num_steps: number of optimisation steps.
        key: PRNG key, split into ``data_key, step_key = jax.random.split(key)``:
            epoch ``e`` shuffles with ``fold_in(data_key, e)`` and step ``t``'s
            ``loss_fn`` gets ``fold_in(step_key, t)``.
        batch_size: minibatch size (``None``: full batch). Each epoch draws a
            new permutation; the last incomplete batch of an epoch is skipped.
        num_updates: how often the progress bar (and ``eval_fn``) is updated.
        eval_fn: optional ``eval_fn(params) -> dict`` run at each update.
        opt_state: optimizer state to resume from.
        desc: progress-bar label.
        progress: show the tqdm progress bar.

    Taught in chapter "Why Bayesian neural networks".
    """
    num_steps = check_count("num_steps", num_steps, hint="the number of optimisation steps, e.g. 1000")
    num_updates = check_count("num_updates", num_updates, hint="how often the progress bar is updated, e.g. 20")
    num_examples = _check_data(data)
    if batch_size is None:
        batch_size = num_examples
    batch_size = check_count("batch_size", batch_size, hint="the minibatch size, or None for the full batch")
    if not 1 <= batch_size <= num_examples:
        raise ValueError(f"batch_size={batch_size} must be in [1, {num_examples}] (the number of examples)")
    data = jax.tree_util.tree_map(jnp.asarray, data)
    steps_per_epoch = num_examples // batch_size
    full_batch = batch_size == num_examples
    data_key, step_key = jax.random.split(key)
    opt_state = optimizer.init(params) if opt_state is None else opt_state

    def one_step(carry, step):
        params, opt_state, order = carry
        if full_batch:
            batch = data
        else:
            epoch, position = step // steps_per_epoch, step % steps_per_epoch
            order = jax.lax.cond(position == 0,
                                 lambda: jax.random.permutation(jax.random.fold_in(data_key, epoch), num_examples),
                                 lambda: order)
            index = jax.lax.dynamic_slice_in_dim(order, position * batch_size, batch_size)
            batch = jax.tree_util.tree_map(lambda a: jnp.take(a, index, axis=0), data)
        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, batch, jax.random.fold_in(step_key, step))
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        record = {"loss": loss, **metrics, "grad_norm": optax.tree.norm(grads)}
        return (params, opt_state, order), record

    @jax.jit
    def run_chunk(params, opt_state, order, steps):
        return jax.lax.scan(one_step, (params, opt_state, order), steps)

    order = jnp.arange(num_examples)
    boundaries = np.linspace(0, num_steps, min(num_updates, num_steps) + 1).round().astype(int)
    chunks: dict[str, list[np.ndarray]] = {}
    evaluations: list[tuple[int, dict[str, float]]] = []
    bar = tqdm(total=num_steps, desc=desc, disable=not progress, file=sys.stdout,
               dynamic_ncols=False, ncols=100, mininterval=0.5)
    try:
        for start, stop in zip(boundaries[:-1], boundaries[1:]):
            before = params
            # Chunks have at most two lengths, so run_chunk compiles at most twice.
            (params, opt_state, order), records = run_chunk(params, opt_state, order,
                                                            jnp.arange(start, stop))
            records = jax.device_get(records)
            bad = {name: ~np.isfinite(values) for name, values in records.items()}
            any_bad = np.any(np.stack(list(bad.values())), axis=0)
            for name, values in records.items():
                chunks.setdefault(name, []).append(np.asarray(values))
            if any_bad.any():
                first = int(np.argmax(any_bad))
                terms = [name for name, mask in bad.items() if mask[first]]
                history = {k: np.concatenate(v)[: start + first + 1] for k, v in chunks.items()}
                values = ", ".join(f"{k}={float(records[k][first]):.4g}" for k in records)
                raise NonFiniteError(
                    f"non-finite value at step {start + first}: {', '.join(terms)} "
                    f"({values}). Lower the learning rate, check the data for NaN (and class labels for "
                    f"values outside [0, classes)), or check "
                    f"the term named above; .params holds the last finite parameters (step {start}).",
                    step=int(start + first), terms=terms, params=before, history=history)
            postfix = {"loss": f"{float(np.mean(records['loss'])):.4g}"}
            if eval_fn is not None:
                scores = {k: float(v) for k, v in eval_fn(params).items()}
                evaluations.append((int(stop), scores))
                postfix.update({k: f"{v:.4g}" for k, v in scores.items()})
            bar.set_postfix(postfix, refresh=False)
            bar.update(int(stop - start))
    finally:
        bar.close()
    history = {k: np.concatenate(v) for k, v in chunks.items()}
    return FitResult(params=params, opt_state=opt_state, history=history, evaluations=evaluations)

def fit_stacked(loss_fn: Callable, stacked_params: Any, optimizer: optax.GradientTransformation, data: Any, *,
                member_args: Any = (), **fit_kwargs) -> FitResult:
    """Train several networks side by side: ``stacked_params`` has a leading member axis on every leaf.

    ``loss_fn(params, batch, key, *args) -> (loss, metrics)`` is one
    member's loss; ``member_args`` are arrays with the same leading axis
    (e.g. a vector of prior scales), one entry per member. The loss trained is
    the sum of the members' losses under ``jax.vmap``: each term depends only
    on its own copy, so its gradient is that member's own gradient, and an
    elementwise optimizer (SGD, Adam) trains each member exactly as it would
    train it alone, on the same minibatches and step keys. The metrics are
    summed over members too. Other arguments go to :func:`fit`.

    Taught in chapter "Why Bayesian neural networks" (five fits from five
    initialisations); chapter "MLE and MAP" trains a grid of priors with it.
    """
    sizes = {int(leaf.shape[0]) for leaf in jax.tree_util.tree_leaves((stacked_params, member_args))}
    if len(sizes) != 1:
        raise ValueError(f"stacked_params and member_args need one shared leading member axis; got sizes "
                         f"{sorted(sizes)}")

    def total_loss(params, batch, key):
        losses, metrics = jax.vmap(lambda p, *a: loss_fn(p, batch, key, *a))(params, *member_args)
        return jnp.sum(losses), jax.tree_util.tree_map(jnp.sum, metrics)

    return fit(total_loss, stacked_params, optimizer, data, **fit_kwargs)



def smooth(values: np.ndarray, window: int = 50) -> np.ndarray:
    """Running mean over ``window`` steps (for plotting noisy losses).

    Taught in chapter "Why Bayesian neural networks".
    """
    values = np.asarray(values, dtype=float)
    window = check_count("window", window, hint="the number of steps averaged, e.g. 50")
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"values must be a non-empty 1-D array (one value per step); got shape {values.shape}")
    window = min(window, len(values))
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


__all__ = ["fit", "fit_stacked", "FitResult", "NonFiniteError", "smooth"]
