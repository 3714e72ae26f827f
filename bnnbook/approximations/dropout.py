"""MC dropout (Gal and Ghahramani 2016).

Taught in chapter "Practical approximations".

Train with dropout on the hidden units, and *keep it on at test time*:
each forward pass with a fresh mask is one draw of a network, and the
average of ``S`` such passes is the predictive. Gal and Ghahramani read the
masks as a variational distribution over the weights (each row of the next
layer's weight matrix is either kept, scaled by ``1 / (1 - rate)``, or
zeroed), so the draws approximate a posterior predictive; the weight decay
plays the part of the prior.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp


def _check_rate(rate) -> float:
    if not 0.0 <= float(rate) < 1.0:
        raise ValueError(f"rate={rate!r} is the probability of dropping a unit and must be in [0, 1), e.g. 0.1")
    return float(rate)


def _layers(params):
    if not params or any("linear_" not in name or not name.rsplit("_", 1)[-1].isdigit() for name in params):
        raise ValueError(f"params has layers {list(params)}; dropout needs the parameters of bnnbook.nets.mlp")
    return [params[name] for name in sorted(params, key=lambda name: int(name.rsplit("_", 1)[-1]))]


def dropout_logits(params, inputs, key: jax.Array, rate: float, activation: Callable = jax.nn.sigmoid):
    """Logits of a :func:`bnnbook.nets.mlp` with inverted dropout on every hidden layer's output.

    A unit is zeroed with probability ``rate`` and the survivors are scaled
    by ``1 / (1 - rate)``, so the expected activation is unchanged and the
    network without dropout (``rate=0``) is the same function.
    """
    rate = _check_rate(rate)
    layers = _layers(params)
    hidden = jnp.reshape(inputs, (inputs.shape[0], -1))
    for index, layer in enumerate(layers):
        hidden = hidden @ layer["w"] + layer["b"]
        if index < len(layers) - 1:
            hidden = activation(hidden)
            if rate > 0.0:
                key, mask_key = jax.random.split(key)
                keep = jax.random.bernoulli(mask_key, 1.0 - rate, hidden.shape)
                hidden = jnp.where(keep, hidden / (1.0 - rate), 0.0)
    return hidden


def mc_dropout_probs(params, inputs, key: jax.Array, rate: float, num_draws: int,
                     activation: Callable = jax.nn.sigmoid, block: int = 4096) -> jax.Array:
    """``num_draws`` stochastic forward passes, shape ``(num_draws, inputs, classes)``.

    Draw ``s`` uses ``fold_in(key, s)`` for its masks, and every input gets
    its own mask (as in training), so the draws are independent across inputs
    as well as across passes.
    """
    if not isinstance(num_draws, int) or num_draws < 1:
        raise ValueError(f"num_draws={num_draws!r} must be a positive integer, e.g. 50")
    inputs = jnp.asarray(inputs)
    one = jax.jit(lambda k, x: jax.nn.softmax(dropout_logits(params, x, k, rate, activation)))
    draws = []
    for s in range(num_draws):
        draw_key = jax.random.fold_in(key, s)
        draws.append(jnp.concatenate([one(jax.random.fold_in(draw_key, i), inputs[i:i + block])
                                      for i in range(0, inputs.shape[0], block)]))
    return jnp.stack(draws)


__all__ = ["dropout_logits", "mc_dropout_probs"]
