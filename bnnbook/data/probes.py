"""Uniform-noise images and the book's fixed set of out-of-distribution probes (letters,
noise, Fashion-MNIST).

Taught in chapter "Why Bayesian neural networks"; used in chapters "Flipout",
"Hamiltonian Monte Carlo for Bayesian neural networks" and "Rejecting
out-of-distribution inputs".
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from bnnbook._checks import check_count
from bnnbook.data.letters import letters_dataset
from bnnbook.data.mnist import load_fashion_mnist


def uniform_noise(n: int, seed: int = 0, shape: tuple[int, ...] = (28, 28)) -> np.ndarray:
    """``n`` images of i.i.d. Uniform(0, 1) pixels (float32).

    Taught in chapter "Why Bayesian neural networks".
    """
    check_count("n", n, hint="the number of noise images, e.g. 2000")
    return np.random.default_rng(seed).uniform(0.0, 1.0, size=(n, *shape)).astype(np.float32)


PROBE_NAMES = ("letters", "uniform noise", "Fashion-MNIST")


@dataclasses.dataclass(frozen=True)
class Probes:
    """The book's three kinds of foreign input, keyed by ``PROBE_NAMES``
    (``images``), and the letter shown in each letter image (``letter_names``)."""

    images: dict[str, np.ndarray]
    letter_names: list[str]


def ood_probes(*, flatten: bool = False, num_noise: int = 2000, num_fashion: int | None = None,
               directory: str | os.PathLike | None = None) -> Probes:
    """The inputs every classifier of the book is tested on and should not take for digits.

    * ``"letters"``: the 1,872 rendered capitals of :func:`letters_dataset`;
    * ``"uniform noise"``: ``num_noise`` images of :func:`uniform_noise` (seed 0);
    * ``"Fashion-MNIST"``: the Fashion-MNIST test images, the first
      ``num_fashion`` of them if given (all 10,000 otherwise).

    Images are float32 in [0, 1], shape ``(n, 28, 28)``, or ``(n, 784)`` with
    ``flatten=True``. The same call gives the same arrays in every chapter.

    Taught in chapter "Why Bayesian neural networks"; used in chapters "Flipout",
    "Hamiltonian Monte Carlo for Bayesian neural networks" and "Rejecting
    out-of-distribution inputs".
    """
    check_count("num_noise", num_noise, hint="how many noise images, e.g. 2000")
    if num_fashion is not None and check_count("num_fashion", num_fashion, hint="or None for all 10,000") > 10000:
        raise ValueError(f"num_fashion={num_fashion!r} must be None (all 10,000 Fashion-MNIST test images) "
                         f"or an integer in [1, 10000]")
    letters, letter_names = letters_dataset()
    fashion = load_fashion_mnist(flatten=flatten, test_size=num_fashion, directory=directory).test.images
    images = {"letters": letters, "uniform noise": uniform_noise(num_noise, seed=0), "Fashion-MNIST": fashion}
    if flatten:
        images = {name: x.reshape(len(x), -1) for name, x in images.items()}
    return Probes(images=images, letter_names=letter_names)
