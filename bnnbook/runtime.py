"""Profiles (quick/full), the device report every chapter prints first, and
the results recorder.

Taught in chapter "Why Bayesian neural networks" (its first cell); every
chapter starts with :func:`start`.

A *profile* picks the size of every experiment:

* ``quick``: minutes on a laptop CPU; what CI runs.
* ``full``: the numbers the chapter claims; meant for a GPU/TPU.

``BNNBOOK_PROFILE=quick|full`` chooses; unset, the profile is ``full`` when
the chapter's framework sees a GPU or TPU and ``quick`` otherwise.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib
import json
import math
import os
import pathlib
import platform
import sys
from typing import Any, Mapping

PROFILES = ("quick", "full")
PROFILE_ENV = "BNNBOOK_PROFILE"
RESULTS_ENV = "BNNBOOK_RESULTS"

# Packages whose versions a chapter reports, per framework.
_VERSION_PACKAGES = {
    "jax": ("bnnbook", "numpy", "jax", "jaxlib", "haiku", "optax"),
    "tf": ("bnnbook", "numpy", "tensorflow", "tf_keras", "tensorflow_probability"),
    "none": ("bnnbook", "numpy"),
}


def resolve_profile(has_accelerator: bool, env: Mapping[str, str] | None = None) -> str:
    """Return the profile name from ``BNNBOOK_PROFILE``, or the default.

    The default is ``"full"`` when ``has_accelerator`` is true and ``"quick"``
    otherwise. A value other than ``quick`` or ``full`` raises ``ValueError``.
    """
    env = os.environ if env is None else env
    raw = env.get(PROFILE_ENV, "").strip().lower()
    if not raw:
        return "full" if has_accelerator else "quick"
    if raw not in PROFILES:
        raise ValueError(
            f"{PROFILE_ENV}={env.get(PROFILE_ENV)!r} is not a profile; "
            f"set it to one of {', '.join(PROFILES)} (or unset it for the default)."
        )
    return raw


def package_versions(names) -> dict[str, str]:
    """Versions of the named packages that are importable (others are skipped)."""
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        versions[name] = str(getattr(module, "__version__", "unknown"))
    return versions


def _jax_devices() -> tuple[str, list[str], bool]:
    import jax

    devices = jax.devices()
    backend = jax.default_backend()
    names = [f"{d.platform}:{getattr(d, 'device_kind', '')}".rstrip(":") for d in devices]
    return backend, names, backend in ("gpu", "tpu", "cuda", "rocm")


def on_cpu():
    """A context in which new JAX arrays and computations go to the CPU, even on a GPU machine.

    For tiny models: a 1-8-1 network's HMC or NUTS chain is a long loop of
    kernels far too small to fill a GPU, and each costs a launch. The NUTS
    cell of chapter "Hamiltonian Monte Carlo for Bayesian neural networks"
    took 420 s on an NVIDIA H200 in the full profile (5,000 iterations per
    chain), where a 2-core CPU runs the quick profile's 1,500 in 25 s. Use
    as ``with runtime.on_cpu(): ...``; on a CPU-only machine it changes
    nothing. Taught in that chapter.
    """
    import jax

    return jax.default_device(jax.devices("cpu")[0])


def _tf_devices() -> tuple[str, list[str], bool]:
    from bnnbook.keras import import_tensorflow

    tf = import_tensorflow()  # quietly, with GPUs taking memory as needed
    gpus = tf.config.list_physical_devices("GPU")
    tpus = tf.config.list_physical_devices("TPU")
    devices = gpus + tpus or tf.config.list_physical_devices("CPU")
    backend = "gpu" if gpus else ("tpu" if tpus else "cpu")
    return backend, [d.name for d in devices], bool(gpus or tpus)


@dataclasses.dataclass(frozen=True)
class Run:
    """What a chapter knows about where and how it runs.

    Attributes:
        chapter: short name used for ``results/<chapter>.json``.
        profile: ``"quick"`` or ``"full"``.
        framework: ``"jax"``, ``"tf"`` or ``"none"``.
        backend: the framework's backend (``cpu``, ``gpu``, ``tpu``).
        devices: the devices the framework sees.
        versions: package versions, for the record.
    """

    chapter: str
    profile: str
    framework: str
    backend: str
    devices: tuple[str, ...]
    versions: Mapping[str, str]

    @property
    def quick(self) -> bool:
        return self.profile == "quick"

    def choose(self, quick: Any, full: Any) -> Any:
        """Return ``quick`` or ``full`` according to the profile."""
        return quick if self.profile == "quick" else full

    def describe(self) -> str:
        versions = ", ".join(f"{k} {v}" for k, v in self.versions.items())
        return (
            f"bnnbook chapter '{self.chapter}' | profile: {self.profile} | "
            f"{self.framework} backend: {self.backend} | devices: {', '.join(self.devices)}\n"
            f"versions: {versions}"
        )

    def save_results(self, metrics: Mapping[str, Any], directory: str | os.PathLike | None = None) -> pathlib.Path:
        """Record the chapter's headline metrics; see :func:`save_results`."""
        return save_results(self, metrics, directory)


