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

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bnnbook._checks import check_count

PyTree = Any
LogDensityFn = Callable[[PyTree], jax.Array]

# --------------------------------------------------------------------------
# Small pytree helpers
# --------------------------------------------------------------------------

_tmap = jax.tree_util.tree_map


def _tree_sum(tree) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return sum((jnp.sum(leaf) for leaf in leaves), jnp.zeros(()))


def _tree_size(tree) -> int:
    return sum(int(np.size(leaf)) for leaf in jax.tree_util.tree_leaves(tree))


def _tree_where(condition, on_true, on_false):
    return _tmap(lambda a, b: jnp.where(condition, a, b), on_true, on_false)


def _normal_like(key, tree):
    # One draw for the whole tree, cut into leaves: one random-number kernel per
    # iteration instead of a key split plus one kernel per parameter array.
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    sizes = [int(np.size(leaf)) for leaf in leaves]
    flat = jax.random.normal(key, (sum(sizes),), jnp.result_type(*leaves))
    pieces = jnp.split(flat, np.cumsum(sizes)[:-1]) if len(leaves) > 1 else [flat]
    noise = [piece.reshape(jnp.shape(leaf)).astype(jnp.result_type(leaf)) for piece, leaf in zip(pieces, leaves)]
    return jax.tree_util.tree_unflatten(treedef, noise)


def _leaf_names(tree) -> list[str]:
    paths, _ = jax.tree_util.tree_flatten_with_path(tree)
    names = [jax.tree_util.keystr(path, simple=True, separator="/") for path, _ in paths]
    return [name or f"leaf_{i}" for i, name in enumerate(names)]


# --------------------------------------------------------------------------
# Input checks (ValueError naming the argument, its value and the fix)
# --------------------------------------------------------------------------


def _check_step_size(step_size) -> float:
    try:
        value = float(step_size)
    except (TypeError, ValueError):
        raise ValueError(f"step_size={step_size!r} is not a number; pass a positive float such as 0.01") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"step_size={step_size!r} must be a finite number > 0; try 0.01 and let warm-up adapt it")
    return value


def _check_num_leapfrog(num_leapfrog) -> int:
    return check_count("num_leapfrog", num_leapfrog, hint="the leapfrog steps per iteration, e.g. 10")


def _check_finite_tree(tree, name: str) -> None:
    leaves = jax.tree_util.tree_leaves(tree)
    if not leaves:
        raise ValueError(f"{name} has no arrays; pass a pytree of parameter arrays")
    for leaf_name, leaf in zip(_leaf_names(tree), leaves):
        values = np.asarray(leaf)
        if not np.issubdtype(values.dtype, np.floating):
            raise ValueError(f"{name} leaf {leaf_name!r} has dtype {values.dtype}; HMC needs floating-point arrays")
        if not np.all(np.isfinite(values)):
            bad = int(np.size(values) - np.isfinite(values).sum())
            raise ValueError(f"{name} leaf {leaf_name!r} has {bad} non-finite value(s); start from finite "
                             f"parameters (for example a fresh network initialisation)")


def _check_same_shapes(tree, position, name: str) -> None:
    """``tree`` must have the structure and leaf shapes of ``position``."""
    pos_struct = jax.tree_util.tree_structure(position)
    struct = jax.tree_util.tree_structure(tree)
    if pos_struct != struct:
        raise ValueError(f"{name} has tree structure {struct}, but the position has {pos_struct}; "
                         f"pass a pytree shaped like the position (e.g. jax.tree.map(jnp.zeros_like, position))")
    for leaf_name, a, x in zip(_leaf_names(position), jax.tree_util.tree_leaves(tree),
                               jax.tree_util.tree_leaves(position)):
        if np.shape(a) != np.shape(x):
            raise ValueError(f"{name} leaf {leaf_name!r} has shape {np.shape(a)}, the position leaf has shape "
                             f"{np.shape(x)}; every leaf of {name} must have the shape of the position's leaf")


