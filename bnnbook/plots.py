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
* :func:`image_grid`, :func:`probe_gallery`, :func:`confidence_histograms`,
  :func:`probability_bars`, :func:`image_and_probabilities`, :func:`regression_fits`,
  :func:`named_curves`: chapter "Why Bayesian neural networks".
* :func:`norm_ball_optimum`, :func:`line_posterior`, :func:`weight_magnitudes`:
  chapter "MLE and MAP".
* :func:`elbo_gap`: chapter "The variational free energy".

Each helper only draws: it sets no titles or limits beyond what its picture
needs, and returns what it plotted, so a chapter can print the same numbers.
Neither JAX nor TensorFlow is imported, so both sides of the book use it.
"""

from __future__ import annotations

import numpy as np

from bnnbook import metrics
from bnnbook._checks import check_positive, check_probs


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




def image_grid(axes, images, titles=None, *, fontsize: float = 8):
    """Show 28 x 28 images (flat or square), one per axis of ``axes``, with optional titles; returns how many.

    Taught in chapter "Why Bayesian neural networks".
    """
    axes = list(np.ravel(axes))
    images = _images_28x28(images, "images")
    if len(images) < len(axes):
        raise ValueError(f"{len(images)} images for {len(axes)} axes; pass at least one image per axis")
    for i, ax in enumerate(axes):
        ax.imshow(images[i], cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[i], fontsize=fontsize)
    return len(axes)


def probe_gallery(axes, image_sets: dict, *, seed: int = 1) -> list[np.ndarray]:
    """One row of ``axes`` per named set of 28 x 28 images: a random sample of each, the name on the left.

    ``axes`` has shape ``(len(image_sets), k)``; ``k`` images are drawn from
    each set without replacement (``seed`` fixes which). Returns the indices
    shown, one array per set.

    Taught in chapter "Why Bayesian neural networks".
    """
    axes = np.atleast_2d(np.asarray(axes, dtype=object))
    if axes.shape[0] != len(image_sets):
        raise ValueError(f"axes has {axes.shape[0]} rows for {len(image_sets)} image sets; "
                         f"make it with plt.subplots({len(image_sets)}, k)")
    rng, shown = np.random.default_rng(seed), []
    for row, (name, images) in zip(axes, image_sets.items()):
        images = _images_28x28(images, f"image_sets[{name!r}]")
        if len(images) < len(row):
            raise ValueError(f"image_sets[{name!r}] has {len(images)} images for {len(row)} axes in its row")
        index = rng.choice(len(images), size=len(row), replace=False)
        image_grid(row, images[index])
        row[0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
        shown.append(index)
    return shown


def named_curves(ax, x, curves: dict, *, style: str = "o-"):
    """One line per named series over the same ``x``, with a legend; returns the values as a (series, x) array.

    Taught in chapter "Why Bayesian neural networks".
    """
    x = _vector(x, "x")
    if not curves:
        raise ValueError("curves is empty; pass {name: values over x}")
    rows = []
    for name, values in curves.items():
        values = _vector(values, f"curves[{name!r}]")
        if len(values) != len(x):
            raise ValueError(f"curves[{name!r}] has {len(values)} values for {len(x)} x values")
        ax.plot(x, values, style, label=name)
        rows.append(values)
    ax.legend()
    return np.stack(rows)


def _images_28x28(images, name: str) -> np.ndarray:
    """``images`` as an array of shape (n, 28, 28): accepts (n, 784), (n, 28, 28) or one image."""
    array = np.asarray(images, dtype=np.float64)
    if array.size == 0 or array.size % 784:
        raise ValueError(f"{name} must hold 28 x 28 images, shape (n, 784) or (n, 28, 28); got shape {array.shape}")
    return array.reshape(-1, 28, 28)


def confidence_histograms(ax, confidence: dict, *, threshold: float = 0.9, bins=None) -> dict[str, float]:
    """One step histogram (log density) per named set of confidences, and a line at ``threshold``.

    Returns the share of each set above ``threshold``.

    Taught in chapter "Why Bayesian neural networks".
    """
    if not 0 < threshold < 1:
        raise ValueError(f"threshold={threshold!r} must be in (0, 1), e.g. 0.9")
    bins = np.linspace(0.1, 1.0, 46) if bins is None else bins
    shares = {}
    for name, values in confidence.items():
        values = _vector(values, f"confidence[{name!r}]")
        if values.min() < 0 or values.max() > 1:
            raise ValueError(f"confidence[{name!r}] must lie in [0, 1] (a largest softmax probability); "
                             f"got values from {values.min():.3g} to {values.max():.3g}")
        ax.hist(values, bins=bins, histtype="step", linewidth=1.8, density=True, label=name)
        shares[name] = float(np.mean(values > threshold))
    ax.axvline(threshold, color="k", linestyle=":", linewidth=1)
    ax.set(xlabel="confidence (largest softmax probability)", ylabel="density", yscale="log")
    return shares


def probability_bars(ax, probs: dict, *, width: float = 0.8):
    """Side-by-side bars of one input's class probabilities under each named model; returns the bar heights.

    ``probs`` maps a model name to a probability vector over the same classes.

    Taught in chapter "Why Bayesian neural networks".
    """
    if not probs:
        raise ValueError("probs is empty; pass {model name: probability vector}, e.g. {'MAP': p}")
    rows = {name: _vector(p, f"probs[{name!r}]") for name, p in probs.items()}
    sizes = {len(p) for p in rows.values()}
    if len(sizes) != 1:
        raise ValueError(f"every probability vector needs the same classes; got lengths {sorted(sizes)}")
    num_classes = sizes.pop()
    step = width / len(rows)
    for i, (name, p) in enumerate(rows.items()):
        ax.bar(np.arange(num_classes) + (i - (len(rows) - 1) / 2) * step, p, width=step, label=name)
    ax.set(xticks=np.arange(num_classes), ylim=(0, 1.02))
    return np.stack(list(rows.values()))


def image_and_probabilities(ax, image, probs, name: str) -> tuple[int, float]:
    """One 28 x 28 input (inset) above the bars of its class probabilities; returns ``(class, probability)``.

    Taught in chapter "Why Bayesian neural networks".
    """
    image = _images_28x28(image, "image")[0]  # checked before anything is drawn
    probs = probability_bars(ax, {"probability": probs})[0]
    inset = ax.inset_axes([0.02, 0.55, 0.4, 0.4])
    inset.imshow(image, cmap="gray_r", vmin=0, vmax=1)
    inset.set(xticks=[], yticks=[])
    ax.set(title=f"{name}: '{probs.argmax()}' at {probs.max():.2f}", xlabel="class")
    return int(probs.argmax()), float(probs.max())


def regression_fits(ax, x, fits, x_train, y_train, truth, *, train_range=(-0.5, 0.5), label: str = "network fit"):
    """The training range (shaded), the true function (dashed), the fits (one line each; none is fine) and the data.

    Taught in chapter "Why Bayesian neural networks".
    """
    x = _vector(x, "x")
    fits = np.asarray(fits, dtype=np.float64) if np.size(fits) else np.zeros((0, len(x)))
    fits = fits[None] if fits.ndim == 1 else fits
    if fits.ndim != 2 or fits.shape[-1] != len(x):
        raise ValueError(f"fits must have shape (num_fits, {len(x)}); got {fits.shape}")
    ax.axvspan(*train_range, color="0.92", label="training range")
    ax.plot(x, _vector(truth, "truth"), "k--", linewidth=1, label="true function")
    for i, f in enumerate(fits):
        ax.plot(x, f, linewidth=1.5, label=label if i == 0 else None)
    ax.plot(np.ravel(x_train), np.ravel(y_train), "k.", markersize=6, label="training data")
    ax.set(xlabel="x")


def norm_ball_optimum(ax, features, targets, optimum, radius: float, norm: int, *, color="C0", num_levels: int = 4,
                      extent: float = 3.0):
    """The squared-loss contours of a two-weight least-squares problem, the ``norm`` ball of ``radius``, and
    the constrained optimum: the contour through the optimum just touches the ball there.

    ``optimum`` comes from :func:`bnnbook.priors.constrained_least_squares`;
    the unconstrained least-squares point is marked with a cross. Returns the
    loss at the optimum.

    Taught in chapter "MLE and MAP".
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64).reshape(-1)
    if x.ndim != 2 or x.shape[1] != 2 or norm not in (1, 2):
        raise ValueError(f"features must be (N, 2) and norm 1 or 2; got {x.shape} and norm={norm!r}")
    optimum = np.asarray(optimum, dtype=np.float64)
    ols = np.linalg.lstsq(x, y, rcond=None)[0]
    loss = lambda w: np.sum((np.tensordot(w, x, axes=([0], [1])) - y[(None,) * (w.ndim - 1)]) ** 2, axis=-1)
    grid = np.linspace(-extent, extent, 301)
    w1, w2 = np.meshgrid(grid, grid)
    surface = loss(np.stack([w1, w2]))
    at_optimum, at_ols = float(loss(optimum[:, None])[0]), float(loss(ols[:, None])[0])
    levels = at_ols + (at_optimum - at_ols) * np.array([0.25, 1.0, 2.0, 3.5])[:num_levels] ** 2
    ax.contour(w1, w2, surface, levels=np.sort(levels), colors="0.55", linewidths=0.9)
    angle = np.linspace(0, 2 * np.pi, 401)
    if norm == 2:
        ax.plot(radius * np.cos(angle), radius * np.sin(angle), color=color, linewidth=2)
    else:
        ax.plot(radius * np.array([1, 0, -1, 0, 1]), radius * np.array([0, 1, 0, -1, 0]), color=color, linewidth=2)
    ax.plot(*ols, "kx", markersize=8)
    ax.plot(*optimum, "o", color=color, markersize=8)
    ax.axhline(0, color="k", linewidth=0.5)
    ax.axvline(0, color="k", linewidth=0.5)
    ax.set(aspect="equal", xlim=(-extent, extent), ylim=(-extent, extent), xlabel="$w_1$", ylabel="$w_2$")
    return at_optimum


