"""Bayesian CNNs with TensorFlow Probability's Flipout layers (``tf_keras``):
LeNet-5 for MNIST and a small CNN that regresses a height from a silhouette.

Taught in chapter "Flipout" (its Keras/TFP half); the JAX layers of the same
chapter are :mod:`bnnbook.flipout`.

Every convolution and dense layer is a ``tfp.layers.Convolution2DFlipout`` or
``tfp.layers.DenseFlipout`` with a mean-field Gaussian posterior on its
kernel and a standard normal prior. Each layer adds its closed-form
``KL(q || p)`` to ``model.losses`` on every call; we divide it by the
training-set size ``N``, so that with the *mean* cross-entropy over a
minibatch the loss is the free energy per example,

    mean_n[-log p(y_n | x_n, w)] + KL(q || p) / N.

:func:`train` runs that loss with Adam in a compiled ``tf.function`` step,
:func:`predictive_draws` gives ``num_draws`` posterior draws of every output
(each call of the model samples fresh weight noise) in one compiled
``tf.map_fn``, and
:func:`posterior_stats` reads the posterior means and standard deviations of
every layer.
"""

from __future__ import annotations

import sys
from typing import Callable

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras as keras
from tqdm import tqdm

from bnnbook._checks import check_count

tfd = tfp.distributions


def _flipout_layers(num_train: int, init_untransformed_scale: float):
    """``conv(filters, kernel, seed, padding)`` and ``dense(units, seed, activation)`` makers with KL / N."""

    def kl_per_example(q, p, _):
        return tfd.kl_divergence(q, p) / num_train

    def posterior(layer_seed):
        return tfp.layers.default_mean_field_normal_fn(
            loc_initializer=keras.initializers.HeNormal(seed=layer_seed),
            untransformed_scale_initializer=keras.initializers.RandomNormal(init_untransformed_scale, 0.1,
                                                                            seed=layer_seed + 1))

    def bias(layer_seed):
        # A point estimate, started as TFP's default (N(0, 0.1)) but with its own seeded initialiser per layer:
        # TFP's default shares one unseeded initialiser, which gives every layer the same starting biases.
        return tfp.layers.default_mean_field_normal_fn(
            is_singular=True, loc_initializer=keras.initializers.RandomNormal(0.0, 0.1, seed=layer_seed + 2))

    def conv(filters, kernel, layer_seed, padding="SAME"):
        return tfp.layers.Convolution2DFlipout(filters, kernel, padding=padding, activation="relu",
                                               kernel_posterior_fn=posterior(layer_seed),
                                               kernel_divergence_fn=kl_per_example,
                                               bias_posterior_fn=bias(layer_seed), seed=layer_seed)

    def dense(units, layer_seed, activation=None):
        return tfp.layers.DenseFlipout(units, activation=activation, kernel_posterior_fn=posterior(layer_seed),
                                       kernel_divergence_fn=kl_per_example, bias_posterior_fn=bias(layer_seed),
                                       seed=layer_seed)

    return conv, dense


def bayesian_lenet5(num_train: int, num_classes: int = 10, init_untransformed_scale: float = -6.0,
                    seed: int = 0) -> keras.Sequential:
    """LeNet-5 of Flipout layers: conv 6 (5x5, same), pool, conv 16 (5x5, valid), pool, conv 120 (5x5,
    valid: a 1x1 map), dense 84, dense ``num_classes``; ReLU activations, about 61,500 kernel weights.

    Args:
        num_train: training-set size ``N``; each layer's KL is divided by it.
        num_classes: number of output logits.
        init_untransformed_scale: initial ``rho`` of the posterior scales
            (``scale = softplus(rho)``); TFP's default is about -3 (scale
            0.049). A smaller start (-6: scale 0.0025) lets the means learn
            first, and the KL term then widens the scales it can afford.
        seed: seed of the posterior initialisers and of the layers' noise.

    Returns an uncompiled ``tf_keras`` model mapping ``(n, 28, 28, 1)`` images to logits.

    Taught in chapter "Flipout".
    """
    num_train = check_count("num_train", num_train)
    num_classes = check_count("num_classes", num_classes, 2)
    tf.random.set_seed(seed)
    conv, dense = _flipout_layers(num_train, init_untransformed_scale)
    return keras.Sequential([
        keras.layers.InputLayer(input_shape=(28, 28, 1)),
        conv(6, 5, seed + 10), keras.layers.MaxPooling2D(2, 2),
        conv(16, 5, seed + 20, "VALID"), keras.layers.MaxPooling2D(2, 2),
        conv(120, 5, seed + 30, "VALID"), keras.layers.Flatten(),
        dense(84, seed + 40, "relu"), dense(num_classes, seed + 50),
    ], name="bayesian_lenet5")