def _check_inverse_mass(inverse_mass, position, chain_shape: tuple[int, ...] = ()):
    """Return the inverse mass tree (ones if None), checking its structure and shapes."""
    if inverse_mass is None:
        return _tmap(lambda x: jnp.ones(jnp.shape(x)[len(chain_shape):], jnp.result_type(x)), position)
    pos_struct = jax.tree_util.tree_structure(position)
    mass_struct = jax.tree_util.tree_structure(inverse_mass)
    if pos_struct != mass_struct:
        raise ValueError(f"inverse_mass has tree structure {mass_struct}, but the position has {pos_struct}; "
                         f"pass a pytree with one array per parameter array (e.g. jax.tree.map(jnp.ones_like, params))")
    out = []
    for name, m, x in zip(_leaf_names(position), jax.tree_util.tree_leaves(inverse_mass),
                          jax.tree_util.tree_leaves(position)):
        want = tuple(np.shape(x))[len(chain_shape):]
        got = tuple(np.shape(m))
        if got != want and got != chain_shape + want:
            raise ValueError(f"inverse_mass leaf {name!r} has shape {got}, the position leaf has shape {want}; "
                             f"the diagonal mass matrix must have the same shape as the parameters")
        values = np.asarray(m)
        if not (np.all(np.isfinite(values)) and np.all(values > 0)):
            raise ValueError(f"inverse_mass leaf {name!r} has entries that are not finite and > 0; "
                             f"every diagonal entry of the inverse mass matrix must be positive")
        out.append(jnp.asarray(m, jnp.result_type(x)))
    return jax.tree_util.tree_unflatten(mass_struct, out)


def _check_positive(name: str, value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} is not a number; pass a positive float") from None
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name}={value!r} must be a finite number > 0")
    return number


# --------------------------------------------------------------------------
# Energies and the leapfrog integrator
# --------------------------------------------------------------------------


def log_posterior(log_likelihood_fn: LogDensityFn, log_prior_fn: LogDensityFn | None = None) -> LogDensityFn:
    """Return ``theta -> log p(D | theta) + log p(theta)`` (unnormalised log posterior).

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".
    ``log_prior_fn=None`` means a flat prior.
    """
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
             num_leapfrog: int, inverse_mass: PyTree, divergence_threshold: float = 1000.0) -> tuple[HMCState, HMCInfo]:
    """One HMC transition: fresh momentum, leapfrog trajectory, Metropolis test.

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".
    ``value_and_grad`` returns the (tempered) potential and its gradient.
    A proposal whose energy error ``ΔH`` exceeds ``divergence_threshold`` (or
    is not finite) is a *divergence* and is rejected.
    """
    key_momentum, key_accept = jax.random.split(key)
    # r ~ N(0, M) with M = 1 / inverse_mass.
    momentum = _tmap(lambda z, m: z / jnp.sqrt(m), _normal_like(key_momentum, state.position), inverse_mass)
    energy0 = state.potential + kinetic_energy(momentum, inverse_mass)
    position, momentum, grad, potential = _leapfrog_steps(value_and_grad, state.position, momentum, state.grad,
                                                          step_size, num_leapfrog, inverse_mass)
    energy1 = potential + kinetic_energy(momentum, inverse_mass)
    delta = energy1 - energy0
    divergent = ~jnp.isfinite(delta) | (delta > divergence_threshold)
    accept_prob = jnp.where(divergent, 0.0, jnp.minimum(1.0, jnp.exp(-jnp.where(jnp.isfinite(delta), delta, 0.0))))
    accepted = jax.random.uniform(key_accept, dtype=accept_prob.dtype) < accept_prob
    proposal = HMCState(position, potential, grad)
    new_state = jax.tree_util.tree_map(lambda new, old: jnp.where(accepted, new, old), proposal, state)
    return new_state, HMCInfo(accept_prob, accepted, divergent, delta)


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


def dual_averaging_init(step_size) -> DualAveragingState:
    """Start dual averaging at ``step_size`` (shrinking toward ``10 * step_size``).

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".
    """
    log_step = jnp.log(jnp.asarray(step_size, jnp.float32))
    zero = jnp.zeros((), jnp.float32)
    return DualAveragingState(log_step, log_step, zero, zero, log_step + jnp.log(10.0))


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


# --------------------------------------------------------------------------
# Gibbs updates of precisions (hierarchical prior)
# --------------------------------------------------------------------------


