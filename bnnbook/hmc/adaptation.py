"""Step-size adaptation by dual averaging (Hoffman & Gelman 2014) and the warm-up windows.

Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks"
(``chapters/06_hmc.ipynb``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


# --------------------------------------------------------------------------
# Step-size adaptation: dual averaging (Hoffman & Gelman 2014, algorithm 5)
# --------------------------------------------------------------------------


class DualAveragingState(NamedTuple):
    """State of the dual-averaging step-size adaptation.

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".
    """

    log_step: jax.Array  # the step size used next (log)
    log_step_avg: jax.Array  # the averaged iterate: the step size kept after warm-up (log)
    error_avg: jax.Array  # running mean of (target - acceptance)
    count: jax.Array
    mu: jax.Array  # shrinkage point, log(10 * initial step size)


def dual_averaging_init(step_size, dtype=jnp.float32) -> DualAveragingState:
    """Start dual averaging at ``step_size`` (shrinking toward ``10 * step_size``).

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".
    ``dtype`` is the floating type of the state: pass the position's dtype so
    that a float64 chain (``jax_enable_x64``) adapts in float64.
    """
    log_step = jnp.log(jnp.asarray(step_size, dtype))
    zero = jnp.zeros((), dtype)
    return DualAveragingState(log_step, log_step, zero, zero, log_step + jnp.log(jnp.asarray(10.0, dtype)))


def dual_averaging_update(state: DualAveragingState, accept_prob, target: float = 0.8, gamma: float = 0.05,
                          t0: float = 10.0, kappa: float = 0.75) -> DualAveragingState:
    """One dual-averaging update of the log step size toward acceptance ``target``.

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".
    Acceptance above the target makes the step larger, below makes it
    smaller; ``log_step_avg`` converges and is the step size to freeze.
    """
    count = state.count + 1.0
    weight = 1.0 / (count + t0)
    error_avg = (1.0 - weight) * state.error_avg + weight * (target - accept_prob)
    log_step = state.mu - jnp.sqrt(count) / gamma * error_avg
    eta = count ** (-kappa)
    log_step_avg = eta * log_step + (1.0 - eta) * state.log_step_avg
    return DualAveragingState(log_step, log_step_avg, error_avg, count, state.mu)
