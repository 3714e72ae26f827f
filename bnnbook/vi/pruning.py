"""Signal-to-noise ratios of a mean-field ``q`` and pruning the weights with the lowest.

Taught in chapter "The reparameterization trick and Bayes by Backprop".
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from bnnbook.vi._checks import _check_q
from bnnbook.vi.meanfield import stddev


# --------------------------------------------------------------------------
# Pruning by signal-to-noise ratio.
# --------------------------------------------------------------------------

def signal_to_noise(q):
    """The tree of signal-to-noise ratios ``|mean| / scale`` of every weight of ``q``.

    Taught in chapter "The reparameterization trick and Bayes by Backprop".
    """
    _check_q(q)
    return jax.tree_util.tree_map(lambda m, s: jnp.abs(m) / s, q["mean"], stddev(q))


def _prune_lowest(q, fraction, scores, what: str):
    fraction_value = float(fraction)
    if not 0.0 <= fraction_value < 1.0:
        raise ValueError(f"fraction={fraction!r} must be in [0, 1) (the share of weights removed), "
                         f"e.g. fraction=0.95")
    leaves, treedef = jax.tree_util.tree_flatten(scores)
    flat = jnp.concatenate([jnp.ravel(leaf) for leaf in leaves])
    num_removed = int(round(fraction_value * flat.size))
    keep = jnp.ones(flat.size, bool).at[jnp.argsort(flat)[:num_removed]].set(False)
    sizes = np.cumsum([leaf.size for leaf in leaves])[:-1]
    masks = [part.reshape(leaf.shape) for part, leaf in zip(jnp.split(keep, sizes), leaves)]
    kept = jax.tree_util.tree_unflatten(treedef, masks)
    pruned = jax.tree_util.tree_map(lambda m, k: jnp.where(k, m, jnp.zeros_like(m)), q["mean"], kept)
    return pruned, kept


def prune_by_signal_to_noise(q, fraction: float):
    """The posterior means with the ``fraction`` of weights of lowest signal-to-noise ratio set to 0.

    One threshold over all weights of the tree (biases included), as in
    Blundell et al. (2015), section 5.1: a weight whose mean is small compared
    with its posterior standard deviation can be removed at little cost.
    Exactly ``round(fraction * num_weights)`` weights are removed (ties are
    broken by position). Returns ``(pruned_means, kept_mask)``, two trees like
    ``q["mean"]``.

    Taught in chapter "The reparameterization trick and Bayes by Backprop".
    """
    _check_q(q)
    return _prune_lowest(q, fraction, signal_to_noise(q), "signal-to-noise ratio")


def prune_by_magnitude(q, fraction: float):
    """The posterior means with the ``fraction`` of smallest ``|mean|`` set to 0: the baseline for SNR pruning.

    Same conventions as :func:`prune_by_signal_to_noise`, but the posterior
    standard deviations play no part, so it applies to any point estimate too.

    Taught in chapter "The reparameterization trick and Bayes by Backprop".
    """
    _check_q(q)
    return _prune_lowest(q, fraction, jax.tree_util.tree_map(jnp.abs, q["mean"]), "|mean|")
