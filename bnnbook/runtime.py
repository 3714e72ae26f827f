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
import subprocess
import sys
import tempfile
import time
from typing import Any, Mapping

import numpy as np

PROFILES = ("quick", "full")
GLUE_MIME_PREFIX = "application/papermill.record/"  # where myst-nb looks for glued values
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
    if isinstance(names, (str, bytes)):
        raise ValueError(f"names={names!r} must be a list of module names, e.g. ['numpy', 'jax'], not one string "
                         f"(its letters would be looked up one by one)")
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
    started: float = dataclasses.field(default_factory=time.time)  # wall clock at runtime.start

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

    def glue(self, **values: Any) -> None:
        """Bind numbers to names that the chapter's prose shows with ``{glue:text}`name:.3f```.

        Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".
        Each value is stored in the notebook's output by myst-nb's ``glue``
        (not displayed in the cell), so the rendered text always shows the
        numbers of the run that produced the page. Values must be plain
        numbers (NumPy scalars are converted). The output is the one myst-nb's
        ``glue(..., display=False)`` writes; outside IPython nothing is stored.
        """
        checked = {}
        for name, value in values.items():
            if hasattr(value, "shape") and np.ndim(value) == 0:  # NumPy and JAX scalars
                value = np.asarray(value).item()
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"glue value {name}={value!r} is not a number; glue ints and floats (format "
                                 f"them in the text, e.g. {{glue:text}}`{name}:.3f`)")
            if not math.isfinite(value):
                raise ValueError(f"glue value {name}={value!r} is not finite; the text cannot show it")
            checked[name] = value
        try:
            from IPython.display import display
        except ImportError:  # pragma: no cover - plain Python: nothing to store
            return
        # The output myst-nb's glue(name, value, display=False) writes, made without importing myst-nb
        # (its import, with Sphinx behind it, cost the inline figures of the cells after it).
        for name, value in checked.items():
            display({GLUE_MIME_PREFIX + "text/plain": repr(value)}, raw=True,
                    metadata={"scrapbook": {"name": name, "mime_prefix": GLUE_MIME_PREFIX}})


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
        "commit": git_commit(folder.parent),
        "wall_seconds": round(time.time() - run.started, 1),
        "profile": run.profile,
        "framework": run.framework,
        "backend": run.backend,
        "devices": list(run.devices),
        "versions": dict(run.versions),
        "date": _dt.date.today().isoformat(),
    }
    _write_atomically(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return path


def git_commit(folder: str | os.PathLike) -> str:
    """The checkout's commit, with ``+uncommitted`` when tracked files differ from it; ``"unknown"`` outside git.

    Recorded with every results entry, so each number can be traced to the
    code that produced it (the stored outputs are written after the run, so
    the notebooks and ``results/`` themselves do not count as changes).
    """
    def git(*args):
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=20,
                              check=True).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results",
                      ":(exclude)chapters/*.ipynb", ":(exclude)appendix/*.ipynb")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+uncommitted" if changed else "")


def _write_atomically(path: pathlib.Path, text: str) -> None:
    # Write a temporary file beside the target and rename it over the target: a reader (or a crash)
    # sees the old file or the new one, never half of one.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise


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
           "results_dir", "save_results", "load_results", "git_commit"]

if sys.version_info < (3, 11):  # pragma: no cover
    raise ImportError("bnnbook needs Python 3.11 or newer (the versions it is tested with need it)")