def line_posterior(ax, x, y, noise_std: float, prior_std: float, mean, cov, *, extent: float = 2.5):
    """Prior (dotted), likelihood (grey contours) and posterior (blue) of the line ``y = w0 + w1 x``.

    ``mean`` and ``cov`` are the exact posterior (from
    :func:`bnnbook.vi.linear_regression_posterior`); circles and ellipses are
    drawn at one and two standard deviations.

    Taught in chapter "MLE and MAP".
    """
    x, y = _vector(x, "x"), _vector(y, "y")
    check_positive("noise_std", noise_std, "the noise standard deviation of the line's likelihood, e.g. 0.5")
    check_positive("prior_std", prior_std, "the prior standard deviation of each weight, e.g. 1.0")
    grid = np.linspace(-extent, extent, 251)
    w0, w1 = np.meshgrid(grid, grid)
    residuals = y[:, None, None] - w0 - w1 * x[:, None, None]
    log_likelihood = -0.5 * np.sum(residuals ** 2, axis=0) / noise_std ** 2
    ax.contour(w0, w1, log_likelihood - log_likelihood.max(), levels=[-8, -4.5, -2, -0.5], colors="0.6",
               linewidths=0.8)
    for num_std in (1, 2):
        gaussian_contour(ax, [0, 0], np.eye(2) * prior_std ** 2, num_std=num_std, color="k", linestyle=":")
        gaussian_contour(ax, mean, cov, num_std=num_std, color="C0", linewidth=2)
    ax.set(xlabel="intercept $w_0$", aspect="equal", xlim=(-extent, extent), ylim=(-extent, extent))


