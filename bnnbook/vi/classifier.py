"""Bayes by Backprop for an MLP classifier, fast enough for all of MNIST on a CPU.

Taught in chapter "The reparameterization trick and Bayes by Backprop".

:func:`bnnbook.vi.free_energy_loss` with :func:`bnnbook.train.fit` is the
readable version of Bayes by Backprop over any Haiku network. This module is
the same algorithm for one model, a ReLU MLP on flat inputs, written for
speed, so that Blundell et al.'s MNIST experiment (2 x 400 units, 50,000
training images, hundreds of thousands of steps) fits on a laptop CPU:

* all weights and biases live in **one flat vector** (means and ``rho``), so
  the draw ``w = mu + softplus(rho) * eps`` is one fused random draw and one
  elementwise expression, and the Monte Carlo KL ``log q(w) - log p(w)`` is
  one reduction over that vector;
* the matrix products use **bfloat16 operands with float32 accumulation**
  (``bnnbook.hmc.surrogate.bf16_matmul``; the AMX units of recent x86
  CPUs and every GPU run them at several times the float32 rate). The
  gradient is then a slightly noisier estimate of the same gradient, which
  stochastic optimisation tolerates (every number it reports is evaluated in
  float32);
* one epoch is a ``lax.scan`` over minibatches, and **seeds and prior
  settings are ``vmap``-ed**: several independent runs share every step.

The same function trains the non-Bayesian baselines of Blundell et al.'s
Table 1 (``method="plain"``: maximum likelihood; ``method="dropout"``) so the
comparison uses one data pipeline, optimiser and early-stopping rule.
"""

from __future__ import annotations

import sys
import time
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from bnnbook import priors as priors_lib
from bnnbook._checks import check_count
from bnnbook.hmc.surrogate import bf16_matmul
from bnnbook.vi.objectives import kl_weights

METHODS = ("plain", "dropout", "bayes_by_backprop")


class Fit(NamedTuple):
    """What :func:`train` returns; every array has a leading axis of runs (seeds x settings).

    ``mean`` and ``rho`` are the flat parameters at the epoch of lowest
    validation error (for ``plain``/``dropout`` ``rho`` is unused);
    ``history`` holds per-epoch arrays of shape ``(epochs, runs)``:
    ``likelihood_cost`` and ``complexity_cost`` (nats per training example,
    averaged over the epoch's minibatches), ``validation_error``.
    """

    mean: jax.Array
    rho: jax.Array
    best_epoch: np.ndarray
    history: dict
    sizes: tuple
    seconds: float
    step_seconds: float


# --------------------------------------------------------------------------
# The network on a flat parameter vector.
# --------------------------------------------------------------------------

def _layout(sizes):
    """(offset, shape) of every weight matrix and bias vector in the flat vector."""
    out, offset = [], 0
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        out.append(((offset, (fan_in, fan_out)), (offset + fan_in * fan_out, (fan_out,))))
        offset += fan_in * fan_out + fan_out
    return out, offset


def _check_sizes(sizes) -> tuple[int, ...]:
    sizes = tuple(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes={sizes!r} must list the layer widths, inputs first and classes last, e.g. "
                         f"(784, 400, 400, 10)")
    return tuple(check_count("sizes entry", size, hint="every layer width is an integer >= 1") for size in sizes)


def num_parameters(sizes: Sequence[int]) -> int:
    """Number of weights and biases of an MLP with layer sizes ``sizes`` (inputs first)."""
    return _layout(_check_sizes(sizes))[1]


def init_means(key, sizes: Sequence[int]) -> jax.Array:
    """Flat initial means: weights ~ truncated N(0, 1/fan_in) (Haiku's default), biases 0."""
    layout, total = _layout(_check_sizes(sizes))
    parts = []
    for (w_off, w_shape), (_, b_shape) in layout:
        key, sub = jax.random.split(key)
        std = 1.0 / np.sqrt(w_shape[0])
        parts.append(jnp.ravel(std * jax.random.truncated_normal(sub, -2.0, 2.0, w_shape) / 0.87962566))
        parts.append(jnp.zeros(b_shape))
    return jnp.concatenate(parts)