def gibbs_precision(key: jax.Array, values: PyTree, shape, rate, temperature: float = 1.0) -> jax.Array:
    """Draw a precision from its Gamma full conditional given the values it governs.

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".
    With ``lambda ~ Gamma(shape, rate)`` (rate parametrisation) and the ``n``
    entries of ``values`` i.i.d. ``N(0, 1 / lambda)``, the conditional is
    ``Gamma(shape + n / 2, rate + ||values||^2 / 2)``, whose mean is
    ``(shape + n/2) / (rate + ||values||^2 / 2)``. Under temperature ``T`` the
    tempered joint gives ``Gamma((shape - 1 + n/2) / T + 1, (rate + ||v||^2/2) / T)``.
    ``values`` may be an array or a pytree (all its entries count).
    """
    n = _tree_size(values)
    sum_sq = _tree_sum(_tmap(jnp.square, values))
    post_shape = (shape - 1.0 + 0.5 * n) / temperature + 1.0
    post_rate = (rate + 0.5 * sum_sq) / temperature
    return jax.random.gamma(key, post_shape, dtype=jnp.result_type(sum_sq)) / post_rate


def log_marginal_gaussian_gamma(values: PyTree, shape, rate) -> jax.Array:
    """``log ∫ prod_i N(v_i | 0, 1/lambda) Gamma(lambda | shape, rate) dlambda`` in closed form.

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".
    Integrating the precision out of the hierarchical prior leaves a
    multivariate Student-t on the ``n`` entries of ``values``::

        log Γ(a + n/2) - log Γ(a) + a log b - (a + n/2) log(b + ||v||^2 / 2) - (n/2) log(2 pi)

    with ``a = shape`` and ``b = rate``. It is the *collapsed* form of the
    model that :func:`sample_hierarchical` samples with Gibbs moves, so a
    sampler without Gibbs steps (e.g. BlackJAX's NUTS) can target exactly the
    same marginal posterior of the weights.
    """
    shape = _check_positive("shape", shape)
    rate = _check_positive("rate", rate)
    n = _tree_size(values)
    sum_sq = _tree_sum(_tmap(jnp.square, values))
    post_shape = shape + 0.5 * n
    return (math.lgamma(post_shape) - math.lgamma(shape) + shape * math.log(rate)
            - post_shape * jnp.log(rate + 0.5 * sum_sq) - 0.5 * n * math.log(2.0 * math.pi))


def default_groups(params: PyTree) -> dict[str, PyTree]:
    """One precision group per parameter array, named by its path (e.g. ``mlp/~/linear_0/w``).

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks":
    for an MLP this gives Neal's layer-wise groups (the weights and the biases
    of each layer have their own precision).
    """
    return dict(zip(_leaf_names(params), jax.tree_util.tree_leaves(params)))


# --------------------------------------------------------------------------
# The sampler
# --------------------------------------------------------------------------


@dataclasses.dataclass
class HMCResult:
    """Output of :func:`sample` and :func:`sample_hierarchical`.

    Arrays have a leading chain axis when ``num_chains`` was given.

    Attributes:
        samples: the kept draws (positions, or ``keep_fn(position)``), shape
            ``(chains, num_samples, ...)`` per leaf.
        accept_prob: acceptance probability of every sampling iteration.
        divergent: divergence flag of every sampling iteration.
        log_density: the (untempered) log density at every sampling iteration.
        step_size: the frozen step size of each chain.
        inverse_mass: the frozen diagonal inverse mass matrix.
        warmup_accept_prob: mean acceptance during warm-up, per chain.
        warmup_divergences: number of divergences during warm-up, per chain.
        precisions: for :func:`sample_hierarchical`, ``{group: draws}`` of the
            Gibbs-sampled precisions at the kept draws (``"noise"`` for the
            noise precision); ``None`` otherwise.
        final_position: the last position of each chain (to continue sampling).
        num_grad_evals: gradient evaluations of the whole run, all chains.
        seconds: wall-clock time of the run (compilation included).

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".
    """

    samples: PyTree
    accept_prob: np.ndarray
    divergent: np.ndarray
    log_density: np.ndarray
    step_size: np.ndarray
    inverse_mass: PyTree
    warmup_accept_prob: np.ndarray
    warmup_divergences: np.ndarray
    precisions: dict[str, np.ndarray] | None
    final_position: PyTree
    num_grad_evals: int
    seconds: float = float("nan")

    @property
    def acceptance_rate(self) -> np.ndarray:
        """Mean acceptance probability of the sampling phase (per chain)."""
        return np.asarray(self.accept_prob).mean(-1)

    @property
    def divergences(self) -> np.ndarray:
        """Number of divergent transitions in the sampling phase (per chain)."""
        return np.asarray(self.divergent).sum(-1)


