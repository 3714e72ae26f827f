"""Exact references in NumPy float64 for Bayesian linear regression: the posterior, the log
evidence, the full-covariance Gaussian KL, the ELBO of any Gaussian ``q`` and the best
mean-field ``q``, against which the chapter checks the Monte Carlo free energy.

Taught in chapter "The variational free energy".
"""

from __future__ import annotations

import math

import numpy as np

from bnnbook._checks import check_finite
from bnnbook.vi._checks import _LOG_2PI, _check_positive


# --------------------------------------------------------------------------
# Exact references: Bayesian linear regression (NumPy, float64).
# --------------------------------------------------------------------------

def _check_regression(features, targets, noise_std, prior_std):
    features = np.asarray(features, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64).reshape(-1)
    if features.ndim != 2 or features.shape[0] != targets.shape[0]:
        raise ValueError(f"features must have shape (N, D) and targets (N,); got {features.shape} and "
                         f"{targets.shape}")
    if features.shape[0] == 0:
        raise ValueError("features and targets have no rows; pass at least one example (N >= 1)")
    check_finite("features", features, "drop or impute the rows with NaN before fitting")
    check_finite("targets", targets, "drop or impute the rows with NaN before fitting")
    _check_positive("noise_std", noise_std, "the noise standard deviation must be positive, e.g. 0.5")
    _check_positive("prior_std", prior_std, "the prior standard deviation must be positive, e.g. 1.0")
    return features, targets, float(noise_std), float(prior_std)


def linear_regression_posterior(features, targets, noise_std: float, prior_std: float):
    """Exact posterior ``N(mean, cov)`` of ``w`` in ``y = features @ w + eps``.

    Prior ``w ~ N(0, prior_std^2 I)``, noise ``eps ~ N(0, noise_std^2 I)``.
    Precision ``Lambda = I / prior_std^2 + X^T X / noise_std^2``,
    ``cov = Lambda^-1``, ``mean = cov X^T y / noise_std^2``. Returns
    ``(mean, cov)`` as float64 arrays.

    Taught in chapter "The variational free energy".
    """
    x, y, s, a = _check_regression(features, targets, noise_std, prior_std)
    precision = np.eye(x.shape[1]) / a ** 2 + x.T @ x / s ** 2
    cov = np.linalg.inv(precision)
    cov = 0.5 * (cov + cov.T)
    return cov @ (x.T @ y) / s ** 2, cov


def linear_regression_log_evidence(features, targets, noise_std: float, prior_std: float) -> float:
    """Exact ``log p(y)`` of Bayesian linear regression (see :func:`linear_regression_posterior`).

    Integrating out ``w`` leaves ``y ~ N(0, prior_std^2 X X^T + noise_std^2 I)``,
    evaluated with a Cholesky factor.

    Taught in chapter "The variational free energy".
    """
    x, y, s, a = _check_regression(features, targets, noise_std, prior_std)
    cov = a ** 2 * x @ x.T + s ** 2 * np.eye(x.shape[0])
    chol = np.linalg.cholesky(cov)
    z = np.linalg.solve(chol, y)
    return float(-0.5 * z @ z - np.sum(np.log(np.diag(chol))) - 0.5 * len(y) * _LOG_2PI)


def gaussian_kl_full(mean_q, cov_q, mean_p, cov_p) -> float:
    """``KL(N(mean_q, cov_q) || N(mean_p, cov_p))`` for full covariance matrices (NumPy float64).

    ``(tr(S_p^-1 S_q) + d^T S_p^-1 d - D + log|S_p| - log|S_q|) / 2`` with
    ``d = mean_p - mean_q``.

    Taught in chapter "The variational free energy".
    """
    mq, mp = np.asarray(mean_q, np.float64), np.asarray(mean_p, np.float64)
    sq, sp = np.asarray(cov_q, np.float64), np.asarray(cov_p, np.float64)
    if mq.ndim != 1 or mq.size == 0 or mp.shape != mq.shape:
        raise ValueError(f"mean_q and mean_p must be vectors of one length D >= 1; got shapes {mq.shape} and "
                         f"{mp.shape}")
    for name, mean in (("mean_q", mq), ("mean_p", mp)):
        check_finite(name, mean, "the means must be finite numbers")
    chol_p = _cholesky("cov_p", sp, len(mq))
    chol_q = _cholesky("cov_q", sq, len(mq))
    a = np.linalg.solve(chol_p, chol_q)
    d = np.linalg.solve(chol_p, mp - mq)
    logdet_p = 2.0 * np.sum(np.log(np.diag(chol_p)))
    logdet_q = 2.0 * np.sum(np.log(np.diag(chol_q)))
    return float(0.5 * (np.sum(a * a) + d @ d - len(mq) + logdet_p - logdet_q))