def start(chapter: str, framework: str = "jax", verbose: bool = True) -> Run:
    """Pick the profile, look at the devices and print both.

    Every chapter's first code cell calls this. ``framework`` is ``"jax"`` or
    ``"tf"`` (only that framework is imported), or ``"none"``.
    """
    if not chapter or not isinstance(chapter, str):
        raise ValueError(f"chapter must be a non-empty string, got {chapter!r}")
    if framework == "jax":
        backend, devices, accel = _jax_devices()
    elif framework == "tf":
        backend, devices, accel = _tf_devices()
    elif framework == "none":
        backend, devices, accel = "cpu", ["cpu"], False
    else:
        raise ValueError(f"framework={framework!r}; use 'jax', 'tf' or 'none'.")
    run = Run(
        chapter=chapter,
        profile=resolve_profile(accel),
        framework=framework,
        backend=backend,
        devices=tuple(devices),
        versions=package_versions(_VERSION_PACKAGES[framework]),
    )
    if verbose:
        print(run.describe())
    return run


def results_dir(directory: str | os.PathLike | None = None) -> pathlib.Path:
    """Where results go: ``directory``, else ``$BNNBOOK_RESULTS``, else the
    ``results/`` folder of the book checkout above the working directory
    (found by its ``_toc.yml``), else ``./results``."""
    if directory is not None:
        return pathlib.Path(directory)
    if os.environ.get(RESULTS_ENV):
        return pathlib.Path(os.environ[RESULTS_ENV])
    here = pathlib.Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").exists() and (folder / "bnnbook").is_dir():
            return folder / "results"
    return here / "results"


def _check_metric(name: str, value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _check_metric(f"{name}.{k}", v) for k, v in value.items()}
    if isinstance(value, str):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"metric {name!r} = {value!r} is neither a number, a string nor a dict") from None
    if not math.isfinite(number):
        raise ValueError(f"metric {name!r} = {number} is not finite; refusing to record it")
    if isinstance(value, (bool, int)) or (hasattr(value, "dtype") and "int" in str(value.dtype)):
        return int(number)
    return number


def save_results(run: Run, metrics: Mapping[str, Any], directory: str | os.PathLike | None = None) -> pathlib.Path:
    """Write ``metrics`` to ``<results>/<chapter>.json`` under the run's profile.

    The file holds one entry per profile, so a quick run never overwrites the
    full-profile numbers. Each entry records the metrics with profile, device,
    package versions and the date. Non-finite numbers raise ``ValueError``.
    """
    if not metrics:
        raise ValueError("metrics is empty; pass the chapter's headline numbers as a dict")
    clean = {str(k): _check_metric(str(k), v) for k, v in metrics.items()}
    folder = results_dir(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run.chapter}.json"
    record = json.loads(path.read_text()) if path.exists() else {}
    record[run.profile] = {
        "metrics": clean,
        "profile": run.profile,
        "framework": run.framework,
        "backend": run.backend,
        "devices": list(run.devices),
        "versions": dict(run.versions),
        "date": _dt.date.today().isoformat(),
    }
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return path


def load_results(chapter: str, profile: str | None = None, directory: str | os.PathLike | None = None) -> dict:
    """Read what :func:`save_results` wrote (one profile's entry, or all)."""
    path = results_dir(directory) / f"{chapter}.json"
    if not path.exists():
        raise FileNotFoundError(f"no results for chapter {chapter!r} at {path}; run that chapter first")
    record = json.loads(path.read_text())
    if profile is None:
        return record
    if profile not in record:
        raise KeyError(f"{path} has profiles {sorted(record)}, not {profile!r}")
    return record[profile]


__all__ = ["PROFILES", "Run", "start", "resolve_profile", "package_versions", "on_cpu",
           "results_dir", "save_results", "load_results"]

if sys.version_info < (3, 10):  # pragma: no cover
    raise ImportError("bnnbook needs Python 3.10 or newer")
