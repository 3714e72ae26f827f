"""Step time of Bayes by Backprop on MNIST-sized MLPs, per configuration (chapter "Bayes by Backprop").

Trains :func:`bnnbook.vi.classifier.train` for a few epochs on random
MNIST-shaped data (784 inputs, 10 classes, batch 128) and prints the time per
step and per seed for each method, width and setting that matters for speed:
bfloat16 vs float32 products, XLA's ``unsafe_rbg`` bit generator vs JAX's
default threefry, one seed vs three vmapped seeds. The ratios it prints
are measured in this one run. Widths above 400 (Table 1's 800 and 1200
columns) also get the time of a full 50,000-image epoch of three seeds, and
of the paper's 600 epochs.

Usage: python bench/bench_bbb.py [--widths 400 800 1200] [--epochs 3]
Merges the figures into results/bench.json under "bayes_by_backprop_step_time".
"""

import argparse

import jax
import numpy as np

from _record import save
from bnnbook import priors
from bnnbook.vi import classifier

STEPS_PER_EPOCH = 50_000 // 128


def step_ms(images, labels, width, seeds, **options):
    fit = classifier.train((images, labels), (images[:1000], labels[:1000]), hidden=(width, width), seeds=seeds,
                           epochs=ARGS.epochs, progress=False, **options)
    return 1e3 * fit.step_seconds / len(seeds)  # per seed


def main():
    rng = np.random.default_rng(0)
    num = 128 * 40
    images = rng.uniform(0, 2, size=(num, 784)).astype(np.float32)
    labels = rng.integers(0, 10, size=num).astype(np.int32)
    mixture = priors.ScaleMixture(pi=0.5, sigma1=1.0, sigma2=float(np.exp(-6.0)))
    three = (0, 1, 2)
    configs = {
        "plain": dict(method="plain"),
        "dropout": dict(method="dropout"),
        "bbb_gaussian": dict(prior=priors.Gaussian(1.0)),
        "bbb_mixture": dict(prior=mixture),
        "bbb_mixture_float32": dict(prior=mixture, bf16=False),
        "bbb_mixture_threefry": dict(prior=mixture, prng_impl="threefry2x32"),
    }
    record = {"batch_size": 128, "note": "ms per step and per seed, three seeds vmapped unless named otherwise"}
    print(f"device: {jax.devices()[0]}; ms per step per seed (three vmapped seeds), batch 128")
    for width in ARGS.widths:
        row = {}
        for name, options in (configs.items() if width == 400 else [("bbb_mixture", configs["bbb_mixture"])]):
            row[name] = step_ms(images, labels, width, three, **options)
            print(f"  2 x {width:<5} {name:<22} {row[name]:7.2f} ms", flush=True)
        if width == 400:
            row["bbb_mixture_one_seed"] = step_ms(images, labels, width, (0,), prior=mixture)
            print(f"  2 x {width:<5} {'bbb_mixture_one_seed':<22} {row['bbb_mixture_one_seed']:7.2f} ms")
            print(f"  ratios: mixture / plain {row['bbb_mixture'] / row['plain']:.2f}, "
                  f"float32 / bfloat16 {row['bbb_mixture_float32'] / row['bbb_mixture']:.2f}, "
                  f"threefry / unsafe_rbg {row['bbb_mixture_threefry'] / row['bbb_mixture']:.2f}, "
                  f"one seed / three vmapped {row['bbb_mixture_one_seed'] / row['bbb_mixture']:.2f}")
        epoch_seconds = 3 * row["bbb_mixture"] * STEPS_PER_EPOCH / 1e3
        row["bbb_mixture_epoch_seconds_three_seeds"] = epoch_seconds
        row["bbb_mixture_600_epochs_hours_three_seeds"] = 600 * epoch_seconds / 3600
        print(f"  2 x {width}: one 50,000-image epoch of 3 seeds {epoch_seconds:.0f} s; the paper's 600 epochs "
              f"{600 * epoch_seconds / 3600:.1f} h")
        record[f"2x{width}"] = row
    save("bayes_by_backprop_step_time", record)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[400, 800, 1200])
    parser.add_argument("--epochs", type=int, default=3)
    ARGS = parser.parse_args()
    main()
