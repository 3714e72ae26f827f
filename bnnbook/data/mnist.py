"""MNIST and Fashion-MNIST: the cache folder, checksummed downloads, the IDX format and the
train/validation/test splits (see :mod:`bnnbook.data` for where the files come from).

Taught in chapter "Why Bayesian neural networks"; later chapters reuse it.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import pathlib
import shutil
import tempfile
import urllib.error
import urllib.request
import zlib
from typing import Iterable, Sequence

import numpy as np

DATA_ENV = "BNNBOOK_DATA"

# SHA-256 of the decompressed IDX bytes (gzip headers differ between mirrors).
DATASETS = {
    "mnist": {
        "folder": "mnist",
        "mirrors": (
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        "files": {
            "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
    },
    "fashion_mnist": {
        "folder": "fashion-mnist",
        "mirrors": (
            # S3 website endpoints serve plain HTTP only (no HTTPS); the checksums guard the download.
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        ),
        "files": {
            "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
    },
}

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


class DataNotFoundError(FileNotFoundError):
    """A data file is missing and could not be downloaded."""


class ChecksumError(ValueError):
    """A data file exists but its content is not the expected one."""


def data_dir() -> pathlib.Path:
    """The cache folder: ``$BNNBOOK_DATA``, else ``$XDG_CACHE_HOME/bnnbook``
    (``~/.cache/bnnbook``)."""
    if os.environ.get(DATA_ENV):
        return pathlib.Path(os.environ[DATA_ENV]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(cache) / "bnnbook"


def _dataset_spec(name: str) -> dict:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[name]


def _decompressed_bytes(path: pathlib.Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # gzip magic; plain IDX files are accepted too
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ChecksumError(
                f"{path} is not a complete gzip file ({exc}); it is corrupt or truncated. "
                f"Delete it and load again (it is downloaded when online), or copy a good copy there."
            ) from exc
    return raw


def _verify(path: pathlib.Path, expected_sha256: str) -> bytes:
    content = _decompressed_bytes(path)
    digest = hashlib.sha256(content).hexdigest()
    if digest != expected_sha256:
        raise ChecksumError(
            f"{path}: SHA-256 of the decompressed bytes is {digest}, expected {expected_sha256} "
            f"({len(content)} bytes read). The file is corrupt, truncated or a different file. "
            f"Delete it and load again (it is downloaded when online), or copy a good copy there."
        )
    return content


def _download(urls: Iterable[str], destination: pathlib.Path, timeout: float) -> list[str]:
    """Try each URL; return the list of failures (empty on success)."""
    failures = []
    destination.parent.mkdir(parents=True, exist_ok=True)
    for url in urls:
        partial = None
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                with tempfile.NamedTemporaryFile(dir=destination.parent, delete=False) as tmp:
                    partial = tmp.name
                    shutil.copyfileobj(response, tmp)
            os.replace(partial, destination)  # atomic: never a half-written file in place
            return []
        except (urllib.error.URLError, OSError, ValueError) as exc:
            failures.append(f"{url}: {exc}")
            if partial is not None and os.path.exists(partial):
                os.remove(partial)  # a download cut off half-way leaves nothing behind
    return failures


def fetch(dataset: str, filename: str, *, directory: str | os.PathLike | None = None,
          download: bool = True, mirrors: Sequence[str] | None = None, timeout: float = 30.0) -> bytes:
    """Return the verified, decompressed bytes of one file of ``dataset``.

    Looks in ``directory`` (default :func:`data_dir`); downloads when the file
    is missing and ``download`` is true; raises :class:`DataNotFoundError` with
    the exact place to put the file when it cannot be had, and
    :class:`ChecksumError` when the bytes are wrong (a downloaded file that
    fails the check is removed).
    """
    spec = _dataset_spec(dataset)
    if filename not in spec["files"]:
        raise ValueError(f"{dataset} has no file {filename!r}; files: {sorted(spec['files'])}")
    expected = spec["files"][filename]
    root = pathlib.Path(directory) if directory is not None else data_dir()
    path = root / spec["folder"] / filename
    candidates = [path, path.with_suffix("")]  # also accept a decompressed copy
    for candidate in candidates:
        if candidate.exists():
            return _verify(candidate, expected)
    failures = ["downloading is switched off (download=False)"]
    if download:
        failures = _download([m + filename for m in (mirrors or spec["mirrors"])], path, timeout)
        if not failures:
            try:
                return _verify(path, expected)
            except ChecksumError:
                path.unlink(missing_ok=True)
                raise
    where = f"${DATA_ENV}={os.environ[DATA_ENV]}" if os.environ.get(DATA_ENV) and directory is None else "the cache folder"
    raise DataNotFoundError(
        f"{dataset} file {filename!r} is not in {root} ({where}) and could not be downloaded:\n  "
        + "\n  ".join(failures)
        + f"\nPut the file at {path} (gzip-compressed IDX; SHA-256 of the decompressed bytes "
        f"{expected}), or set {DATA_ENV} to a folder that holds {spec['folder']}/{filename}."
    )


def parse_idx(content: bytes) -> np.ndarray:
    """Parse IDX bytes (the MNIST file format) into a NumPy array."""
    if len(content) < 4 or content[0] != 0 or content[1] != 0:
        raise ValueError("not an IDX file: bad magic number")
    dtype_code, ndim = content[2], content[3]
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if dtype_code not in dtypes:
        raise ValueError(f"unknown IDX data type code {dtype_code:#x}")
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(content[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(dtypes[dtype_code])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(content) - header != expected:
        raise ValueError(f"IDX payload has {len(content) - header} bytes, the header says {expected}")
    return np.frombuffer(content, dtype=dtype, offset=header).reshape(shape)


@dataclasses.dataclass(frozen=True)
class Split:
    """Images (float32 in [0, 1], shape ``(n, 28, 28)`` or ``(n, 784)``) and labels (int32)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclasses.dataclass(frozen=True)
