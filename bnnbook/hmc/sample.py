"""The sampler drivers: whole chains in ``lax.scan``, chains under ``vmap``, Gibbs precisions.

Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks"
(``chapters/06_hmc.ipynb``).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bnnbook._checks import check_count
from bnnbook.hmc._tree import (LogDensityFn, PyTree, _check_finite_tree, _check_inverse_mass, _check_num_leapfrog,
                               _check_positive, _check_step_size, _leaf_names, _tmap, _tree_sum, _tree_where)
from bnnbook.hmc.adaptation import DualAveragingState, dual_averaging_init, dual_averaging_update
from bnnbook.hmc.gibbs import default_groups, gibbs_precision
from bnnbook.hmc.kernel import HMCState, hmc_step

import dataclasses

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
        warmup_log_density: the log density at every warm-up iteration
            (watch it rise from the starting point to the typical set).
        warmup_precisions: for :func:`sample_hierarchical`, the precisions
            at every warm-up iteration.

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
    warmup_log_density: np.ndarray | None = None
    warmup_precisions: dict[str, np.ndarray] | None = None

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
    hyper_ref: Any  # the hyperparameters at which ``inverse_mass`` was estimated (for ``mass_fn``)


def mass_windows(num_warmup: int) -> tuple[int, int]:
    """``(start, end)`` of the warm-up window whose draws set the diagonal mass matrix.

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".
    As in Stan: an initial fast window (15% of warm-up) in which the chain
    finds the typical set, a slow window whose draws give the variances, and
    a terminal fast window in which dual averaging re-tunes the step size for
    the new mass matrix. The terminal window is at least 50 iterations (10%
    of warm-up when that is more) as soon as warm-up is 150 iterations or
    longer; shorter warm-ups keep the 15% / 75% / 10% split.
    """
    num_warmup = check_count("num_warmup", num_warmup, 0, hint="the warm-up iterations, e.g. 1000")
    start = int(0.15 * num_warmup)
    terminal = max(50, int(0.1 * num_warmup)) if num_warmup >= 150 else int(0.1 * num_warmup)
    return start, num_warmup - terminal


def _run_chain(key, position, *, log_density_fn, gibbs_fn, hyper0, inverse_mass, step_size, num_leapfrog,
               num_warmup, num_samples, thin, temperature, target_accept, adapt_step_size, adapt_mass,
               step_jitter, divergence_threshold, keep_fn, surrogate_fn=None, hyper_log_density_fn=None,
               mass_fn=None, tick=None):
    """One chain: warm-up scan, then sampling scan (all traced; vmapped for chains).

    ``surrogate_fn(params, hyper)`` (optional) is a log density whose gradient
    drives the leapfrog steps; ``log_density_fn`` then only gives the energy
    of the Metropolis test. ``hyper_log_density_fn(params, hyper)`` (optional)
    is the part of the log density that depends on the hyperparameters: after
    a Gibbs move only it is re-evaluated. ``mass_fn(inverse_mass, hyper,
    hyper_ref)`` (optional) rescales the adapted inverse mass matrix for the
    current hyperparameters.
    """
    dtype = jnp.result_type(*jax.tree_util.tree_leaves(position))
    drive_fn = log_density_fn if surrogate_fn is None else surrogate_fn

    def driving_value_and_grad(pos, hyper):
        return jax.value_and_grad(lambda p: -drive_fn(p, hyper) / temperature)(pos)

    def exact_potential(pos, hyper):
        return -log_density_fn(pos, hyper) / temperature

    def refresh(state, hyper):
        potential, grad = driving_value_and_grad(state.position, hyper)
        if surrogate_fn is not None:
            potential = exact_potential(state.position, hyper)
        return HMCState(state.position, potential, grad)

    def after_gibbs(state, old_hyper, new_hyper):
        if hyper_log_density_fn is None:
            return refresh(state, new_hyper)
        # Only the prior terms changed: add their change to the potential and the gradient
        # (the same change for the exact and the surrogate density, which share these terms).
        def change(p):
            return -(hyper_log_density_fn(p, new_hyper) - hyper_log_density_fn(p, old_hyper)) / temperature
        delta, delta_grad = jax.value_and_grad(change)(state.position)
        return HMCState(state.position, state.potential + delta, _tmap(jnp.add, state.grad, delta_grad))

    def transition(key, state, hyper, eps, inv_mass, hyper_ref, use_mass_fn):
        key_gibbs, key_jitter, key_hmc = jax.random.split(key, 3)
        if gibbs_fn is not None:  # Gibbs move on the hyperparameters, then HMC given them
            new_hyper = gibbs_fn(key_gibbs, state.position, hyper)
            state = after_gibbs(state, hyper, new_hyper)
            hyper = new_hyper
        if mass_fn is not None:  # the mass may depend on the hyperparameters: they are fixed during the HMC move
            inv_mass = _tree_where(use_mass_fn, mass_fn(inv_mass, hyper, hyper_ref), inv_mass)
        if step_jitter > 0:
            eps = eps * jax.random.uniform(key_jitter, dtype=dtype, minval=1.0 - step_jitter, maxval=1.0 + step_jitter)
        vg = lambda pos: driving_value_and_grad(pos, hyper)  # noqa: E731
        potential_fn = None if surrogate_fn is None else (lambda pos: exact_potential(pos, hyper))
        state, info = hmc_step(key_hmc, state, vg, eps, num_leapfrog, inv_mass, divergence_threshold, potential_fn)
        if tick is not None:  # progress bar (a host callback; negligible next to a gradient)
            jax.debug.callback(tick, info.accept_prob)
        return state, hyper, info

    # Mass-matrix windows (Stan-like): fast | slow (collect variances) | fast (>= 50 iterations).
    slow_start, slow_end = mass_windows(num_warmup) if adapt_mass else (-1, -1)

    def warmup_step(carry: _Carry, inputs):
        i, key = inputs
        eps = jnp.exp(carry.adapt.log_step) if adapt_step_size else jnp.asarray(step_size, dtype)
        use_mass_fn = jnp.asarray(not adapt_mass) | (i >= slow_end)
        state, hyper, info = transition(key, carry.state, carry.hyper, eps, carry.inverse_mass, carry.hyper_ref,
                                        use_mass_fn)
        adapt = dual_averaging_update(carry.adapt, info.accept_prob, target_accept) if adapt_step_size else carry.adapt
        inv_mass, welford, hyper_ref = carry.inverse_mass, carry.welford, carry.hyper_ref
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
            hyper_ref = _tree_where(at_end, hyper, hyper_ref)
            if adapt_step_size:  # restart dual averaging from the current step size
                restarted = dual_averaging_init(jnp.exp(adapt.log_step), dtype)
                adapt = jax.tree_util.tree_map(lambda a, b: jnp.where(at_end, a, b), restarted, adapt)
        carry = _Carry(state, hyper, adapt, inv_mass, welford, hyper_ref)
        return carry, (info.accept_prob, info.divergent, -state.potential * temperature, hyper)

    def sample_block(carry, key):
        """``thin`` iterations, then keep one draw."""
        eps, inv_mass, hyper_ref = carry[2], carry[3], carry[4]

        def one(c, k):
            state, hyper = c
            state, hyper, info = transition(k, state, hyper, eps, inv_mass, hyper_ref, jnp.asarray(True))
            log_density = -state.potential * temperature
            return (state, hyper), (info.accept_prob, info.divergent, log_density)

        (state, hyper), trace = jax.lax.scan(one, (carry[0], carry[1]), jax.random.split(key, thin))
        kept = state.position if keep_fn is None else keep_fn(state.position)
        return (state, hyper, eps, inv_mass, hyper_ref), (kept, hyper, trace)

    key_warm, key_sample = jax.random.split(key)
    hyper = hyper0
    state = refresh(HMCState(position, jnp.zeros((), dtype), position), hyper)
    zeros = _tmap(jnp.zeros_like, position)
    carry = _Carry(state, hyper, dual_averaging_init(step_size, dtype), inverse_mass,
                   (jnp.zeros((), dtype), zeros, zeros), hyper)
    if num_warmup > 0:
        carry, (warm_accept, warm_div, warm_log_density, warm_hypers) = jax.lax.scan(
            warmup_step, carry, (jnp.arange(num_warmup), jax.random.split(key_warm, num_warmup)))
        warm_accept, warm_div = warm_accept.mean(), warm_div.sum()
    else:
        warm_accept, warm_div = jnp.full((), jnp.nan, dtype), jnp.zeros((), jnp.int32)
        warm_log_density, warm_hypers = jnp.zeros((0,), dtype), _tmap(lambda h: jnp.zeros((0,), dtype), hyper0)
    eps = jnp.exp(carry.adapt.log_step_avg) if (adapt_step_size and num_warmup > 0) else jnp.asarray(step_size, dtype)
    (state, hyper, eps, inv_mass, _), (kept, hypers, trace) = jax.lax.scan(
        sample_block, (carry.state, carry.hyper, eps, carry.inverse_mass, carry.hyper_ref),
        jax.random.split(key_sample, num_samples))
    accept, divergent, log_density = (t.reshape(-1) for t in trace)
    return dict(samples=kept, hypers=hypers, accept_prob=accept, divergent=divergent, log_density=log_density,
                step_size=eps, inverse_mass=inv_mass, warmup_accept_prob=warm_accept,
                warmup_divergences=warm_div, warmup_log_density=warm_log_density, warmup_hypers=warm_hypers,
                final_position=state.position)


def _sample(log_density_fn, initial_position, key, *, gibbs_fn, hyper0, num_samples, num_warmup, step_size,
            num_leapfrog, inverse_mass, temperature, target_accept, adapt_step_size, adapt_mass, step_jitter,
            divergence_threshold, thin, keep_fn, num_chains, surrogate_fn=None, hyper_log_density_fn=None,
            mass_fn=None, progress=False, desc="HMC"):
    import sys
    import time

    from tqdm import tqdm

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
                          divergence_threshold=divergence_threshold, keep_fn=keep_fn, surrogate_fn=surrogate_fn,
                          hyper_log_density_fn=hyper_log_density_fn, mass_fn=mass_fn,
                          tick=tick if progress else None)

    chains = 1 if num_chains is None else num_chains
    iterations = num_warmup + num_samples * thin
    bar = tqdm(total=chains * iterations, desc=desc, unit="it", disable=not progress, file=sys.stdout,
               mininterval=2.0)

    def tick(accept_prob):  # host side: one call per iteration and chain (under vmap, once per chain)
        bar.update(int(np.size(accept_prob)))

    started = time.perf_counter()
    if num_chains is None:
        out = jax.jit(one_chain)(key, initial_position, inverse_mass)
    else:
        mass_axes = _tmap(lambda m, x: 0 if np.ndim(m) == np.ndim(x) else None, inverse_mass, initial_position)
        out = jax.jit(jax.vmap(one_chain, in_axes=(0, 0, mass_axes)))(
            jax.random.split(key, num_chains), initial_position, inverse_mass)
    out = jax.device_get(out)
    seconds = time.perf_counter() - started
    bar.close()
    # Full gradients of the log density; with a surrogate, each iteration also evaluates the exact
    # density once (the Metropolis energy). A Gibbs move only re-evaluates the precision-dependent terms.
    grads = chains * (1 + iterations * num_leapfrog)
    precisions = None
    if gibbs_fn is not None:
        precisions = {k: np.asarray(v) for k, v in out["hypers"].items()}
    return HMCResult(
        samples=out["samples"], accept_prob=np.asarray(out["accept_prob"]), divergent=np.asarray(out["divergent"]),
        log_density=np.asarray(out["log_density"]), step_size=np.asarray(out["step_size"]),
        inverse_mass=out["inverse_mass"], warmup_accept_prob=np.asarray(out["warmup_accept_prob"]),
        warmup_divergences=np.asarray(out["warmup_divergences"]), precisions=precisions,
        final_position=out["final_position"], num_grad_evals=int(grads), seconds=seconds,
        warmup_log_density=np.asarray(out["warmup_log_density"]),
        warmup_precisions=None if gibbs_fn is None else {k: np.asarray(v) for k, v in out["warmup_hypers"].items()})


def sample(log_density_fn: LogDensityFn, initial_position: PyTree, key: jax.Array, *, num_samples: int,
           num_warmup: int = 0, step_size: float = 0.1, num_leapfrog: int = 10, inverse_mass: PyTree | None = None,
           temperature: float = 1.0, target_accept: float = 0.8, adapt_step_size: bool = True,
           adapt_mass: bool = False, step_jitter: float = 0.0, divergence_threshold: float = 1000.0,
           thin: int = 1, keep_fn: Callable[[PyTree], PyTree] | None = None,
           num_chains: int | None = None, surrogate_log_density_fn: LogDensityFn | None = None,
           progress: bool = False, desc: str = "HMC") -> HMCResult:
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
        surrogate_log_density_fn: a cheaper approximation of
            ``log_density_fn`` (e.g. with bfloat16 matrix products,
            :mod:`bnnbook.hmc.surrogate`) whose gradient drives the leapfrog
            steps; the Metropolis test still uses ``log_density_fn``, so the
            chain's target is unchanged (see :func:`hmc_step`). Default off.
        progress: show a progress bar (iterations of all chains).
        desc: its label.
    """
    surrogate = None if surrogate_log_density_fn is None else (lambda params, _hyper: surrogate_log_density_fn(params))
    return _sample(lambda params, _hyper: log_density_fn(params), initial_position, key, gibbs_fn=None, hyper0=(),
                   num_samples=num_samples, num_warmup=num_warmup, step_size=step_size, num_leapfrog=num_leapfrog,
                   inverse_mass=inverse_mass, temperature=temperature, target_accept=target_accept,
                   adapt_step_size=adapt_step_size, adapt_mass=adapt_mass, step_jitter=step_jitter,
                   divergence_threshold=divergence_threshold, thin=thin, keep_fn=keep_fn, num_chains=num_chains,
                   surrogate_fn=surrogate, progress=progress, desc=desc)


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
                        noise_rate: float = 1.0, surrogate_log_likelihood_fn: LogDensityFn | None = None,
                        precision_aware_mass: bool = False, **hmc_options) -> HMCResult:
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
        surrogate_log_likelihood_fn: a cheaper approximation of
            ``log_likelihood_fn`` (e.g. bfloat16 first-layer products,
            :mod:`bnnbook.hmc.surrogate`) whose gradient drives the leapfrog
            steps; the Metropolis test uses the exact one, so the target is
            unchanged. Default off.
        precision_aware_mass: rescale the adapted diagonal mass matrix for
            the current precisions, so that weights constrained only by
            their prior move on the prior's current scale (see
            ``_precision_aware_mass_fn``). Default off.
        **hmc_options: every other argument of :func:`sample` (``num_warmup``,
            ``step_size``, ``num_leapfrog``, ``num_chains``, ``keep_fn``,
            ``progress``, ...).

    The kept precisions are in :attr:`HMCResult.precisions`. Each iteration
    costs ``num_leapfrog`` gradients: after the Gibbs move only the terms
    that depend on the precisions (the prior, and the noise term of
    ``residual_fn``) are re-evaluated, and their change is added to the
    stored potential and gradient.
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

    def hyper_log_density(params, hyper):  # the terms that change with the precisions
        total = jnp.zeros((), dtype)
        for name, weights in group_fn(params).items():
            scale = jax.lax.rsqrt(hyper[name])
            total = total + _tree_sum(_tmap(lambda w: priors.gaussian_log_prob(w, scale), weights))
        if residual_fn is not None:
            residuals = residual_fn(params)
            total = total + likelihoods.gaussian_log_likelihood(
                residuals, jnp.zeros_like(residuals), jax.lax.rsqrt(hyper["noise"]), reduction="sum")
        return total

    def log_density(params, hyper):
        total = hyper_log_density(params, hyper)
        if log_likelihood_fn is not None:
            total = total + log_likelihood_fn(params)
        return total

    surrogate = None
    if surrogate_log_likelihood_fn is not None:
        if log_likelihood_fn is None:
            raise ValueError("surrogate_log_likelihood_fn approximates log_likelihood_fn, which is None; "
                             "pass the exact log_likelihood_fn too")

        def surrogate_density(params, hyper):
            return hyper_log_density(params, hyper) + surrogate_log_likelihood_fn(params)

        surrogate = surrogate_density

    mass_fn = None
    if precision_aware_mass:
        mass_fn = _precision_aware_mass_fn(group_fn, one, names)

    def gibbs(key, params, hyper):
        keys = jax.random.split(key, len(names) + 1)
        new = {name: gibbs_precision(k, weights, shapes[name], rates[name], temperature)
               for k, (name, weights) in zip(keys, group_fn(params).items())}
        if residual_fn is not None:
            new["noise"] = gibbs_precision(keys[-1], residual_fn(params), noise_shape, noise_rate, temperature)
        return new

    return _sample(log_density, initial_position, key, gibbs_fn=gibbs, hyper0=hyper0, surrogate_fn=surrogate,
                   hyper_log_density_fn=hyper_log_density, mass_fn=mass_fn,
                   **_sample_defaults(hmc_options, num_samples))


