"""Argument checks and constants shared by the modules of :mod:`bnnbook.vi`.

Taught in chapter "The variational free energy".
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bnnbook._checks import check_count, check_finite, check_positive, is_concrete

_SCALE_KEYS = ("rho", "log_var")
_KL_MODES = ("auto", "closed_form", "monte_carlo")
_LOG_2PI = math.log(2.0 * math.pi)


# --------------------------------------------------------------------------
# Validation. Values are checked only when concrete (tracers pass unchecked).
# --------------------------------------------------------------------------

# The same checks as the priors use (one definition in bnnbook._checks, one wording of the errors).
_is_concrete = is_concrete
_check_positive = check_positive


def _check_beta(beta: Any) -> None:
    if not _is_concrete(beta):
        return
    value = float(np.asarray(beta))
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"beta={value!r} must be a finite number >= 0 (1 is the free energy; "
                         f"0 < beta < 1 down-weights the KL); pass e.g. beta=1.0")


def _check_num_samples(num_samples: Any) -> int:
    return check_count("num_samples", num_samples, hint="the number of Monte Carlo draws of w ~ q, e.g. 1")


def _per_draw(values, num_samples: int, what: str) -> jax.Array:
    """``values``, one scalar per weight draw; a wrong shape means the function summed nothing up."""
    if jnp.shape(values) != (num_samples,):
        raise ValueError(f"{what} returned shape {jnp.shape(values)[1:]} per weight draw; it must return one "
                         f"scalar per draw (a likelihood summed over the examples, e.g. reduction='sum' in "
                         f"bnnbook.likelihoods)")
    return values


def _check_q_finite(q: Any) -> None:
    """A concrete ``q`` must hold only finite numbers (a NaN mean or scale would give a NaN KL)."""
    check_finite("q", q, "every mean and scale parameter of q must be finite; a NaN usually comes from a "
                 "diverged fit (lower the learning rate) or from NaN in the data")


def _check_q(q: Any) -> str:
    """Return the scale key of ``q`` ("rho" or "log_var") after checking its shape."""
    if not isinstance(q, dict) or "mean" not in q:
        raise ValueError(f"q must be a dict {{'mean': tree, 'rho' or 'log_var': tree}} as made by "
                         f"init_mean_field; got {type(q).__name__}")
    found = [k for k in _SCALE_KEYS if k in q]
    extra = set(q) - {"mean", *_SCALE_KEYS}
    if len(found) != 1 or extra:
        raise ValueError(f"q has keys {sorted(q)}; it needs 'mean' and exactly one of 'rho' (scale = "
                         f"softplus(rho)) or 'log_var' (scale = exp(log_var / 2)). Build it with init_mean_field.")
    key = found[0]
    if jax.tree_util.tree_structure(q["mean"]) != jax.tree_util.tree_structure(q[key]):
        raise ValueError(f"q['mean'] and q[{key!r}] must have the same tree structure")
    return key
