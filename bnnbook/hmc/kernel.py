"""Energies, the leapfrog integrator and one HMC transition (pure functions over NamedTuple states).

Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks"
(``chapters/06_hmc.ipynb``).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from bnnbook.hmc._tree import (LogDensityFn, PyTree, _check_finite_tree, _check_inverse_mass, _check_num_leapfrog,
                               _check_positive, _check_same_shapes, _check_step_size, _normal_like, _tmap, _tree_sum)

# --------------------------------------------------------------------------
# Energies and the leapfrog integrator
# --------------------------------------------------------------------------


def log_posterior(log_likelihood_fn: LogDensityFn, log_prior_fn: LogDensityFn | None = None) -> LogDensityFn:
    """Return ``theta -> log p(D | theta) + log p(theta)`` (unnormalised log posterior).

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".
    ``log_prior_fn=None`` means a flat prior.
    """
    if not callable(log_likelihood_fn):
        raise ValueError(f"log_likelihood_fn={log_likelihood_fn!r} must be a function params -> log p(D | params)")
    if log_prior_fn is not None and not callable(log_prior_fn):
        raise ValueError(f"log_prior_fn={log_prior_fn!r} must be a function params -> log p(params), or None "
                         f"for a flat prior")
    if log_prior_fn is None:
        return log_likelihood_fn

    def log_density(params):
        return log_likelihood_fn(params) + log_prior_fn(params)

    return log_density


def make_potential(log_density_fn: LogDensityFn, temperature: float = 1.0) -> Callable[[PyTree], jax.Array]:
    """The potential energy ``U(theta) / T = -log_density(theta) / T``.

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".
    With ``log_density = log prior + log likelihood`` this is the
    ``U = -log p(theta) - log p(D | theta)`` of the chapter; ``T`` is the
    temperature of the target ``exp(-U / T)``.
    """
    temperature = _check_positive("temperature", temperature)

    def potential(params):
        return -log_density_fn(params) / temperature

    return potential


def kinetic_energy(momentum: PyTree, inverse_mass: PyTree | None = None) -> jax.Array:
    """``K(r) = r^T M^{-1} r / 2`` for a diagonal mass matrix ``M`` given by its inverse.

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".
    ``inverse_mass=None`` means ``M = I``.
    """
    if inverse_mass is None:
        return 0.5 * _tree_sum(_tmap(jnp.square, momentum))
    return 0.5 * _tree_sum(_tmap(lambda r, m: m * jnp.square(r), momentum, inverse_mass))


def _leapfrog_steps(value_and_grad, position, momentum, grad, step_size, num_steps: int, inverse_mass):
    """``num_steps`` leapfrog steps; the gradient at the start is passed in and
    the one at the end is returned, so each step costs one gradient."""

    def one_step(carry, _):
        pos, mom, g, _u = carry
        mom = _tmap(lambda r, gi: r - 0.5 * step_size * gi, mom, g)
        pos = _tmap(lambda q, r, m: q + step_size * m * r, pos, mom, inverse_mass)
        u, g = value_and_grad(pos)
        mom = _tmap(lambda r, gi: r - 0.5 * step_size * gi, mom, g)
        return (pos, mom, g, u), None

    u0 = jnp.zeros((), jnp.result_type(*jax.tree_util.tree_leaves(position)))
    (position, momentum, grad, u), _ = jax.lax.scan(one_step, (position, momentum, grad, u0), None, length=num_steps)
    return position, momentum, grad, u


def leapfrog(potential_fn: Callable[[PyTree], jax.Array], position: PyTree, momentum: PyTree,
             step_size: float, num_steps: int, inverse_mass: PyTree | None = None) -> tuple[PyTree, PyTree]:
    """Integrate Hamilton's equations with ``num_steps`` leapfrog steps.

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".
    Each step is a half step of the momentum ``r <- r - (eps/2) grad U``, a
    full step of the position ``theta <- theta + eps M^{-1} r`` and another
    half step of the momentum. The map is volume preserving and time
    reversible (negate the momentum, integrate again, and you are back), and
    its energy error shrinks like ``eps^2``. Returns ``(position, momentum)``.
    """
    step_size = _check_step_size(step_size)
    num_steps = _check_num_leapfrog(num_steps)
    _check_finite_tree(position, "position")
    _check_finite_tree(momentum, "momentum")
    _check_same_shapes(momentum, position, "momentum")
    inverse_mass = _check_inverse_mass(inverse_mass, position)
    value_and_grad = jax.value_and_grad(potential_fn)
    _, grad = value_and_grad(position)
    position, momentum, _, _ = _leapfrog_steps(value_and_grad, position, momentum, grad, step_size,
                                               num_steps, inverse_mass)
    return position, momentum


class HMCState(NamedTuple):
    """One chain's position with its (tempered) potential energy and gradient.

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".
    """

    position: PyTree
    potential: jax.Array
    grad: PyTree


class HMCInfo(NamedTuple):
    """What one HMC transition did.

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".
    """

    accept_prob: jax.Array  # min(1, exp(-ΔH)); 0 for a divergent or non-finite proposal
    accepted: jax.Array
    divergent: jax.Array  # ΔH above the threshold or not finite
    energy_error: jax.Array  # ΔH = H(proposal) - H(start)


def hmc_step(key: jax.Array, state: HMCState, value_and_grad: Callable, step_size: jax.Array,
             num_leapfrog: int, inverse_mass: PyTree, divergence_threshold: float = 1000.0,
             potential_fn: Callable | None = None) -> tuple[HMCState, HMCInfo]:
    """One HMC transition: fresh momentum, leapfrog trajectory, Metropolis test.

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".
    ``value_and_grad`` returns the (tempered) potential and its gradient.
    A proposal whose energy error ``ΔH`` exceeds ``divergence_threshold`` (or
    is not finite) is a *divergence* and is rejected.

    **Surrogate gradients.** With ``potential_fn`` given, ``value_and_grad``
    only *drives* the trajectory (its value is ignored) and the energy of the
    Metropolis test is ``potential_fn`` at the end point; ``state.potential``
    must then be ``potential_fn(state.position)`` and ``state.grad`` the
    driving gradient there. Leapfrog with any deterministic gradient field is
    still a volume-preserving, reversible map (each half step is a shear), so
    the Metropolis test with the exact energy keeps ``exp(-potential_fn)``
    exactly invariant; a cheaper, slightly wrong gradient (e.g. bfloat16 matrix
    products, :mod:`bnnbook.hmc.surrogate`) only lowers the acceptance rate.
    """
    key_momentum, key_accept = jax.random.split(key)
    # r ~ N(0, M) with M = 1 / inverse_mass.
    momentum = _tmap(lambda z, m: z / jnp.sqrt(m), _normal_like(key_momentum, state.position), inverse_mass)
    energy0 = state.potential + kinetic_energy(momentum, inverse_mass)
    position, momentum, grad, potential = _leapfrog_steps(value_and_grad, state.position, momentum, state.grad,
                                                          step_size, num_leapfrog, inverse_mass)
    if potential_fn is not None:  # the exact energy at the end point (the trajectory used a surrogate)
        potential = potential_fn(position)
    energy1 = potential + kinetic_energy(momentum, inverse_mass)
    delta = energy1 - energy0
    divergent = ~jnp.isfinite(delta) | (delta > divergence_threshold)
    accept_prob = jnp.where(divergent, 0.0, jnp.minimum(1.0, jnp.exp(-jnp.where(jnp.isfinite(delta), delta, 0.0))))
    accepted = jax.random.uniform(key_accept, dtype=accept_prob.dtype) < accept_prob
    proposal = HMCState(position, potential, grad)
    new_state = jax.tree_util.tree_map(lambda new, old: jnp.where(accepted, new, old), proposal, state)
    return new_state, HMCInfo(accept_prob, accepted, divergent, delta)
