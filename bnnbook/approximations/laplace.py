"""The last-layer Laplace approximation, with its prior precision chosen by the evidence.

Taught in chapter "Practical approximations".

Keep a trained network's hidden layers fixed and treat its last layer
``W`` (hidden units + a bias row, by classes) as the only random weights.
The logits ``f = phi(x)^T W`` are then *linear* in ``W``, so the
"linearised" predictive of Immer et al. (2021) is exact for this model, and
the generalised Gauss-Newton matrix is the exact Hessian of the
categorical negative log-likelihood:

    H = sum_n  (diag(p_n) - p_n p_n^T)  (x)  phi_n phi_n^T .

With an isotropic Gaussian prior of precision ``lambda`` the posterior is
approximated by ``N(W*, (H + lambda I)^-1)`` around the trained ``W*``, and
the Laplace estimate of the log marginal likelihood (MacKay 1992)::

    log Z(lambda) = log p(D | W*) - lambda/2 ||W*||^2 + P/2 log lambda
                    - 1/2 sum_k log(h_k + lambda),

with ``h_k`` the eigenvalues of ``H``, picks ``lambda`` without validation
data. ``W*`` is kept fixed while ``lambda`` changes (the "post-hoc" choice of
Immer et al.); strictly, each ``lambda`` has its own MAP.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bnnbook._checks import check_count


class LastLayerLaplace(NamedTuple):
    """The fitted approximation; ``covariance = eigenvectors @ diag(1 / (eigenvalues + prior_precision)) @ eigenvectors.T``.

    ``mean`` has shape ``(hidden + 1, classes)`` (the bias is the last row);
    the flat parameter vector is ``mean.reshape(-1)``, so entry ``i * classes + c``
    is the weight from feature ``i`` to class ``c``. ``prior_precisions`` and
    ``log_evidence`` are the grid searched and its values.
    """

    mean: jax.Array
    eigenvalues: jax.Array
    eigenvectors: jax.Array
    prior_precision: float
    prior_precisions: np.ndarray
    log_evidence: np.ndarray


def _layers(params):
    if not params or any("linear_" not in name or not name.rsplit("_", 1)[-1].isdigit() for name in params):
        raise ValueError(f"params has layers {list(params)}; the last-layer Laplace needs the parameters of "
                         f"bnnbook.nets.mlp")
    return [params[name] for name in sorted(params, key=lambda name: int(name.rsplit("_", 1)[-1]))]


def last_layer_features(params, inputs, activation: Callable = jax.nn.sigmoid) -> jax.Array:
    """The last hidden layer's output with a column of ones appended (for the bias), ``(n, hidden + 1)``."""
    layers = _layers(params)
    hidden = jnp.reshape(jnp.asarray(inputs), (inputs.shape[0], -1))
    for layer in layers[:-1]:
        hidden = activation(hidden @ layer["w"] + layer["b"])
    return jnp.concatenate([hidden, jnp.ones((hidden.shape[0], 1), hidden.dtype)], axis=1)


def last_layer_mean(params) -> jax.Array:
    """The trained last layer as one ``(hidden + 1, classes)`` matrix, bias last."""
    last = _layers(params)[-1]
    return jnp.concatenate([last["w"], last["b"][None, :]], axis=0)


@jax.jit
def _hessian_block(features, mean):
    # sum_n kron(Lambda_n, phi_n phi_n^T) as one product: (F*F, n) @ (n, C*C).
    probs = jax.nn.softmax(features @ mean)
    curvature = jax.vmap(jnp.diag)(probs) - probs[:, :, None] * probs[:, None, :]
    outer = features[:, :, None] * features[:, None, :]
    n, f = features.shape
    c = probs.shape[1]
    block = outer.reshape(n, f * f).T @ curvature.reshape(n, c * c)
    # (i, j, c, d) -> (i, c, j, d): parameter index i * C + c
    return block.reshape(f, f, c, c).transpose(0, 2, 1, 3).reshape(f * c, f * c)


def last_layer_hessian(features, mean, block: int = 2048) -> jax.Array:
    """The Hessian of the summed categorical NLL in the last layer, ``(P, P)`` with ``P = (hidden + 1) * classes``."""
    block = check_count("block", block, hint="examples per jitted call, e.g. 2048")
    features = jnp.asarray(features, jnp.float32)
    if features.ndim != 2 or jnp.ndim(mean) != 2 or features.shape[1] != jnp.shape(mean)[0]:
        raise ValueError(f"features must have shape (n, F) and mean (F, classes); got {features.shape} and "
                         f"{jnp.shape(mean)} (make them with last_layer_features and last_layer_mean)")
    total = 0.0
    for start in range(0, features.shape[0], block):
        total = total + _hessian_block(features[start:start + block], mean)
    return total


