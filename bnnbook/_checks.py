"""Argument checks shared by the modules of bnnbook (NumPy only: data and the Keras side use them too)."""

from __future__ import annotations

import numpy as np


def check_count(name: str, value, minimum: int = 1, hint: str = "") -> int:
    """``value`` as an ``int``; a ValueError naming ``name`` unless it is an integer >= ``minimum``.

    A bool is not a count, although Python treats it as an int. ``hint`` (say
    what the value is, with an example) ends the message in parentheses.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}" + (f" ({hint})" if hint else ""))
    return int(value)


__all__ = ["check_count"]
