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

from bnnbook._checks import check_count

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
    spec = _dataset_spec(dataset)
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


# --------------------------------------------------------------------------
# Out-of-distribution images made by our own code.
# --------------------------------------------------------------------------

LETTER_FONTS = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf",
)


def _font_path(filename: str) -> str:
    import matplotlib

    path = pathlib.Path(matplotlib.get_data_path()) / "fonts" / "ttf" / filename
    if not path.exists():
        raise FileNotFoundError(f"font {filename} is not among matplotlib's bundled fonts ({path.parent})")
    return str(path)


def _mnist_style(glyph: np.ndarray) -> np.ndarray:
    """Fit a glyph (float, ink = high) into 20x20 keeping its aspect ratio, then
    centre its centre of mass in a 28x28 frame, as MNIST digits were made."""
    from PIL import Image

    rows, cols = np.nonzero(glyph > 0.05)
    glyph = glyph[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]
    height, width = glyph.shape
    scale = 20.0 / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    small = Image.fromarray((glyph * 255).astype(np.uint8)).resize((new_w, new_h), Image.LANCZOS)
    small = np.clip(np.asarray(small, dtype=np.float32) / 255.0, 0.0, 1.0)
    canvas = np.zeros((28, 28), np.float32)
    top, left = (28 - new_h) // 2, (28 - new_w) // 2
    canvas[top: top + new_h, left: left + new_w] = small
    total = canvas.sum()
    yy, xx = np.mgrid[0:28, 0:28]
    shift_y = int(round(13.5 - (yy * canvas).sum() / total))
    shift_x = int(round(13.5 - (xx * canvas).sum() / total))
    # Shift without wrapping ink around the border.
    shift_y = int(np.clip(shift_y, -top, 28 - new_h - top))
    shift_x = int(np.clip(shift_x, -left, 28 - new_w - left))
    return np.roll(np.roll(canvas, shift_y, axis=0), shift_x, axis=1)


def render_letters(letters: str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", fonts: Sequence[str] = LETTER_FONTS,
                   rotations: Sequence[float] = (0.0,), stroke_widths: Sequence[int] = (0,)) -> tuple[np.ndarray, list[str]]:
    """Render letters as 28x28 MNIST-like images (white ink on black, float32 in [0, 1]).

    One image per (letter, font, rotation in degrees, extra stroke width in
    pixels at the 112-pixel rendering). Deterministic: no randomness at all.
    Returns ``(images, labels)`` with images of shape ``(n, 28, 28)`` and the
    letter of each image.

    Taught in chapter "Why Bayesian neural networks".
    """
    from PIL import Image, ImageDraw, ImageFont

    if not letters:
        raise ValueError("letters is empty; pass e.g. 'ABC'")
    images, labels = [], []
    for font_file in fonts:
        font = ImageFont.truetype(_font_path(font_file), 96)
        for stroke in stroke_widths:
            if stroke < 0:
                raise ValueError(f"stroke width {stroke} must be >= 0")
            for angle in rotations:
                for letter in letters:
                    canvas = Image.new("L", (160, 160), 0)
                    ImageDraw.Draw(canvas).text((80, 80), letter, fill=255, font=font, anchor="mm",
                                                stroke_width=stroke, stroke_fill=255)
                    if angle:
                        canvas = canvas.rotate(angle, resample=Image.BICUBIC)
                    glyph = np.asarray(canvas, dtype=np.float32) / 255.0
                    if glyph.max() <= 0.05:
                        raise ValueError(f"letter {letter!r} renders empty in {font_file}")
                    images.append(_mnist_style(glyph))
                    labels.append(letter)
    return np.stack(images).astype(np.float32), labels


def letters_dataset(size: str = "standard") -> tuple[np.ndarray, list[str]]:
    """The book's letter set: A-Z in 12 DejaVu styles; ``"standard"`` adds
    rotations of -10/+10 degrees and a thicker stroke (26 x 12 x 3 x 2 = 1,872
    images), ``"small"`` is upright only (312 images).

    Taught in chapter "Why Bayesian neural networks".
    """
    if size == "small":
        return render_letters()
    if size == "standard":
        return render_letters(rotations=(0.0, -10.0, 10.0), stroke_widths=(0, 4))
    raise ValueError(f"size={size!r}; use 'small' or 'standard'")


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