def log_evidence(log_likelihood: float, mean, eigenvalues, prior_precisions) -> np.ndarray:
    """The Laplace log marginal likelihood of every prior precision (formula in the module docstring)."""
    lam = np.asarray(prior_precisions, np.float64)
    if np.any(~np.isfinite(lam)) or np.any(lam <= 0):
        raise ValueError(f"prior_precisions must be positive and finite; got {lam}")
    squared_norm = float(np.sum(np.asarray(mean, np.float64) ** 2))
    h = np.clip(np.asarray(eigenvalues, np.float64), 0.0, None)  # round-off can leave tiny negatives
    num_params = h.size
    return (log_likelihood - 0.5 * lam * squared_norm + 0.5 * num_params * np.log(lam)
            - 0.5 * np.log(h[None, :] + lam[:, None]).sum(1))


def fit_last_layer(params, inputs, labels, activation: Callable = jax.nn.sigmoid,
                   prior_precisions=np.logspace(-3, 4, 71)) -> LastLayerLaplace:
    """Fit the last-layer Laplace approximation on the training data and choose ``lambda`` by the evidence.

    ``prior_precisions`` is the grid searched (the chosen value must not sit
    at its edge: widen the grid if it does; a warning is not enough, so this
    raises).
    """
    labels = np.asarray(labels)
    features = last_layer_features(params, inputs, activation)
    mean = last_layer_mean(params)
    if features.shape[0] != labels.shape[0]:
        raise ValueError(f"labels has {labels.shape[0]} entries but inputs has {features.shape[0]} rows; pass one "
                         f"label per input")
    hessian = np.asarray(last_layer_hessian(features, mean), np.float64)
    eigenvalues, eigenvectors = np.linalg.eigh(0.5 * (hessian + hessian.T))
    log_probs = jax.nn.log_softmax(features @ mean)
    log_likelihood = float(jnp.take_along_axis(log_probs, jnp.asarray(labels)[:, None], axis=1).sum())
    grid = np.asarray(prior_precisions, np.float64)
    evidence = log_evidence(log_likelihood, mean, eigenvalues, grid)
    best = int(np.argmax(evidence))
    if best in (0, len(grid) - 1):
        raise ValueError(f"the evidence is largest at the edge of prior_precisions (lambda = {grid[best]:.3g}); "
                         f"widen the grid, e.g. np.logspace(-5, 6, 111)")
    return LastLayerLaplace(mean=mean, eigenvalues=jnp.asarray(eigenvalues, jnp.float32),
                            eigenvectors=jnp.asarray(eigenvectors, jnp.float32),
                            prior_precision=float(grid[best]), prior_precisions=grid, log_evidence=evidence)


def last_layer_probs(laplace: LastLayerLaplace, params, inputs, key: jax.Array, num_draws: int,
                     activation: Callable = jax.nn.sigmoid, block: int = 4096) -> jax.Array:
    """Predictive draws ``(num_draws, inputs, classes)``: softmax of ``phi(x)^T W_s`` with ``W_s ~ N(W*, Sigma)``.

    ``W_s = W* + V diag((h + lambda)^-1/2) z`` with ``z ~ N(0, I)``: the same
    ``num_draws`` weight matrices for every input (as for an ensemble), so the
    draws are coherent across inputs.
    """
    if not isinstance(num_draws, int) or num_draws < 1:
        raise ValueError(f"num_draws={num_draws!r} must be a positive integer, e.g. 100")
    scale = 1.0 / jnp.sqrt(laplace.eigenvalues.clip(0.0) + laplace.prior_precision)
    noise = jax.random.normal(key, (num_draws, laplace.mean.size))
    weights = laplace.mean.reshape(-1) + (noise * scale) @ laplace.eigenvectors.T
    weights = weights.reshape(num_draws, *laplace.mean.shape)
    inputs = jnp.asarray(inputs)
    one_block = jax.jit(lambda x: jax.nn.softmax(jnp.einsum("nf,sfc->snc", last_layer_features(params, x, activation),
                                                           weights)))
    return jnp.concatenate([one_block(inputs[i:i + block]) for i in range(0, inputs.shape[0], block)], axis=1)


__all__ = ["LastLayerLaplace", "last_layer_features", "last_layer_mean", "last_layer_hessian", "log_evidence",
           "fit_last_layer", "last_layer_probs"]
