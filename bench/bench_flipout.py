"""Step time of Flipout / step time of the shared (plain reparameterization) estimator.

Chapter "Flipout": Flipout needs a second matrix product (convolution) per
layer and two sign vectors per example, so it costs up to 2x the FLOPs of
the layer's forward pass; the goal is a wall-clock ratio <= 1.6x. Both
estimators train the *same* network with the same parameters: one jitted
Adam step (free-energy loss, gradient, update) at batch size 128, timed
alternately so a busy machine slows both alike (``bnnbook.flipout.step_times``).

Usage: python bench/bench_flipout.py [--repeats 30]
Prints the ratio per network and merges it into results/bench.json under
"flipout_vs_shared_step_time", keyed by backend (other figures kept).
"""

import argparse

import jax
import numpy as np

from _record import save
from bnnbook import flipout

NETWORKS = {
    "mlp_784_256_256_10": (lambda e: flipout.bayesian_mlp((256, 256), 10, e), (28, 28)),
    "lenet_like_cnn": (lambda e: flipout.bayesian_cnn((6, 16), 10, e, hidden_sizes=(120, 84)), (28, 28)),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    ratios = {}
    print(f"device: {jax.devices()[0]}, batch size {args.batch_size}, median of {args.repeats} steps")
    for name, (make_net, shape) in NETWORKS.items():
        rng = np.random.default_rng(0)
        images = rng.uniform(size=(args.batch_size, *shape)).astype(np.float32)
        labels = rng.integers(0, 10, size=args.batch_size)
        times = flipout.step_times(make_net, images, labels, num_examples=60000, repeats=args.repeats)
        ratios[name] = times["flipout"] / times["shared"]
        print(f"{name:<20} shared {1e3 * times['shared']:7.2f} ms   flipout {1e3 * times['flipout']:7.2f} ms   "
              f"ratio {ratios[name]:.2f}x (goal <= 1.6x, FLOPs 2x)")
    save("flipout_vs_shared_step_time", {**ratios, "batch_size": args.batch_size, "repeats": args.repeats})
    print(f"flipout / shared step time: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
