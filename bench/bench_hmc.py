"""Our HMC (bnnbook.hmc) against BlackJAX's HMC: same target, step size,
leapfrog count and mass matrix, no adaptation.

Prints, for each target, the time per iteration of both samplers and their
ratio (ours / BlackJAX; goal <= 1.1), and the effective sample size per
gradient evaluation of both (BlackJAX's ESS, the minimum over coordinates).
Both samplers run as one jitted ``lax.scan`` over iterations, ``vmap``-ed over
chains; each is compiled first, then the two are timed alternately, best of
``--repeats``. The figures are merged into ``results/bench.json`` under "hmc_vs_blackjax".

Usage: python bench/bench_hmc.py [--quick] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import blackjax
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

from _record import save
from bnnbook import data, hmc, nets, priors


def gaussian_100d():
    scales = jnp.asarray(np.geomspace(0.1, 1.0, 100), jnp.float32)

    def log_density(p):
        return -0.5 * jnp.sum((p["x"] / scales) ** 2)

    return "100-D Gaussian", log_density, {"x": jnp.zeros(100)}, 0.08, 20


def bnn_regression():
    x, y, _ = data.neal_regression(100, seed=0)
    net = nets.mlp((8,), 1, activation=jnp.tanh)

    def log_density(p):
        prior = sum(jnp.sum(priors.gaussian_log_prob(w, 1.0)) for w in jax.tree_util.tree_leaves(p))
        return prior + jnp.sum(priors.gaussian_log_prob(y - net.apply(p, x), 0.1))

    return "BNN 1-8-1 on Neal's task", log_density, net.init(jax.random.key(0), x), 0.003, 50


def ours(log_density, step_size, num_leapfrog, num_iterations):
    value_and_grad = jax.value_and_grad(lambda p: -log_density(p))

    def chain(key, position):
        potential, grad = value_and_grad(position)
        inverse_mass = jax.tree.map(jnp.ones_like, position)

        def one(state, k):
            state, info = hmc.hmc_step(k, state, value_and_grad, step_size, num_leapfrog, inverse_mass)
            return state, (state.position, info.accept_prob)

        return jax.lax.scan(one, hmc.HMCState(position, potential, grad), jax.random.split(key, num_iterations))[1]

    return jax.jit(jax.vmap(chain))


def theirs(log_density, step_size, num_leapfrog, num_iterations, dim):
    kernel = blackjax.hmc(log_density, step_size, jnp.ones(dim), num_leapfrog)

    def chain(key, position):
        def one(state, k):
            state, info = kernel.step(k, state)
            return state, (state.position, info.acceptance_rate)

        return jax.lax.scan(one, kernel.init(position), jax.random.split(key, num_iterations))[1]

    return jax.jit(jax.vmap(chain))


def timed_pair(first, second, *args, repeats):
    """Best-of-``repeats`` wall time of two compiled functions, timed alternately
    so that a burst of load on the machine hits both."""
    outs = [jax.block_until_ready(fn(*args)) for fn in (first, second)]  # compile
    best = [float("inf"), float("inf")]
    for _ in range(repeats):
        for i, fn in enumerate((first, second)):
            started = time.perf_counter()
            outs[i] = jax.block_until_ready(fn(*args))
            best[i] = min(best[i], time.perf_counter() - started)
    return best, outs


def min_ess(positions):
    flat = jax.vmap(jax.vmap(lambda p: jax.flatten_util.ravel_pytree(p)[0]))(positions)
    return float(np.min(hmc.chain_diagnostics(np.asarray(flat))["ess"]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    num_chains = 4
    num_iterations = 300 if args.quick else 5000
    figures = {}
    print(f"{num_chains} chains x {num_iterations} iterations, device {jax.devices()[0].platform}")
    print(f"{'target':<26}{'ours ms/it':>11}{'BlackJAX ms/it':>16}{'ratio':>7}{'ours ESS/grad':>15}"
          f"{'BlackJAX ESS/grad':>19}{'accept (ours, BJ)':>20}")
    for name, log_density, position, step_size, num_leapfrog in (gaussian_100d(), bnn_regression()):
        dim = jax.flatten_util.ravel_pytree(position)[0].size
        starts = jax.vmap(lambda k: priors.Gaussian(0.1).sample(k, position))(jax.random.split(jax.random.key(1), num_chains))
        keys = jax.random.split(jax.random.key(2), num_chains)
        (our_time, bj_time), ((our_pos, our_acc), (bj_pos, bj_acc)) = timed_pair(
            ours(log_density, step_size, num_leapfrog, num_iterations),
            theirs(log_density, step_size, num_leapfrog, num_iterations, dim), keys, starts, repeats=args.repeats)
        grads = num_chains * num_iterations * num_leapfrog
        burn = num_iterations // 5  # drop the first fifth: the chains start off the typical set
        our_ess = min_ess(jax.tree.map(lambda a: a[:, burn:], our_pos)) / grads
        bj_ess = min_ess(jax.tree.map(lambda a: a[:, burn:], bj_pos)) / grads
        ratio = our_time / bj_time
        per_it = 1e3 / num_iterations
        print(f"{name:<26}{our_time * per_it:>11.3f}{bj_time * per_it:>16.3f}{ratio:>7.2f}{our_ess:>15.2e}"
              f"{bj_ess:>19.2e}{float(np.mean(our_acc)):>10.2f}{float(np.mean(bj_acc)):>10.2f}")
        figures[name] = {"time_ratio_ours_over_blackjax": ratio, "ours_ms_per_iteration": our_time * per_it,
                         "blackjax_ms_per_iteration": bj_time * per_it, "ours_ess_per_grad": our_ess,
                         "blackjax_ess_per_grad": bj_ess, "step_size": step_size, "num_leapfrog": num_leapfrog}
    worst = max(f["time_ratio_ours_over_blackjax"] for f in figures.values())
    print(f"worst time ratio (ours / BlackJAX): {worst:.2f} (goal <= 1.1)")
    if not args.quick:
        save("hmc_vs_blackjax", {"targets": figures, "worst_time_ratio": worst, "chains": num_chains,
                                 "iterations": num_iterations})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