def height_cnn(num_train: int, image_size: int = 126, channels=(8, 16), pool_size: int = 4,
               init_untransformed_scale: float = -6.0, seed: int = 0) -> keras.Sequential:
    """A Bayesian CNN regressor: two Flipout conv layers (5x5, ReLU) each followed by a
    ``pool_size`` max-pooling, then one Bayesian output unit (``DenseFlipout(1)``).

    Each layer's KL is divided by ``num_train``. Input ``(n, image_size, image_size, 1)``.

    Taught in chapter "Flipout".
    """
    num_train = check_count("num_train", num_train)
    check_count("image_size", image_size, 8)
    check_count("pool_size", pool_size)
    if len(channels) != 2:
        raise ValueError(f"channels={channels!r} must give the two conv layers' channel counts, e.g. (8, 16)")
    tf.random.set_seed(seed)
    conv, dense = _flipout_layers(num_train, init_untransformed_scale)
    return keras.Sequential([
        keras.layers.InputLayer(input_shape=(image_size, image_size, 1)),
        conv(channels[0], 5, seed + 10), keras.layers.MaxPooling2D(pool_size, pool_size),
        conv(channels[1], 5, seed + 20), keras.layers.MaxPooling2D(pool_size, pool_size),
        keras.layers.Flatten(), dense(1, seed + 30),
    ], name="height_cnn")


def _as_images(inputs) -> np.ndarray:
    inputs = np.asarray(inputs, np.float32)
    return inputs[..., None] if inputs.ndim == 3 else inputs


