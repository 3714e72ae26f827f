"""Cheap surrogate gradients for the leapfrog integrator: bfloat16 matrix products.

Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks"
(``chapters/06_hmc.ipynb``), section "A cheaper gradient, the same chain".

For the MNIST network nearly all the cost of one full-batch gradient is the
first layer: the product ``X W`` of the (55,000 x 784) images with the
(784 x 100) weights, and its transpose ``X^T G`` in the backward pass. On a
CPU with bfloat16 matrix units (Intel AMX) both run about twice as fast in
bfloat16 with float32 accumulation. The leapfrog integrator can use such a
gradient: any deterministic gradient field gives a reversible,
volume-preserving map, so the Metropolis test with the *exact* (float32)
energy keeps the posterior exact (see :func:`bnnbook.hmc.hmc_step`). The
rounding only costs some acceptance.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp


@jax.custom_vjp
def bf16_matmul(inputs: jax.Array, weights: jax.Array) -> jax.Array:
    """``inputs @ weights`` with bfloat16 operands and float32 accumulation.

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".
    The backward pass is written out (``jax.custom_vjp``) so that both
    products of the gradient, ``G W^T`` and ``X^T G``, are bfloat16 products
    with float32 results too; autodiff of a mixed-precision ``dot`` would not
    guarantee that. Pass ``inputs`` already cast to bfloat16 (once, outside
    the sampler) to avoid casting a large data matrix at every step.
    """
    return jnp.dot(inputs.astype(jnp.bfloat16), weights.astype(jnp.bfloat16), preferred_element_type=jnp.float32)


def _bf16_matmul_fwd(inputs, weights):
    return bf16_matmul(inputs, weights), (inputs, weights)


def _bf16_matmul_bwd(residuals, cotangent):
    inputs, weights = residuals
    cotangent = cotangent.astype(jnp.bfloat16)
    # Under jit the input cotangent is dropped when the inputs are data (not differentiated).
    d_inputs = jnp.dot(cotangent, weights.astype(jnp.bfloat16).T, preferred_element_type=jnp.float32)
    d_weights = jnp.dot(inputs.astype(jnp.bfloat16).T, cotangent, preferred_element_type=jnp.float32)
    return d_inputs.astype(inputs.dtype), d_weights.astype(weights.dtype)


bf16_matmul.defvjp(_bf16_matmul_fwd, _bf16_matmul_bwd)


def mlp_logits(params, inputs: jax.Array, activation: Callable = jax.nn.relu,
               first_layer_matmul: Callable = jnp.matmul) -> jax.Array:
    """Evaluate the parameters of a :func:`bnnbook.nets.mlp` by hand, choosing the first layer's product.

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".
    ``params`` is the Haiku dict of ``nets.mlp`` (layers ``.../linear_0``,
    ``.../linear_1``, ...). With ``first_layer_matmul=jnp.matmul`` this is the
    network's own forward pass; with ``bf16_matmul`` it is the surrogate
    whose gradient drives the leapfrog steps.
    """
    if not params or any("linear_" not in name or not name.rsplit("_", 1)[-1].isdigit() for name in params):
        raise ValueError(f"params has layers {list(params)}; mlp_logits needs the parameters of bnnbook.nets.mlp "
                         f"(layers named .../linear_0, .../linear_1, ...)")
    layers = sorted(params, key=lambda name: int(name.rsplit("_", 1)[-1]))
    hidden = jnp.reshape(inputs, (inputs.shape[0], -1))
    for index, name in enumerate(layers):
        layer = params[name]
        product = first_layer_matmul(hidden, layer["w"]) if index == 0 else hidden @ layer["w"]
        hidden = product + layer["b"]
        if index < len(layers) - 1:
            hidden = activation(hidden)
    return hidden


__all__ = ["bf16_matmul", "mlp_logits"]
