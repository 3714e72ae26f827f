"""The practical approximations of chapter "Practical approximations", checked against exact or library answers."""

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from bnnbook import bootstrap, data, metrics, nets
from bnnbook.approximations import dropout, ensemble, laplace, sgmcmc, temperature


def _tiny_problem(n=300, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int32) + (x[:, 2] > 1).astype(np.int32)
    return x, y


def test_last_layer_hessian_is_the_exact_hessian_of_the_nll():
    # The logits are linear in the last layer, so the Gauss-Newton matrix is the true Hessian.
    x, y = _tiny_problem()
    net = nets.mlp((5,), 3, activation=jax.nn.sigmoid)
    params = net.init(jax.random.key(0), x[:1])
    features = laplace.last_layer_features(params, x)
    mean = laplace.last_layer_mean(params)

    def nll(flat):
        logits = features @ flat.reshape(mean.shape)
        return -jnp.take_along_axis(jax.nn.log_softmax(logits), jnp.asarray(y)[:, None], 1).sum()

    exact = jax.hessian(nll)(mean.reshape(-1))
    ours = laplace.last_layer_hessian(features, mean, block=64)
    np.testing.assert_allclose(ours, exact, rtol=1e-4, atol=1e-4)
    # The features end with the bias column, and the features reproduce the network's logits.
    np.testing.assert_allclose(features[:, -1], 1.0)
    np.testing.assert_allclose(features @ mean, net.apply(params, x), atol=1e-5)


def test_laplace_evidence_is_maximised_and_draws_have_the_posterior_covariance():
    x, y = _tiny_problem()
    net = nets.mlp((5,), 3, activation=jax.nn.sigmoid)
    params = net.init(jax.random.key(1), x[:1])
    fitted = laplace.fit_last_layer(params, x, y, prior_precisions=np.logspace(-4, 6, 201))
    grid_best = fitted.prior_precisions[np.argmax(fitted.log_evidence)]
    assert fitted.prior_precision == grid_best
    # The analytic derivative of log Z in lambda changes sign at the chosen value.
    h, w2, p = np.asarray(fitted.eigenvalues, np.float64), float(np.sum(np.asarray(fitted.mean) ** 2)), fitted.mean.size
    slope = lambda lam: -0.5 * w2 + 0.5 * p / lam - 0.5 * np.sum(1.0 / (h + lam))
    assert slope(grid_best / 1.2) > 0 > slope(grid_best * 1.2)
    # Weight draws: the empirical covariance of the draws matches (H + lambda I)^-1.
    scale = 1.0 / np.sqrt(np.clip(h, 0, None) + fitted.prior_precision)
    z = np.random.default_rng(0).standard_normal((20000, p))
    draws = (z * scale) @ np.asarray(fitted.eigenvectors, np.float64).T
    covariance = np.asarray(fitted.eigenvectors, np.float64) @ np.diag(scale ** 2) @ np.asarray(fitted.eigenvectors, np.float64).T
    np.testing.assert_allclose(np.cov(draws.T), covariance, atol=0.05 * covariance.diagonal().max())
    probs = laplace.last_layer_probs(fitted, params, x, jax.random.key(2), 50)
    assert probs.shape == (50, len(x), 3)
    np.testing.assert_allclose(np.asarray(probs).sum(-1), 1.0, atol=1e-5)


def test_laplace_refuses_an_evidence_maximum_at_the_grid_edge():
    x, y = _tiny_problem()
    params = nets.mlp((5,), 3).init(jax.random.key(1), x[:1])
    with pytest.raises(ValueError, match="edge"):
        laplace.fit_last_layer(params, x, y, activation=jax.nn.relu, prior_precisions=np.logspace(3, 4, 5))


def test_sgld_and_sghmc_steps_equal_blackjax_for_the_same_key():
    position = {"a": jnp.arange(3.0), "b": jnp.ones((2, 2))}
    grad = jax.tree.map(lambda p: -0.3 * p + 0.1, position)
    key = jax.random.key(4)
    ours = sgmcmc.sgld_step(key, sgmcmc.sgld_init(position), grad, 0.01).position
    theirs = blackjax.sgmcmc.diffusions.overdamped_langevin()(key, position, grad, 0.01)
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-6), ours, theirs)
    momentum = jax.tree.map(lambda p: 0.2 * p, position)
    ours = sgmcmc.sghmc_step(key, sgmcmc.SGHMCState(position, momentum), grad, 0.01, friction=0.5)
    theirs = blackjax.sgmcmc.diffusions.sghmc(alpha=0.5)(key, position, momentum, grad, 0.01)
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-6), ours.position, theirs[0])
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-6), ours.momentum, theirs[1])


@pytest.mark.parametrize("kernel", ["sgld", "sghmc"])
def test_sgmcmc_samples_a_conjugate_gaussian_posterior(kernel):
    # y_i ~ N(theta, 1), theta ~ N(0, 1): posterior N(sum y / (N + 1), 1 / (N + 1)), minibatch gradients.
    rng = np.random.default_rng(0)
    n = 200
    y = (1.5 + rng.standard_normal(n)).astype(np.float32)
    post_mean, post_var = y.sum() / (n + 1), 1.0 / (n + 1)
    log_prior = lambda p: -0.5 * jnp.sum(p["theta"] ** 2)
    log_lik = lambda p, x, _labels: -0.5 * jnp.sum((x - p["theta"]) ** 2)
    start = {"theta": jnp.zeros((4,))}  # 4 chains
    result = sgmcmc.run_sgmcmc(kernel, log_prior, log_lik, start, y, np.zeros(n, np.int32), num_epochs=400,
                               batch_size=20, step_size=2e-4 if kernel == "sgld" else 5e-3, friction=20.0,
                               keep_from_epoch=50, key=jax.random.key(0), progress=False)
    draws = np.asarray(result.samples["theta"]).ravel()
    assert abs(draws.mean() - post_mean) < 4 * np.sqrt(post_var / 50)
    assert 0.6 < draws.var() / post_var < 1.6


