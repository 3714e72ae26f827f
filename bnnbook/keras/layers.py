"""Bayes by Backprop in ``tf_keras``: a variational dense layer with a learned
scale-mixture prior, and a Monte Carlo predictive that runs all draws at once.

Taught in chapter "The reparameterization trick and Bayes by Backprop" (the
Keras/TFP half); the same model in JAX is built from :mod:`bnnbook.vi`.

Each weight ``w`` has ``q(w) = N(mu, softplus(rho)^2)``. On every call the
layer draws one weight matrix by reparameterisation,
``w = mu + softplus(rho) * eps``, and adds the single-sample estimate of its
complexity cost, ``kl_weight * sum(log q(w) - log p(w))``, with ``add_loss``.
With a Keras loss that is the *mean* negative log-likelihood over a batch,
``kl_weight = 1 / N`` (N training examples) makes the total the free energy
divided by N; with a *summed* likelihood per minibatch, use ``1 / M`` for M
minibatches per epoch. The two give the same minimiser.

The prior ``p(w) = pi N(0, sigma1^2) + (1 - pi) N(0, sigma2^2)`` is a layer of
its own, :class:`ScaleMixturePrior`, so several variational layers can share
(and learn) one set of ``sigma1, sigma2, pi``. They are stored as
``log sigma`` and ``logit pi``, so gradient steps can never make a scale
negative or ``pi`` leave (0, 1).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf
import tf_keras as keras

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _check_positive(name, value, fix):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} is not a number; {fix}") from None
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name}={value!r} must be finite and > 0; {fix}")
    return number


def _normal_log_prob(x, scale):
    return -0.5 * tf.square(x / scale) - tf.math.log(scale) - _LOG_SQRT_2PI


class ScaleMixturePrior(keras.layers.Layer):
    """``pi N(0, sigma1^2) + (1 - pi) N(0, sigma2^2)`` with learnable parameters.

    Args:
        sigma1, sigma2: the two standard deviations (> 0).
        pi: the weight of the first component, in (0, 1).
        trainable: learn the three parameters with the network (default).

    Taught in chapter "The reparameterization trick and Bayes by Backprop".
    """

    def __init__(self, sigma1: float = 1.0, sigma2: float = 0.1, pi: float = 0.2, trainable: bool = True, **kwargs):
        super().__init__(trainable=trainable, **kwargs)
        sigma1 = _check_positive("sigma1", sigma1, "pass a standard deviation, e.g. sigma1=1.0")
        sigma2 = _check_positive("sigma2", sigma2, "pass a standard deviation, e.g. sigma2=0.1")
        pi = float(pi)
        if not 0.0 < pi < 1.0:
            raise ValueError(f"pi={pi!r} must be strictly between 0 and 1 (the weight of the first component), "
                             f"e.g. pi=0.2")
        constant = keras.initializers.Constant
        self.log_sigma1 = self.add_weight(name="log_sigma1", shape=(), initializer=constant(math.log(sigma1)),
                                          trainable=trainable)
        self.log_sigma2 = self.add_weight(name="log_sigma2", shape=(), initializer=constant(math.log(sigma2)),
                                          trainable=trainable)
        self.logit_pi = self.add_weight(name="logit_pi", shape=(), initializer=constant(math.log(pi / (1 - pi))),
                                        trainable=trainable)
        self._config = {"sigma1": sigma1, "sigma2": sigma2, "pi": pi, "trainable": trainable}

    @property
    def sigma1(self) -> tf.Tensor:
        return tf.exp(self.log_sigma1)

    @property
    def sigma2(self) -> tf.Tensor:
        return tf.exp(self.log_sigma2)

    @property
    def pi(self) -> tf.Tensor:
        return tf.sigmoid(self.logit_pi)

    def log_prob(self, w: tf.Tensor) -> tf.Tensor:
        """Elementwise ``log p(w)``, computed with a log-sum-exp (no underflow in the tails)."""
        log_pi = tf.math.log_sigmoid(self.logit_pi)
        log_one_minus_pi = tf.math.log_sigmoid(-self.logit_pi)
        return tf.reduce_logsumexp(tf.stack([log_pi + _normal_log_prob(w, self.sigma1),
                                             log_one_minus_pi + _normal_log_prob(w, self.sigma2)]), axis=0)

    def stddev(self) -> tf.Tensor:
        """Standard deviation of the mixture, ``sqrt(pi sigma1^2 + (1 - pi) sigma2^2)``."""
        return tf.sqrt(self.pi * tf.square(self.sigma1) + (1.0 - self.pi) * tf.square(self.sigma2))

    def call(self, w):  # lets the prior be used as a layer too; returns log p(w)
        return self.log_prob(w)

    def get_config(self):
        return {**super().get_config(), **self._config}


class DenseVariational(keras.layers.Layer):
    """A dense layer with a mean-field Gaussian posterior on its kernel and bias.

    Args:
        units: output size.
        prior: a :class:`ScaleMixturePrior` (shared between layers to learn one prior).
        kl_weight: weight of this layer's complexity cost (``1/N`` with a mean
            likelihood loss; see the module docstring).
        activation: Keras activation of the output.
        init_rho: initial ``rho`` of every weight (scale ``softplus(init_rho)``).
        mean_init_std: standard deviation of the initial means (default: the
            prior's standard deviation).
        seed: seeds the initial means (kernel ``2 * seed``, bias ``2 * seed + 1``,
            so layers with different seeds never share values); ``None``: unseeded.

    The layer adds its complexity cost with ``add_loss`` at every call and
    records the last value as ``self.last_kl``.

    Taught in chapter "The reparameterization trick and Bayes by Backprop".
    """

    def __init__(self, units: int, prior: ScaleMixturePrior, kl_weight: float, activation=None,
                 init_rho: float = -3.0, mean_init_std: float | None = None, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(f"units={units!r} must be an integer >= 1")
        if not isinstance(prior, ScaleMixturePrior):
            raise ValueError(f"prior={prior!r} must be a bnnbook.keras.layers.ScaleMixturePrior")
        kl_weight = float(kl_weight)
        if not math.isfinite(kl_weight) or kl_weight < 0:
            raise ValueError(f"kl_weight={kl_weight!r} must be finite and >= 0; use 1/N for N training "
                             f"examples with a mean likelihood loss")
        if mean_init_std is not None:
            _check_positive("mean_init_std", mean_init_std, "pass e.g. 0.1, or None for the prior's std")
        if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0):
            raise ValueError(f"seed={seed!r} must be an integer >= 0, or None for unseeded initial means")
        self.units = int(units)
        self.prior = prior
        self.kl_weight = kl_weight
        self.activation = keras.activations.get(activation)
        self.init_rho = float(init_rho)
        self.mean_init_std = mean_init_std
        self.seed = seed
        self.last_kl = None

    def build(self, input_shape):
        fan_in = int(input_shape[-1])
        std = float(self.prior.stddev()) if self.mean_init_std is None else float(self.mean_init_std)
        # One initializer per weight (a reused seeded initializer repeats its values), with seeds that no
        # other layer's seed maps to: seed and seed + 1 would give layer s's bias layer s + 1's kernel.
        kernel_seed, bias_seed = (None, None) if self.seed is None else (2 * self.seed, 2 * self.seed + 1)
        kernel_init = keras.initializers.RandomNormal(stddev=std, seed=kernel_seed)
        bias_init = keras.initializers.RandomNormal(stddev=std, seed=bias_seed)
        rho = keras.initializers.Constant(self.init_rho)
        self.kernel_mu = self.add_weight(name="kernel_mu", shape=(fan_in, self.units), initializer=kernel_init)
        self.bias_mu = self.add_weight(name="bias_mu", shape=(self.units,), initializer=bias_init)
        self.kernel_rho = self.add_weight(name="kernel_rho", shape=(fan_in, self.units), initializer=rho)
        self.bias_rho = self.add_weight(name="bias_rho", shape=(self.units,), initializer=rho)
        super().build(input_shape)

    def _draw(self, mu, rho):
        scale = tf.nn.softplus(rho)
        w = mu + scale * tf.random.normal(tf.shape(mu), dtype=mu.dtype)
        # single-sample estimate of KL(q || p) for these weights: log q(w) - log p(w)
        log_q = _normal_log_prob(w - mu, scale)
        return w, tf.reduce_sum(log_q - self.prior.log_prob(w))

    def call(self, inputs):
        kernel, kernel_kl = self._draw(self.kernel_mu, self.kernel_rho)
        bias, bias_kl = self._draw(self.bias_mu, self.bias_rho)
        kl = self.kl_weight * (kernel_kl + bias_kl)
        self.add_loss(kl)
        self.last_kl = kl
        return self.activation(tf.matmul(inputs, kernel) + bias)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)[:-1].concatenate([self.units])

    def get_config(self):
        return {**super().get_config(), "units": self.units, "kl_weight": self.kl_weight,
                "activation": keras.activations.serialize(self.activation), "init_rho": self.init_rho,
                "mean_init_std": self.mean_init_std, "seed": self.seed}


def gaussian_nll(noise_std: float = 1.0):
    """A Keras loss: per-example ``-log N(y; y_pred, noise_std^2)`` (averaged by Keras over the batch).

    Taught in chapter "The reparameterization trick and Bayes by Backprop".
    """
    noise_std = _check_positive("noise_std", noise_std, "pass the known noise standard deviation, e.g. 1.0")
    log_norm = math.log(noise_std) + _LOG_SQRT_2PI

    def loss(y_true, y_pred):
        return tf.reduce_sum(0.5 * tf.square((y_true - y_pred) / noise_std) + log_norm, axis=-1)

    return loss


def predictive_draws(model: keras.Model, inputs, num_draws: int = 500, batch_draws: int = 100) -> np.ndarray:
    """``num_draws`` stochastic forward passes of ``model`` on ``inputs``.

    The draws run ``batch_draws`` at a time inside one compiled
    ``tf.function`` (a ``tf.map_fn`` over draws; every iteration calls the
    model, so every variational layer samples fresh weights), so 500 draws cost
    a handful of graph calls rather than 500 eager ones. The iterations run in
    order, so with ``keras.utils.set_random_seed`` and
    ``tf.config.experimental.enable_op_determinism()`` the draws repeat exactly.
    Returns an array of shape ``(num_draws, n, outputs)``.

    Taught in chapter "The reparameterization trick and Bayes by Backprop".
    """
    if not isinstance(num_draws, (int, np.integer)) or num_draws < 1:
        raise ValueError(f"num_draws={num_draws!r} must be an integer >= 1, e.g. 500")
    if not isinstance(batch_draws, (int, np.integer)) or batch_draws < 1:
        raise ValueError(f"batch_draws={batch_draws!r} must be an integer >= 1")
    inputs = tf.convert_to_tensor(inputs, dtype=tf.float32)

    @tf.function
    def draws_chunk(count):
        # One iteration at a time: with parallel iterations the stateful random ops of
        # different layers interleave across draws, so the same seed gave different draws.
        return tf.map_fn(lambda _: model(inputs, training=False), tf.range(count),
                         fn_output_signature=tf.float32, parallel_iterations=1)

    chunks, remaining = [], int(num_draws)
    while remaining > 0:
        count = min(remaining, int(batch_draws))
        chunks.append(draws_chunk(tf.constant(count)).numpy())
        remaining -= count
    return np.concatenate(chunks, axis=0)


__all__ = ["ScaleMixturePrior", "DenseVariational", "gaussian_nll", "predictive_draws"]
