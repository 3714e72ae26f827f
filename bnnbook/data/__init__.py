"""Data sets of the book: MNIST, Fashion-MNIST, rendered letters, noise
images, the 32-point sinusoid, Neal's regression task and the silhouettes
(children, spiders, and hairs to hang on either).

Taught in chapter "Why Bayesian neural networks"; later chapters reuse it.
Pure NumPy (plus Pillow, matplotlib's bundled fonts for letters and SciPy's
ndimage for hairs), so both the JAX and the TensorFlow chapters can use it.

Where the image files come from
-------------------------------
The loaders look in a cache folder: ``$BNNBOOK_DATA`` if set, else
``~/.cache/bnnbook`` (``$XDG_CACHE_HOME/bnnbook``). Files live at
``<cache>/mnist/train-images-idx3-ubyte.gz`` and so on (the layout of the
original distributions). Every file is checked against the SHA-256 of its
*decompressed* bytes, so a corrupt or truncated file raises
:class:`ChecksumError` and never yields a silently wrong array. A missing file
is downloaded from the usual public mirrors when the machine is online;
offline, :class:`DataNotFoundError` says which file to put where.
"""

from bnnbook.data.letters import LETTER_FONTS, letters_dataset, render_letters
from bnnbook.data.mnist import (DATA_ENV, DATASETS, FASHION_CLASSES, MNIST_CLASSES, ChecksumError,
                                DataNotFoundError, ImageData, Split, data_dir, fetch, load_fashion_mnist,
                                load_images, load_mnist, parse_idx)
from bnnbook.data.probes import PROBE_NAMES, Probes, ood_probes, uniform_noise
from bnnbook.data.silhouettes import SILHOUETTE_KINDS, SILHOUETTE_SIZE, add_hairs, silhouettes
from bnnbook.data.shift import rotate
from bnnbook.data.toy import neal_regression, sinusoid, sinusoid_mean, two_moons

__all__ = [
    "DATASETS", "DATA_ENV", "DataNotFoundError", "ChecksumError", "data_dir", "fetch", "parse_idx",
    "Split", "ImageData", "load_images", "load_mnist", "load_fashion_mnist", "MNIST_CLASSES",
    "FASHION_CLASSES", "LETTER_FONTS", "render_letters", "letters_dataset", "uniform_noise",
    "PROBE_NAMES", "Probes", "ood_probes",
    "sinusoid", "sinusoid_mean", "neal_regression", "two_moons", "rotate",
    "SILHOUETTE_SIZE", "SILHOUETTE_KINDS", "silhouettes", "add_hairs",
]
