"""The book's recurring figures, drawn on a matplotlib ``Axes`` you pass in (NumPy and matplotlib only).

* :func:`predictive_band`: a regression predictive, its mean and a band of
  ``num_std`` standard deviations (chapters "The reparameterization trick and
  Bayes by Backprop" and "Hamiltonian Monte Carlo for Bayesian neural
  networks").
* :func:`draw_probabilities`: one input's class probabilities under each
  weight draw (dots) and their mean (bars), the picture of how much plausible
  networks disagree (chapter "Rejecting out-of-distribution inputs").
* :func:`reliability_diagram`: accuracy against confidence per bin, from
  :func:`bnnbook.metrics.reliability_bins` (same chapter).
* :func:`gaussian_contour`: the ``num_std`` contour of a 2-D Gaussian, an
  ellipse (chapters "MLE and MAP" and "The variational free energy").

Each helper only draws: it sets no titles or limits beyond what its picture
needs, and returns what it plotted, so a chapter can print the same numbers.
Neither JAX nor TensorFlow is imported, so both sides of the book use it.
"""

from __future__ import annotations

import numpy as np

from bnnbook import metrics
from bnnbook._checks import check_probs


def _vector(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 2 and array.shape[1] == 1:  # (n, 1) outputs of a one-output network
        array = array[:, 0]
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty vector (n,) or (n, 1); got shape {np.shape(values)}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} has non-finite entries")
    return array


def predictive_band(ax, x, mean, std, *, num_std: float = 2.0, color="C0", alpha: float = 0.3,
                    label: str | None = None, mean_label: str | None = "predictive mean", draw_mean: bool = True):
    """Shade ``mean ± num_std * std`` over ``x`` and draw the mean; returns ``(lower, upper)``.

    ``x``, ``mean`` and ``std`` are vectors of one length (``(n, 1)`` columns are
    accepted), ``x`` sorted; ``std`` is whatever spread the band should show
    (the epistemic std of ``f(x)``, or ``sqrt(std**2 + noise**2)`` for new
    ``y``). ``label`` names the band in a legend (default
    ``"mean ± {num_std} std"``); ``draw_mean=False`` leaves the mean out (to
    stack two bands around one mean).

    Taught in chapter "The reparameterization trick and Bayes by Backprop".
    """
    x, mean, std = _vector(x, "x"), _vector(mean, "mean"), _vector(std, "std")
    if not (len(x) == len(mean) == len(std)):
        raise ValueError(f"x, mean and std must have one length; got {len(x)}, {len(mean)}, {len(std)}")
    if std.min() < 0:
        raise ValueError(f"std must be >= 0; its smallest entry is {std.min():.3g}")
    if not num_std > 0:
        raise ValueError(f"num_std={num_std!r} must be > 0, e.g. 2 for a band of about 95%")
    lower, upper = mean - num_std * std, mean + num_std * std
    ax.fill_between(x, lower, upper, color=color, alpha=alpha,
                    label=label if label is not None else f"mean ± {num_std:g} std")
    if draw_mean:
        ax.plot(x, mean, color=color, linewidth=1.8, label=mean_label)
    return lower, upper


def draw_probabilities(ax, draws, *, color="C0", jitter: float = 0.25, seed: int = 0, alpha: float = 0.35,
                       markersize: float = 3.0, bar_label: str | None = None) -> np.ndarray:
    """One input's class probabilities under each weight draw (dots) and their mean (bars).

    ``draws`` has shape ``(num_draws, classes)``, each row a probability vector.
    The dots of one class are spread sideways by up to ``jitter`` (seeded) so
    that many draws stay visible. Returns the mean probability vector.

    Taught in chapter "Rejecting out-of-distribution inputs".
    """
    draws = check_probs(draws, "draws")
    if draws.ndim != 2:
        raise ValueError(f"draws must have shape (num_draws, classes) for one input; got {draws.shape}")
    if not 0 <= jitter < 0.5:
        raise ValueError(f"jitter={jitter!r} must be in [0, 0.5) so that classes do not overlap")
    num_draws, num_classes = draws.shape
    classes = np.arange(num_classes)
    mean = draws.mean(0)
    ax.bar(classes, mean, color=color, alpha=alpha, label=bar_label)
    offsets = np.random.default_rng(seed).uniform(-jitter, jitter, num_draws)
    ax.plot(classes[None, :] + offsets[:, None], draws, ".", color=color, markersize=markersize)
    ax.set(xticks=classes, ylim=(0, 1.02))
    return mean


def reliability_diagram(ax, probs, labels, *, num_bins: int = 15, min_count: int = 20, color=None,
                        label: str | None = None, diagonal: bool = True) -> dict[str, np.ndarray]:
    """Plot accuracy against mean confidence for the bins of :func:`bnnbook.metrics.reliability_bins`.

    Bins holding fewer than ``min_count`` predictions are left out (their
    accuracy is mostly noise); ``diagonal`` draws the line of perfect
    calibration. Returns the bins, with a boolean ``"shown"`` entry.

    Taught in chapter "Rejecting out-of-distribution inputs".
    """
    if min_count < 1:
        raise ValueError(f"min_count={min_count!r} must be >= 1")
    bins = metrics.reliability_bins(probs, labels, num_bins=num_bins)
    shown = bins["count"] >= min_count
    ax.plot(bins["confidence"][shown], bins["accuracy"][shown], "o-", color=color, markersize=4, label=label)
    if diagonal:
        ax.plot([0, 1], [0, 1], "k:", linewidth=1)
    return {**bins, "shown": shown}


def gaussian_contour(ax, mean, cov, *, num_std: float = 2.0, num_points: int = 200, **style):
    """Draw the ``num_std``-standard-deviation contour of ``N(mean, cov)`` in 2-D; returns its points (2, n).

    The contour is ``mean + num_std * L [cos t, sin t]`` with ``L`` the Cholesky
    factor of ``cov``: the set of points at Mahalanobis distance ``num_std``.
    """
    mean = np.asarray(mean, dtype=np.float64)
    cov = np.asarray(cov, dtype=np.float64)
    if mean.shape != (2,) or cov.shape != (2, 2):
        raise ValueError(f"mean must have shape (2,) and cov (2, 2); got {mean.shape} and {cov.shape}")
    if not num_std > 0:
        raise ValueError(f"num_std={num_std!r} must be positive, e.g. 2.0")
    try:
        factor = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise ValueError("cov must be symmetric positive definite") from None
    angle = np.linspace(0.0, 2.0 * np.pi, num_points)
    points = mean[:, None] + num_std * factor @ np.stack([np.cos(angle), np.sin(angle)])
    ax.plot(points[0], points[1], **style)
    return points


__all__ = ["predictive_band", "draw_probabilities", "reliability_diagram", "gaussian_contour"]
