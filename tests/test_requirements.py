"""The pinned requirement layers (tools/lock.py): hashed, disjoint, and split where `make unit` needs it."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
LAYERS = ("jax", "tf", "book")


def _pins(layer):
    """{normalised name: (version, number of hashes)} of requirements/<layer>.txt."""
    pins, name = {}, None
    for line in (ROOT / "requirements" / f"{layer}.txt").read_text().splitlines():
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", line)
        if match:
            name = match.group(1).lower().replace("_", "-")
            pins[name] = (match.group(2), 0)
        elif line.strip().startswith("--hash=sha256:") and name is not None:
            pins[name] = (pins[name][0], pins[name][1] + 1)
        else:
            assert not line.strip() or line.startswith("#"), f"{layer}.txt: unexpected line {line!r}"
    return pins


def test_every_pin_is_exact_and_hashed_and_no_package_is_in_two_layers():
    seen = {}
    for layer in LAYERS:
        pins = _pins(layer)
        assert pins, f"{layer}.txt pins nothing"
        unhashed = [name for name, (_, hashes) in pins.items() if hashes == 0]
        assert not unhashed, f"{layer}.txt: no --hash for {unhashed} (pip --require-hashes would refuse)"
        twice = sorted(set(pins) & set(seen))
        assert not twice, f"{layer}.txt repeats {twice} from {[seen[n] for n in twice]}"
        seen.update({name: layer for name in pins})


def test_make_unit_layer_has_the_package_dependencies_and_no_tensorflow_or_sphinx():
    jax_layer = _pins("jax")
    for needed in ("jax", "jaxlib", "dm-haiku", "optax", "blackjax", "scikit-learn", "pytest", "hypothesis"):
        assert needed in jax_layer, f"jax.txt lacks {needed}"
    assert not {"tensorflow", "tf-keras", "tensorflow-probability", "sphinx", "jupyter-book"} & set(jax_layer)
    assert {"tensorflow", "tf-keras", "tensorflow-probability"} <= set(_pins("tf"))
    assert {"jupyter-book", "sphinx"} <= set(_pins("book"))


def test_the_tf_extra_of_pyproject_matches_the_locked_tensorflow():
    extra = re.search(r'^tf = \[(.*)\]', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    locked = _pins("tf")
    for spec in re.findall(r'"([^"]+)"', extra):
        name, version = spec.split("==")
        assert re.fullmatch(version.replace(".", r"\.").replace("*", r".*"), locked[name][0]), (spec, locked[name])