class _Carry(NamedTuple):
    state: HMCState
    hyper: Any
    adapt: DualAveragingState
    inverse_mass: PyTree
    welford: tuple  # (count, mean, m2) of positions in the mass-matrix window


def _run_chain(key, position, *, log_density_fn, gibbs_fn, hyper0, inverse_mass, step_size, num_leapfrog,
               num_warmup, num_samples, thin, temperature, target_accept, adapt_step_size, adapt_mass,
               step_jitter, divergence_threshold, keep_fn):
    """One chain: warm-up scan, then sampling scan (all traced; vmapped for chains)."""

    def potential_and_grad(pos, hyper):
        return jax.value_and_grad(lambda p: -log_density_fn(p, hyper) / temperature)(pos)

    def refresh(state, hyper):
        potential, grad = potential_and_grad(state.position, hyper)
        return HMCState(state.position, potential, grad)

    def transition(key, state, hyper, eps, inv_mass):
        key_gibbs, key_jitter, key_hmc = jax.random.split(key, 3)
        if gibbs_fn is not None:  # Gibbs move on the hyperparameters, then HMC given them
            hyper = gibbs_fn(key_gibbs, state.position, hyper)
            state = refresh(state, hyper)
        if step_jitter > 0:
            eps = eps * jax.random.uniform(key_jitter, minval=1.0 - step_jitter, maxval=1.0 + step_jitter)
        vg = lambda pos: potential_and_grad(pos, hyper)  # noqa: E731
        state, info = hmc_step(key_hmc, state, vg, eps, num_leapfrog, inv_mass, divergence_threshold)
        return state, hyper, info

    # Mass-matrix windows (Stan-like): fast | slow (collect variances) | fast.
    if adapt_mass:
        slow_start = int(0.15 * num_warmup)
        slow_end = int(0.9 * num_warmup)
    else:
        slow_start = slow_end = -1

    def warmup_step(carry: _Carry, inputs):
        i, key = inputs
        eps = jnp.exp(carry.adapt.log_step) if adapt_step_size else jnp.asarray(step_size, jnp.float32)
        state, hyper, info = transition(key, carry.state, carry.hyper, eps, carry.inverse_mass)
        adapt = dual_averaging_update(carry.adapt, info.accept_prob, target_accept) if adapt_step_size else carry.adapt
        inv_mass, welford = carry.inverse_mass, carry.welford
        if adapt_mass:
            count, mean, m2 = welford
            in_window = (i >= slow_start) & (i < slow_end)
            new_count = count + 1.0
            delta = _tmap(lambda x, m: x - m, state.position, mean)
            new_mean = _tmap(lambda m, d: m + d / new_count, mean, delta)
            new_m2 = _tmap(lambda s, x, m, d: s + d * (x - m), m2, state.position, new_mean, delta)
            count = jnp.where(in_window, new_count, count)
            mean = _tree_where(in_window, new_mean, mean)
            m2 = _tree_where(in_window, new_m2, m2)
            welford = (count, mean, m2)
            at_end = i == slow_end - 1
            # Stan's regularised variance estimate, shrunk toward 1e-3.
            n = jnp.maximum(count, 2.0)
            estimate = _tmap(lambda s: (n / (n + 5.0)) * s / (n - 1.0) + 1e-3 * (5.0 / (n + 5.0)), m2)
            inv_mass = _tree_where(at_end, estimate, inv_mass)
            if adapt_step_size:  # restart dual averaging from the current step size
                restarted = dual_averaging_init(jnp.exp(adapt.log_step))
                adapt = jax.tree_util.tree_map(lambda a, b: jnp.where(at_end, a, b), restarted, adapt)
        carry = _Carry(state, hyper, adapt, inv_mass, welford)
        return carry, (info.accept_prob, info.divergent)

    def sample_block(carry, key):
        """``thin`` iterations, then keep one draw."""
        eps, inv_mass = carry[2], carry[3]

        def one(c, k):
            state, hyper = c
            state, hyper, info = transition(k, state, hyper, eps, inv_mass)
            log_density = -state.potential * temperature
            return (state, hyper), (info.accept_prob, info.divergent, log_density)

        (state, hyper), trace = jax.lax.scan(one, (carry[0], carry[1]), jax.random.split(key, thin))
        kept = state.position if keep_fn is None else keep_fn(state.position)
        return (state, hyper, eps, inv_mass), (kept, hyper, trace)

    key_warm, key_sample = jax.random.split(key)
    hyper = hyper0
    state = refresh(HMCState(position, jnp.zeros(()), position), hyper)
    zeros = _tmap(jnp.zeros_like, position)
    carry = _Carry(state, hyper, dual_averaging_init(step_size), inverse_mass, (jnp.zeros(()), zeros, zeros))
    if num_warmup > 0:
        carry, (warm_accept, warm_div) = jax.lax.scan(
            warmup_step, carry, (jnp.arange(num_warmup), jax.random.split(key_warm, num_warmup)))
        warm_accept, warm_div = warm_accept.mean(), warm_div.sum()
    else:
        warm_accept, warm_div = jnp.full((), jnp.nan), jnp.zeros((), jnp.int32)
    eps = jnp.exp(carry.adapt.log_step_avg) if (adapt_step_size and num_warmup > 0) else jnp.asarray(step_size, jnp.float32)
    (state, hyper, eps, inv_mass), (kept, hypers, trace) = jax.lax.scan(
        sample_block, (carry.state, carry.hyper, eps, carry.inverse_mass), jax.random.split(key_sample, num_samples))
    accept, divergent, log_density = (t.reshape(-1) for t in trace)
    return dict(samples=kept, hypers=hypers, accept_prob=accept, divergent=divergent, log_density=log_density,
                step_size=eps, inverse_mass=inv_mass, warmup_accept_prob=warm_accept,
                warmup_divergences=warm_div, final_position=state.position)


