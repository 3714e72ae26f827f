"""The TensorFlow side of bnnbook: ``tf_keras`` layers and helpers.

Importing :mod:`bnnbook.keras.layers` loads TensorFlow and none of the JAX
side of bnnbook; the JAX side never imports anything from here. (TensorFlow
2.21 itself imports the ``jax`` package when it is installed, but no JAX
backend is started, so JAX takes no GPU memory in a Keras chapter.) Needs the ``tf``
extra: ``pip install "bnnbook[tf]"``.

This package module itself imports nothing heavy: :func:`import_tensorflow`
loads TensorFlow when a chapter asks for it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from types import ModuleType
from typing import Iterator


@contextlib.contextmanager
def stderr_to_devnull() -> Iterator[None]:
    """Send file descriptor 2 (the process's standard error) to ``/dev/null`` inside the block.

    TensorFlow's C++ runtime writes start-up notices (oneDNN, CUDA probing)
    straight to descriptor 2 while it loads, before its own log-level
    setting is read, so neither ``TF_CPP_MIN_LOG_LEVEL`` nor Python's
    ``warnings`` keep them out of a notebook. The descriptor is restored
    when the block ends, also when it raises, so a failed import still shows
    its Python traceback. Python-level messages written during the block are
    dropped too: keep the block to the import.

    Taught in chapter "The reparameterization trick and Bayes by Backprop".
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            stream.flush()  # what was written before the block still reaches the page
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow() -> ModuleType:
    """Import TensorFlow, TensorFlow Probability and ``tf_keras`` quietly and return ``tensorflow``.

    The imports and TensorFlow's device set-up (which on a machine without a
    GPU logs a failed CUDA probe) run inside :func:`stderr_to_devnull`, and
    TensorFlow's Python logger is set to show errors only. GPUs are set to
    take memory as needed before they are set up, since device settings are
    fixed from then on. Call it before importing
    :mod:`bnnbook.keras.layers` or :mod:`bnnbook.keras.flipout` (they import
    TensorFlow at module level). Calling it again, or after TensorFlow was
    loaded and set up elsewhere, changes nothing.

    Taught in chapter "The reparameterization trick and Bayes by Backprop".
    """
    with stderr_to_devnull():
        import tensorflow as tf
        import tensorflow_probability  # noqa: F401
        import tf_keras  # noqa: F401

        # Devices are set up lazily, at the first operation; do it here, where a CPU-only machine's
        # "failed call to cuInit" is not shown (runtime.start prints which devices were found).
        # Memory growth first, as it cannot be set afterwards: a chapter may hold JAX's GPU memory too.
        for gpu in tf.config.list_physical_devices("GPU"):
            with contextlib.suppress(RuntimeError):  # already set up by an earlier call: leave it
                tf.config.experimental.set_memory_growth(gpu, True)
        tf.config.list_logical_devices()
    tf.get_logger().setLevel("ERROR")
    return tf


__all__ = ["stderr_to_devnull", "import_tensorflow"]
