"""Properties of bnnbook.keras.flipout: shapes, the KL in model.losses is the closed-form KL / N,
predictive draws differ between draws, posterior statistics cover every kernel weight, validation."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
tfp = pytest.importorskip("tensorflow_probability")

from bnnbook.keras import flipout as keras_flipout  # noqa: E402


@pytest.fixture(scope="module")
def lenet():
    return keras_flipout.bayesian_lenet5(1000, seed=0)


def test_lenet_shapes_and_kernel_weight_count(lenet):
    images = np.random.default_rng(0).uniform(size=(3, 28, 28)).astype(np.float32)
    assert lenet(images[..., None]).shape == (3, 10)
    stats = keras_flipout.posterior_stats(lenet)
    assert [len(means) for _, means, _ in stats] == [150, 2400, 48000, 10080, 840]
    assert all(np.all(stds > 0) and means.shape == stds.shape for _, means, stds in stats)


def _starting_biases(model):
    return [w.numpy() for w in model.weights if "bias" in w.name]


def test_every_initial_value_follows_the_seed(lenet):
    biases = _starting_biases(lenet)
    assert len(biases) == 5
    # each layer draws its own starting biases (TFP's default initialiser would repeat one draw in every layer)
    assert not any(np.allclose(a[:6], b[:6]) for i, a in enumerate(biases) for b in biases[i + 1:])
    same_seed, other_seed = keras_flipout.bayesian_lenet5(1000, seed=0), keras_flipout.bayesian_lenet5(1000, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(biases, _starting_biases(same_seed)))
    assert not any(np.allclose(a, b) for a, b in zip(biases, _starting_biases(other_seed)))
    same_kernels = keras_flipout.posterior_stats(same_seed)
    assert all(np.array_equal(m0, m1) for (_, m0, _), (_, m1, _) in zip(keras_flipout.posterior_stats(lenet), same_kernels))


def test_kl_in_losses_is_the_closed_form_kl_over_num_train(lenet):
    lenet(np.zeros((1, 28, 28, 1), np.float32))
    want = sum(float(tf.reduce_sum(tfp.distributions.kl_divergence(layer.kernel_posterior, layer.kernel_prior)))
               for layer in lenet.layers if hasattr(layer, "kernel_posterior"))
    np.testing.assert_allclose(float(tf.add_n(lenet.losses)) * 1000, want, rtol=1e-4)


def test_predictive_draws_shapes_probabilities_and_spread(lenet):
    images = np.random.default_rng(1).uniform(size=(5, 28, 28)).astype(np.float32)
    probs = keras_flipout.predictive_draws(lenet, images, num_draws=4, batch_size=2, softmax=True)
    assert probs.shape == (4, 5, 10)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    assert np.std(probs, axis=0).max() > 0  # each draw is a different network


def test_height_cnn_outputs_one_number_per_image_and_training_lowers_the_loss():
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(20, 32, 32)).astype(np.float32)
    targets = images.mean(axis=(1, 2)) * 10 - 5
    model = keras_flipout.height_cnn(20, image_size=32, channels=(2, 2), pool_size=2, seed=0)
    assert model(images[..., None]).shape == (20, 1)
    history = keras_flipout.train(model, images, targets, num_steps=60, batch_size=10, learning_rate=1e-2,
                                  likelihood="gaussian", progress=False)
    assert history["nll"][-10:].mean() < history["nll"][:10].mean()


def test_bad_input_raises_value_error_naming_the_argument(lenet):
    with pytest.raises(ValueError, match="num_train="):
        keras_flipout.bayesian_lenet5(0)
    with pytest.raises(ValueError, match="likelihood="):
        keras_flipout.train(lenet, np.zeros((4, 28, 28)), np.zeros(4), num_steps=1, batch_size=2, likelihood="poisson")
    with pytest.raises(ValueError, match="batch_size="):
        keras_flipout.train(lenet, np.zeros((4, 28, 28)), np.zeros(4), num_steps=1, batch_size=8)
    with pytest.raises(ValueError, match="num_draws="):
        keras_flipout.predictive_draws(lenet, np.zeros((1, 28, 28)), num_draws=0)