def _sample(log_density_fn, initial_position, key, *, gibbs_fn, hyper0, num_samples, num_warmup, step_size,
            num_leapfrog, inverse_mass, temperature, target_accept, adapt_step_size, adapt_mass, step_jitter,
            divergence_threshold, thin, keep_fn, num_chains, gibbs_grad_evals):
    import time

    step_size = _check_step_size(step_size)
    num_leapfrog = _check_num_leapfrog(num_leapfrog)
    num_samples = check_count("num_samples", num_samples, 1)
    num_warmup = check_count("num_warmup", num_warmup, 0)
    thin = check_count("thin", thin, 1)
    temperature = _check_positive("temperature", temperature)
    divergence_threshold = _check_positive("divergence_threshold", divergence_threshold)
    if not 0.0 < float(target_accept) < 1.0:
        raise ValueError(f"target_accept={target_accept!r} must be in (0, 1); 0.8 is a good default for HMC")
    if not 0.0 <= float(step_jitter) < 1.0:
        raise ValueError(f"step_jitter={step_jitter!r} must be in [0, 1); it scales the step by Uniform(1-j, 1+j)")
    if adapt_mass and num_warmup < 20:
        raise ValueError(f"adapt_mass=True needs num_warmup >= 20 to estimate variances; got num_warmup={num_warmup}")
    _check_finite_tree(initial_position, "initial_position")
    chain_shape: tuple[int, ...] = ()
    if num_chains is not None:
        num_chains = check_count("num_chains", num_chains, 1)
        for name, leaf in zip(_leaf_names(initial_position), jax.tree_util.tree_leaves(initial_position)):
            if np.ndim(leaf) < 1 or np.shape(leaf)[0] != num_chains:
                raise ValueError(f"initial_position leaf {name!r} has shape {np.shape(leaf)}; with num_chains="
                                 f"{num_chains} every leaf needs a leading axis of that length (stack one "
                                 f"position per chain, e.g. jax.tree.map(lambda *x: jnp.stack(x), *positions))")
        chain_shape = (num_chains,)
    inverse_mass = _check_inverse_mass(inverse_mass, initial_position, chain_shape)
    initial_position = _tmap(jnp.asarray, initial_position)

    # The log density must be finite where the chains start.
    first = initial_position if num_chains is None else _tmap(lambda x: x[0], initial_position)
    start_value = float(log_density_fn(first, hyper0))
    if not math.isfinite(start_value):
        raise ValueError(f"initial_position has log density {start_value}; start the chain where the model's "
                         f"log density is finite (check the data and the likelihood's arguments)")

    def one_chain(key, position, inv_mass):
        return _run_chain(key, position, log_density_fn=log_density_fn, gibbs_fn=gibbs_fn, hyper0=hyper0,
                          inverse_mass=inv_mass, step_size=step_size, num_leapfrog=num_leapfrog,
                          num_warmup=num_warmup, num_samples=num_samples, thin=thin, temperature=temperature,
                          target_accept=float(target_accept), adapt_step_size=bool(adapt_step_size),
                          adapt_mass=bool(adapt_mass), step_jitter=float(step_jitter),
                          divergence_threshold=divergence_threshold, keep_fn=keep_fn)

    started = time.perf_counter()
    if num_chains is None:
        out = jax.jit(one_chain)(key, initial_position, inverse_mass)
    else:
        mass_axes = _tmap(lambda m, x: 0 if np.ndim(m) == np.ndim(x) else None, inverse_mass, initial_position)
        out = jax.jit(jax.vmap(one_chain, in_axes=(0, 0, mass_axes)))(
            jax.random.split(key, num_chains), initial_position, inverse_mass)
    out = jax.device_get(out)
    seconds = time.perf_counter() - started
    chains = 1 if num_chains is None else num_chains
    iterations = num_warmup + num_samples * thin
    grads = chains * (1 + iterations * (num_leapfrog + (1 if gibbs_grad_evals else 0)))
    precisions = None
    if gibbs_fn is not None:
        precisions = {k: np.asarray(v) for k, v in out["hypers"].items()}
    return HMCResult(
        samples=out["samples"], accept_prob=np.asarray(out["accept_prob"]), divergent=np.asarray(out["divergent"]),
        log_density=np.asarray(out["log_density"]), step_size=np.asarray(out["step_size"]),
        inverse_mass=out["inverse_mass"], warmup_accept_prob=np.asarray(out["warmup_accept_prob"]),
        warmup_divergences=np.asarray(out["warmup_divergences"]), precisions=precisions,
        final_position=out["final_position"], num_grad_evals=int(grads), seconds=seconds)


