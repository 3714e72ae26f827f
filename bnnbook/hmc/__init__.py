"""Hamiltonian Monte Carlo on parameter pytrees, written from scratch in JAX.

Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks"
(``chapters/06_hmc.ipynb``).

The sampler targets ``p(theta) ∝ exp(-U(theta) / T)`` where the *potential
energy* ``U(theta) = -log p(theta) - log p(D | theta)`` is built from a
user log-density and ``T`` is an optional temperature (``T = 1`` is the
Bayesian posterior, ``T < 1`` a "cold" one). Positions, momenta, gradients
and the diagonal mass matrix are pytrees of the same structure as the network
parameters, so a Haiku parameter dict can be sampled as it is.

One HMC iteration draws a momentum ``r ~ N(0, M)``, runs ``num_leapfrog``
leapfrog steps of size ``step_size`` and accepts the end point with
probability ``min(1, exp(-ΔH))``. During warm-up the step size is tuned by
dual averaging toward a target acceptance rate (and, optionally, the diagonal
mass matrix is set from the warm-up draws); both are then frozen, so the
sampling phase is a valid Markov chain. Whole chains run inside one
``jax.lax.scan``; several chains run side by side with ``jax.vmap``.

:func:`sample_hierarchical` adds Neal's hierarchical prior: each group of
weights (by default each parameter array) has its own precision ``lambda``
with a Gamma(shape, rate) hyperprior, and Gibbs updates
``lambda ~ Gamma(shape + n/2, rate + ||w||^2 / 2)`` alternate with HMC on
the weights (for regression the noise precision can be Gibbs-sampled too).

Everything here is JAX; diagnostics (ESS, R-hat) come from BlackJAX through
:func:`chain_diagnostics`, which imports it only when called.
"""

from bnnbook.hmc.adaptation import DualAveragingState, dual_averaging_init, dual_averaging_update
from bnnbook.hmc.diagnostics import _ess_and_rhat, chain_diagnostics
from bnnbook.hmc.gibbs import default_groups, gibbs_precision, log_marginal_gaussian_gamma
from bnnbook.hmc.kernel import (HMCInfo, HMCState, _leapfrog_steps, hmc_step, kinetic_energy, leapfrog, log_posterior,
                                make_potential)
from bnnbook.hmc.sample import HMCResult, sample, sample_hierarchical, stack_chains

__all__ = [
    "log_posterior", "make_potential", "kinetic_energy", "leapfrog", "HMCState", "HMCInfo", "hmc_step",
    "DualAveragingState", "dual_averaging_init", "dual_averaging_update", "gibbs_precision",
    "log_marginal_gaussian_gamma", "default_groups",
    "HMCResult", "sample", "sample_hierarchical", "stack_chains", "chain_diagnostics",
]