def sinusoid(n: int = 32, noise_std: float = 1.0, seed: int = 0, low: float = -0.5,
             high: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """The book's toy regression set: ``y = 10 sin(2 pi x) + noise``.

    ``x ~ Uniform(low, high)`` (default [-0.5, 0.5]), Gaussian noise of standard
    deviation ``noise_std``. Returns float32 arrays ``x`` and ``y`` of shape
    ``(n, 1)``, sorted by ``x``.

    Taught in chapter "Why Bayesian neural networks".
    """
    check_count("n", n, hint="the number of points, e.g. 32")
    if noise_std < 0:
        raise ValueError(f"noise_std={noise_std} must be >= 0")
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(low, high, size=n))
    y = sinusoid_mean(x) + noise_std * rng.standard_normal(n)
    return x[:, None].astype(np.float32), y[:, None].astype(np.float32)


def sinusoid_mean(x: np.ndarray) -> np.ndarray:
    """The noise-free function of :func:`sinusoid`: ``10 sin(2 pi x)``.

    Taught in chapter "Why Bayesian neural networks".
    """
    return 10.0 * np.sin(2.0 * np.pi * np.asarray(x))


# --------------------------------------------------------------------------
# Silhouettes for the Bayesian CNN regression of chapter "Flipout".
# --------------------------------------------------------------------------

SILHOUETTE_SIZE = 126
SILHOUETTE_KINDS = ("child", "spider")


