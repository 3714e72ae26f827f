"""Time of one full-batch MNIST gradient: float32 against the bfloat16 surrogate.

Usage: .venv/bin/python bench/bench_hmc_surrogate.py [--train-size N] [--chains 4] [--repeats 10]

Chapter "Hamiltonian Monte Carlo for Bayesian neural networks" drives its
leapfrog steps with a surrogate gradient whose first-layer products are
bfloat16 with float32 accumulation (``bnnbook.hmc.surrogate``), and keeps the
float32 energy for the Metropolis test. This script measures, in one run and
on the same compiled shapes, the median time of the float32 gradient, of the
surrogate gradient and of the float32 energy alone, for ``--chains`` chains
under ``vmap`` as the sampler runs them, and the relative error of the
surrogate gradient. It merges the figures into ``results/bench.json`` under
``"hmc_surrogate_gradient"`` (keyed by backend); ``speedup`` is float32 time
over surrogate time, and ``iteration_speedup`` the same for a whole
20-step HMC iteration (20 gradients, plus one float32 energy for the surrogate).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from _record import save
from bnnbook import data, likelihoods, nets
from bnnbook.hmc import surrogate


def median_ms(fn, *args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))  # compile and warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-size", type=int, default=None, help="default: the whole 55,000-image split")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    if args.repeats < 3 or args.chains < 1:
        parser.error("--repeats must be >= 3 and --chains >= 1")

    mnist = data.load_mnist(flatten=True, train_size=args.train_size)
    images, labels = jnp.asarray(mnist.train.images), jnp.asarray(mnist.train.labels)
    images_bf16 = images.astype(jnp.bfloat16)
    net = nets.mlp((100,), 10, activation=jax.nn.sigmoid)
    params = [net.init(jax.random.key(chain), images[:1]) for chain in range(args.chains)]
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *params)

    def exact(w):
        return likelihoods.categorical_log_likelihood(net.apply(w, images), labels)

    def approx(w):
        logits = surrogate.mlp_logits(w, images_bf16, jax.nn.sigmoid, first_layer_matmul=surrogate.bf16_matmul)
        return likelihoods.categorical_log_likelihood(logits, labels)

    exact_grad = jax.jit(jax.vmap(jax.grad(exact)))
    approx_grad = jax.jit(jax.vmap(jax.grad(approx)))
    exact_value = jax.jit(jax.vmap(exact))
    f32_ms = median_ms(exact_grad, stacked, repeats=args.repeats)
    bf16_ms = median_ms(approx_grad, stacked, repeats=args.repeats)
    energy_ms = median_ms(exact_value, stacked, repeats=args.repeats)
    g_exact, g_approx = exact_grad(stacked), approx_grad(stacked)
    error = np.sqrt(sum(float(jnp.sum((a - b) ** 2)) for a, b in zip(jax.tree.leaves(g_exact),
                                                                      jax.tree.leaves(g_approx))))
    norm = np.sqrt(sum(float(jnp.sum(a ** 2)) for a in jax.tree.leaves(g_exact)))
    leapfrog = 20
    record = save("hmc_surrogate_gradient", {
        "float32_gradient_ms": f32_ms, "surrogate_gradient_ms": bf16_ms, "float32_energy_ms": energy_ms,
        "speedup": f32_ms / bf16_ms,
        "iteration_speedup": leapfrog * f32_ms / (leapfrog * bf16_ms + energy_ms),
        "relative_gradient_error": error / norm, "chains": args.chains, "train_size": int(images.shape[0])})
    print(f"{args.chains} chains x {record['train_size']:,} images on {record['device']}: float32 gradient "
          f"{f32_ms:.0f} ms, bfloat16 surrogate {bf16_ms:.0f} ms ({record['speedup']:.2f}x), float32 energy "
          f"{energy_ms:.0f} ms; a 20-step iteration {record['iteration_speedup']:.2f}x faster; relative "
          f"gradient error {record['relative_gradient_error']:.1e}")
    return record


if __name__ == "__main__":
    main()