def test_cyclical_step_size_restarts_each_cycle():
    steps = jnp.arange(30)
    sizes = np.asarray(sgmcmc.cyclical_step_size(steps, 10, 1.0))
    assert sizes[0] == sizes[10] == sizes[20] == 1.0
    assert np.all(np.diff(sizes[:10]) < 0) and sizes[9] < 0.03


def test_temperature_scaling_recovers_the_temperature_and_keeps_the_argmax():
    rng = np.random.default_rng(0)
    logits = 3.0 * rng.standard_normal((20000, 5))
    true_t = 2.5
    p = temperature.scaled_probs(logits, true_t).astype(np.float64)
    labels = np.array([rng.choice(5, p=row / row.sum()) for row in p])
    fitted = temperature.fit_temperature(logits, labels)
    assert abs(fitted - true_t) < 0.1
    assert np.array_equal(temperature.scaled_probs(logits, fitted).argmax(1), logits.argmax(1))
    assert temperature.nll_at_temperature(logits, labels, fitted) <= temperature.nll_at_temperature(logits, labels, 1.0)


def test_ensemble_members_train_apart_and_dropout_at_rate_zero_is_the_network():
    x, y = _tiny_problem(512)
    net = nets.mlp((16,), 3, activation=jax.nn.sigmoid)
    stacked = ensemble.stack_members(lambda k: net.init(k, x[:1]), jax.random.key(0), 3)

    def loss(params, images, labels, key):
        return optax.softmax_cross_entropy_with_integer_labels(dropout.dropout_logits(params, images, key, 0.1),
                                                                labels).mean()

    trained, losses = ensemble.fit_members(loss, stacked, optax.adam(1e-2), x, y, num_epochs=15, batch_size=64,
                                           key=jax.random.key(1), progress=False)
    assert losses.shape == (15, 3) and np.all(losses[-1] < losses[0])
    probs = np.asarray(ensemble.members_probs(net.apply, trained, x))
    assert probs.shape == (3, 512, 3) and np.abs(probs[0] - probs[1]).max() > 1e-3  # different members
    one = ensemble.member(trained, 0)
    np.testing.assert_allclose(dropout.dropout_logits(one, x, jax.random.key(0), 0.0), net.apply(one, x), atol=1e-5)
    draws = np.asarray(dropout.mc_dropout_probs(one, x, jax.random.key(3), 0.5, 8))
    assert draws.shape == (8, 512, 3) and np.abs(draws[0] - draws[1]).max() > 1e-3
    with pytest.raises(ValueError, match="rate"):
        dropout.dropout_logits(one, x, jax.random.key(0), 1.0)


def test_bootstrap_interval_covers_the_truth_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(100):
        sample = rng.standard_normal(200)
        low, high = bootstrap.interval(np.mean, sample, num_resamples=300, seed=trial)
        covered += low <= 0.0 <= high
    assert 88 <= covered <= 99


def test_bootstrap_resamples_whole_groups():
    # Two groups with constant values: a group resample can only give means of 0, 0.5 or 1.
    values = np.r_[np.zeros(50), np.ones(50)]
    groups = np.r_[np.zeros(50), np.ones(50)]
    low, high = bootstrap.interval(np.mean, values, groups=[groups], num_resamples=200)
    assert low in (0.0, 0.5) and high in (0.5, 1.0)
    with pytest.raises(ValueError, match="groups"):
        bootstrap.interval(np.mean, values, groups=[groups[:10]])


def test_bootstrap_passes_a_tuple_set_as_its_arrays_and_keeps_pairs_together():
    # (probs, labels) is resampled row by row together: predictions stay with their labels, so an
    # always-right classifier has accuracy 1 in every resample, and the statistic is called as f(probs, labels).
    labels = np.arange(300) % 3
    probs = np.eye(3)[labels]
    assert bootstrap.interval(metrics.accuracy, (probs, labels), num_resamples=50) == (1.0, 1.0)
    half_right = np.eye(3)[np.where(np.arange(300) % 2 == 0, labels, (labels + 1) % 3)]
    low, high = bootstrap.interval(metrics.accuracy, (half_right, labels), num_resamples=200)
    assert low < 0.5 < high and high - low < 0.2


def test_brier_score_and_rotation_and_two_moons():
    probs = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    assert metrics.brier_score(probs, np.array([0, 0, 1])) == pytest.approx((0 + 2 + 0.5) / 3)
    images = np.zeros((1, 28, 28), np.float32)
    images[0, 2:6, 14] = 1.0  # a bar above the centre
    turned = data.rotate(images, 180)
    assert turned.shape == images.shape and turned[0, 22:26, 13:15].sum() > 3
    np.testing.assert_allclose(data.rotate(images.reshape(1, -1), 0), images.reshape(1, -1))
    x, y = data.two_moons(100, seed=0)
    assert x.shape == (100, 2) and set(np.unique(y)) == {0, 1}