def weight_magnitudes(ax, params: dict, *, color=None, floor: float = 1e-8) -> dict[str, dict[str, float]]:
    """Histogram of ``log10 |w|`` for each named parameter vector (values below ``floor`` in the first bin).

    Returns per name: ``near_zero`` (share below ``1e-3``), ``tiny`` (below
    ``floor``), ``median``, ``median_used`` (median of those at least
    ``1e-3``) and ``largest``.

    Taught in chapter "MLE and MAP".
    """
    if not params:
        raise ValueError("params is empty; pass {name: weights}, e.g. {'L1': w_l1, 'L2': w_l2}")
    check_positive("floor", floor, "the smallest magnitude drawn, e.g. 1e-8")
    bins = np.linspace(np.log10(floor), 1.5, 58)
    stats = {}
    for i, (name, values) in enumerate(params.items()):
        magnitudes = np.abs(np.ravel(np.asarray(values, dtype=np.float64)))
        if magnitudes.size == 0:
            raise ValueError(f"params[{name!r}] is empty")
        used = magnitudes[magnitudes >= 1e-3]
        stats[name] = dict(near_zero=float(np.mean(magnitudes < 1e-3)), tiny=float(np.mean(magnitudes < floor)),
                           median=float(np.median(magnitudes)),
                           median_used=float(np.median(used)) if used.size else float("nan"),
                           largest=float(magnitudes.max()))
        ax.hist(np.log10(np.maximum(magnitudes, floor)), bins=bins, histtype="step", linewidth=2,
                color=None if color is None else color[i], label=name)
    ax.axvline(-3, color="k", linestyle=":", linewidth=1)
    ax.set(xlabel=rf"$\log_{{10}} |w|$ (values below {floor:g} in the first bin)", ylabel="parameters", yscale="log")
    return stats


def elbo_gap(ax, x, log_evidence: float, elbo, *, color="C0", label: str = "ELBO(q)"):
    """The flat log evidence, the ELBO along a path of ``q``, and the gap between them shaded as the KL.

    Returns the gap ``log_evidence - elbo``, which is ``KL(q || posterior)``.

    Taught in chapter "The variational free energy".
    """
    x, elbo = _vector(x, "x"), _vector(elbo, "elbo")
    if len(x) != len(elbo):
        raise ValueError(f"x and elbo must have one length; got {len(x)} and {len(elbo)}")
    if np.any(elbo > log_evidence + 1e-9 * max(1.0, abs(log_evidence))):
        raise ValueError("an ELBO above the log evidence: check that both are for the same model and data")
    ax.axhline(log_evidence, color="k", linewidth=1.5, label=r"$\log p(\mathcal{D})$")
    ax.plot(x, elbo, color=color, linewidth=2, label=label)
    ax.fill_between(x, elbo, np.full_like(elbo, log_evidence), color=color, alpha=0.2,
                    label=r"gap $= \mathrm{KL}(q \,\|\, p(w \mid \mathcal{D}))$")
    return log_evidence - elbo


__all__ = ["predictive_band", "draw_probabilities", "reliability_diagram", "gaussian_contour", "image_grid",
           "probe_gallery", "named_curves",
           "confidence_histograms", "probability_bars", "image_and_probabilities", "regression_fits", "norm_ball_optimum", "line_posterior",
           "weight_magnitudes", "elbo_gap"]
