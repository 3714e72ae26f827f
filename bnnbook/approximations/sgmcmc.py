"""Stochastic-gradient MCMC: SGLD and SGHMC, with a cyclical step size.

Taught in chapter "Practical approximations".

Full-batch HMC (chapter "Hamiltonian Monte Carlo") pays one pass over all
the data per leapfrog step. Stochastic-gradient MCMC replaces the gradient
of the log posterior by its minibatch estimate

    g(theta) = grad log p(theta) + (N / n) sum_{i in batch} grad log p(y_i | x_i, theta)

and drops the Metropolis test, so a step costs one minibatch gradient:

* **SGLD** (Welling and Teh 2011): ``theta <- theta + eps g + sqrt(2 eps T) xi``,
  the Euler step of the Langevin diffusion whose stationary law is
  ``p(theta | D)^(1/T)``;
* **SGHMC** (Chen et al. 2014), with friction ``alpha`` and unit mass:
  ``theta <- theta + eps r``; ``r <- (1 - alpha eps) r + eps g + sqrt(2 alpha eps T) xi``.

Both are exact only as ``eps -> 0`` (the minibatch noise and the
discretisation bias vanish with the step); in practice the step decays,
or, as in cyclical SG-MCMC (Zhang et al. 2020), restarts large at each
cycle to jump between modes and shrinks to sample within one.

The kernels follow BlackJAX's ``sgld``/``sghmc`` conventions (same update,
same noise draw from the same key), so a step can be checked against it.
"""

from __future__ import annotations

import math
import sys
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from tqdm import tqdm


class SGLDState(NamedTuple):
    position: Any


class SGHMCState(NamedTuple):
    position: Any
    momentum: Any


def _noise(key, tree):
    # One fused draw for the whole tree, the way BlackJAX draws it.
    flat, unravel = ravel_pytree(tree)
    return unravel(jax.random.normal(key, flat.shape, flat.dtype))


def sgld_init(position) -> SGLDState:
    return SGLDState(position)


def sgld_step(key: jax.Array, state: SGLDState, grad: Any, step_size, temperature=1.0,
              noise_scale=1.0) -> SGLDState:
    """One SGLD step given the gradient estimate ``grad`` of the log posterior at ``state.position``.

    ``noise_scale=0`` turns the step into plain gradient ascent (the
    exploration stage of a cyclical schedule).
    """
    noise = _noise(key, state.position)
    scale = noise_scale * jnp.sqrt(2.0 * temperature * step_size)
    return SGLDState(jax.tree.map(lambda p, g, n: p + step_size * g + scale * n, state.position, grad, noise))


def sghmc_init(position) -> SGHMCState:
    return SGHMCState(position, jax.tree.map(jnp.zeros_like, position))


def sghmc_step(key: jax.Array, state: SGHMCState, grad: Any, step_size, friction: float = 0.1,
               temperature=1.0, noise_scale=1.0) -> SGHMCState:
    """One SGHMC step (unit mass, friction ``alpha = friction``); ``grad`` is taken at ``state.position``.

    ``friction * step_size`` must stay below 1 (it is the share of the
    momentum lost per step); ``noise_scale=0`` gives SGD with momentum.
    """
    noise = _noise(key, state.position)
    position = jax.tree.map(lambda x, r: x + step_size * r, state.position, state.momentum)
    scale = noise_scale * jnp.sqrt(2.0 * friction * step_size * temperature)
    momentum = jax.tree.map(lambda r, g, n: (1.0 - friction * step_size) * r + step_size * g + scale * n,
                            state.momentum, grad, noise)
    return SGHMCState(position, momentum)


def cyclical_step_size(step, steps_per_cycle: int, initial: float):
    """Zhang et al.'s cosine cycle: ``initial / 2 * (cos(pi * (step mod L) / L) + 1)`` with ``L = steps_per_cycle``."""
    phase = jnp.mod(step, steps_per_cycle) / steps_per_cycle
    return 0.5 * initial * (jnp.cos(jnp.pi * phase) + 1.0)


class SGMCMCRun(NamedTuple):
    """What :func:`run_sgmcmc` returns. ``samples`` has leaves ``(chains, kept, ...)``."""

    samples: Any
    kept_epochs: np.ndarray
    log_likelihood: np.ndarray  # (epochs, chains): mean minibatch log-likelihood per example


