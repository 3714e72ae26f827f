"""Flipout: weight perturbations that are (nearly) independent across the
examples of a minibatch, at the price of one extra matrix product per layer.

Taught in chapter "Flipout".

With the plain reparameterization estimator (:mod:`bnnbook.layers`) a
minibatch uses one weight draw ``W = M + Delta``, shared by all examples, so
the gradient noise that ``Delta`` causes does not shrink as the batch grows.
Flipout (Wen et al., 2018) keeps one draw of ``Delta`` but gives every
example ``n`` its own random sign vectors ``r_n`` (inputs) and ``s_n``
(outputs), entries +1 or -1 with probability 1/2, and uses the perturbation
``Delta * (r_n s_n^T)`` (``Delta`` is ``d_in x d_out``). Because ``Delta`` is
symmetric around zero and independent of the signs, each example's
perturbation has exactly the distribution of ``Delta``: the estimator is
unbiased. Examples now see perturbations that are uncorrelated with each
other, and the layer still costs only two matrix products:

    y_n = x_n M + ((x_n * r_n) Delta) * s_n.

The layers :class:`FlipoutDense` and :class:`FlipoutConv2D` hold the same
parameters under the same module names as :class:`bnnbook.layers.SharedDense`
and :class:`bnnbook.layers.SharedConv2D`, so any network built by
:func:`bayesian_mlp` or :func:`bayesian_cnn` has one parameter tree for both
estimators. :func:`gradient_variance` measures the variance of the stochastic
gradient (:func:`independent_draws` gives the ceiling, a weight draw per
example), :func:`free_energy_loss` is the training loss (KL divided by the
training-set size), :func:`step_times` times a training step of each
estimator, and :func:`predictive_draws` the Monte Carlo predictive.
"""

from __future__ import annotations

import functools
import statistics
import time
from typing import Any, Callable, Sequence

import haiku as hk
import jax
import jax.numpy as jnp
import optax

from bnnbook import layers, likelihoods, predictive
from bnnbook._checks import check_count

#: The two gradient estimators every network here can be built with, ``"shared"`` (one weight draw for
#: the whole minibatch, plain reparameterization) and ``"flipout"``.
ESTIMATORS = ("shared", "flipout")