def _precision_aware_mass_fn(group_fn, params, names):
    """``inverse_mass, hyper, hyper_ref -> inverse_mass`` for the current precisions (Neal-style scaling).

    A weight's posterior precision is roughly its data term plus its prior
    precision, ``1 / var_j ≈ d_j + lambda_g``. The adapted inverse mass
    ``var_j`` was estimated at ``lambda_g = hyper_ref[g]``, which gives
    ``d_j = max(1 / var_j - lambda_ref, 0)``; at the current precision the
    inverse mass becomes ``1 / (d_j + lambda_g)``. Weights the data pin down
    keep their scale, weights only the prior constrains move on the prior's
    current scale. The mass depends only on the precisions, which are fixed
    during the HMC move, so each move is still exact given them.
    """
    leaves, treedef = jax.tree_util.tree_flatten(params)
    tags = jax.tree_util.tree_unflatten(treedef, list(range(len(leaves))))
    group_of_leaf: dict[int, str] = {}
    for name, subtree in group_fn(tags).items():
        for tag in jax.tree_util.tree_leaves(subtree):
            if not isinstance(tag, int):
                raise ValueError("precision_aware_mass=True needs groups(params) that return whole parameter "
                                 "arrays (as default_groups does), not computed values")
            group_of_leaf[tag] = name
    missing = sorted(set(range(len(leaves))) - set(group_of_leaf))

    def mass_fn(inverse_mass, hyper, hyper_ref):
        masses = jax.tree_util.tree_leaves(inverse_mass)
        out = []
        for index, variance in enumerate(masses):
            if index in missing:  # a parameter without a hierarchical prior keeps its adapted mass
                out.append(variance)
                continue
            group = group_of_leaf[index]
            data_precision = jnp.maximum(1.0 / variance - hyper_ref[group], 0.0)
            out.append(1.0 / (data_precision + hyper[group]))
        return jax.tree_util.tree_unflatten(treedef, out)

    return mass_fn


def _sample_defaults(options: dict, num_samples: int) -> dict:
    known = dict(num_warmup=0, step_size=0.1, num_leapfrog=10, inverse_mass=None, temperature=1.0,
                 target_accept=0.8, adapt_step_size=True, adapt_mass=False, step_jitter=0.0,
                 divergence_threshold=1000.0, thin=1, keep_fn=None, num_chains=None, progress=False, desc="HMC")
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown}; sample_hierarchical accepts {sorted(known)}")
    return {**known, **options, "num_samples": num_samples}


def stack_chains(positions) -> PyTree:
    """Stack a list of parameter pytrees into one pytree with a leading chain axis.

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".
    """
    if not positions:
        raise ValueError("positions is empty; pass one parameter pytree per chain")
    return _tmap(lambda *leaves: jnp.stack(leaves), *positions)
