"""Priors over network weights: log densities, pytree prior objects, and the
weight-decay strength each one is equivalent to.

Taught in chapter "MLE and MAP"; the HMC and variational-inference chapters
reuse the same prior objects.

Three families, each as a plain function (elementwise log density) and as a
prior object:

* :class:`Gaussian` ``N(mean, scale^2)``: MAP with it is L2 weight decay with
  ``lambda = 1 / scale^2`` (see :func:`l2_strength`).
* :class:`Laplace` ``Laplace(mean, scale)``: MAP with it is an L1 penalty with
  ``lambda = 1 / scale`` (see :func:`l1_strength`).
* :class:`ScaleMixture` ``pi N(0, sigma1^2) + (1 - pi) N(0, sigma2^2)``
  (the "Bayes by Backprop" prior); no single weight-decay equivalent.

The prior objects are JAX pytrees whose numeric fields are the leaves, so a
prior passes through ``jax.jit``/``jax.vmap`` and its parameters can be
learned with ``jax.grad``. ``log_prob(tree)`` sums the log density over every
leaf of a parameter tree (biases included); to put a prior on some leaves
only, pass the sub-tree you want.

Values are checked in the constructors (and in the functions) only when they
are concrete; inside ``jit`` they are tracers and are not checked.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bnnbook._checks import check_count
from bnnbook._checks import check_nonnegative as _check_nonnegative
from bnnbook._checks import check_positive as _check_positive
from bnnbook._checks import check_probability as _check_probability
from bnnbook._checks import is_concrete as _is_concrete

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)


# --------------------------------------------------------------------------
# Validation (only for concrete values; tracers pass through unchecked).
# --------------------------------------------------------------------------

def _as_leaf(value: Any) -> Any:
    """Store a prior parameter as a float array (a tracer is kept as it is)."""
    if not _is_concrete(value):
        return value
    array = jnp.asarray(value)
    if not jnp.issubdtype(array.dtype, jnp.floating):
        array = array.astype(jnp.float32)
    return array


# --------------------------------------------------------------------------
# Elementwise log densities.
# --------------------------------------------------------------------------

def gaussian_log_prob(x, scale, mean=0.0):
    """Elementwise log density of ``N(mean, scale^2)`` at ``x``.

    ``log N(x) = -(x - mean)^2 / (2 scale^2) - log(scale) - log(sqrt(2 pi))``.
    Broadcasts like NumPy. Taught in chapter "MLE and MAP".
    """
    _check_positive("scale", scale, "The standard deviation of a Gaussian must be positive.")
    x = jnp.asarray(x)
    z = (x - mean) / scale
    return -0.5 * z * z - jnp.log(scale) - _LOG_SQRT_2PI


@jax.custom_jvp
def _abs(x):
    """``|x|`` whose derivative at 0 is ``sign(0) = 0``.

    ``jnp.abs`` has derivative 1 at 0; any value in [-1, 1] is a valid
    subgradient there, and 0 is the one of smallest norm: with it, a weight that
    sits exactly at 0 feels no pull from the L1 penalty, and the gradient of
    ``lambda |w|`` is ``lambda * sign(w)`` everywhere.
    """
    return jnp.abs(x)


@_abs.defjvp
def _abs_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return jnp.abs(x), jnp.sign(x) * dx


def laplace_log_prob(x, scale, mean=0.0):
    """Elementwise log density of ``Laplace(mean, scale)`` at ``x``.

    ``log p(x) = -|x - mean| / scale - log(2 scale)``. Its variance is
    ``2 scale^2``. Its gradient is ``-sign(x - mean) / scale``, taken as 0 at
    ``x = mean`` (the smallest subgradient). Taught in chapter "MLE and MAP".
    """
    _check_positive("scale", scale, "The scale b of a Laplace density must be positive.")
    x = jnp.asarray(x)
    return -_abs(x - mean) / scale - jnp.log(scale) - _LOG_2


def scale_mixture_log_prob(x, pi, sigma1, sigma2):
    """Elementwise log density of ``pi N(0, sigma1^2) + (1 - pi) N(0, sigma2^2)``.

    Computed as ``logaddexp(log pi + log N(x; sigma1), log(1 - pi) + log N(x; sigma2))``
    so that it stays finite far in the tails, where both densities underflow.
    Taught in chapter "MLE and MAP" (the prior of "Bayes by Backprop").
    """
    _check_probability("pi", pi)
    _check_positive("sigma1", sigma1)
    _check_positive("sigma2", sigma2)
    x = jnp.asarray(x)
    first = jnp.log(pi) + gaussian_log_prob(x, sigma1)
    second = jnp.log1p(-pi) + gaussian_log_prob(x, sigma2)
    return jnp.logaddexp(first, second)


# --------------------------------------------------------------------------
# Prior objects (pytrees).
# --------------------------------------------------------------------------

def _leaf_keys(key, tree):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    if not leaves:
        raise ValueError("like_tree has no arrays; pass the parameter tree to sample a prior draw like")
    return leaves, treedef, jax.random.split(key, len(leaves))


def _float_dtype(leaf):
    dtype = getattr(leaf, "dtype", None)
    if dtype is not None and jnp.issubdtype(dtype, jnp.floating):
        return dtype
    return jnp.float32


class _Prior:
    """Shared behaviour: sum of the elementwise log density over a tree."""

    _fields: tuple[str, ...] = ()

    def log_prob_elementwise(self, x):  # pragma: no cover - overridden
        raise NotImplementedError

    def log_prob(self, params) -> jax.Array:
        """Sum of the log density over every element of every leaf of ``params``."""
        leaves = jax.tree_util.tree_leaves(params)
        if not leaves:
            return jnp.zeros(())
        return sum(jnp.sum(self.log_prob_elementwise(leaf)) for leaf in leaves)

    def sample(self, key, like_tree):
        """A prior draw with the structure, shapes and dtypes of ``like_tree``.

        Each leaf gets its own key (``jax.random.split(key, num_leaves)``), so
        leaves are independent even when they have the same shape.
        """
        leaves, treedef, keys = _leaf_keys(key, like_tree)
        draws = [self._sample_leaf(k, jnp.shape(leaf), _float_dtype(leaf)) for k, leaf in zip(keys, leaves)]
        return jax.tree_util.tree_unflatten(treedef, draws)

    def _sample_leaf(self, key, shape, dtype):  # pragma: no cover - overridden
        raise NotImplementedError

    # pytree protocol: every numeric field is a leaf; unflatten skips validation
    # (jax may rebuild the object with tracers or placeholders).
    def tree_flatten(self):
        return tuple(getattr(self, f) for f in self._fields), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)
        for name, value in zip(cls._fields, children):
            object.__setattr__(obj, name, value)
        return obj

    def __repr__(self) -> str:
        def show(value):
            if _is_concrete(value):
                try:
                    array = np.asarray(value)
                    return f"{array.item():g}" if array.size == 1 else f"array{array.shape}"
                except Exception:  # placeholders used by jax internals
                    return repr(value)
            return "<traced>"
        return f"{type(self).__name__}(" + ", ".join(f"{f}={show(getattr(self, f))}" for f in self._fields) + ")"


@jax.tree_util.register_pytree_node_class
class Gaussian(_Prior):
    """Independent ``N(mean, scale^2)`` prior on every weight.

    MAP with this prior is L2 weight decay with strength ``1 / scale^2``
    (:func:`weight_decay_strength`). Taught in chapter "MLE and MAP".
    """

    _fields = ("scale", "mean")

    def __init__(self, scale, mean=0.0):
        _check_positive("scale", scale, "The prior standard deviation must be positive, e.g. Gaussian(scale=1.0).")
        self.scale = _as_leaf(scale)
        self.mean = _as_leaf(mean)

    def log_prob_elementwise(self, x):
        """Elementwise ``log N(x; mean, scale^2)``."""
        return gaussian_log_prob(x, self.scale, self.mean)

    def _sample_leaf(self, key, shape, dtype):
        return (self.mean + self.scale * jax.random.normal(key, shape, dtype)).astype(dtype)


@jax.tree_util.register_pytree_node_class
class Laplace(_Prior):
    """Independent ``Laplace(mean, scale)`` prior on every weight.

    MAP with this prior is an L1 penalty with strength ``1 / scale``
    (:func:`weight_decay_strength`); its exact MAP has weights at exactly zero
    (a gradient optimiser such as Adam only gets them near zero).
    Taught in chapter "MLE and MAP".
    """

    _fields = ("scale", "mean")

    def __init__(self, scale, mean=0.0):
        _check_positive("scale", scale, "The Laplace scale b must be positive, e.g. Laplace(scale=0.1).")
        self.scale = _as_leaf(scale)
        self.mean = _as_leaf(mean)

    def log_prob_elementwise(self, x):
        """Elementwise ``log Laplace(x; mean, scale)``."""
        return laplace_log_prob(x, self.scale, self.mean)

    def _sample_leaf(self, key, shape, dtype):
        return (self.mean + self.scale * jax.random.laplace(key, shape, dtype)).astype(dtype)


@jax.tree_util.register_pytree_node_class
class ScaleMixture(_Prior):
    """Independent ``pi N(0, sigma1^2) + (1 - pi) N(0, sigma2^2)`` prior on every weight.

    A wide and a narrow Gaussian with a shared mean of zero ("Bayes by
    Backprop", Blundell et al. 2015). Taught in chapter "MLE and MAP".
    """

    _fields = ("pi", "sigma1", "sigma2")

    def __init__(self, pi, sigma1, sigma2):
        _check_probability("pi", pi)
        _check_positive("sigma1", sigma1)
        _check_positive("sigma2", sigma2)
        self.pi = _as_leaf(pi)
        self.sigma1 = _as_leaf(sigma1)
        self.sigma2 = _as_leaf(sigma2)

    def log_prob_elementwise(self, x):
        """Elementwise log density of the mixture."""
        return scale_mixture_log_prob(x, self.pi, self.sigma1, self.sigma2)

    def _sample_leaf(self, key, shape, dtype):
        pick_key, noise_key = jax.random.split(key)
        first = jax.random.bernoulli(pick_key, self.pi, shape)
        sigma = jnp.where(first, self.sigma1, self.sigma2)
        return (sigma * jax.random.normal(noise_key, shape, dtype)).astype(dtype)


# --------------------------------------------------------------------------
# A learnable scale mixture: unconstrained coordinates.
# --------------------------------------------------------------------------

_MIXTURE_KEYS = ("logit_pi", "log_sigma1", "log_sigma2")


def unconstrained_scale_mixture(prior: ScaleMixture) -> dict:
    """The parameters of ``prior`` in unconstrained coordinates, for learning them.

    Returns ``{"logit_pi": log(pi / (1 - pi)), "log_sigma1": log sigma1,
    "log_sigma2": log sigma2}`` (float32 scalars). Any real values map back
    through :func:`constrained_scale_mixture` to a valid prior, so gradient
    steps on this dict can never push ``pi`` out of (0, 1) or a ``sigma`` to
    zero or below. Put the dict in the pytree the optimiser updates, e.g.
    ``{"q": q, "prior": unconstrained_scale_mixture(prior)}``.

    Taught in chapter "The reparameterization trick and Bayes by Backprop".
    """
    if not isinstance(prior, ScaleMixture):
        raise ValueError(f"prior={prior!r} must be a bnnbook.priors.ScaleMixture, e.g. "
                         f"ScaleMixture(pi=0.2, sigma1=1.0, sigma2=0.1)")
    pi = jnp.asarray(prior.pi, jnp.float32)
    return {"logit_pi": jnp.log(pi) - jnp.log1p(-pi),
            "log_sigma1": jnp.log(jnp.asarray(prior.sigma1, jnp.float32)),
            "log_sigma2": jnp.log(jnp.asarray(prior.sigma2, jnp.float32))}


def constrained_scale_mixture(raw: dict) -> ScaleMixture:
    """The :class:`ScaleMixture` with ``pi = sigmoid(logit_pi)``, ``sigma = exp(log_sigma)``.

    The inverse of :func:`unconstrained_scale_mixture`; differentiable, and
    usable inside ``jax.jit``/``jax.grad`` (call it inside the loss so the
    gradient reaches ``raw``).

    Taught in chapter "The reparameterization trick and Bayes by Backprop".
    """
    if not isinstance(raw, dict) or set(raw) != set(_MIXTURE_KEYS):
        keys = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise ValueError(f"raw={keys!r} must be a dict with exactly the keys {list(_MIXTURE_KEYS)}, as made "
                         f"by unconstrained_scale_mixture(prior)")
    # Inside jit/grad the values are tracers and pass the constructor unchecked; concrete values
    # are checked (|logit_pi| > ~17 rounds pi to 0 or 1 in float32 and is refused there).
    return ScaleMixture(jax.nn.sigmoid(raw["logit_pi"]), jnp.exp(raw["log_sigma1"]), jnp.exp(raw["log_sigma2"]))


# --------------------------------------------------------------------------
# Prior <-> weight-decay strength.
# --------------------------------------------------------------------------

def _check_num_examples(num_examples):
    if num_examples is None:
        return 1.0
    return float(check_count("num_examples", num_examples,
                             hint="the training-set size N, or None for the loss summed over the data"))


def l2_strength(scale, num_examples: int | None = None):
    """L2 strength ``lambda = 1 / scale^2`` of a ``N(0, scale^2)`` prior.

    ``-log N(w; 0, s^2) = ||w||^2 / (2 s^2) + const = (lambda / 2) ||w||^2 + const``.
    That ``lambda`` matches a loss *summed* over the data. When the loss is the
    *mean* over ``num_examples`` = N examples, the whole negative log posterior
    is divided by N, so the strength becomes ``1 / (N scale^2)``.
    Taught in chapter "MLE and MAP".
    """
    _check_positive("scale", scale)
    return 1.0 / (_check_num_examples(num_examples) * scale ** 2)


def l1_strength(scale, num_examples: int | None = None):
    """L1 strength ``lambda = 1 / scale`` of a ``Laplace(0, scale)`` prior.

    ``-log Laplace(w; 0, b) = ||w||_1 / b + const = lambda ||w||_1 + const``
    for a summed loss; ``1 / (N b)`` for a loss averaged over N examples.
    Taught in chapter "MLE and MAP".
    """
    _check_positive("scale", scale)
    return 1.0 / (_check_num_examples(num_examples) * scale)


def gaussian_from_l2(strength, num_examples: int | None = None) -> Gaussian:
    """The Gaussian prior equivalent to L2 weight decay ``(strength / 2) ||w||^2``.

    ``scale = 1 / sqrt(strength)`` for a summed loss, ``1 / sqrt(N strength)``
    when the loss is a mean over ``num_examples`` = N. Taught in chapter "MLE and MAP".
    """
    _check_positive("strength", strength, "A weight-decay strength must be > 0 (0 means no prior: plain MLE).")
    return Gaussian(1.0 / math.sqrt(_check_num_examples(num_examples) * float(strength)))


def laplace_from_l1(strength, num_examples: int | None = None) -> Laplace:
    """The Laplace prior equivalent to the L1 penalty ``strength ||w||_1``.

    ``scale = 1 / strength`` for a summed loss, ``1 / (N strength)`` when the
    loss is a mean over ``num_examples`` = N. Taught in chapter "MLE and MAP".
    """
    _check_positive("strength", strength, "An L1 strength must be > 0 (0 means no prior: plain MLE).")
    return Laplace(1.0 / (_check_num_examples(num_examples) * float(strength)))


def weight_decay_strength(prior, num_examples: int | None = None):
    """The penalty strength a zero-mean prior is equivalent to.

    * :class:`Gaussian` of std ``s``: L2 strength ``1 / s^2`` (penalty ``(lambda/2)||w||^2``).
    * :class:`Laplace` of scale ``b``: L1 strength ``1 / b`` (penalty ``lambda ||w||_1``).

    With ``num_examples`` = N the strength is divided by N, for a loss that is
    a mean over the data rather than a sum. A :class:`ScaleMixture` or a prior
    with a non-zero mean has no such equivalent and raises ``ValueError``.
    Taught in chapter "MLE and MAP".
    """
    if isinstance(prior, (Gaussian, Laplace)):
        if _is_concrete(prior.mean) and np.any(np.asarray(prior.mean) != 0):
            raise ValueError(f"prior={prior!r} has a non-zero mean; weight decay shrinks towards 0, "
                             f"so only a zero-mean prior has an equivalent strength")
        if isinstance(prior, Gaussian):
            return l2_strength(prior.scale, num_examples)
        return l1_strength(prior.scale, num_examples)
    raise ValueError(f"prior={prior!r} has no weight-decay equivalent; pass a Gaussian (L2) or a Laplace (L1) prior")


def penalty_kind(prior) -> str:
    """``"l2"`` for a :class:`Gaussian`, ``"l1"`` for a :class:`Laplace` prior.
    Taught in chapter "MLE and MAP"."""
    if isinstance(prior, Gaussian):
        return "l2"
    if isinstance(prior, Laplace):
        return "l1"
    raise ValueError(f"prior={prior!r} is neither Gaussian (L2) nor Laplace (L1)")


def l2_penalty(params, strength):
    """``(strength / 2) * sum of w^2`` over every leaf of ``params``.
    Taught in chapter "MLE and MAP"."""
    _check_nonnegative("strength", strength)
    return 0.5 * strength * sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree_util.tree_leaves(params))


def l1_penalty(params, strength):
    """``strength * sum of |w|`` over every leaf of ``params``.
    Taught in chapter "MLE and MAP"."""
    _check_nonnegative("strength", strength)
    return strength * sum(jnp.sum(_abs(leaf)) for leaf in jax.tree_util.tree_leaves(params))


def constrained_least_squares(features, targets, radius: float, norm: int) -> np.ndarray:
    """Least squares for two weights under ``||w||_norm <= radius`` (``norm`` 1 or 2), solved numerically.

    The picture behind "Laplace prior = L1, Gaussian prior = L2": MAP with
    either prior is least squares plus a penalty, and each penalty strength
    matches a radius of this constraint (the Lagrangian form). If the
    least-squares solution lies inside the ball it is returned. Otherwise the
    optimum is on the ball's boundary: for ``norm=1`` the diamond is four
    segments, and the exact minimum of the quadratic loss on each one is
    compared (a corner, with an exactly zero coordinate, wins whenever the
    loss contours touch there); for ``norm=2`` it is the ridge solution
    ``(X^T X + lam I)^-1 X^T y`` whose norm is ``radius``, with ``lam`` found by
    bisection. NumPy float64.

    Taught in chapter "MLE and MAP".
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64).reshape(-1)
    if x.ndim != 2 or x.shape[1] != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"features must have shape (N, 2) and targets (N,); got {x.shape} and {y.shape}")
    if norm not in (1, 2):
        raise ValueError(f"norm={norm!r}: use 1 (the Laplace prior's L1 ball) or 2 (the Gaussian prior's L2 ball)")
    if not (np.isfinite(radius) and radius > 0):
        raise ValueError(f"radius={radius!r} must be positive and finite, e.g. 1.0")
    ols = np.linalg.lstsq(x, y, rcond=None)[0]
    if np.linalg.norm(ols, ord=norm) <= radius:
        return ols
    loss = lambda w: float(np.sum((x @ w - y) ** 2))  # noqa: E731
    if norm == 1:
        corners = radius * np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
        best, best_loss = None, np.inf
        for a, b in zip(corners, np.roll(corners, -1, axis=0)):
            direction = x @ (b - a)
            s = float(np.clip(-((x @ a - y) @ direction) / (direction @ direction), 0.0, 1.0))
            w = a if s == 0.0 else b if s == 1.0 else a + s * (b - a)  # corners exactly, so zeros are exact
            if loss(w) < best_loss:
                best, best_loss = w.copy(), loss(w)
        return best
    gram, moment = x.T @ x, x.T @ y
    ridge = lambda lam: np.linalg.solve(gram + lam * np.eye(2), moment)  # noqa: E731
    low, high = 0.0, 1.0
    while np.linalg.norm(ridge(high)) > radius:
        high *= 2.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if np.linalg.norm(ridge(middle)) > radius else (low, middle)
    w = ridge(high)
    return w * (radius / np.linalg.norm(w))


__all__ = [
    "gaussian_log_prob", "laplace_log_prob", "scale_mixture_log_prob",
    "Gaussian", "Laplace", "ScaleMixture", "unconstrained_scale_mixture", "constrained_scale_mixture",
    "weight_decay_strength", "penalty_kind", "l2_strength", "l1_strength",
    "gaussian_from_l2", "laplace_from_l1", "l2_penalty", "l1_penalty", "constrained_least_squares",
]
