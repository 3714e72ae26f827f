"""Train many networks at once, and deep ensembles.

Taught in chapter "Practical approximations".

A deep ensemble (Lakshminarayanan et al. 2017) is ``M`` networks trained
independently from different random initialisations and minibatch orders;
its predictive is the mixture ``p(y | x) = (1/M) sum_m p(y | x, w_m)``. On a
CPU the ``M`` small networks train fastest side by side: :func:`fit_members`
``vmap``-s one optimiser step over a leading *member* axis of the
parameters, so each step is one larger batched product instead of ``M``
small ones. The same function trains the book's other point estimates (MLE,
MAP, and the dropout network) with several seeds.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from bnnbook._checks import check_count

# loss_fn(params, images, labels, key) -> scalar loss (mean over the batch)
LossFn = Callable[[Any, jax.Array, jax.Array, jax.Array], jax.Array]


def stack_members(init_fn: Callable[[jax.Array], Any], key: jax.Array, num_members: int) -> Any:
    """Initialise ``num_members`` networks from independent keys; leaves get a leading member axis.

    ``init_fn(key) -> params``, e.g. ``lambda k: net.init(k, images[:1])``.
    """
    if not isinstance(num_members, (int, np.integer)) or num_members < 1:
        raise ValueError(f"num_members={num_members!r} must be a positive integer, e.g. 5")
    return jax.vmap(init_fn)(jax.random.split(key, int(num_members)))


def member(stacked: Any, index: int) -> Any:
    """The parameters of one member of a stacked tree."""
    num_members = _num_members(stacked)
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not -num_members <= index < num_members:
        raise ValueError(f"index={index!r} must be an integer in [0, {num_members}) (the stack has {num_members} "
                         f"members); JAX would silently clamp it to the last one")
    return jax.tree.map(lambda leaf: leaf[index], stacked)


def _num_members(stacked) -> int:
    sizes = {int(jnp.shape(leaf)[0]) if jnp.ndim(leaf) else -1 for leaf in jax.tree_util.tree_leaves(stacked)}
    if len(sizes) != 1 or -1 in sizes:
        raise ValueError(f"stacked parameters need one leading member axis shared by every leaf; got sizes "
                         f"{sorted(sizes)} (build them with stack_members)")
    return sizes.pop()


def fit_members(loss_fn: LossFn, stacked_params: Any, optimizer: optax.GradientTransformation,
                images, labels, *, num_epochs: int, batch_size: int, key: jax.Array,
                desc: str = "members", progress: bool = True) -> tuple[Any, np.ndarray]:
    """Train every member of ``stacked_params`` with its own minibatch order and step keys.

    Each epoch is one jitted ``lax.scan`` over ``len(images) // batch_size``
    minibatches (the remainder of a shuffle is skipped), ``vmap``-ed over the
    members; member ``m`` shuffles with ``fold_in(key, m)`` so no two members
    see the same order. ``loss_fn(params, images, labels, key)`` is one
    member's mean loss on a minibatch (``key`` for dropout masks).

    Returns the trained stacked parameters and the mean training loss per
    epoch, shape ``(num_epochs, members)``.
    """
    if not isinstance(num_epochs, (int, np.integer)) or num_epochs < 1:
        raise ValueError(f"num_epochs={num_epochs!r} must be a positive integer")
    images, labels = jnp.asarray(images), jnp.asarray(labels)
    num_examples = images.shape[0]
    if labels.shape[0] != num_examples:
        raise ValueError(f"{num_examples} images but {labels.shape[0]} labels")
    if not 1 <= batch_size <= num_examples:
        raise ValueError(f"batch_size={batch_size} must be in [1, {num_examples}] (the number of examples)")
    num_members = _num_members(stacked_params)
    steps = num_examples // batch_size
    member_keys = jax.vmap(lambda m: jax.random.fold_in(key, m))(jnp.arange(num_members))
    opt_state = jax.vmap(optimizer.init)(stacked_params)

    def one_member_epoch(params, state, member_key, epoch):
        epoch_key = jax.random.fold_in(member_key, epoch)
        order_key, step_key = jax.random.split(epoch_key)
        order = jax.random.permutation(order_key, num_examples)[: steps * batch_size].reshape(steps, batch_size)

        def step(carry, inputs):
            params, state = carry
            index, position = inputs
            loss, grads = jax.value_and_grad(loss_fn)(params, images[index], labels[index],
                                                      jax.random.fold_in(step_key, position))
            updates, state = optimizer.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), loss

        (params, state), losses = jax.lax.scan(step, (params, state), (order, jnp.arange(steps)))
        return params, state, losses.mean()

    epoch_fn = jax.jit(jax.vmap(one_member_epoch, in_axes=(0, 0, 0, None)))
    losses = []
    with tqdm(range(num_epochs), desc=desc, disable=not progress, file=sys.stdout, ncols=100) as bar:
        for epoch in bar:
            stacked_params, opt_state, loss = epoch_fn(stacked_params, opt_state, member_keys, epoch)
            loss = np.asarray(loss)
            if not np.all(np.isfinite(loss)):
                raise FloatingPointError(f"{desc}: non-finite training loss at epoch {epoch} for members "
                                         f"{np.flatnonzero(~np.isfinite(loss)).tolist()}; lower the learning rate")
            losses.append(loss)
            bar.set_postfix(loss=f"{loss.mean():.4f}", refresh=False)
    return stacked_params, np.stack(losses)


def members_probs(apply_fn: Callable, stacked_params: Any, inputs, block: int = 4096) -> jax.Array:
    """Softmax outputs of every member, shape ``(members, inputs, classes)``.

    For a deep ensemble these are the mixture's components: average over
    axis 0 for its predictive. Inputs go through in blocks of ``block`` to
    bound memory.
    """
    block = check_count("block", block, hint="inputs per jitted call, e.g. 4096")
    inputs = jnp.asarray(inputs)
    if inputs.ndim < 1 or inputs.shape[0] == 0:
        raise ValueError(f"inputs must have a leading example axis with at least one example; got shape {inputs.shape}")
    _num_members(stacked_params)
    per_member = jax.jit(jax.vmap(lambda p, x: jax.nn.softmax(apply_fn(p, x)), in_axes=(0, None)))
    return jnp.concatenate([per_member(stacked_params, inputs[i:i + block])
                            for i in range(0, inputs.shape[0], block)], axis=1)


__all__ = ["stack_members", "member", "fit_members", "members_probs"]
