"""Bootstrap confidence intervals for any score of a fixed set of predictions (NumPy only).

Taught in chapter "Practical approximations".

A score measured on 10,000 test images is itself an estimate: another
10,000 images from the same source would give another value. The
percentile bootstrap (Efron 1979) estimates that spread by recomputing the
score on resamples of the images, drawn *with replacement*, and reporting
the middle 95% of the recomputed values. Two rules matter:

* each data set is resampled on its own (for an AUROC: the in-distribution
  images and the probe images separately), so every resample keeps the sizes
  of the sets it compares;
* where images come in groups that are not independent (the letters probe
  renders each letter in 72 fonts and sizes), whole groups are resampled.

The interval covers the uncertainty from the *test images*; the training run
is held fixed (the spread over training seeds is a separate number).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def _resample_indices(rng: np.random.Generator, size: int, groups) -> np.ndarray:
    if groups is None:
        return rng.integers(0, size, size)
    groups = np.asarray(groups)
    if groups.shape != (size,):
        raise ValueError(f"groups must have one label per item ({size}); got shape {groups.shape}")
    names, inverse = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inverse == g) for g in range(len(names))]
    chosen = rng.integers(0, len(names), len(names))
    return np.concatenate([members[g] for g in chosen])


def interval(statistic: Callable[..., float], *sets, groups: Sequence | None = None, num_resamples: int = 1000,
             level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(*sets)``.

    Each of ``sets`` is an array or a tuple of arrays sharing their first
    axis (for example ``(probs, labels)``); every resample draws each set's
    rows with replacement, independently of the other sets, and calls
    ``statistic`` with the resampled arrays in order (a tuple set passes its
    arrays as separate arguments: ``(probs, labels)`` calls ``statistic(probs, labels)``). ``groups``
    (one entry per set, ``None`` for independent rows) resamples whole groups
    instead of rows.

    >>> interval(lambda p, y: (p.argmax(1) == y).mean(), (probs, labels))   # doctest: +SKIP
    """
    if not sets:
        raise ValueError("pass at least one data set, e.g. interval(metrics.accuracy, (probs, labels))")
    if not isinstance(num_resamples, (int, np.integer)) or num_resamples < 10:
        raise ValueError(f"num_resamples={num_resamples!r} must be an integer >= 10 (1000 is usual)")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level!r} must be in (0, 1), e.g. 0.95")
    groups = [None] * len(sets) if groups is None else list(groups)
    if len(groups) != len(sets):
        raise ValueError(f"groups has {len(groups)} entries for {len(sets)} sets")
    as_tuples = [s if isinstance(s, tuple) else (s,) for s in sets]
    as_tuples = [tuple(np.asarray(a) for a in s) for s in as_tuples]
    sizes = []
    for position, arrays in enumerate(as_tuples):
        lengths = {len(a) for a in arrays}
        if len(lengths) != 1:
            raise ValueError(f"the arrays of set {position} have different lengths {sorted(lengths)}")
        size = lengths.pop()
        if size == 0:
            raise ValueError(f"set {position} is empty; every set needs at least one row to resample")
        sizes.append(size)
    rng = np.random.default_rng(seed)
    values = np.empty(num_resamples)
    for r in range(num_resamples):
        resampled = []
        for arrays, size, group in zip(as_tuples, sizes, groups):
            index = _resample_indices(rng, size, group)
            picked = tuple(a[index] for a in arrays)
            resampled.extend(picked)  # a tuple set is passed as its arrays, in order
        values[r] = statistic(*resampled)
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


__all__ = ["interval"]
