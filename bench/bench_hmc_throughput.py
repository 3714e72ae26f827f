"""Full-batch gradient throughput of the MNIST HMC potential, in TFLOP/s.

Usage: .venv/bin/python bench/bench_hmc_throughput.py [--train-size N] [--repeats 20]

HMC in chapter "Hamiltonian Monte Carlo for Bayesian neural networks" takes
the gradient of the potential U(w) = -log p(w) - log p(D | w) over the *whole*
training set at every leapfrog step (no minibatches, so the Metropolis test
stays exact): for the 784-100-10 sigmoid network on 55,000 images that one
gradient is the whole cost of the sampler. This script times it (jitted,
compiled first, median of ``--repeats`` calls) and divides the floating-point
operations XLA counts for the gradient compiled for the CPU (``cost_analysis()``;
on a GPU the matrix products are cuBLAS calls that the GPU program's count
leaves out) by that time. It runs on whatever JAX sees (CPU here; ``JAX_PLATFORMS=cuda`` or a
GPU machine for the GPU figure, see ``make bench-gpu``) and merges its
figures into ``results/bench.json`` under ``"hmc_gradient_throughput"``, keyed
by backend, so a CPU and a GPU figure can sit side by side.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from _record import save
from bnnbook import data, likelihoods, nets, priors


def xla_flops(compiled) -> float:
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):  # older JAX returns one dict per device
        analysis = analysis[0]
    return float(analysis["flops"])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-size", type=int, default=None,
                        help="training images in the potential (default: the whole 55,000-image split)")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    if args.repeats < 3:
        parser.error(f"--repeats={args.repeats} must be >= 3 (the figure is a median)")

    mnist = data.load_mnist(flatten=True, train_size=args.train_size)
    images, labels = jnp.asarray(mnist.train.images), jnp.asarray(mnist.train.labels)
    net = nets.mlp((100,), 10, activation=jax.nn.sigmoid)
    params = net.init(jax.random.key(0), images[:1])
    prior = priors.Gaussian(1.0)

    def potential(w):
        return -(prior.log_prob(w) + likelihoods.categorical_log_likelihood(net.apply(w, images), labels))

    gradient = jax.jit(jax.value_and_grad(potential))
    compiled = gradient.lower(params).compile()
    if jax.default_backend() == "cpu":
        flops = xla_flops(compiled)
    else:  # the GPU program's matrix products are cuBLAS calls its count leaves out: count a CPU compile
        cpu = jax.devices("cpu")[0]
        with jax.default_device(cpu):
            flops = xla_flops(gradient.lower(jax.device_put(params, cpu)).compile())
    jax.block_until_ready(compiled(params))  # warm up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(params))
        times.append(time.perf_counter() - start)
    seconds = float(np.median(times))
    record = save("hmc_gradient_throughput", {
        "tflops_per_second": flops / seconds / 1e12, "gradient_ms": seconds * 1e3, "flops_per_gradient": flops,
        "train_size": int(images.shape[0]), "parameters": nets.count_params(params)})
    print(f"784-100-10 sigmoid MLP, potential and gradient over {record['train_size']:,} images on "
          f"{record['device']}: {flops / 1e9:.1f} GFLOP per gradient (XLA count), median {seconds * 1e3:.1f} ms "
          f"of {args.repeats} -> {record['tflops_per_second']:.3f} TFLOP/s")
    return record


if __name__ == "__main__":
    main()