def random_signs(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
    """Independent entries +1 or -1, each with probability 1/2 (Rademacher).

    Taught in chapter "Flipout".
    """
    return jax.random.rademacher(key, tuple(shape), dtype)


def flipout_dense(inputs, w_mean, b_mean, w_noise, b_noise, sign_in, sign_out):
    """Dense layer output with the Flipout perturbation, given the noise and the signs.

    ``inputs (n, d_in) @ w_mean (d_in, d_out) + b_mean`` plus
    ``((inputs * sign_in) @ w_noise + b_noise) * sign_out``, with
    ``sign_in (n, d_in)`` and ``sign_out (n, d_out)``. Row ``n`` equals the
    output of the single example ``x_n`` with the kernel
    ``w_mean + w_noise * outer(sign_in[n], sign_out[n])`` and the bias
    ``b_mean + b_noise * sign_out[n]``: two matrix products instead of ``n``.

    Taught in chapter "Flipout".
    """
    return inputs @ w_mean + b_mean + ((inputs * sign_in) @ w_noise + b_noise) * sign_out


def flipout_conv2d(inputs, w_mean, b_mean, w_noise, b_noise, sign_in, sign_out, stride: int = 1,
                   padding: str = "SAME"):
    """2-D convolution (NHWC inputs, HWIO kernel) with the Flipout perturbation.

    ``sign_in`` has shape ``(n, 1, 1, c_in)`` and ``sign_out`` ``(n, 1, 1, c_out)``:
    one sign per example and channel, the same at every position, so example
    ``n`` is convolved with ``w_mean + w_noise * outer(sign_in[n], sign_out[n])``
    (over the channel axes) at the cost of two convolutions.

    Taught in chapter "Flipout".
    """
    mean_part = layers.conv2d(inputs, w_mean, stride, padding) + b_mean
    return mean_part + (layers.conv2d(inputs * sign_in, w_noise, stride, padding) + b_noise) * sign_out


class FlipoutDense(layers.SharedDense):
    """Dense Bayesian layer with the Flipout estimator (one noise draw, per-example signs).

    Same arguments and parameters as :class:`bnnbook.layers.SharedDense`.

    Taught in chapter "Flipout".
    """

    def __call__(self, inputs):
        if inputs.ndim != 2:
            raise ValueError(f"inputs must have shape (batch, features); got {inputs.shape}. Flatten first.")
        w_mean, w_scale, b_mean, b_scale = self._posterior((inputs.shape[-1], self.output_size), inputs.shape[-1],
                                                           self.output_size, inputs.dtype)
        noise_key, in_key, out_key = jax.random.split(hk.next_rng_key(), 3)
        w_noise, b_noise = layers.dense_perturbation(noise_key, w_scale, b_scale)
        sign_in = random_signs(in_key, inputs.shape, inputs.dtype)
        sign_out = random_signs(out_key, (inputs.shape[0], self.output_size), inputs.dtype)
        return flipout_dense(inputs, w_mean, b_mean, w_noise, b_noise, sign_in, sign_out)


class FlipoutConv2D(layers.SharedConv2D):
    """2-D convolution Bayesian layer with the Flipout estimator.

    Same arguments and parameters as :class:`bnnbook.layers.SharedConv2D`.

    Taught in chapter "Flipout".
    """

    def __call__(self, inputs):
        w_mean, w_scale, b_mean, b_scale = self._conv_posterior(inputs)
        noise_key, in_key, out_key = jax.random.split(hk.next_rng_key(), 3)
        w_noise, b_noise = layers.dense_perturbation(noise_key, w_scale, b_scale)
        batch = inputs.shape[0]
        sign_in = random_signs(in_key, (batch, 1, 1, inputs.shape[-1]), inputs.dtype)
        sign_out = random_signs(out_key, (batch, 1, 1, self.output_channels), inputs.dtype)
        return flipout_conv2d(inputs, w_mean, b_mean, w_noise, b_noise, sign_in, sign_out,
                              self.stride, self.padding)


def _check_estimator(estimator) -> str:
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator={estimator!r} must be 'shared' (one weight draw per batch) or 'flipout'")
    return estimator


def layer_types(estimator: str) -> tuple[type, type]:
    """``(Dense, Conv2D)`` layer classes of an estimator, ``"shared"`` or ``"flipout"``.

    Taught in chapter "Flipout".
    """
    if _check_estimator(estimator) == "flipout":
        return FlipoutDense, FlipoutConv2D
    return layers.SharedDense, layers.SharedConv2D


def bayesian_mlp(hidden_sizes: Sequence[int], output_size: int, estimator: str = "flipout",
                 init_rho: float = -5.0) -> hk.Transformed:
    """A transformed Haiku MLP of Bayesian dense layers, ``apply(params, key, x) -> outputs``.

    Inputs are flattened; hidden layers use ReLU. The parameter tree is the
    same for both estimators, so ``params`` of one can be used by the other.

    Taught in chapter "Flipout".
    """
    dense, _ = layer_types(estimator)
    sizes = [check_count("hidden size", h) for h in hidden_sizes]
    check_count("output_size", output_size)

    def forward(x):
        x = jnp.reshape(x, (x.shape[0], -1))
        for size in sizes:
            x = jax.nn.relu(dense(size, init_rho=init_rho)(x))
        return dense(output_size, init_rho=init_rho)(x)

    return hk.transform(forward)


def bayesian_cnn(conv_channels: Sequence[int], output_size: int, estimator: str = "flipout", *,
                 kernel_shape: int = 5, pool_size: int = 2, hidden_sizes: Sequence[int] = (),
                 init_rho: float = -5.0) -> hk.Transformed:
    """A transformed Haiku CNN of Bayesian layers: [conv, ReLU, max-pool] per entry of ``conv_channels``,
    then Bayesian dense layers ``hidden_sizes`` (ReLU) and a linear Bayesian output layer.

    Inputs are NHWC images (a missing channel axis is added). ``pool_size``
    is both the window and the stride of the max-pooling.

    Taught in chapter "Flipout".
    """
    dense, conv = layer_types(estimator)
    channels = [check_count("conv channel count", c) for c in conv_channels]
    hidden = [check_count("hidden size", h) for h in hidden_sizes]
    check_count("output_size", output_size)
    check_count("pool_size", pool_size)

    def forward(x):
        if x.ndim == 3:
            x = x[..., None]
        for c in channels:
            x = jax.nn.relu(conv(c, kernel_shape, init_rho=init_rho)(x))
            x = hk.max_pool(x, pool_size, pool_size, "VALID", channel_axis=-1)
        x = jnp.reshape(x, (x.shape[0], -1))
        for size in hidden:
            x = jax.nn.relu(dense(size, init_rho=init_rho)(x))
        return dense(output_size, init_rho=init_rho)(x)

    return hk.transform(forward)


_LIKELIHOODS = ("categorical", "gaussian")


def free_energy_loss(net: hk.Transformed, num_examples: int, likelihood: str = "categorical", *,
                     noise_std: float = 1.0, prior_scale: float = 1.0) -> Callable:
    """``loss_fn(params, batch, key)`` for :func:`bnnbook.train.fit`: mean NLL over the batch + KL / N.

    ``likelihood="categorical"`` (integer labels, softmax of the outputs) or
    ``"gaussian"`` (targets of shape ``(n,)`` or ``(n, 1)``, known
    ``noise_std``). The KL to ``N(0, prior_scale^2)`` is closed form and
    divided by ``num_examples``, the training-set size, so the loss is the
    free energy per example. Metrics: ``nll``, ``kl_per_example``.

    Taught in chapter "Flipout".
    """
    check_count("num_examples", num_examples)
    if likelihood not in _LIKELIHOODS:
        raise ValueError(f"likelihood={likelihood!r} must be 'categorical' (classification) or 'gaussian' "
                         f"(regression)")
    if not noise_std > 0:
        raise ValueError(f"noise_std={noise_std!r} must be > 0, the known standard deviation of the targets")

    def loss_fn(params, batch, key):
        inputs, targets = batch
        outputs = net.apply(params, key, inputs)
        if likelihood == "categorical":
            nll = -jnp.mean(likelihoods._label_log_probs(jax.nn.log_softmax(outputs), targets.astype(jnp.int32)))
        else:
            residual = (outputs.reshape(targets.shape[0], -1)[:, 0] - targets.reshape(-1)) / noise_std
            nll = jnp.mean(0.5 * residual ** 2) + jnp.log(noise_std) + 0.5 * jnp.log(2 * jnp.pi)
        kl = layers.kl_divergence(params, prior_scale) / num_examples
        return nll + kl, {"nll": nll, "kl_per_example": kl}

    return loss_fn


def independent_draws(loss_fn: Callable) -> Callable:
    """``loss_fn`` with an independent weight draw for every example of the minibatch.

    The returned ``loss(params, batch, key)`` splits ``key`` into one key per
    example, evaluates ``loss_fn`` on each example as a minibatch of one
    (``jax.vmap``) and averages the losses and metrics. Build ``loss_fn`` on a
    ``"shared"`` network: each example then gets its own draw of the weights,
    so the weight noise of different examples is independent and, for a fixed
    minibatch, the gradient variance is exactly ``v / B`` (``v``: the average
    variance of one example's gradient), what any estimator gets whose
    examples' noise is uncorrelated (Flipout's aim). That makes it the
    ceiling to measure Flipout against; it costs a weight matrix per example.

    Taught in chapter "Flipout".
    """
    if not callable(loss_fn):
        raise ValueError(f"loss_fn={loss_fn!r} must be a loss function loss_fn(params, batch, key), e.g. "
                         f"free_energy_loss(bayesian_mlp(..., 'shared'), num_examples)")

    def per_example_loss(params, batch, key):
        size = jax.tree_util.tree_leaves(batch)[0].shape[0]
        singles = jax.tree_util.tree_map(lambda a: a[:, None], batch)  # each example as a minibatch of one
        losses, metrics = jax.vmap(lambda one, k: loss_fn(params, one, k))(singles, jax.random.split(key, size))
        return jnp.mean(losses), jax.tree_util.tree_map(jnp.mean, metrics)

    return per_example_loss


@functools.partial(jax.jit, static_argnames=("loss_fn", "batch_size", "num_repeats", "fixed_batch"))
def _gradient_variance(loss_fn, params, data, key, batch_size, num_repeats, fixed_batch):
    num_examples = jax.tree_util.tree_leaves(data)[0].shape[0]
    grad_fn = jax.grad(lambda p, batch, k: loss_fn(p, batch, k)[0])

    def one(carry, repeat):
        count, mean, m2 = carry
        data_key, noise_key = jax.random.split(jax.random.fold_in(key, repeat))
        if fixed_batch:  # only the weight noise varies
            batch = jax.tree_util.tree_map(lambda a: a[:batch_size], data)
        else:  # an i.i.d. minibatch (with replacement) as well
            index = jax.random.randint(data_key, (batch_size,), 0, num_examples)
            batch = jax.tree_util.tree_map(lambda a: jnp.take(a, index, axis=0), data)
        grad = grad_fn(params, batch, noise_key)
        count = count + 1.0
        # Welford's update: one pass, no (num_repeats x num_params) array in memory.
        delta = jax.tree_util.tree_map(lambda g, m: g - m, grad, mean)
        mean = jax.tree_util.tree_map(lambda m, d: m + d / count, mean, delta)
        m2 = jax.tree_util.tree_map(lambda s, d, g, m: s + d * (g - m), m2, delta, grad, mean)
        return (count, mean, m2), None

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    (count, mean, m2), _ = jax.lax.scan(one, (jnp.zeros(()), zeros, zeros), jnp.arange(num_repeats))
    variance = jax.tree_util.tree_map(lambda s: s / (count - 1.0), m2)
    return variance, mean


def gradient_variance(loss_fn: Callable, params: Any, data: Any, key: jax.Array, *, batch_size: int,
                      num_repeats: int = 100, fixed_batch: bool = False) -> tuple[Any, Any]:
    """Per-parameter variance (and mean) of the stochastic gradient of ``loss_fn`` at fixed ``params``.

    Each of ``num_repeats`` repeats takes ``grad loss_fn(params, batch, key)``
    with a fresh noise key and a minibatch of ``batch_size`` examples: drawn
    i.i.d. (with replacement) from ``data`` each time, or, with
    ``fixed_batch=True``, always the first ``batch_size`` examples, so that
    only the weight perturbation varies (the variance the estimator itself
    adds, the quantity Flipout reduces). The repeats run in one
    jitted ``lax.scan`` with a one-pass (Welford) variance. Returns two trees
    like ``params``: the unbiased sample variance and the mean. Sum the
    variance tree for the trace of the gradient covariance.

    Taught in chapter "Flipout".
    """
    check_count("batch_size", batch_size)
    num_examples = jax.tree_util.tree_leaves(data)[0].shape[0]
    if fixed_batch and batch_size > num_examples:
        raise ValueError(f"batch_size={batch_size} exceeds the {num_examples} examples in data; with "
                         f"fixed_batch=True the batch is the first batch_size examples")
    check_count("num_repeats", num_repeats, 2, hint="a variance needs two draws")
    data = jax.tree_util.tree_map(jnp.asarray, data)
    return _gradient_variance(loss_fn, params, data, key, batch_size, num_repeats, bool(fixed_batch))


def step_times(make_net: Callable[[str], hk.Transformed], images, labels, *, num_examples: int,
               repeats: int = 30, learning_rate: float = 1e-3) -> dict[str, float]:
    """Median wall time (seconds) of one training step per estimator, same network and parameters.

    ``make_net(estimator)`` builds the network for each of :data:`ESTIMATORS`.
    A step is one jitted Adam update on :func:`free_energy_loss` (KL divided by
    ``num_examples``) for the batch ``(images, labels)``. Every step is compiled
    and run once first; then the estimators take turns for ``repeats`` rounds,
    so that a busy machine slows both alike, and each one's median is returned.
    Divide ``"flipout"`` by ``"shared"`` for what Flipout costs.

    Taught in chapter "Flipout"; ``bench/bench_flipout.py`` runs it too.
    """
    check_count("repeats", repeats)
    images, labels = jnp.asarray(images), jnp.asarray(labels)
    optimizer = optax.adam(learning_rate)
    params = make_net(ESTIMATORS[0]).init(jax.random.key(0), images)  # one tree serves both estimators
    state = optimizer.init(params)

    def make_step(estimator):
        loss_fn = free_energy_loss(make_net(estimator), num_examples)

        @jax.jit
        def step(params, state, key):
            grads = jax.grad(lambda p: loss_fn(p, (images, labels), key)[0])(params)
            updates, state = optimizer.update(grads, state, params)
            return optax.apply_updates(params, updates), state
        return step

    steps = {estimator: make_step(estimator) for estimator in ESTIMATORS}
    for step in steps.values():  # compile and warm up
        jax.block_until_ready(step(params, state, jax.random.key(0)))
    times: dict[str, list[float]] = {estimator: [] for estimator in steps}
    for repeat in range(repeats):
        for estimator, step in steps.items():
            start = time.perf_counter()
            jax.block_until_ready(step(params, state, jax.random.key(repeat)))
            times[estimator].append(time.perf_counter() - start)
    return {estimator: statistics.median(seconds) for estimator, seconds in times.items()}


@functools.partial(jax.jit, static_argnames=("apply_fn", "num_draws", "chunk"))
def _predictive(apply_fn, params, inputs, key, num_draws, chunk):
    keys = jax.random.split(key, num_draws)  # one key, hence one weight draw, per network
    return predictive._map_draws(lambda k: apply_fn(params, k, inputs), keys, inputs.shape[0], block=chunk)


def predictive_draws(net: hk.Transformed, params: Any, inputs, key: jax.Array, num_draws: int,
                     chunk: int | None = None) -> jax.Array:
    """Outputs of ``num_draws`` posterior draws on ``inputs``: shape ``(num_draws, n, outputs)``.

    Build ``net`` with the ``"shared"`` estimator so that each draw is one
    network (one weight sample applied to every input). The draws run
    ``chunk`` at a time (a ``jax.vmap``) inside one jitted ``lax.map``;
    ``chunk`` must divide ``num_draws`` (default: the largest divisor <= 50).

    Taught in chapter "Flipout".
    """
    check_count("num_draws", num_draws)
    if chunk is None:
        chunk = max(c for c in range(1, min(num_draws, 50) + 1) if num_draws % c == 0)
    if check_count("chunk", chunk) and num_draws % chunk:
        raise ValueError(f"chunk={chunk} must divide num_draws={num_draws}; e.g. chunk=10 for num_draws=1000")
    return _predictive(net.apply, params, jnp.asarray(inputs), key, num_draws, chunk)


__all__ = ["ESTIMATORS", "random_signs", "flipout_dense", "flipout_conv2d", "FlipoutDense", "FlipoutConv2D",
           "layer_types", "bayesian_mlp", "bayesian_cnn", "free_energy_loss", "independent_draws",
           "gradient_variance", "step_times", "predictive_draws"]