def _cholesky(name: str, cov: np.ndarray, dim: int) -> np.ndarray:
    """The Cholesky factor of the covariance ``name``, or a ValueError naming it."""
    if cov.shape != (dim, dim):
        raise ValueError(f"{name} must have shape ({dim}, {dim}) to match the means; got {cov.shape}")
    check_finite(name, cov, "a covariance matrix must be finite")
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise ValueError(f"{name} is not positive definite; a covariance matrix must be symmetric with positive "
                         f"eigenvalues (e.g. np.eye(D), or A @ A.T + 1e-6 * np.eye(D))") from None


def linear_regression_elbo(features, targets, noise_std: float, prior_std: float, mean, cov) -> float:
    """Closed-form ELBO ``= -F`` of a Gaussian ``q = N(mean, cov)`` in Bayesian linear regression.

    ``cov`` is a full ``(D, D)`` covariance or a vector of ``D`` variances
    (mean field). ``E_q[log p(y | w)] = -N/2 log(2 pi s^2) - (|y - X m|^2 +
    tr(X cov X^T)) / (2 s^2)`` and ``KL(q || N(0, prior_std^2 I))`` are both
    exact, so this is the value :func:`free_energy` estimates by Monte Carlo.
    It never exceeds :func:`linear_regression_log_evidence`, with equality
    only at the exact posterior.

    Taught in chapter "The variational free energy".
    """
    x, y, s, a = _check_regression(features, targets, noise_std, prior_std)
    m = np.asarray(mean, np.float64).reshape(-1)
    c = np.asarray(cov, np.float64)
    if c.ndim == 1:
        _check_positive("cov", c, "mean-field variances must be positive")
        c = np.diag(c)
    if m.shape != (x.shape[1],) or c.shape != (x.shape[1],) * 2:
        raise ValueError(f"mean must have shape ({x.shape[1]},) and cov ({x.shape[1]}, {x.shape[1]}) or "
                         f"({x.shape[1]},); got {m.shape} and {np.shape(cov)}")
    residual = y - x @ m
    expected_ll = (-0.5 * len(y) * (_LOG_2PI + 2.0 * math.log(s))
                   - (residual @ residual + np.sum((x @ c) * x)) / (2.0 * s ** 2))
    try:
        kl = gaussian_kl_full(m, c, np.zeros_like(m), a ** 2 * np.eye(len(m)))
    except ValueError:
        raise ValueError("cov is not positive definite; pass a covariance matrix (symmetric, positive "
                         "eigenvalues) or a vector of positive variances") from None
    return float(expected_ll - kl)


def linear_regression_mean_field(features, targets, noise_std: float, prior_std: float):
    """The best mean-field ``q`` for Bayesian linear regression, in closed form.

    For a Gaussian posterior ``N(mu, Lambda^-1)`` the factorised ``q`` that
    minimises ``KL(q || posterior)`` has means ``mu`` and variances
    ``1 / Lambda_jj`` (Bishop 2006, section 10.1.2), so it keeps the mean but
    under-estimates every marginal variance ``(Lambda^-1)_jj``. Its gap below
    the log evidence is ``(sum_j log Lambda_jj - log|Lambda|) / 2``.
    Returns ``(mean, variances, gap)``.

    Taught in chapter "The variational free energy".
    """
    x, y, s, a = _check_regression(features, targets, noise_std, prior_std)
    precision = np.eye(x.shape[1]) / a ** 2 + x.T @ x / s ** 2
    mean = np.linalg.solve(precision, x.T @ y) / s ** 2
    diag = np.diag(precision)
    gap = 0.5 * (np.sum(np.log(diag)) - np.linalg.slogdet(precision)[1])
    return mean, 1.0 / diag, float(gap)


def linear_regression_elbo_gap(features, targets, noise_std: float, prior_std: float, mean, cov) -> dict:
    """The three exact terms of ``log p(D) = ELBO(q) + KL(q || p(w | D))`` for a Gaussian ``q = N(mean, cov)``.

    Returns ``{"log_evidence", "elbo", "kl"}``, each computed on its own
    (:func:`linear_regression_log_evidence`, :func:`linear_regression_elbo`,
    and :func:`gaussian_kl_full` against :func:`linear_regression_posterior`),
    so that the identity is a check, not a definition. ``cov`` is a full
    covariance or a vector of variances.

    Taught in chapter "The variational free energy".
    """
    post_mean, post_cov = linear_regression_posterior(features, targets, noise_std, prior_std)
    c = np.asarray(cov, np.float64)
    return {"log_evidence": linear_regression_log_evidence(features, targets, noise_std, prior_std),
            "elbo": linear_regression_elbo(features, targets, noise_std, prior_std, mean, cov),
            "kl": gaussian_kl_full(mean, np.diag(c) if c.ndim == 1 else c, post_mean, post_cov)}