def train(model: keras.Model, inputs, targets, *, num_steps: int, batch_size: int = 128,
          learning_rate: float = 1e-3, likelihood: str = "categorical", noise_std: float = 1.0, seed: int = 0,
          callback_steps=(), callback: Callable[[int, keras.Model], None] | None = None,
          desc: str = "training", progress: bool = True) -> dict:
    """Minimise the mean negative log-likelihood + ``sum(model.losses)`` (the KL / N) with Adam.

    ``likelihood="categorical"``: integer labels, the model outputs logits.
    ``"gaussian"``: real targets, the model outputs the mean, known
    ``noise_std`` (the loss is ``0.5 ((y - f) / noise_std)^2``; constants
    dropped). Minibatches come from a fresh seeded NumPy permutation every
    epoch; each step runs in one compiled ``tf.function``.
    ``callback(step, model)`` runs after each step listed in
    ``callback_steps``. Returns ``{"nll": array, "kl": array}`` per step.

    Taught in chapter "Flipout".
    """
    num_steps = check_count("num_steps", num_steps)
    inputs = _as_images(inputs)
    targets = np.asarray(targets, np.int64 if likelihood == "categorical" else np.float32)
    if likelihood not in ("categorical", "gaussian"):
        raise ValueError(f"likelihood={likelihood!r} must be 'categorical' or 'gaussian'")
    if not noise_std > 0:
        raise ValueError(f"noise_std={noise_std!r} must be > 0, the known standard deviation of the targets")
    if len(inputs) != len(targets):
        raise ValueError(f"inputs has {len(inputs)} examples but targets has {len(targets)}; pass one per input")
    batch_size = check_count("batch_size", batch_size)
    if batch_size > len(inputs):
        raise ValueError(f"batch_size={batch_size} exceeds the {len(inputs)} training examples")
    optimizer = keras.optimizers.Adam(learning_rate)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            outputs = model(x, training=True)
            if likelihood == "categorical":
                nll = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, outputs, from_logits=True))
            else:
                nll = tf.reduce_mean(0.5 * tf.square((y - outputs[:, 0]) / noise_std))
            kl = tf.add_n(model.losses)
            loss = nll + kl
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return nll, kl

    rng = np.random.default_rng(seed)
    per_epoch = len(inputs) // batch_size
    history = {"nll": np.zeros(num_steps), "kl": np.zeros(num_steps)}
    wanted = set(int(s) for s in callback_steps)
    order = rng.permutation(len(inputs))
    with tqdm(total=num_steps, desc=desc, file=sys.stdout, ncols=100, mininterval=1.0, disable=not progress) as bar:
        for i in range(num_steps):
            if i % per_epoch == 0 and i:
                order = rng.permutation(len(inputs))
            index = order[(i % per_epoch) * batch_size: (i % per_epoch + 1) * batch_size]
            nll, kl = step(tf.constant(inputs[index]), tf.constant(targets[index]))
            history["nll"][i], history["kl"][i] = float(nll), float(kl)
            if (i + 1) % 50 == 0 or i + 1 == num_steps:
                bar.set_postfix(nll=f"{np.mean(history['nll'][max(0, i - 49): i + 1]):.3f}", refresh=False)
                bar.update(i + 1 - bar.n)
            if callback is not None and i + 1 in wanted:
                callback(i + 1, model)
    return history


def predictive_draws(model: keras.Model, inputs, num_draws: int = 50, batch_size: int = 2000,
                     softmax: bool = False) -> np.ndarray:
    """Outputs of ``num_draws`` weight draws: shape ``(num_draws, n, outputs)``.

    Every model call samples new weight noise, so for each input, draw ``s``
    is an exact draw from the posterior predictive. With Flipout layers the
    inputs of one call do not share one weight sample (each gets its own
    signs), so draw ``s`` is not one network across inputs; per-input
    statistics (mean, spread, entropy, mutual information) are unaffected.
    All draws of a chunk of ``batch_size`` inputs run in one compiled
    ``tf.map_fn``.
    ``softmax=True`` returns class probabilities instead of logits.

    Taught in chapter "Flipout".
    """
    num_draws = check_count("num_draws", num_draws)
    batch_size = check_count("batch_size", batch_size)
    inputs = _as_images(inputs)

    @tf.function
    def draws(x):
        def one(_):
            out = model(x, training=False)
            return tf.nn.softmax(out) if softmax else out
        # one iteration at a time: parallel iterations would interleave the layers' seeded random ops
        return tf.map_fn(one, tf.range(num_draws), fn_output_signature=tf.float32, parallel_iterations=1)

    chunks = [draws(tf.constant(inputs[i: i + batch_size])).numpy() for i in range(0, len(inputs), batch_size)]
    return np.concatenate(chunks, axis=1)


def posterior_stats(model: keras.Model) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``[(layer name, kernel posterior means, kernel posterior stds), ...]`` for every Flipout layer.

    Taught in chapter "Flipout".
    """
    stats = []
    for layer in model.layers:
        posterior = getattr(layer, "kernel_posterior", None)
        if posterior is not None:
            stats.append((layer.name, np.asarray(posterior.mean()).ravel(), np.asarray(posterior.stddev()).ravel()))
    if not stats:
        raise ValueError("model has no layer with a kernel posterior; build it with bayesian_lenet5 (or TFP's "
                         "Flipout/Reparameterization layers)")
    return stats


__all__ = ["bayesian_lenet5", "height_cnn", "train", "predictive_draws", "posterior_stats"]