class ImageData:
    """Train/validation/test splits of an image classification set."""

    name: str
    train: Split
    validation: Split
    test: Split
    class_names: tuple[str, ...]


def load_images(dataset: str = "mnist", *, validation_size: int = 5000, train_size: int | None = None,
                test_size: int | None = None, flatten: bool = False, seed: int = 0,
                directory: str | os.PathLike | None = None, download: bool = True) -> ImageData:
    """Load MNIST (``"mnist"``) or Fashion-MNIST (``"fashion_mnist"``).

    Pixels are scaled to [0, 1] (float32). The last ``validation_size`` of a
    seeded shuffle of the training images (60,000) form the validation split;
    ``train_size``/``test_size`` keep only the first images of the train/test
    splits (for quick runs). ``flatten`` returns rows of 784 pixels.

    Taught in chapter "Why Bayesian neural networks".
    """
    _dataset_spec(dataset)  # an unknown name raises here, before any file is read
    if validation_size < 0:
        raise ValueError(f"validation_size={validation_size} must be >= 0 (0 for no validation split)")
    parts = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = parse_idx(fetch(dataset, f"{prefix}-images-idx3-ubyte.gz", directory=directory, download=download))
        labels = parse_idx(fetch(dataset, f"{prefix}-labels-idx1-ubyte.gz", directory=directory, download=download))
        if images.shape[0] != labels.shape[0]:
            raise ChecksumError(f"{dataset} {split}: {images.shape[0]} images but {labels.shape[0]} labels")
        parts[split] = (images, labels.astype(np.int32))

    def to_split(images, labels, size, name):
        if size is not None:
            if not 0 < size <= len(labels):
                raise ValueError(f"{name}={size} must be in [1, {len(labels)}]")
            images, labels = images[:size], labels[:size]
        pixels = images.astype(np.float32) / 255.0
        if flatten:
            pixels = pixels.reshape(len(pixels), int(np.prod(pixels.shape[1:])))
        return Split(pixels, np.ascontiguousarray(labels))

    images, labels = parts["train"]
    num_train = len(labels)
    if validation_size >= num_train:
        raise ValueError(f"validation_size={validation_size} must be below the {num_train} training images")
    order = np.random.default_rng(seed).permutation(num_train)
    train_idx, val_idx = order[: num_train - validation_size], order[num_train - validation_size:]
    classes = FASHION_CLASSES if dataset == "fashion_mnist" else MNIST_CLASSES
    return ImageData(
        name=dataset,
        train=to_split(images[train_idx], labels[train_idx], train_size, "train_size"),
        validation=to_split(images[val_idx], labels[val_idx], None, "validation_size"),
        test=to_split(*parts["test"], test_size, "test_size"),
        class_names=classes,
    )


def load_mnist(**kwargs) -> ImageData:
    """MNIST digits; see :func:`load_images` for the arguments.

    Taught in chapter "Why Bayesian neural networks".
    """
    return load_images("mnist", **kwargs)


def load_fashion_mnist(**kwargs) -> ImageData:
    """Fashion-MNIST clothes; see :func:`load_images` for the arguments.

    Taught in chapter "Why Bayesian neural networks".
    """
    return load_images("fashion_mnist", **kwargs)