def run_sgmcmc(kernel: str, log_prior_fn: Callable, log_likelihood_fn: Callable, positions: Any, images, labels, *,
               num_epochs: int, batch_size: int, step_size: float, epochs_per_cycle: int | None = None,
               exploration: float = 0.0, keep_from_epoch: int = 0, friction: float = 0.1,
               key: jax.Array, desc: str | None = None, progress: bool = True) -> SGMCMCRun:
    """Run ``kernel`` (``"sgld"`` or ``"sghmc"``) on every chain of ``positions`` (leading chain axis).

    ``log_likelihood_fn(params, images, labels)`` is the *summed* log-likelihood
    of a minibatch, scaled here by ``N / batch_size``; ``log_prior_fn(params)``
    the log prior. Step sizes:

    * ``epochs_per_cycle=None``: the constant ``step_size``; the position at
      the end of every epoch from ``keep_from_epoch`` on is kept;
    * ``epochs_per_cycle=L``: cosine cycles of ``L`` epochs starting at
      ``step_size``; within each cycle the first ``exploration`` share of the
      epochs runs without noise (optimisation), and the end of every later
      epoch of the cycle is kept.

    The step size here is per *summed* log posterior (the gradient is ``N``
    times a per-example one, so the step is ``1 / N`` times a per-example
    learning rate), the unit BlackJAX uses.
    """
    if kernel not in ("sgld", "sghmc"):
        raise ValueError(f"kernel={kernel!r}: use 'sgld' or 'sghmc'")
    if not step_size > 0:
        raise ValueError(f"step_size={step_size!r} must be positive, e.g. 1e-5 for MNIST with N = 55,000")
    if not 0.0 <= exploration < 1.0:
        raise ValueError(f"exploration={exploration!r} is a share of each cycle and must be in [0, 1)")
    images, labels = jnp.asarray(images), jnp.asarray(labels)
    num_examples = images.shape[0]
    steps = num_examples // batch_size
    scale = num_examples / batch_size
    num_chains = int(jax.tree_util.tree_leaves(positions)[0].shape[0])

    def grad_fn(params, batch_images, batch_labels):
        def log_posterior(p):
            log_lik = log_likelihood_fn(p, batch_images, batch_labels)
            return log_prior_fn(p) + scale * log_lik, log_lik
        grads, log_lik = jax.grad(log_posterior, has_aux=True)(params)
        return grads, log_lik / batch_size

    if kernel == "sgld":
        init, step = sgld_init, sgld_step
    else:
        init = sghmc_init
        step = lambda k, s, g, eps, noise_scale: sghmc_step(k, s, g, eps, friction, noise_scale=noise_scale)
        if friction * step_size >= 1.0:
            raise ValueError(f"friction * step_size = {friction * step_size:.3g} must be below 1")
    if kernel == "sgld":
        step = lambda k, s, g, eps, noise_scale, _step=step: _step(k, s, g, eps, noise_scale=noise_scale)

    def chain_epoch(state, chain_key, epoch):
        epoch_key = jax.random.fold_in(chain_key, epoch)
        order_key, noise_key = jax.random.split(epoch_key)
        order = jax.random.permutation(order_key, num_examples)[: steps * batch_size].reshape(steps, batch_size)
        if epochs_per_cycle is None:
            step_sizes = jnp.full(steps, step_size)
            noise_on = 1.0
        else:
            global_steps = epoch * steps + jnp.arange(steps)
            step_sizes = cyclical_step_size(global_steps, epochs_per_cycle * steps, step_size)
            noise_on = (jnp.mod(epoch, epochs_per_cycle) >= exploration * epochs_per_cycle).astype(jnp.float32)

        def one(state, inputs):
            index, eps, position = inputs
            grads, log_lik = grad_fn(state.position, images[index], labels[index])
            return step(jax.random.fold_in(noise_key, position), state, grads, eps, noise_on), log_lik

        state, log_liks = jax.lax.scan(one, state, (order, step_sizes, jnp.arange(steps)))
        return state, log_liks.mean()

    epoch_fn = jax.jit(jax.vmap(chain_epoch, in_axes=(0, 0, None)))
    state = jax.vmap(init)(positions)
    chain_keys = jax.random.split(key, num_chains)
    kept, kept_epochs, log_liks = [], [], []
    with tqdm(range(num_epochs), desc=desc or kernel.upper(), disable=not progress, file=sys.stdout,
              ncols=100) as bar:
        for epoch in bar:
            state, log_lik = epoch_fn(state, chain_keys, epoch)
            log_lik = np.asarray(log_lik)
            if not np.all(np.isfinite(log_lik)):
                raise FloatingPointError(f"{kernel}: non-finite log-likelihood at epoch {epoch}; "
                                         f"lower step_size={step_size}")
            log_liks.append(log_lik)
            if epochs_per_cycle is None:
                keep = epoch >= keep_from_epoch
            else:
                in_cycle = epoch % epochs_per_cycle
                keep = epoch >= keep_from_epoch and in_cycle >= math.ceil(exploration * epochs_per_cycle)
            if keep:
                kept.append(state.position)
                kept_epochs.append(epoch)
            bar.set_postfix(log_lik=f"{log_lik.mean():.4f}", refresh=False)
    if not kept:
        raise ValueError(f"no epoch was kept (num_epochs={num_epochs}, keep_from_epoch={keep_from_epoch}); "
                         f"keep_from_epoch must be below num_epochs")
    samples = jax.tree.map(lambda *leaves: jnp.stack(leaves, axis=1), *kept)
    return SGMCMCRun(samples=samples, kept_epochs=np.asarray(kept_epochs), log_likelihood=np.stack(log_liks))


__all__ = ["SGLDState", "SGHMCState", "sgld_init", "sgld_step", "sghmc_init", "sghmc_step",
           "cyclical_step_size", "SGMCMCRun", "run_sgmcmc"]