def logits(flat_weights: jax.Array, inputs: jax.Array, sizes: Sequence[int], *, bf16: bool = True,
           dropout_key=None, input_dropout: float = 0.0, hidden_dropout: float = 0.0) -> jax.Array:
    """Logits of the ReLU MLP whose weights and biases are ``flat_weights``.

    With ``dropout_key`` the inputs and hidden units are dropped at the given
    rates (inverted dropout: kept units scaled by ``1 / (1 - rate)``).
    """
    layout, _ = _layout(tuple(sizes))
    matmul = bf16_matmul if bf16 else jnp.matmul
    hidden = inputs
    for index, ((w_off, w_shape), (b_off, b_shape)) in enumerate(layout):
        rate = input_dropout if index == 0 else hidden_dropout
        if dropout_key is not None and rate > 0.0:
            dropout_key, sub = jax.random.split(dropout_key)
            keep = jax.random.bernoulli(sub, 1.0 - rate, hidden.shape)
            hidden = jnp.where(keep, hidden / (1.0 - rate), 0.0)
        weights = jax.lax.dynamic_slice(flat_weights, (w_off,), (w_shape[0] * w_shape[1],)).reshape(w_shape)
        bias = jax.lax.dynamic_slice(flat_weights, (b_off,), b_shape)
        hidden = matmul(hidden, weights) + bias
        if index < len(layout) - 1:
            hidden = jax.nn.relu(hidden)
    return hidden


def _mean_log_likelihood(flat_weights, images, labels, sizes, **kwargs):
    log_probs = jax.nn.log_softmax(logits(flat_weights, images, sizes, **kwargs))
    return jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=1))


# --------------------------------------------------------------------------
# The complexity cost.
# --------------------------------------------------------------------------

def complexity_cost(mean, rho, eps, prior) -> jax.Array:
    """``KL(q || p)`` of the flat mean-field ``q``: closed form for a Gaussian prior, else one-draw Monte Carlo.

    ``eps`` is the standard-normal draw that made ``w = mean + softplus(rho) * eps``;
    the Monte Carlo term is ``log q(w) - log p(w)`` at that same ``w``, as in
    Blundell et al. (the same draw serves both costs).
    """
    scale = jax.nn.softplus(rho)
    if isinstance(prior, priors_lib.Gaussian):
        ratio = scale / prior.scale
        return jnp.sum(0.5 * (ratio ** 2 + ((mean - prior.mean) / prior.scale) ** 2 - 1.0) - jnp.log(ratio))
    weights = mean + scale * eps
    # log q(w) and log p(w) both without the common -log(2 pi)/2 per weight, which cancels.
    log_q = jnp.sum(-jnp.log(scale) - 0.5 * eps ** 2)
    if isinstance(prior, priors_lib.ScaleMixture):
        # log(pi N(w; 0, s1^2) + (1 - pi) N(w; 0, s2^2)) as max + log1p(exp(-|a - b|)): the same
        # number as jnp.logaddexp without its infinity handling, which made it ~4x slower here.
        squared = weights ** 2
        wide = jnp.log(prior.pi) - jnp.log(prior.sigma1) - 0.5 * squared / prior.sigma1 ** 2
        narrow = jnp.log1p(-prior.pi) - jnp.log(prior.sigma2) - 0.5 * squared / prior.sigma2 ** 2
        log_p = jnp.maximum(wide, narrow) + jnp.log1p(jnp.exp(-jnp.abs(wide - narrow)))
        return log_q - jnp.sum(log_p)
    return log_q - jnp.sum(prior.log_prob_elementwise(weights) + 0.5 * np.log(2 * np.pi))


# --------------------------------------------------------------------------
# Training.
# --------------------------------------------------------------------------