def _child_silhouette(rng: np.random.Generator, scale_range: tuple[float, float]):
    """One child standing upright; returns the drawing and its height from the top of the head to the soles."""
    from PIL import Image, ImageDraw

    size = SILHOUETTE_SIZE
    base_height = rng.uniform(30.0, 60.0)  # a child's height before the random rescaling
    scale = float(np.exp(rng.uniform(np.log(scale_range[0]), np.log(scale_range[1]))))
    height = int(np.clip(round(base_height * scale), 12, size - 4))
    build = rng.uniform(0.85, 1.2)  # slimmer or stockier
    half_span = int(np.ceil(0.5 * height * build)) + 2  # conservative horizontal reach of the arms
    centre_x = int(rng.integers(half_span, size - half_span)) if size - 2 * half_span > 0 else size // 2
    top = int(rng.integers(0, size - height + 1))
    bottom = top + height - 1  # the sole row: height = bottom - top + 1 pixels

    def px(value):
        return int(round(value))

    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    head_height = max(3, px(rng.uniform(0.2, 0.25) * height))
    head_half_width = max(1, px(0.42 * head_height * rng.uniform(0.9, 1.1)))
    draw.ellipse([centre_x - head_half_width, top, centre_x + head_half_width, top + head_height - 1], fill=255)
    shoulder_y = top + head_height + max(1, px(0.02 * height))
    hip_y = top + px(0.58 * height)
    torso_half_width = max(1, px(0.13 * height * build))
    draw.ellipse([centre_x - torso_half_width, top + head_height - 1, centre_x + torso_half_width, hip_y + px(0.04 * height)],
                 fill=255)
    limb_width = max(2, px(0.075 * height * build))
    foot_height = max(2, (limb_width + 1) // 2 + 1)  # a leg's flat end never reaches below the sole
    ankle_y = bottom - foot_height
    foot_length = max(2, px(0.1 * height))
    for side in (-1, 1):
        hip_x = centre_x + side * max(1, px(0.06 * height * build))
        ankle_x = hip_x + side * px(rng.uniform(0.0, 0.12) * height)
        draw.line([hip_x, hip_y, ankle_x, ankle_y], fill=255, width=limb_width)
        toe_x = ankle_x + side * foot_length
        draw.rectangle([min(ankle_x, toe_x), ankle_y, max(ankle_x, toe_x), bottom], fill=255)
        # Arms from hanging down (-80 degrees) to raised (+30): the hand stays below the top of the head.
        angle = np.deg2rad(rng.uniform(-80.0, 30.0))
        arm_length = 0.3 * height
        shoulder_x = centre_x + side * torso_half_width
        hand = (shoulder_x + side * arm_length * np.cos(angle), shoulder_y - arm_length * np.sin(angle))
        draw.line([shoulder_x, shoulder_y, px(hand[0]), px(hand[1])], fill=255, width=max(2, limb_width - 1))
    return np.asarray(canvas) > 127, float(height)


def _spider_silhouette(rng: np.random.Generator, scale_range: tuple[float, float]):
    """A spider (two body parts, eight bent legs) with an overall size drawn like a child's height."""
    from PIL import Image, ImageDraw

    size = SILHOUETTE_SIZE
    span = float(np.clip(rng.uniform(30.0, 60.0) * np.exp(rng.uniform(np.log(scale_range[0]), np.log(scale_range[1]))),
                         16, size - 6))
    centre = rng.uniform(span / 2 + 2, size - span / 2 - 3, size=2)
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    abdomen = (0.16 * span, 0.2 * span)
    head = (0.1 * span, 0.1 * span)
    cx, cy = centre
    draw.ellipse([cx - abdomen[0], cy, cx + abdomen[0], cy + 2 * abdomen[1]], fill=255)
    draw.ellipse([cx - head[0], cy - 1.6 * head[1], cx + head[0], cy + 0.4 * head[1]], fill=255)
    leg_width = max(2, int(round(0.035 * span)))
    for side in (-1, 1):
        for i, base_angle in enumerate((-40.0, -12.0, 12.0, 40.0)):  # four legs a side, fanned out
            angle = np.deg2rad(base_angle + rng.uniform(-8, 8))
            root = (cx + side * 0.05 * span, cy + (i - 1.5) * 0.04 * span)
            knee_length, foot_length = 0.25 * span, 0.3 * span
            knee = (root[0] + side * knee_length * np.cos(angle), root[1] + knee_length * np.sin(angle) - 0.12 * span)
            foot_angle = angle + np.deg2rad(rng.uniform(25, 45)) * (1 if base_angle >= 0 else 0.6)
            foot = (knee[0] + side * foot_length * np.cos(foot_angle) * 0.6,
                    knee[1] + foot_length * abs(np.sin(foot_angle)) + 0.1 * span)
            points = [tuple(np.clip(p, 0, size - 1)) for p in (root, knee, foot)]
            draw.line(points, fill=255, width=leg_width, joint="curve")
    mask = np.asarray(canvas) > 127
    rows = np.flatnonzero(mask.any(axis=1))
    return mask, float(rows[-1] - rows[0] + 1)


def silhouettes(n: int, kind: str = "child", seed: int = 0,
                scale_range: tuple[float, float] = (0.5, 2.0)) -> tuple[np.ndarray, np.ndarray]:
    """Binary silhouettes on a 126 x 126 grid: standing children, or spiders as unseen inputs.

    ``kind="child"``: a head, a torso, two arms and two legs with feet, drawn
    upright with random build, arm angles and stance; a base height between
    30 and 60 pixels is rescaled by a factor drawn log-uniformly from
    ``scale_range`` (default 1/2 to 2x) and the figure placed at random. The
    label is the standing height in pixels, from the top row of the head to
    the row of the soles: exactly the number of image rows the figure
    covers. ``kind="spider"``: a body of two parts and eight bent legs, of a
    size drawn like a child's height; its "height" is the number of rows it
    covers (a spider has no label to learn; it is an input unlike any
    training image). Returns ``(images, heights)``: float32 arrays of shape
    ``(n, 126, 126)`` (1 = figure, 0 = background) and ``(n,)``.
    Deterministic for a ``seed`` (NumPy ``default_rng``); drawn with PIL.

    Taught in chapter "Flipout".
    """
    check_count("n", n, hint="the number of silhouettes, e.g. n=836")
    if kind not in SILHOUETTE_KINDS:
        raise ValueError(f"kind={kind!r} must be 'child' or 'spider'")
    low, high = (float(v) for v in scale_range)
    if not 0.0 < low <= high <= 2.0:
        raise ValueError(f"scale_range={scale_range!r} must be (low, high) with 0 < low <= high <= 2 (larger "
                         f"figures do not fit 126 x 126), e.g. (0.5, 2.0)")
    rng = np.random.default_rng(seed)
    draw = _child_silhouette if kind == "child" else _spider_silhouette
    images = np.zeros((n, SILHOUETTE_SIZE, SILHOUETTE_SIZE), np.float32)
    heights = np.zeros(n, np.float32)
    for i in range(n):
        mask, heights[i] = draw(rng, (low, high))
        images[i] = mask
    return images, heights


def add_hairs(images, seed: int = 0, density: float = 0.35,
              length: tuple[float, float] = (2.0, 6.0)) -> np.ndarray:
    """Binary silhouettes with bristles: short one-pixel lines that stick out of the figure's edge.

    A share ``density`` of the edge pixels (figure pixels with a background
    neighbour), picked at random, each grows one hair of a length drawn
    uniformly from ``length`` (pixels), pointing outwards (along the normal
    of the smoothed outline, turned by up to about 30 degrees either way).
    The figure itself is kept: hairs only add pixels, and every added pixel
    lies within ``length[1] + 1`` pixels of the original figure.
    ``images``: ``(n, H, W)`` or ``(H, W)``, 1 = figure; returns float32 of
    the same shape. Deterministic for a ``seed``.

    The source's spider is a *hairy* one: a texture no child has. The
    chapter hangs hairs on spiders and on children to test whether a new
    local texture, rather than a new shape, is what raises a mean-field
    network's uncertainty.

    Taught in chapter "Flipout".
    """
    from PIL import Image, ImageDraw
    from scipy import ndimage

    masks = np.asarray(images) > 0.5
    single = masks.ndim == 2
    if single:
        masks = masks[None]
    if masks.ndim != 3 or masks.size == 0:
        raise ValueError(f"images has shape {np.shape(images)}; pass binary silhouettes of shape (n, H, W) "
                         f"or (H, W), e.g. from silhouettes()")
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density={density!r} must be in (0, 1]: the share of edge pixels that grow a hair")
    shortest, longest = (float(v) for v in length)
    if not 0.0 < shortest <= longest:
        raise ValueError(f"length={length!r} must be (shortest, longest) in pixels with 0 < shortest <= "
                         f"longest, e.g. (2.0, 6.0)")
    rng = np.random.default_rng(seed)
    hairy = np.zeros(masks.shape, np.float32)
    for i, mask in enumerate(masks):
        smooth = ndimage.gaussian_filter(mask.astype(np.float32), 1.5)
        slope_y, slope_x = np.gradient(smooth)
        edge_y, edge_x = np.nonzero(mask & ~ndimage.binary_erosion(mask))
        chosen = rng.random(len(edge_y)) < density
        turns = rng.uniform(-0.5, 0.5, size=len(edge_y))
        lengths = rng.uniform(shortest, longest, size=len(edge_y))
        canvas = Image.fromarray(mask.astype(np.uint8) * 255)
        draw = ImageDraw.Draw(canvas)
        for y, x, turn, hair in zip(edge_y[chosen], edge_x[chosen], turns[chosen], lengths[chosen]):
            # Outwards is down the slope of the smoothed figure.
            if np.hypot(slope_x[y, x], slope_y[y, x]) < 1e-6:
                continue
            angle = np.arctan2(-slope_y[y, x], -slope_x[y, x]) + turn
            draw.line([x, y, x + hair * np.cos(angle), y + hair * np.sin(angle)], fill=255, width=1)
        hairy[i] = np.asarray(canvas) > 127
    return hairy[0] if single else hairy


__all__ = [
    "DATASETS", "DATA_ENV", "DataNotFoundError", "ChecksumError", "data_dir", "fetch", "parse_idx",
    "Split", "ImageData", "load_images", "load_mnist", "load_fashion_mnist", "MNIST_CLASSES",
    "FASHION_CLASSES", "LETTER_FONTS", "render_letters", "letters_dataset", "uniform_noise",
    "PROBE_NAMES", "Probes", "ood_probes",
    "sinusoid", "sinusoid_mean", "neal_regression",
    "SILHOUETTE_SIZE", "SILHOUETTE_KINDS", "silhouettes", "add_hairs",
]


def neal_regression(n: int = 100, noise_std: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neal's 1-D regression task: ``f(x) = 0.3 + 0.4 x + 0.5 sin(2.7 x) + 1.1 / (1 + x^2)``.

    ``x ~ N(0, 1)`` and ``y = f(x) + noise`` with Gaussian noise of standard
    deviation ``noise_std`` (0.1 in Neal's book, so the best possible test MSE
    is 0.01). Returns float32 arrays ``x``, ``y`` and the noise-free ``f(x)``,
    each of shape ``(n, 1)`` and sorted by ``x``. Different seeds give
    independent sets (e.g. ``seed=0`` for training, ``seed=1`` for testing).
    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".
    """
    check_count("n", n, hint="the number of points, e.g. 100")
    if not np.isfinite(noise_std) or noise_std < 0:
        raise ValueError(f"noise_std={noise_std!r} must be a finite number >= 0 (0.1 is Neal's setting)")
    rng = np.random.default_rng(seed)
    x = np.sort(rng.standard_normal(n))
    f = 0.3 + 0.4 * x + 0.5 * np.sin(2.7 * x) + 1.1 / (1.0 + x ** 2)
    y = f + noise_std * rng.standard_normal(n)
    return (x[:, None].astype(np.float32), y[:, None].astype(np.float32), f[:, None].astype(np.float32))

