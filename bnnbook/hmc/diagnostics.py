"""Convergence diagnostics (ESS, split R-hat) from BlackJAX.

Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks"
(``chapters/06_hmc.ipynb``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


@jax.jit
def _ess_and_rhat(draws):
    # Module level, so each shape compiles once per session rather than on every call.
    from blackjax import diagnostics
    return (diagnostics.effective_sample_size(draws, chain_axis=0, sample_axis=1),
            diagnostics.rhat(draws, chain_axis=0, sample_axis=1))


def chain_diagnostics(draws) -> dict[str, np.ndarray]:
    """Effective sample size and split R-hat of draws shaped ``(chains, draws, ...)``.

    Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks".
    Both come from BlackJAX's diagnostics (imported here only): ``ess`` is
    ``blackjax.diagnostics.effective_sample_size`` (all chains together) and
    ``rhat`` is ``blackjax.diagnostics.rhat``, the rank-normalised split
    R-hat of Vehtari et al. (2021). Each has the shape of one draw.
    """
    try:
        import blackjax.diagnostics  # noqa: F401
    except ImportError as exc:  # pragma: no cover
        raise ImportError("chain_diagnostics needs blackjax (pip install blackjax)") from exc
    draws = jnp.asarray(draws)
    if draws.ndim < 2 or draws.shape[0] < 2 or draws.shape[1] < 4:
        raise ValueError(f"draws has shape {draws.shape}; it needs (chains >= 2, draws >= 4, ...)")
    ess, rhat = _ess_and_rhat(draws)
    return {"ess": np.asarray(ess), "rhat": np.asarray(rhat)}

