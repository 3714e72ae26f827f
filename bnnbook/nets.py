"""Small Haiku networks used across the book.

Taught in chapter "Why Bayesian neural networks".
"""

from __future__ import annotations

from typing import Callable, Sequence

import haiku as hk
import jax
import jax.numpy as jnp


def mlp(hidden_sizes: Sequence[int], output_size: int, activation: Callable = jax.nn.relu,
        name: str = "mlp") -> hk.Transformed:
    """A transformed Haiku MLP ``x -> logits`` (inputs are flattened first).

    ``hidden_sizes`` e.g. ``(256, 256)``; the output layer is linear.

    Taught in chapter "Why Bayesian neural networks".
    """
    if output_size < 1 or any(h < 1 for h in hidden_sizes):
        raise ValueError(f"layer sizes must be >= 1, got hidden_sizes={tuple(hidden_sizes)}, output_size={output_size}")

    def forward(x):
        x = jnp.reshape(x, (x.shape[0], -1))
        return hk.nets.MLP([*hidden_sizes, output_size], activation=activation, name=name)(x)

    return hk.without_apply_rng(hk.transform(forward))


def count_params(params) -> int:
    """Number of scalars in a parameter tree.

    Taught in chapter "MLE and MAP".
    """
    return sum(int(leaf.size) for leaf in jax.tree_util.tree_leaves(params))


__all__ = ["mlp", "count_params"]
