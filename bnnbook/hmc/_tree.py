"""Pytree helpers and input checks shared by the HMC modules.

Taught in chapter "Hamiltonian Monte Carlo for Bayesian neural networks"
(``chapters/06_hmc.ipynb``).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from bnnbook._checks import check_count

PyTree = Any
LogDensityFn = Callable[[PyTree], jax.Array]

_tmap = jax.tree_util.tree_map



def _tree_sum(tree) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return sum((jnp.sum(leaf) for leaf in leaves), jnp.zeros(()))


def _tree_size(tree) -> int:
    return sum(int(np.size(leaf)) for leaf in jax.tree_util.tree_leaves(tree))


def _tree_where(condition, on_true, on_false):
    return _tmap(lambda a, b: jnp.where(condition, a, b), on_true, on_false)


def _normal_like(key, tree):
    # One draw for the whole tree, cut into leaves: one random-number kernel per
    # iteration instead of a key split plus one kernel per parameter array.
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    sizes = [int(np.size(leaf)) for leaf in leaves]
    flat = jax.random.normal(key, (sum(sizes),), jnp.result_type(*leaves))
    pieces = jnp.split(flat, np.cumsum(sizes)[:-1]) if len(leaves) > 1 else [flat]
    noise = [piece.reshape(jnp.shape(leaf)).astype(jnp.result_type(leaf)) for piece, leaf in zip(pieces, leaves)]
    return jax.tree_util.tree_unflatten(treedef, noise)


def _leaf_names(tree) -> list[str]:
    paths, _ = jax.tree_util.tree_flatten_with_path(tree)
    names = [jax.tree_util.keystr(path, simple=True, separator="/") for path, _ in paths]
    return [name or f"leaf_{i}" for i, name in enumerate(names)]


# --------------------------------------------------------------------------
# Input checks (ValueError naming the argument, its value and the fix)
# --------------------------------------------------------------------------


def _check_step_size(step_size) -> float:
    return _check_positive("step_size", step_size, hint="try 0.01 and let warm-up adapt it")


def _check_num_leapfrog(num_leapfrog) -> int:
    return check_count("num_leapfrog", num_leapfrog, hint="the leapfrog steps per iteration, e.g. 10")


def _check_finite_tree(tree, name: str) -> None:
    leaves = jax.tree_util.tree_leaves(tree)
    if not leaves:
        raise ValueError(f"{name} has no arrays; pass a pytree of parameter arrays")
    for leaf_name, leaf in zip(_leaf_names(tree), leaves):
        values = np.asarray(leaf)
        if not np.issubdtype(values.dtype, np.floating):
            raise ValueError(f"{name} leaf {leaf_name!r} has dtype {values.dtype}; HMC needs floating-point arrays")
        if not np.all(np.isfinite(values)):
            bad = int(np.size(values) - np.isfinite(values).sum())
            raise ValueError(f"{name} leaf {leaf_name!r} has {bad} non-finite value(s); start from finite "
                             f"parameters (for example a fresh network initialisation)")


def _check_same_shapes(tree, position, name: str) -> None:
    """``tree`` must have the structure and leaf shapes of ``position``."""
    pos_struct = jax.tree_util.tree_structure(position)
    struct = jax.tree_util.tree_structure(tree)
    if pos_struct != struct:
        raise ValueError(f"{name} has tree structure {struct}, but the position has {pos_struct}; "
                         f"pass a pytree shaped like the position (e.g. jax.tree.map(jnp.zeros_like, position))")
    for leaf_name, a, x in zip(_leaf_names(position), jax.tree_util.tree_leaves(tree),
                               jax.tree_util.tree_leaves(position)):
        if np.shape(a) != np.shape(x):
            raise ValueError(f"{name} leaf {leaf_name!r} has shape {np.shape(a)}, the position leaf has shape "
                             f"{np.shape(x)}; every leaf of {name} must have the shape of the position's leaf")


def _check_inverse_mass(inverse_mass, position, chain_shape: tuple[int, ...] = ()):
    """Return the inverse mass tree (ones if None), checking its structure and shapes."""
    if inverse_mass is None:
        return _tmap(lambda x: jnp.ones(jnp.shape(x)[len(chain_shape):], jnp.result_type(x)), position)
    pos_struct = jax.tree_util.tree_structure(position)
    mass_struct = jax.tree_util.tree_structure(inverse_mass)
    if pos_struct != mass_struct:
        raise ValueError(f"inverse_mass has tree structure {mass_struct}, but the position has {pos_struct}; "
                         f"pass a pytree with one array per parameter array (e.g. jax.tree.map(jnp.ones_like, params))")
    out = []
    for name, m, x in zip(_leaf_names(position), jax.tree_util.tree_leaves(inverse_mass),
                          jax.tree_util.tree_leaves(position)):
        want = tuple(np.shape(x))[len(chain_shape):]
        got = tuple(np.shape(m))
        if got != want and got != chain_shape + want:
            raise ValueError(f"inverse_mass leaf {name!r} has shape {got}, the position leaf has shape {want}; "
                             f"the diagonal mass matrix must have the same shape as the parameters")
        values = np.asarray(m)
        if not (np.all(np.isfinite(values)) and np.all(values > 0)):
            raise ValueError(f"inverse_mass leaf {name!r} has entries that are not finite and > 0; "
                             f"every diagonal entry of the inverse mass matrix must be positive")
        out.append(jnp.asarray(m, jnp.result_type(x)))
    return jax.tree_util.tree_unflatten(mass_struct, out)


def _check_positive(name: str, value, hint: str = "pass a positive float such as 0.01") -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} is not a number; {hint}") from None
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name}={value!r} must be a finite number > 0; {hint}")
    return number
