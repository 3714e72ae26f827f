"""Step time of Flipout / step time of the shared (plain reparameterization) estimator.

Chapter "Flipout": Flipout needs a second matrix product (convolution) per
layer and two sign vectors per example, so it costs up to 2x the FLOPs of
the layer's forward pass; the goal is a wall-clock ratio <= 1.6x. Both
estimators train the *same* network with the same parameters: one jitted
Adam step (free-energy loss, gradient, update) at batch size 128, timed
alternately so a busy machine slows both alike.

Usage: python bench/bench_flipout.py [--repeats 30]
Prints the ratio per network and merges {"flipout_vs_shared_step_time": ...}
into results/bench.json (other keys kept).
"""

import argparse
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from bnnbook import flipout

NETWORKS = {
    "mlp_784_256_256_10": (lambda e: flipout.bayesian_mlp((256, 256), 10, e), (28, 28)),
    "lenet_like_cnn": (lambda e: flipout.bayesian_cnn((6, 16), 10, e, hidden_sizes=(120, 84)), (28, 28)),
}


def step_times(make_net, image_shape, batch_size, repeats):
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.uniform(size=(batch_size, *image_shape)), jnp.float32)
    labels = jnp.asarray(rng.integers(0, 10, size=batch_size))
    optimizer = optax.adam(1e-3)
    steps, params = {}, None
    for estimator in flipout.ESTIMATORS:
        net = make_net(estimator)
        params = net.init(jax.random.key(0), images) if params is None else params  # one tree for both
        loss_fn = flipout.free_energy_loss(net, 60000)

        def step(p, state, key, loss_fn=loss_fn):
            grads = jax.grad(lambda q: loss_fn(q, (images, labels), key)[0])(p)
            updates, state = optimizer.update(grads, state, p)
            return optax.apply_updates(p, updates), state

        steps[estimator] = jax.jit(step)
    state = optimizer.init(params)
    for estimator, step in steps.items():  # compile and warm up
        jax.block_until_ready(step(params, state, jax.random.key(0)))
    times = {e: [] for e in steps}
    for r in range(repeats):
        for estimator, step in steps.items():
            start = time.perf_counter()
            jax.block_until_ready(step(params, state, jax.random.key(r)))
            times[estimator].append(time.perf_counter() - start)
    return {e: float(np.median(t)) for e, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    ratios = {}
    print(f"device: {jax.devices()[0]}, batch size {args.batch_size}, median of {args.repeats} steps")
    for name, (make_net, shape) in NETWORKS.items():
        times = step_times(make_net, shape, args.batch_size, args.repeats)
        ratios[name] = times["flipout"] / times["shared"]
        print(f"{name:<20} shared {1e3 * times['shared']:7.2f} ms   flipout {1e3 * times['flipout']:7.2f} ms   "
              f"ratio {ratios[name]:.2f}x (goal <= 1.6x, FLOPs 2x)")
    path = pathlib.Path(__file__).resolve().parents[1] / "results" / "bench.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results["flipout_vs_shared_step_time"] = {**ratios, "device": str(jax.devices()[0]),
                                              "batch_size": args.batch_size}
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"flipout / shared step time: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
