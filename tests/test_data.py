"""bnnbook.data: verified loading, clear errors, and the generated sets."""

import gzip
import io
import hashlib
import http.server
import os
import pathlib
import threading

import numpy as np
import pytest

from bnnbook import data

SHARED = pathlib.Path(os.environ.get("BNNBOOK_DATA", "")) if os.environ.get("BNNBOOK_DATA") else None
HAVE_MNIST = SHARED is not None and (SHARED / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()


def _idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array in the IDX format (magic 0x0000 08 ndim, big-endian sizes)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def tiny_dataset(monkeypatch, tmp_path):
    """A registered four-file dataset 'tiny' with 12 train and 5 test images, written to tmp_path."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (12, 28, 28)),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, 12),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (5, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, 5),
    }
    raw = {name: _idx_bytes(a) for name, a in arrays.items()}
    spec = {"folder": "tiny", "mirrors": ("http://127.0.0.1:9/none/",),
            "files": {name: hashlib.sha256(b).hexdigest() for name, b in raw.items()}}
    monkeypatch.setitem(data.DATASETS, "tiny", spec)
    folder = tmp_path / "tiny"
    folder.mkdir()
    for name, content in raw.items():
        (folder / name).write_bytes(gzip.compress(content))
    return tmp_path, arrays, raw


def test_parse_idx_round_trip():
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(data.parse_idx(_idx_bytes(array)), array)


def test_parse_idx_rejects_bad_payload():
    content = _idx_bytes(np.zeros((2, 3), np.uint8))
    with pytest.raises(ValueError, match="payload"):
        data.parse_idx(content[:-1])
    with pytest.raises(ValueError, match="magic"):
        data.parse_idx(b"\x01\x02\x08\x01" + content[4:])


def test_fetch_verifies_and_returns_decompressed_bytes(tiny_dataset):
    root, _, raw = tiny_dataset
    for name, content in raw.items():
        assert data.fetch("tiny", name, directory=root, download=False) == content


def test_load_images_splits_scaling_and_flatten(tiny_dataset):
    root, arrays, _ = tiny_dataset
    loaded = data.load_images("tiny", validation_size=4, directory=root, download=False)
    assert len(loaded.train) == 8 and len(loaded.validation) == 4 and len(loaded.test) == 5
    train_images = arrays["train-images-idx3-ubyte.gz"]
    # train + validation are a seeded permutation of the training file, scaled to [0, 1]
    both = np.concatenate([loaded.train.images, loaded.validation.images])
    order = np.random.default_rng(0).permutation(12)
    np.testing.assert_allclose(both, train_images[order] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(np.concatenate([loaded.train.labels, loaded.validation.labels]),
                                  arrays["train-labels-idx1-ubyte.gz"][order])
    flat = data.load_images("tiny", validation_size=0, test_size=2, flatten=True, directory=root, download=False)
    assert flat.train.images.shape == (12, 784) and flat.test.images.shape == (2, 784)
    assert flat.train.images.dtype == np.float32 and flat.train.labels.dtype == np.int32
    with pytest.raises(ValueError, match="validation_size=12"):
        data.load_images("tiny", validation_size=12, directory=root, download=False)
    with pytest.raises(ValueError, match="test_size=6"):
        data.load_images("tiny", validation_size=0, test_size=6, directory=root, download=False)


def test_truncated_gzip_is_a_checksum_error(tiny_dataset):
    root, _, _ = tiny_dataset
    path = root / "tiny" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(data.ChecksumError, match="corrupt or truncated"):
        data.fetch("tiny", "train-images-idx3-ubyte.gz", directory=root, download=False)


def test_wrong_content_is_a_checksum_error_naming_the_file(tiny_dataset):
    root, _, raw = tiny_dataset
    path = root / "tiny" / "t10k-labels-idx1-ubyte.gz"
    flipped = bytearray(raw["t10k-labels-idx1-ubyte.gz"])
    flipped[-1] ^= 1  # one wrong label: same size, valid gzip, wrong bytes
    path.write_bytes(gzip.compress(bytes(flipped)))
    with pytest.raises(data.ChecksumError) as info:
        data.fetch("tiny", "t10k-labels-idx1-ubyte.gz", directory=root, download=False)
    assert str(path) in str(info.value) and "SHA-256" in str(info.value)


def test_missing_file_offline_says_what_to_put_where(tmp_path):
    with pytest.raises(data.DataNotFoundError) as info:
        data.fetch("mnist", "t10k-labels-idx1-ubyte.gz", directory=tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz") in message
    assert data.DATA_ENV in message
    assert data.DATASETS["mnist"]["files"]["t10k-labels-idx1-ubyte.gz"] in message


def test_unreachable_mirror_gives_not_found_with_the_failures(tiny_dataset, tmp_path):
    empty = tmp_path / "empty"
    with pytest.raises(data.DataNotFoundError, match="127.0.0.1:9"):
        data.fetch("tiny", "t10k-labels-idx1-ubyte.gz", directory=empty, timeout=2)
    assert not (empty / "tiny" / "t10k-labels-idx1-ubyte.gz").exists()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def local_mirror(tiny_dataset):
    """Serve the tiny dataset's folder over HTTP on the loopback interface."""
    root, _, _ = tiny_dataset

    def handler(*args, **kwargs):
        return _QuietHandler(*args, directory=str(root / "tiny"), **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_download_from_mirror_then_verify(local_mirror, tiny_dataset, tmp_path):
    _, _, raw = tiny_dataset
    cache = tmp_path / "cache"
    got = data.fetch("tiny", "t10k-images-idx3-ubyte.gz", directory=cache, mirrors=[local_mirror], timeout=5)
    assert got == raw["t10k-images-idx3-ubyte.gz"]
    assert (cache / "tiny" / "t10k-images-idx3-ubyte.gz").exists()  # cached for next time


def test_downloaded_file_with_wrong_bytes_is_removed(local_mirror, tiny_dataset, tmp_path, monkeypatch):
    spec = dict(data.DATASETS["tiny"])
    spec["files"] = dict(spec["files"], **{"t10k-images-idx3-ubyte.gz": "0" * 64})
    monkeypatch.setitem(data.DATASETS, "tiny", spec)
    cache = tmp_path / "cache"
    with pytest.raises(data.ChecksumError):
        data.fetch("tiny", "t10k-images-idx3-ubyte.gz", directory=cache, mirrors=[local_mirror], timeout=5)
    assert not (cache / "tiny" / "t10k-images-idx3-ubyte.gz").exists()


def test_data_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    assert data.data_dir() == tmp_path
    monkeypatch.delenv(data.DATA_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.data_dir() == tmp_path / "xdg" / "bnnbook"


def test_unknown_dataset_and_file_are_value_errors():
    with pytest.raises(ValueError, match="unknown dataset"):
        data.fetch("cifar", "x")
    with pytest.raises(ValueError, match="has no file"):
        data.fetch("mnist", "train-images.npz")


@pytest.mark.skipif(not HAVE_MNIST, reason="needs BNNBOOK_DATA with the MNIST files")
def test_real_mnist_checksums_shapes_and_splits():
    mnist = data.load_mnist(validation_size=5000, test_size=1000)
    assert mnist.train.images.shape == (55000, 28, 28) and mnist.train.images.dtype == np.float32
    assert mnist.validation.images.shape == (5000, 28, 28)
    assert mnist.test.images.shape == (1000, 28, 28)
    assert 0.0 <= mnist.train.images.min() and mnist.train.images.max() <= 1.0
    # the published label counts of the 10,000 test digits (first 1,000 here: all classes present)
    assert set(np.unique(mnist.test.labels)) == set(range(10))
    # train and validation are a partition of the 60,000 training images
    counts = np.bincount(np.concatenate([mnist.train.labels, mnist.validation.labels]), minlength=10)
    np.testing.assert_array_equal(counts, [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    flat = data.load_mnist(flatten=True, train_size=100, test_size=10)
    assert flat.train.images.shape == (100, 784) and flat.test.images.shape == (10, 784)


@pytest.mark.skipif(not HAVE_MNIST, reason="needs BNNBOOK_DATA with the Fashion-MNIST files")
def test_real_fashion_mnist_loads():
    fashion = data.load_fashion_mnist(validation_size=0, test_size=100)
    assert fashion.train.images.shape == (60000, 28, 28)
    assert len(fashion.class_names) == 10


def test_load_images_rejects_negative_validation_size():
    with pytest.raises(ValueError, match="validation_size=-1"):
        data.load_images("mnist", validation_size=-1)


def test_letters_are_deterministic_centred_and_in_range():
    images, labels = data.render_letters("ABQ", fonts=data.LETTER_FONTS[:2])
    again, _ = data.render_letters("ABQ", fonts=data.LETTER_FONTS[:2])
    assert images.shape == (6, 28, 28) and images.dtype == np.float32
    assert labels == list("ABQ") * 2
    np.testing.assert_array_equal(images, again)
    assert images.min() >= 0.0 and images.max() <= 1.0 and images.max() > 0.9
    yy, xx = np.mgrid[0:28, 0:28]
    for image in images:
        mass = image.sum()
        # centre of mass near the frame centre, as in MNIST (within a pixel)
        assert abs((yy * image).sum() / mass - 13.5) <= 1.0
        assert abs((xx * image).sum() / mass - 13.5) <= 1.0
        # the ink fits a 20-pixel box, leaving a margin like MNIST
        rows, cols = np.nonzero(image > 0.05)
        assert max(np.ptp(rows), np.ptp(cols)) <= 21


def test_letters_dataset_sizes():
    small, labels = data.letters_dataset("small")
    assert small.shape == (26 * len(data.LETTER_FONTS), 28, 28) and len(labels) == len(small)
    with pytest.raises(ValueError, match="size"):
        data.letters_dataset("huge")


def test_uniform_noise_seeded_and_in_range():
    a, b = data.uniform_noise(50, seed=3), data.uniform_noise(50, seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (50, 28, 28) and 0.0 <= a.min() and a.max() < 1.0
    assert abs(a.mean() - 0.5) < 0.01  # 39,200 uniform pixels: std of the mean ~0.0015
    with pytest.raises(ValueError, match="n=0"):
        data.uniform_noise(0)
    with pytest.raises(ValueError, match="n=2.5 must be an integer"):
        data.uniform_noise(2.5)


def test_sinusoid_matches_its_definition():
    x, y = data.sinusoid(32, noise_std=0.0, seed=1)
    assert x.shape == (32, 1) and y.shape == (32, 1)
    assert np.all(np.diff(x[:, 0]) >= 0) and -0.5 <= x.min() and x.max() <= 0.5
    np.testing.assert_allclose(y, 10 * np.sin(2 * np.pi * x), rtol=1e-5, atol=1e-5)
    for bad in (0, 3.0, True):
        with pytest.raises(ValueError, match=f"n={bad!r} must be an integer >= 1"):
            data.sinusoid(bad)
    _, noisy = data.sinusoid(20000, noise_std=1.0, seed=2)
    x2, _ = data.sinusoid(20000, noise_std=1.0, seed=2)
    residual = noisy[:, 0] - data.sinusoid_mean(x2[:, 0])
    assert abs(residual.std() - 1.0) < 0.03
    with pytest.raises(ValueError, match="noise_std"):
        data.sinusoid(noise_std=-1)


@pytest.mark.skipif(not HAVE_MNIST, reason="needs BNNBOOK_DATA with the Fashion-MNIST files")
def test_ood_probes_are_the_book_sets_in_both_layouts():
    probes = data.ood_probes(num_fashion=300)
    assert tuple(probes.images) == data.PROBE_NAMES
    letters, names = data.letters_dataset()
    np.testing.assert_array_equal(probes.images["letters"], letters)
    assert probes.letter_names == names and len(names) == len(letters) == 1872
    np.testing.assert_array_equal(probes.images["uniform noise"], data.uniform_noise(2000, seed=0))
    fashion = data.load_fashion_mnist(test_size=300).test.images
    np.testing.assert_array_equal(probes.images["Fashion-MNIST"], fashion)
    for images in probes.images.values():
        assert images.dtype == np.float32 and images.shape[1:] == (28, 28)
        assert 0.0 <= images.min() and images.max() <= 1.0
    flat = data.ood_probes(flatten=True, num_noise=10, num_fashion=20)
    assert {name: x.shape for name, x in flat.images.items()} == {
        "letters": (1872, 784), "uniform noise": (10, 784), "Fashion-MNIST": (20, 784)}
    np.testing.assert_array_equal(flat.images["Fashion-MNIST"], fashion[:20].reshape(20, 784))


@pytest.mark.parametrize("kwargs, match", [
    ({"num_noise": 0}, "num_noise=0"), ({"num_noise": 2.5}, "num_noise=2.5"),
    ({"num_fashion": 0}, "num_fashion=0"), ({"num_fashion": 10001}, "num_fashion=10001"),
    ({"num_fashion": True}, "num_fashion=True"),
])
def test_ood_probes_rejects_bad_sizes_before_any_work(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.ood_probes(**kwargs)


def test_a_download_cut_off_half_way_leaves_no_partial_file(tiny_dataset, tmp_path, monkeypatch):
    class Broken(io.BytesIO):
        def read(self, *args):
            raise OSError("connection reset")

        def __exit__(self, *args):
            return False

    monkeypatch.setattr(data.mnist.urllib.request, "urlopen", lambda url, timeout: Broken(b"x"))
    cache = tmp_path / "cache"
    with pytest.raises(data.DataNotFoundError, match="connection reset"):
        data.fetch("tiny", "t10k-images-idx3-ubyte.gz", directory=cache, mirrors=["http://a/", "http://b/"],
                   timeout=1)
    assert not any(p.is_file() for p in cache.rglob("*"))