def sample(log_density_fn: LogDensityFn, initial_position: PyTree, key: jax.Array, *, num_samples: int,
           num_warmup: int = 0, step_size: float = 0.1, num_leapfrog: int = 10, inverse_mass: PyTree | None = None,
           temperature: float = 1.0, target_accept: float = 0.8, adapt_step_size: bool = True,
           adapt_mass: bool = False, step_jitter: float = 0.0, divergence_threshold: float = 1000.0,
           thin: int = 1, keep_fn: Callable[[PyTree], PyTree] | None = None,
           num_chains: int | None = None) -> HMCResult:
    """Run HMC on ``exp(log_density_fn(theta) / T)`` for one or several chains.

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".

    Args:
        log_density_fn: unnormalised log density of a parameter pytree, e.g.
            :func:`log_posterior` ``(log_likelihood, log_prior)``. Its negative
            is the potential energy ``U``.
        initial_position: parameter pytree where the chain starts; with
            ``num_chains`` every leaf has a leading axis of that length.
        key: PRNG key (e.g. ``jax.random.key(0)``).
        num_samples: number of draws kept after warm-up; ``thin`` HMC
            iterations separate two kept draws.
        num_warmup: warm-up iterations (step size and optionally mass matrix
            are adapted, then frozen; these draws are discarded).
        step_size: leapfrog step size (the initial one when adapting).
        num_leapfrog: leapfrog steps per iteration (gradient evaluations).
        inverse_mass: diagonal inverse mass matrix, a pytree shaped like one
            position (shared by all chains) or with a chain axis; ``None`` = 1.
        temperature: ``T`` of the target ``exp(-U / T)``.
        target_accept: acceptance rate that dual averaging aims at.
        adapt_step_size: tune the step size during warm-up.
        adapt_mass: set the diagonal inverse mass matrix to the variances of
            the warm-up draws (Stan-like windows; needs ``num_warmup >= 20``).
        step_jitter: multiply the step size of each iteration by a
            ``Uniform(1 - j, 1 + j)`` factor (breaks periodic trajectories).
        divergence_threshold: energy error above which a transition counts as
            divergent (it is rejected and counted).
        thin: keep every ``thin``-th draw.
        keep_fn: keep ``keep_fn(position)`` instead of the position (e.g. the
            predictive probabilities on a test set) to save memory.
        num_chains: run this many chains with ``jax.vmap`` (``None``: one
            chain, no chain axis).
    """
    return _sample(lambda params, _hyper: log_density_fn(params), initial_position, key, gibbs_fn=None, hyper0=(),
                   num_samples=num_samples, num_warmup=num_warmup, step_size=step_size, num_leapfrog=num_leapfrog,
                   inverse_mass=inverse_mass, temperature=temperature, target_accept=target_accept,
                   adapt_step_size=adapt_step_size, adapt_mass=adapt_mass, step_jitter=step_jitter,
                   divergence_threshold=divergence_threshold, thin=thin, keep_fn=keep_fn, num_chains=num_chains,
                   gibbs_grad_evals=False)