def _check(method, prior, epochs, batch_size, num_train, rho_learning_rate=None):
    if method not in METHODS:
        raise ValueError(f"method={method!r}; use one of {', '.join(METHODS)}")
    if method == "bayes_by_backprop" and prior is None:
        raise ValueError("method='bayes_by_backprop' needs a prior, e.g. "
                         "prior=bnnbook.priors.ScaleMixture(pi=0.5, sigma1=1.0, sigma2=np.exp(-6.0))")
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs={epochs!r} must be a positive integer")
    if not 1 <= batch_size <= num_train:
        raise ValueError(f"batch_size={batch_size!r} must be in [1, {num_train}] (the training-set size)")
    if rho_learning_rate is not None and not rho_learning_rate >= 0:
        raise ValueError(f"rho_learning_rate={rho_learning_rate!r} must be >= 0, or None for the means' rate")


def train(train_data, validation_data, *, method: str = "bayes_by_backprop", prior=None,
          hidden: Sequence[int] = (400, 400), seeds: Sequence[int] = (0,), epochs: int = 10,
          batch_size: int = 128, learning_rate: float = 1e-3, final_learning_rate: float = 1e-5,
          init_rho: float = -5.0, rho_learning_rate: float | None = None, kl_scheme: str = "uniform",
          input_dropout: float = 0.2, hidden_dropout: float = 0.5, bf16: bool = True, prng_impl: str = "unsafe_rbg", progress: bool = True, desc: str | None = None) -> Fit:
    """Train one MLP classifier per seed (and per prior setting), all at once; keep each run's best epoch.

    ``train_data``/``validation_data`` are ``(images, labels)`` with flat
    images. ``method`` is ``"plain"`` (maximum likelihood), ``"dropout"``
    (rates ``input_dropout``, ``hidden_dropout``) or ``"bayes_by_backprop"``
    (mean-field Gaussian ``q``, one weight draw per step, the minibatch
    objective ``pi_i KL(q || p) - log p(D_i | w)`` with ``pi_i`` from
    :func:`bnnbook.vi.kl_weights` and ``kl_scheme``, divided by the batch size).

    ``prior`` is a :class:`bnnbook.priors.Gaussian` or
    :class:`bnnbook.priors.ScaleMixture`; its fields may be arrays of equal
    length ``K``, giving ``K`` prior settings. Runs are every (setting, seed)
    pair, setting-major: run ``k * len(seeds) + s``. Adam with a cosine decay
    from ``learning_rate`` to ``final_learning_rate`` (``rho_learning_rate``, if
    given, starts the decay of the ``rho`` parameters instead, by the same
    factor); the validation error
    (posterior-mean weights) after each epoch picks the epoch kept.
    ``bf16=False`` computes the products in float32; ``prng_impl`` is the
    ``jax.random.key`` implementation (``"threefry2x32"`` for JAX's default).

    Taught in chapter "The reparameterization trick and Bayes by Backprop".
    """
    images, labels = (jnp.asarray(a) for a in train_data)
    val_images, val_labels = (jnp.asarray(a) for a in validation_data)
    num_train = int(images.shape[0])
    _check(method, prior, epochs, batch_size, num_train, rho_learning_rate)
    sizes = (int(images.shape[1]), *map(int, hidden), int(jnp.max(labels)) + 1)
    num_params = num_parameters(sizes)
    num_batches = num_train // batch_size
    bayesian = method == "bayes_by_backprop"
    dropout = method == "dropout"

    # Prior settings: every field broadcast to shape (K,), then repeated per seed.
    if bayesian:
        fields = {name: np.atleast_1d(np.asarray(getattr(prior, name), np.float32)) for name in prior._fields}
        num_settings = max(v.size for v in fields.values())
        fields = {name: np.broadcast_to(v, (num_settings,)) for name, v in fields.items()}
    else:
        fields, num_settings = {}, 1
    seeds = [int(s) for s in seeds]
    num_runs = num_settings * len(seeds)
    run_fields = {name: jnp.asarray(np.repeat(v, len(seeds))) for name, v in fields.items()}
    prior_cls = type(prior) if bayesian else None

    pi_schedule = jnp.asarray(kl_weights(num_batches, kl_scheme), jnp.float32)

    def cosine(start):  # from start to start * final_learning_rate / learning_rate over the run
        return optax.cosine_decay_schedule(start, epochs * num_batches, alpha=final_learning_rate / learning_rate)
    if bayesian and rho_learning_rate is not None:
        # The scales get their own rate: their gradient is mostly reparameterisation noise, so at the means'
        # rate Adam moves them slowly (experiments/bbb_snr_pruning.py measures what a faster rate does).
        optimizer = optax.multi_transform({"mean": optax.adam(cosine(learning_rate)),
                                           "rho": optax.adam(cosine(rho_learning_rate))},
                                          {"mean": "mean", "rho": "rho"})
    else:
        optimizer = optax.adam(cosine(learning_rate))
    # unsafe_rbg: XLA's fast bit generator; threefry's cost for ~480k normals a step is most of a step.
    run_keys = [jax.random.key(1000 * k + s, impl=prng_impl) for k in range(num_settings) for s in seeds]
    run_keys = jnp.stack(run_keys)

    def init_run(key):
        mean = init_means(jax.random.fold_in(key, 0), sizes)
        rho = jnp.full((num_params,), init_rho, jnp.float32)
        params = {"mean": mean, "rho": rho} if bayesian else {"mean": mean}
        return params, optimizer.init(params)

    def loss_fn(params, batch_images, batch_labels, key, pi_i, run_prior):
        if bayesian:
            eps = jax.random.normal(key, (num_params,))  # one fused draw for every weight and bias
            weights = params["mean"] + jax.nn.softplus(params["rho"]) * eps
            likelihood_cost = -_mean_log_likelihood(weights, batch_images, batch_labels, sizes, bf16=bf16)
            kl = complexity_cost(params["mean"], params["rho"], eps, run_prior)
            return likelihood_cost + pi_i * kl / batch_size, (likelihood_cost, kl / num_train)
        kwargs = dict(dropout_key=key, input_dropout=input_dropout, hidden_dropout=hidden_dropout) if dropout else {}
        likelihood_cost = -_mean_log_likelihood(params["mean"], batch_images, batch_labels, sizes, bf16=bf16,
                                                **kwargs)
        return likelihood_cost, (likelihood_cost, jnp.zeros(()))

    def epoch_fn(params, opt_state, key, run_field_values, epoch):
        run_prior = prior_cls(**run_field_values) if bayesian else None
        order = jax.random.permutation(jax.random.fold_in(key, 2 * epoch + 1), num_train)[: num_batches * batch_size]
        order = order.reshape(num_batches, batch_size)

        def step(carry, inputs):
            params, opt_state = carry
            batch_index, pi_i = inputs
            idx = order[batch_index]
            step_key = jax.random.fold_in(jax.random.fold_in(key, 2 * epoch + 2), batch_index)
            grads, costs = jax.grad(loss_fn, has_aux=True)(params, images[idx], labels[idx], step_key, pi_i,
                                                            run_prior)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), costs

        (params, opt_state), (likelihood, complexity) = jax.lax.scan(
            step, (params, opt_state), (jnp.arange(num_batches), pi_schedule))
        val_pred = jnp.argmax(logits(params["mean"], val_images, sizes, bf16=False), -1)
        return params, opt_state, (jnp.mean(likelihood), jnp.mean(complexity), jnp.mean(val_pred != val_labels))

    init_all = jax.jit(jax.vmap(init_run))
    epoch_all = jax.jit(jax.vmap(epoch_fn, in_axes=(0, 0, 0, 0, None)), donate_argnums=(0, 1))
    params, opt_state = init_all(run_keys)
    best = jax.tree_util.tree_map(jnp.copy, params)
    best_error = np.full(num_runs, np.inf)
    best_epoch = np.zeros(num_runs, int)
    history = {"likelihood_cost": [], "complexity_cost": [], "validation_error": []}

    bar = tqdm(range(epochs), desc=desc or f"{method}, {num_runs} run(s)", unit="epoch", disable=not progress,
               file=sys.stdout, ncols=110)
    started = time.perf_counter()
    first_epoch_done = None
    for epoch in bar:
        params, opt_state, (likelihood, complexity, val_error) = epoch_all(params, opt_state, run_keys,
                                                                            run_fields, epoch)
        val_error = np.asarray(val_error)
        if first_epoch_done is None:
            first_epoch_done = time.perf_counter()  # after compilation
        improved = val_error < best_error
        best = jax.tree_util.tree_map(
            lambda b, p: jnp.where(improved.reshape((-1,) + (1,) * (p.ndim - 1)), p, b), best, params)
        best_error = np.where(improved, val_error, best_error)
        best_epoch = np.where(improved, epoch, best_epoch)
        history["likelihood_cost"].append(np.asarray(likelihood))
        history["complexity_cost"].append(np.asarray(complexity))
        history["validation_error"].append(val_error)
        bar.set_postfix(val_error=f"{val_error.mean():.4f}", nll=f"{float(np.mean(likelihood)):.3f}")
    seconds = time.perf_counter() - started
    later_epochs = max(epochs - 1, 1)
    step_seconds = (time.perf_counter() - first_epoch_done) / (later_epochs * num_batches) if epochs > 1 else \
        seconds / num_batches
    rho = best["rho"] if bayesian else jnp.full_like(best["mean"], -jnp.inf)
    return Fit(best["mean"], rho, best_epoch, {k: np.stack(v) for k, v in history.items()}, sizes, seconds,
               step_seconds)


