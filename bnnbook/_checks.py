"""Argument checks shared by the modules of bnnbook (NumPy only: data and the Keras side use them too).

Every check raises a ``ValueError`` that names the argument, shows the bad
value and says what to pass instead. Checks of array *values* run only on
concrete inputs: inside ``jax.jit``, ``jax.vmap`` or ``jax.grad`` a value is a
tracer, has no numbers yet, and passes unchecked, so the pure building blocks
that call these checks stay traceable (their drivers check the concrete
inputs). JAX is never imported here: a value can only be a tracer once JAX
has been imported by someone else.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np


def check_count(name: str, value, minimum: int = 1, hint: str = "") -> int:
    """``value`` as an ``int``; a ValueError naming ``name`` unless it is an integer >= ``minimum``.

    A bool is not a count, although Python treats it as an int. ``hint`` (say
    what the value is, with an example) ends the message in parentheses.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}" + (f" ({hint})" if hint else ""))
    return int(value)


# --------------------------------------------------------------------------
# Concrete values only (tracers pass through unchecked).
# --------------------------------------------------------------------------

def _leaves(value: Any) -> list:
    """The leaves of a pytree when JAX is loaded (a dict of arrays, a q, ...), else ``[value]``."""
    jax = sys.modules.get("jax")
    if jax is None:
        return [value]
    return jax.tree_util.tree_leaves(value)


def is_concrete(value: Any) -> bool:
    """False for a JAX tracer (or a pytree holding one): its numbers are not known yet."""
    jax = sys.modules.get("jax")
    if jax is None:
        return True
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in _leaves(value))


def describe(value: Any) -> str:
    """A short description of a bad value: the number itself, or the smallest entry of an array."""
    array = np.asarray(value)
    return repr(array.item()) if array.size == 1 else f"an array with min {array.min()!r}"


def _concrete_floats(name: str, value: Any, fix: str):
    """``value`` as a float64 array, or ``None`` for a tracer; a ValueError naming ``name`` if it is no number."""
    if not is_concrete(value):
        return None
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} is not a number; {fix}") from None


def check_positive(name: str, value: Any, fix: str = "") -> None:
    """A ValueError naming ``name`` unless every entry of a concrete ``value`` is finite and > 0."""
    array = _concrete_floats(name, value, fix or "pass a positive float")
    if array is not None and (array.size == 0 or not np.all(np.isfinite(array)) or np.any(array <= 0)):
        raise ValueError(f"{name} must be a finite number > 0, got {describe(value)}. "
                         f"{fix or 'Pass a positive value.'}")


def check_probability(name: str, value: Any) -> None:
    """A ValueError naming ``name`` unless every entry of a concrete ``value`` lies strictly in (0, 1)."""
    array = _concrete_floats(name, value, "pass a float in (0, 1)")
    if array is not None and (array.size == 0 or not np.all(np.isfinite(array)) or np.any(array <= 0)
                              or np.any(array >= 1)):
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {describe(value)}. "
                         f"Pass the weight of the first component, e.g. {name}=0.5.")


def check_nonnegative(name: str, value: Any) -> None:
    """A ValueError naming ``name`` unless every entry of a concrete ``value`` is finite and >= 0."""
    if is_concrete(value):
        array = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(array)) or np.any(array < 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {describe(value)}; "
                             f"a regularisation strength cannot be negative")


def check_finite(name: str, value: Any, hint: str = "") -> None:
    """A ValueError naming ``name`` if a concrete array, or any leaf of a pytree of arrays, holds NaN or inf.

    Tracers pass unchecked. Non-numeric leaves (say, a string in a config) are
    not this check's business and are skipped.
    """
    if not is_concrete(value):
        return
    bad = 0
    for leaf in _leaves(value):
        array = np.asarray(leaf)
        if np.issubdtype(array.dtype, np.number):
            bad += int(array.size - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise ValueError(f"{name} has {bad} non-finite value(s) (NaN or inf); "
                         + (hint or "pass finite numbers (look for a NaN upstream, e.g. in the data)"))


def check_number(name: str, value: Any, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, hint: str = "") -> float:
    """``value`` as a ``float``; a ValueError naming ``name`` unless it is a finite real number in range.

    ``low``/``high`` bound it (inclusive unless ``low_open``/``high_open``);
    ``hint`` (what the value means, with an example) ends the message.
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = None
    inside = (number is not None and np.isfinite(number) and not isinstance(value, bool)
              and (low is None or (number > low if low_open else number >= low))
              and (high is None or (number < high if high_open else number <= high)))
    if not inside:
        bounds = []
        if low is not None:
            bounds.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            bounds.append(f"{'<' if high_open else '<='} {high:g}")
        what = "a finite number" + (" " + " and ".join(bounds) if bounds else "")
        raise ValueError(f"{name}={value!r} must be {what}" + (f" ({hint})" if hint else ""))
    return number


# --------------------------------------------------------------------------
# Predicted class probabilities (NumPy; shared by metrics, ood and plots).
# --------------------------------------------------------------------------

def check_probs(probs, name: str = "probs", atol: float = 1e-3) -> np.ndarray:
    """``probs`` as float64, shape ``(..., n, classes)``, finite, non-negative, rows summing to 1."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim < 2 or probs.shape[0] == 0 or probs.shape[-1] < 2:
        raise ValueError(f"{name} must have shape (..., n, classes) with n >= 1 and classes >= 2; got {probs.shape}")
    if not np.all(np.isfinite(probs)) or probs.min() < -atol:
        raise ValueError(f"{name} has negative or non-finite entries")
    total = probs.sum(-1)
    if np.max(np.abs(total - 1.0)) > atol:
        worst = float(total.flat[np.argmax(np.abs(total - 1.0))])
        raise ValueError(f"{name} rows must sum to 1 (worst row sums to {worst:.6g}); apply softmax first")
    return probs


__all__ = ["check_count", "is_concrete", "describe", "check_positive", "check_probability", "check_nonnegative",
           "check_finite", "check_number", "check_probs"]