def _per_group(value, names, what: str) -> dict[str, float]:
    if isinstance(value, Mapping):
        missing = sorted(set(names) - set(value))
        if missing:
            raise ValueError(f"{what} has no entry for group(s) {missing}; give one per group {sorted(names)} or a single number")
        return {name: _check_positive(f"{what}[{name!r}]", value[name]) for name in names}
    number = _check_positive(what, value)
    return {name: number for name in names}


def sample_hierarchical(log_likelihood_fn: LogDensityFn | None, initial_position: PyTree, key: jax.Array, *,
                        num_samples: int, prior_shape: float | Mapping[str, float] = 1.0,
                        prior_rate: float | Mapping[str, float] = 1.0,
                        groups: Callable[[PyTree], Mapping[str, PyTree]] | None = None,
                        residual_fn: Callable[[PyTree], jax.Array] | None = None, noise_shape: float = 1.0,
                        noise_rate: float = 1.0, **hmc_options) -> HMCResult:
    """HMC on the weights alternated with Gibbs draws of layer-wise prior precisions.

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".

    The model (Neal's hierarchical BNN prior) is: each group ``g`` of
    weights ``w_g`` is ``N(0, 1 / lambda_g)`` with ``lambda_g ~ Gamma(prior_shape,
    prior_rate)`` (rate parametrisation). Each iteration first draws every
    ``lambda_g`` from ``Gamma(shape + n_g / 2, rate + ||w_g||^2 / 2)`` given the
    current weights (:func:`gibbs_precision`), then makes one HMC transition
    on the weights given the precisions.

    Args:
        log_likelihood_fn: ``params -> log p(D | params)``; may be ``None``
            when ``residual_fn`` gives a Gaussian likelihood on its own.
        initial_position, key, num_samples: as in :func:`sample`.
        prior_shape, prior_rate: Gamma hyperprior of the precisions, one
            number for all groups or ``{group: number}``.
        groups: ``params -> {name: pytree}`` listing the groups that share a
            precision; default :func:`default_groups` (one per array).
        residual_fn: for regression with an unknown noise level,
            ``params -> y - f(x)``; the likelihood ``N(residual | 0, 1 / tau)``
            is added and the noise precision ``tau ~ Gamma(noise_shape,
            noise_rate)`` is Gibbs-sampled too (reported as ``"noise"``).
        **hmc_options: every other argument of :func:`sample` (``num_warmup``,
            ``step_size``, ``num_leapfrog``, ``num_chains``, ``keep_fn``, ...).

    The kept precisions are in :attr:`HMCResult.precisions`. Each iteration
    costs ``num_leapfrog + 1`` gradients (the potential changes with the
    precisions, so its gradient is recomputed after the Gibbs move).
    """
    from bnnbook import likelihoods, priors  # the prior and likelihood terms of the chapters

    if log_likelihood_fn is None and residual_fn is None:
        raise ValueError("log_likelihood_fn=None needs residual_fn (a Gaussian likelihood); pass one of them")
    group_fn = default_groups if groups is None else groups
    num_chains = hmc_options.get("num_chains")
    one = initial_position if num_chains is None else _tmap(lambda x: x[0], initial_position)
    names = list(group_fn(one))
    if not names:
        raise ValueError("groups(params) returned no groups; return a dict {name: pytree of weights}")
    if "noise" in names and residual_fn is not None:
        raise ValueError("a weight group is called 'noise', the name of the noise precision; rename the group")
    shapes = _per_group(prior_shape, names, "prior_shape")
    rates = _per_group(prior_rate, names, "prior_rate")
    if residual_fn is not None:
        noise_shape = _check_positive("noise_shape", noise_shape)
        noise_rate = _check_positive("noise_rate", noise_rate)
    temperature = _check_positive("temperature", hmc_options.get("temperature", 1.0))

    # Start every precision at its prior mean; the dtype follows the parameters
    # so that the Gibbs draws and the scan carry keep one dtype.
    dtype = jnp.result_type(*jax.tree_util.tree_leaves(one))
    hyper0 = {name: jnp.asarray(shapes[name] / rates[name], dtype) for name in names}
    if residual_fn is not None:
        hyper0["noise"] = jnp.asarray(noise_shape / noise_rate, dtype)

    def log_density(params, hyper):
        total = jnp.zeros(())
        for name, weights in group_fn(params).items():
            scale = jax.lax.rsqrt(hyper[name])
            total = total + _tree_sum(_tmap(lambda w: priors.gaussian_log_prob(w, scale), weights))
        if residual_fn is not None:
            residuals = residual_fn(params)
            total = total + likelihoods.gaussian_log_likelihood(
                residuals, jnp.zeros_like(residuals), jax.lax.rsqrt(hyper["noise"]), reduction="sum")
        if log_likelihood_fn is not None:
            total = total + log_likelihood_fn(params)
        return total

    def gibbs(key, params, hyper):
        keys = jax.random.split(key, len(names) + 1)
        new = {name: gibbs_precision(k, weights, shapes[name], rates[name], temperature)
               for k, (name, weights) in zip(keys, group_fn(params).items())}
        if residual_fn is not None:
            new["noise"] = gibbs_precision(keys[-1], residual_fn(params), noise_shape, noise_rate, temperature)
        return new

    return _sample(log_density, initial_position, key, gibbs_fn=gibbs, hyper0=hyper0,
                   gibbs_grad_evals=True, **_sample_defaults(hmc_options, num_samples))