# --------------------------------------------------------------------------
# Evaluation.
# --------------------------------------------------------------------------

def predictive_probs(fit: Fit, images, key, num_draws: int = 10) -> jax.Array:
    """Predictive class probabilities per run, averaged over ``num_draws`` weight draws: ``(runs, n, classes)``.

    With ``rho = -inf`` (the point-estimate methods) every draw is the mean.
    """
    num_draws = check_count("num_draws", num_draws, hint="weight draws averaged per run, e.g. 10")
    images = _check_images(images, fit.sizes)

    @jax.jit
    def one_run(mean, rho, run_key):
        def one_draw(draw_key):
            eps = jax.random.normal(draw_key, mean.shape)
            weights = mean + jax.nn.softplus(rho) * eps
            return jax.nn.softmax(logits(weights, images, fit.sizes, bf16=False))
        return jnp.mean(jax.lax.map(one_draw, jax.random.split(run_key, num_draws)), 0)

    keys = jax.random.split(key, fit.mean.shape[0])
    return jnp.stack([one_run(m, r, k) for m, r, k in zip(fit.mean, fit.rho, keys)])


def _check_images(images, sizes) -> jax.Array:
    images = jnp.asarray(images)
    if images.ndim != 2 or images.shape[0] == 0 or images.shape[1] != sizes[0]:
        raise ValueError(f"images must have shape (n, {sizes[0]}) with n >= 1 (flat rows of the network's "
                         f"{sizes[0]} inputs); got {images.shape}")
    return images


def point_probs(mean: jax.Array, images, sizes) -> jax.Array:
    """Class probabilities of the network whose flat weights are ``mean`` (float32)."""
    sizes = _check_sizes(sizes)
    if jnp.shape(mean) != (num_parameters(sizes),):
        raise ValueError(f"mean has shape {jnp.shape(mean)}; the network of sizes={sizes} has "
                         f"{num_parameters(sizes)} flat weights and biases")
    return jax.nn.softmax(jax.jit(logits, static_argnums=2)(mean, _check_images(images, sizes), sizes))


def error_rate(probs, labels) -> np.ndarray:
    """Share of misclassified examples along the last-but-one axis (one value per run if batched)."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    if probs.ndim < 2 or probs.shape[-2] == 0 or labels.shape != probs.shape[-2:-1]:
        raise ValueError(f"labels must have shape ({probs.shape[-2] if probs.ndim >= 2 else 'n'},), one per row of "
                         f"probs (..., n, classes); got labels {labels.shape} and probs {probs.shape}")
    return np.mean(np.argmax(probs, -1) != labels, axis=-1)


__all__ = ["METHODS", "Fit", "train", "logits", "init_means", "num_parameters", "complexity_cost",
           "predictive_probs", "point_probs", "error_rate"]