def _sample_defaults(options: dict, num_samples: int) -> dict:
    known = dict(num_warmup=0, step_size=0.1, num_leapfrog=10, inverse_mass=None, temperature=1.0,
                 target_accept=0.8, adapt_step_size=True, adapt_mass=False, step_jitter=0.0,
                 divergence_threshold=1000.0, thin=1, keep_fn=None, num_chains=None)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown}; sample_hierarchical accepts {sorted(known)}")
    return {**known, **options, "num_samples": num_samples}


# --------------------------------------------------------------------------
# Diagnostics (BlackJAX) and helpers for chains
# --------------------------------------------------------------------------


def stack_chains(positions) -> PyTree:
    """Stack a list of parameter pytrees into one pytree with a leading chain axis.

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".
    """
    if not positions:
        raise ValueError("positions is empty; pass one parameter pytree per chain")
    return _tmap(lambda *leaves: jnp.stack(leaves), *positions)


@jax.jit
def _ess_and_rhat(draws):
    # Module level, so each shape compiles once per session rather than on every call.
    from blackjax import diagnostics
    return (diagnostics.effective_sample_size(draws, chain_axis=0, sample_axis=1),
            diagnostics.rhat(draws, chain_axis=0, sample_axis=1))


def chain_diagnostics(draws) -> dict[str, np.ndarray]:
    """Effective sample size and split R-hat of draws shaped ``(chains, draws, ...)``.

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".
    Both come from BlackJAX's diagnostics (imported here only): ``ess`` is
    ``blackjax.diagnostics.effective_sample_size`` (all chains together) and
    ``rhat`` is ``blackjax.diagnostics.rhat``, the rank-normalised split
    R-hat of Vehtari et al. (2021). Each has the shape of one draw.
    """
    try:
        import blackjax.diagnostics  # noqa: F401
    except ImportError as exc:  # pragma: no cover
        raise ImportError("chain_diagnostics needs blackjax (pip install blackjax)") from exc
    draws = jnp.asarray(draws)
    if draws.ndim < 2 or draws.shape[0] < 2 or draws.shape[1] < 4:
        raise ValueError(f"draws has shape {draws.shape}; it needs (chains >= 2, draws >= 4, ...)")
    ess, rhat = _ess_and_rhat(draws)
    return {"ess": np.asarray(ess), "rhat": np.asarray(rhat)}


__all__ = [
    "log_posterior", "make_potential", "kinetic_energy", "leapfrog", "HMCState", "HMCInfo", "hmc_step",
    "DualAveragingState", "dual_averaging_init", "dual_averaging_update", "gibbs_precision",
    "log_marginal_gaussian_gamma", "default_groups",
    "HMCResult", "sample", "sample_hierarchical", "stack_chains", "chain_diagnostics",
]
