"""Bad input gets a clear error, nothing half-written: one table row per public entry point.

``CASES`` calls every public function (and every class whose constructor takes
settings) of the modules on the API page (``api.md``) with one bad input:
wrong shapes, NaN or inf, sigma <= 0, beta < 0, a count < 1, empty data, an
unknown name. Each row names the exception and a pattern its message must
match: the pattern names the bad argument and, where there is one, the fix.
``EXEMPT`` lists, with the reason, what has no input worth checking or is a
pure building block run under ``jit``/``vmap``/``grad`` whose driver checks
the inputs. :func:`test_every_public_callable_is_covered` fails as soon as a
public function is added without a row in either.

The data files (a truncated or corrupt file in a temporary ``$BNNBOOK_DATA``,
no file while offline), an unknown profile, and "nothing half-written" (a
failed save keeps the previous results file) have their own tests below.
Everything here is tiny: no training, no data set is read in full.
"""

from __future__ import annotations

import atexit
import gzip
import importlib
import inspect
import pathlib
import re
import shutil
import tempfile

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from bnnbook import (approximations, bootstrap, data, flipout, hmc, layers, likelihoods, metrics, nets, ood, plots,
                     predictive, priors, results, runtime, train, vi)
from bnnbook.approximations import laplace as laplace_lib
from bnnbook.hmc import surrogate
from bnnbook.hmc.sample import mass_windows
from bnnbook.vi import classifier, directions, last_layer

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

# --------------------------------------------------------------------------
# Tiny inputs shared by the rows.
# --------------------------------------------------------------------------

KEY = jax.random.key(0)
NAN = float("nan")
PROBS = np.array([[0.7, 0.3], [0.2, 0.8]])
LABELS = np.array([0, 1])
PARAMS = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
Q = vi.init_mean_field(PARAMS)
Q_NAN = {"mean": {"w": jnp.full((2, 3), jnp.nan), "b": jnp.zeros(3)}, "rho": Q["rho"]}
X = jnp.ones((4, 2))


def APPLY(w, x):  # a linear "network": logits of shape (n, 3)
    return x @ w["w"] + w["b"]


MLP = nets.mlp((3,), 2)
MLP_PARAMS = MLP.init(KEY, jnp.ones((1, 2)))
DRAWS = jax.tree_util.tree_map(lambda leaf: jnp.stack([leaf, leaf]), PARAMS)  # two weight draws
LOG_DENSITY = lambda p: -0.5 * jnp.sum(p["w"] ** 2)  # noqa: E731


def loss_fn(params, batch, key):
    return jnp.sum(params ** 2), {}


def _tmp() -> pathlib.Path:
    """A fresh temporary folder, removed when the session ends."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix="bnnbook-bad-input-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _truncated_mnist_dir() -> pathlib.Path:
    """A data folder whose MNIST test labels are a gzip file cut in half."""
    root = _tmp()
    (root / "mnist").mkdir()
    whole = gzip.compress(bytes(range(256)) * 40)
    (root / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(whole[: len(whole) // 2])
    return root


def _run(tmp: pathlib.Path | None = None) -> runtime.Run:
    return runtime.Run(chapter="bad_input", profile="quick", framework="none", backend="cpu", devices=("cpu",),
                       versions={})


def _haiku(module_fn, x):
    """Build and initialise a Haiku module inside a transform (where its checks run)."""
    return hk.transform(lambda inputs: module_fn()(inputs)).init(KEY, x)


def _fit():
    return classifier.Fit(**{name: None for name in classifier.Fit._fields} | {
        "mean": jnp.zeros((1, classifier.num_parameters((2, 2)))),
        "rho": jnp.zeros((1, classifier.num_parameters((2, 2)))), "sizes": (2, 2)})


def _row() -> results.Row:
    fields = {f.name: None for f in results.dataclasses.fields(results.Row)}
    return results.Row(**fields)


# --------------------------------------------------------------------------
# The table: (function, call with one bad input, exception, pattern of the message).
# --------------------------------------------------------------------------

E = ValueError
CASES = [
    # runtime
    (runtime.start, lambda: runtime.start("", framework="none", verbose=False), E,
     r"chapter must be a non-empty string"),
    (runtime.resolve_profile, lambda: runtime.resolve_profile(False, env={"BNNBOOK_PROFILE": "bogus"}), E,
     r"BNNBOOK_PROFILE='bogus' is not a profile; set it to one of quick, full"),
    (runtime.package_versions, lambda: runtime.package_versions("numpy"), E,
     r"names='numpy' must be a list of module names"),
    (runtime.save_results, lambda: runtime.save_results(_run(), {"nll": NAN}, directory=_tmp()), E,
     r"metric 'nll' = nan is not finite"),
    (runtime.load_results, lambda: runtime.load_results("no_such_chapter", directory=_tmp()), FileNotFoundError,
     r"no results for chapter 'no_such_chapter' at .*no_such_chapter\.json; run that chapter first"),
    (runtime.Run.save_results, lambda: _run().save_results({}, directory=_tmp()), E, r"metrics is empty"),
    # data
    (data.fetch, lambda: data.fetch("mnist", "t10k-labels-idx1-ubyte.gz", directory=_truncated_mnist_dir(),
                                    download=False), data.ChecksumError,
     r"t10k-labels-idx1-ubyte\.gz is not a complete gzip file .*Delete it and load again"),
    (data.parse_idx, lambda: data.parse_idx(b"\x01\x02\x08\x01"), E, r"not an IDX file: bad magic number"),
    (data.load_images, lambda: data.load_images("mnits"), E, r"unknown dataset 'mnits'; choose one of"),
    (data.load_mnist, lambda: data.load_mnist(validation_size=-1), E, r"validation_size=-1 must be >= 0"),
    (data.load_fashion_mnist, lambda: data.load_fashion_mnist(validation_size=-5), E,
     r"validation_size=-5 must be >= 0"),
    (data.render_letters, lambda: data.render_letters(""), E, r"letters is empty; pass e\.g\. 'ABC'"),
    (data.letters_dataset, lambda: data.letters_dataset("huge"), E, r"size='huge'; use 'small' or 'standard'"),
    (data.uniform_noise, lambda: data.uniform_noise(0), E, r"n=0 must be an integer >= 1"),
    (data.ood_probes, lambda: data.ood_probes(num_noise=0), E, r"num_noise=0 must be an integer >= 1"),
    (data.sinusoid, lambda: data.sinusoid(noise_std=NAN), E, r"noise_std=nan must be a finite number >= 0"),
    (data.sinusoid_mean, lambda: data.sinusoid_mean([0.1, NAN]), E, r"x has 1 non-finite value"),
    (data.neal_regression, lambda: data.neal_regression(noise_std=-0.1), E,
     r"noise_std=-0\.1 must be a finite number >= 0"),
    (data.two_moons, lambda: data.two_moons(noise_std=float("inf")), E, r"noise_std=inf must be a finite number"),
    (data.rotate, lambda: data.rotate(np.zeros((0, 28, 28)), 10.0), E, r"images is empty"),
    (data.silhouettes, lambda: data.silhouettes(0), E, r"n=0 must be an integer >= 1"),
    (data.add_hairs, lambda: data.add_hairs(np.ones((1, 8, 8)), density=0.0), E, r"density=0\.0 must be in \(0, 1\]"),
    # metrics
    (metrics.accuracy, lambda: metrics.accuracy(np.ones(3), [0]), E, r"probs must have shape \(\.\.\., n, classes\)"),
    (metrics.nll, lambda: metrics.nll(PROBS, np.array([0.0, 1.0])), E, r"labels has dtype float64; pass integer"),
    (metrics.brier_score, lambda: metrics.brier_score(PROBS, np.array([0, 1, 1])), E,
     r"labels must have shape \(2,\) to match probs"),
    (metrics.max_probability, lambda: metrics.max_probability([[NAN, 0.5]]), E, r"probs has negative or non-finite"),
    (metrics.reliability_bins, lambda: metrics.reliability_bins(PROBS, LABELS, num_bins=0), E,
     r"num_bins=0 must be an integer >= 1"),
    (metrics.expected_calibration_error, lambda: metrics.expected_calibration_error(PROBS, LABELS, num_bins=2.5), E,
     r"num_bins=2\.5 must be an integer >= 1"),
    (metrics.auroc, lambda: metrics.auroc([], [0.5]), E, r"in_distribution_scores must be a non-empty 1-D array"),
    (metrics.fpr_at_tpr, lambda: metrics.fpr_at_tpr([0.1], [0.2], tpr=0.0), E, r"tpr=0\.0 must be in \(0, 1\]"),
    (metrics.accuracy_rejection_curve, lambda: metrics.accuracy_rejection_curve(PROBS, LABELS, [0.1, 0.2], [1.0]),
     E, r"rejection_rates must be a non-empty 1-D array of values in \[0, 1\)"),
    # ood
    (ood.predictive_mean, lambda: ood.predictive_mean(np.ones(2)), E, r"prob_draws must have shape"),
    (ood.predictive_entropy, lambda: ood.predictive_entropy([[0.5, 0.6]]), E, r"prob_draws rows must sum to 1"),
    (ood.expected_entropy, lambda: ood.expected_entropy([[NAN, 1.0]]), E, r"prob_draws has negative or non-finite"),
    (ood.mutual_information, lambda: ood.mutual_information(np.ones((0, 2, 2))), E,
     r"prob_draws must have shape \(num_draws, n, classes\)"),
    (ood.predicted_class_std, lambda: ood.predicted_class_std([[-0.5, 1.5]]), E,
     r"prob_draws has negative or non-finite"),
    (ood.uncertainty_scores, lambda: ood.uncertainty_scores(np.full((1, 1, 1, 2), 0.5)), E,
     r"prob_draws must have shape"),
    (ood.threshold_from_quantile, lambda: ood.threshold_from_quantile([0.1, 0.2], quantile=1.0), E,
     r"quantile=1\.0 must be strictly between 0 and 1"),
    (ood.reject, lambda: ood.reject([0.1], NAN), E, r"threshold=nan must be a finite number"),
    (ood.refuse_low_confidence, lambda: ood.refuse_low_confidence(PROBS, 0.1), E,
     r"min_probability=0\.1 must be in \[1/2, 1\)"),
    (ood.method_summary, lambda: ood.method_summary(PROBS[None], LABELS, {}), E, r"probe_draws is empty"),
    # bootstrap
    (bootstrap.interval, lambda: bootstrap.interval(np.mean, np.zeros(0)), E,
     r"set 0 is empty; every set needs at least one row"),
    # results
    (results.scoreboard, lambda: results.scoreboard("no_such_chapter"), E,
     r"chapter='no_such_chapter' has no headlines; known:"),
    (results.bench_table, lambda: results.bench_table([]), E, r"bench must be the dict read from results/bench\.json"),
    (results.chapter_entry, lambda: results.chapter_entry("intro", prefer="bogus"), E,
     r"prefer='bogus'; use one of"),
    (results.collect, lambda: results.collect(prefer="medium"), E, r"prefer='medium'; use one of"),
    (results.markdown_table, lambda: results.markdown_table([{"chapter": "x"}]), E,
     r"rows must be bnnbook\.results\.Row objects, as made by collect\(\)"),
    (results.runs_table, lambda: results.runs_table(["x"]), E, r"rows must be bnnbook\.results\.Row objects"),
    # plots (the checks run before anything is drawn, so no axes are needed)
    (plots.predictive_band, lambda: plots.predictive_band(None, [0.0, 1.0], [0.0, 1.0], [1.0, -1.0]), E,
     r"std must be >= 0"),
    (plots.draw_probabilities, lambda: plots.draw_probabilities(None, PROBS[None]), E,
     r"draws must have shape \(num_draws, classes\) for one input"),
    (plots.reliability_diagram, lambda: plots.reliability_diagram(None, PROBS, LABELS, min_count=0), E,
     r"min_count=0 must be >= 1"),
    (plots.gaussian_contour, lambda: plots.gaussian_contour(None, np.zeros(2), -np.eye(2)), E,
     r"cov must be symmetric positive definite"),
    (plots.image_grid, lambda: plots.image_grid([None], np.zeros((2, 5))), E,
     r"images must hold 28 x 28 images, shape \(n, 784\) or \(n, 28, 28\); got shape \(2, 5\)"),
    (plots.confidence_histograms, lambda: plots.confidence_histograms(None, {"noise": [0.5, 1.5]}), E,
     r"confidence\['noise'\] must lie in \[0, 1\]"),
    (plots.probability_bars, lambda: plots.probability_bars(None, {}), E, r"probs is empty; pass \{model name"),
    (plots.image_and_probabilities, lambda: plots.image_and_probabilities(None, np.zeros(10), [0.5, 0.5], "x"), E,
     r"image must hold 28 x 28 images, shape \(n, 784\) or \(n, 28, 28\); got shape \(10,\)"),
    (plots.regression_fits, lambda: plots.regression_fits(None, [0.0, 1.0, 2.0], [[0.0, 1.0]], [0.0], [0.0],
                                                          [0.0, 1.0, 2.0]), E,
     r"fits must have shape \(num_fits, 3\); got \(1, 2\)"),
    (plots.norm_ball_optimum, lambda: plots.norm_ball_optimum(None, np.ones((3, 2)), np.ones(3), np.zeros(2), 1.0, 3),
     E, r"norm 1 or 2; got \(3, 2\) and norm=3"),
    (plots.line_posterior, lambda: plots.line_posterior(None, [0.0], [0.0], -1.0, 1.0, np.zeros(2), np.eye(2)), E,
     r"noise_std must be a finite number > 0, got -1\.0"),
    (plots.weight_magnitudes, lambda: plots.weight_magnitudes(None, {}), E, r"params is empty; pass \{name: weights\}"),
    (plots.elbo_gap, lambda: plots.elbo_gap(None, np.arange(3.0), 1.0, np.arange(2.0)), E,
     r"x and elbo must have one length; got 3 and 2"),
    (plots.probe_gallery, lambda: plots.probe_gallery(np.empty((1, 2), dtype=object), {"a": np.zeros((3, 784)),
                                                                                         "b": np.zeros((3, 784))}), E,
     r"axes has 1 rows for 2 image sets; make it with plt\.subplots\(2, k\)"),
    (plots.named_curves, lambda: plots.named_curves(None, [0.0, 1.0], {"a": [1.0, 2.0, 3.0]}), E,
     r"curves\['a'\] has 3 values for 2 x values"),
    # nets, train
    (nets.mlp, lambda: nets.mlp((0,), 2), E, r"layer sizes must be >= 1"),
    (train.fit, lambda: train.fit(loss_fn, jnp.ones(2), optax.sgd(0.1), jnp.ones((4, 1)), num_steps=2.5, key=KEY,
                                  progress=False), E, r"num_steps=2\.5 must be an integer >= 1"),
    (train.smooth, lambda: train.smooth(np.ones(5), window=0), E, r"window=0 must be an integer >= 1"),
    # likelihoods
    (likelihoods.gaussian_log_likelihood,
     lambda: likelihoods.gaussian_log_likelihood(jnp.array([NAN, 1.0]), jnp.zeros(2), 1.0), E,
     r"y has 1 non-finite value.*drop or impute"),
    (likelihoods.categorical_log_likelihood,
     lambda: likelihoods.categorical_log_likelihood(jnp.array([[0.0, NAN]]), jnp.array([0])), E,
     r"logits has 1 non-finite value"),
    (likelihoods.map_loss, lambda: likelihoods.map_loss(APPLY, num_examples=0), E,
     r"num_examples=0 must be an integer >= 1 \(the training-set size N\)"),
    # priors
    (priors.gaussian_log_prob, lambda: priors.gaussian_log_prob(0.0, scale=-1.0), E,
     r"scale must be a finite number > 0, got -1\.0"),
    (priors.laplace_log_prob, lambda: priors.laplace_log_prob(0.0, scale=0.0), E,
     r"scale must be a finite number > 0, got 0\.0"),
    (priors.scale_mixture_log_prob, lambda: priors.scale_mixture_log_prob(0.0, 1.5, 1.0, 0.1), E,
     r"pi must lie strictly between 0 and 1, got 1\.5.*e\.g\. pi=0\.5"),
    (priors.Gaussian, lambda: priors.Gaussian(scale=-1.0), E,
     r"scale must be a finite number > 0, got -1\.0.*Gaussian\(scale=1\.0\)"),
    (priors.Laplace, lambda: priors.Laplace(scale=NAN), E, r"scale must be a finite number > 0, got nan"),
    (priors.ScaleMixture, lambda: priors.ScaleMixture(0.5, 1.0, 0.0), E, r"sigma2 must be a finite number > 0"),
    (priors.unconstrained_scale_mixture, lambda: priors.unconstrained_scale_mixture(priors.Gaussian(1.0)), E,
     r"prior=.* must be a bnnbook\.priors\.ScaleMixture, e\.g\."),
    (priors.constrained_scale_mixture, lambda: priors.constrained_scale_mixture({"pi": 0.5}), E,
     r"raw=\['pi'\] must be a dict with exactly the keys"),
    (priors.weight_decay_strength, lambda: priors.weight_decay_strength(priors.ScaleMixture(0.5, 1.0, 0.1)), E,
     r"has no weight-decay equivalent; pass a Gaussian \(L2\) or a Laplace \(L1\) prior"),
    (priors.penalty_kind, lambda: priors.penalty_kind("l2"), E, r"prior='l2' is neither Gaussian \(L2\) nor Laplace"),
    (priors.l2_strength, lambda: priors.l2_strength(-1.0), E, r"scale must be a finite number > 0"),
    (priors.l1_strength, lambda: priors.l1_strength(1.0, num_examples=0), E, r"num_examples=0 must be an integer"),
    (priors.gaussian_from_l2, lambda: priors.gaussian_from_l2(0.0), E,
     r"strength must be a finite number > 0.*0 means no prior"),
    (priors.laplace_from_l1, lambda: priors.laplace_from_l1(-1.0), E, r"strength must be a finite number > 0"),
    (priors.l2_penalty, lambda: priors.l2_penalty(PARAMS, -1.0), E, r"strength must be a finite number >= 0"),
    (priors.l1_penalty, lambda: priors.l1_penalty(PARAMS, NAN), E, r"strength must be a finite number >= 0"),
    # vi
    (vi.init_mean_field, lambda: vi.init_mean_field(PARAMS, init_scale=-0.1), E,
     r"init_scale must be a finite number > 0.*init_scale=0\.01"),
    (vi.inverse_softplus, lambda: vi.inverse_softplus(0.0), E, r"scale must be a finite number > 0, got 0\.0"),
    (vi.parameterization, lambda: vi.parameterization({"mean": PARAMS}), E, r"q has keys \['mean'\]; it needs"),
    (vi.stddev, lambda: vi.stddev([PARAMS]), E, r"q must be a dict .* as made by init_mean_field; got list"),
    (vi.sample, lambda: vi.sample(Q, KEY, 0), E, r"num_samples=0 must be an integer >= 1"),
    (vi.log_prob, lambda: vi.log_prob(Q, {"w": jnp.ones(6), "b": jnp.zeros(3)}), E,
     r"w has a leaf of shape \(6,\) where q\['mean'\] has \(2, 3\)"),
    (vi.gaussian_kl, lambda: vi.gaussian_kl(NAN, 1.0, 0.0, 1.0), E, r"mean_q has 1 non-finite value"),
    (vi.closed_form_kl, lambda: vi.closed_form_kl(Q_NAN, priors.Gaussian(1.0)), E, r"q has 6 non-finite value"),
    (vi.monte_carlo_kl, lambda: vi.monte_carlo_kl(Q, priors.Laplace(1.0), KEY, num_samples=0), E,
     r"num_samples=0 must be an integer >= 1"),
    (vi.quadrature_kl, lambda: vi.quadrature_kl(Q, priors.Gaussian(1.0), num_points=2), E,
     r"num_points=2 must be an integer >= 3"),
    (vi.kl_divergence, lambda: vi.kl_divergence(Q, priors.Laplace(1.0)), E,
     r"needs a PRNG key; pass key=jax\.random\.key\(0\)"),
    (vi.free_energy, lambda: vi.free_energy(Q, lambda w: jnp.sum(w["w"]), priors.Gaussian(1.0), KEY, beta=-1.0), E,
     r"beta=-1\.0 must be a finite number >= 0"),
    (vi.free_energy_loss, lambda: vi.free_energy_loss(lambda w, b: 0.0, priors.Gaussian(1.0), num_examples=0), E,
     r"num_examples=0 must be an integer >= 1 \(the size N of the training set"),
    (vi.kl_weights, lambda: vi.kl_weights(0), E, r"num_batches=0 must be an integer >= 1"),
    (vi.reparameterized_gradient, lambda: vi.reparameterized_gradient(lambda w: 0.0, Q, KEY, num_samples=-1), E,
     r"num_samples=-1 must be an integer >= 1"),
    (vi.score_function_gradient, lambda: vi.score_function_gradient(lambda w: 0.0, Q, KEY, 1, baseline=True), E,
     r"baseline=True needs num_samples >= 2"),
    (vi.signal_to_noise, lambda: vi.signal_to_noise(PARAMS), E, r"q must be a dict .* as made by init_mean_field"),
    (vi.prune_by_signal_to_noise, lambda: vi.prune_by_signal_to_noise(Q, 1.0), E,
     r"fraction=1\.0 must be in \[0, 1\)"),
    (vi.prune_by_magnitude, lambda: vi.prune_by_magnitude(Q, -0.5), E, r"fraction=-0\.5 must be in \[0, 1\)"),
    (vi.linear_regression_posterior, lambda: vi.linear_regression_posterior([[NAN]], [1.0], 1.0, 1.0), E,
     r"features has 1 non-finite value"),
    (vi.linear_regression_log_evidence, lambda: vi.linear_regression_log_evidence([[1.0]], [1.0], 0.0, 1.0), E,
     r"noise_std must be a finite number > 0"),
    (vi.linear_regression_elbo, lambda: vi.linear_regression_elbo([[1.0]], [1.0], 1.0, 1.0, [0.0], [[-1.0]]), E,
     r"cov is not positive definite"),
    (vi.linear_regression_mean_field, lambda: vi.linear_regression_mean_field(np.ones((3, 2)), np.ones(2), 1.0, 1.0),
     E, r"features must have shape \(N, D\) and targets \(N,\)"),
    (vi.gaussian_kl_full, lambda: vi.gaussian_kl_full(np.zeros(2), np.eye(2), np.zeros(2), -np.eye(2)), E,
     r"cov_p is not positive definite"),
    # vi.classifier
    (classifier.train, lambda: classifier.train((jnp.ones((4, 2)), jnp.zeros(4, int)), (jnp.ones((2, 2)),
                                                jnp.zeros(2, int)), method="bogus"), E, r"method='bogus'; use one of"),
    (classifier.num_parameters, lambda: classifier.num_parameters((784,)), E, r"sizes=\(784,\) must list"),
    (classifier.init_means, lambda: classifier.init_means(KEY, (784, 0, 10)), E,
     r"sizes entry=0 must be an integer >= 1"),
    (classifier.predictive_probs, lambda: classifier.predictive_probs(_fit(), jnp.ones((3, 2)), KEY, 0), E,
     r"num_draws=0 must be an integer >= 1"),
    (classifier.point_probs, lambda: classifier.point_probs(jnp.zeros(5), jnp.ones((3, 2)), (2, 2)), E,
     r"mean has shape \(5,\); the network of sizes=\(2, 2\) has 6"),
    (classifier.error_rate, lambda: classifier.error_rate(PROBS, [0, 1, 1]), E, r"labels must have shape \(2,\)"),
    # vi.directions
    (directions.gaussian_fits_to_mixture, lambda: directions.gaussian_fits_to_mixture([0.5, 0.6], [0, 1], [1, 1]),
     E, r"weights must be positive and sum to 1"),
    (directions.kl_to_mixture, lambda: directions.kl_to_mixture(0.0, 1.0, [1.0], [0.0], [1.0], "sideways"), E,
     r"direction='sideways': use 'reverse'"),
    (directions.mean_field_variances, lambda: directions.mean_field_variances(np.ones((2, 3))), E,
     r"covariance must be a square matrix"),
    (directions.mixture_density, lambda: directions.mixture_density(0.0, [1.0], [0.0], [0.0]), E,
     r"stds must be positive"),
    # predictive
    (predictive.variational_outputs, lambda: predictive.variational_outputs(APPLY, Q_NAN, X, KEY, 2), E,
     r"q has 6 non-finite value"),
    (predictive.sample_outputs, lambda: predictive.sample_outputs(APPLY, {"w": jnp.ones(())}, X), E,
     r"weight_draws must be a parameter tree whose leaves have a leading draw axis"),
    (predictive.summarize, lambda: predictive.summarize(jnp.ones(3)), E, r"draws must have shape \(num_draws, n"),
    (predictive.variational_predictive, lambda: predictive.variational_predictive(APPLY, Q, X, KEY, 0), E,
     r"num_draws=0 must be an integer >= 1"),
    (predictive.variational_probs, lambda: predictive.variational_probs(APPLY, Q, X.at[0, 0].set(NAN), KEY, 2), E,
     r"inputs has 1 non-finite value"),
    (predictive.sample_probs, lambda: predictive.sample_probs(APPLY, DRAWS, jnp.ones((0, 2))), E,
     r"inputs must have a leading example axis with at least one example"),
    (predictive.point_probs, lambda: predictive.point_probs(APPLY, Q_NAN["mean"], X), E,
     r"weight_draws has 6 non-finite value"),
    (predictive.mean_and_std, lambda: predictive.mean_and_std(PROBS), E, r"prob_draws must have shape \(num_draws"),
    # layers
    (layers.SharedDense, lambda: _haiku(lambda: layers.SharedDense(0), X), E, r"output_size=0 must be an integer"),
    (layers.SharedConv2D, lambda: _haiku(lambda: layers.SharedConv2D(2, padding="same"), jnp.ones((1, 4, 4, 1))),
     E, r"padding='same' must be 'SAME' or 'VALID'"),
    (layers.to_mean_field, lambda: layers.to_mean_field(MLP_PARAMS), E, r"params has no Bayesian layer"),
    (layers.kl_divergence, lambda: layers.kl_divergence([]), E, r"params must be a Haiku parameter dict; got list"),
    # flipout
    (flipout.FlipoutDense, lambda: _haiku(lambda: flipout.FlipoutDense(3, init_rho=NAN), X), E,
     r"init_rho=nan must be finite"),
    (flipout.FlipoutConv2D, lambda: _haiku(lambda: flipout.FlipoutConv2D(2, stride=0), jnp.ones((1, 4, 4, 1))), E,
     r"stride=0 must be an integer >= 1"),
    (flipout.layer_types, lambda: flipout.layer_types("bogus"), E, r"estimator='bogus' must be 'shared'"),
    (flipout.bayesian_mlp, lambda: flipout.bayesian_mlp((0,), 10), E, r"hidden size=0 must be an integer >= 1"),
    (flipout.bayesian_cnn, lambda: flipout.bayesian_cnn((4,), 10, pool_size=0), E, r"pool_size=0 must be an integer"),
    (flipout.free_energy_loss, lambda: flipout.free_energy_loss(flipout.bayesian_mlp((3,), 2), 0), E,
     r"num_examples=0 must be an integer >= 1"),
    (flipout.independent_draws, lambda: flipout.independent_draws("loss"), E,
     r"loss_fn='loss' must be a loss function"),
    (flipout.gradient_variance, lambda: flipout.gradient_variance(loss_fn, PARAMS, (X,), KEY, batch_size=2,
                                                                  num_repeats=1), E,
     r"num_repeats=1 must be an integer >= 2 \(a variance needs two draws\)"),
    (flipout.step_times, lambda: flipout.step_times(flipout.bayesian_mlp, X, jnp.zeros(4, int), num_examples=4,
                                                    repeats=0), E, r"repeats=0 must be an integer >= 1"),
    (flipout.predictive_draws, lambda: flipout.predictive_draws(flipout.bayesian_mlp((3,), 2), PARAMS, X, KEY, 10,
                                                                chunk=3), E, r"chunk=3 must divide num_draws=10"),
    # hmc
    (hmc.log_posterior, lambda: hmc.log_posterior(LOG_DENSITY, priors.Gaussian(1.0)), E,
     r"log_prior_fn=.* must be a function params -> log p\(params\)"),
    (hmc.make_potential, lambda: hmc.make_potential(LOG_DENSITY, temperature=0.0), E,
     r"temperature=0\.0 must be a finite number > 0"),
    (hmc.leapfrog, lambda: hmc.leapfrog(lambda p: 0.0, PARAMS, PARAMS, step_size=-0.1, num_steps=1), E,
     r"step_size=-0\.1 must be a finite number > 0; try 0\.01"),
    (hmc.gibbs_precision, lambda: hmc.gibbs_precision(KEY, jnp.ones(3), 1.0, -1.0), E,
     r"rate=-1\.0 must be a finite number > 0"),
    (hmc.log_marginal_gaussian_gamma, lambda: hmc.log_marginal_gaussian_gamma(jnp.ones(3), 0.0, 1.0), E,
     r"shape=0\.0 must be a finite number > 0"),
    (hmc.sample, lambda: hmc.sample(LOG_DENSITY, PARAMS, KEY, num_samples=0), E,
     r"num_samples=0 must be an integer >= 1"),
    (hmc.sample_hierarchical, lambda: hmc.sample_hierarchical(LOG_DENSITY, PARAMS, KEY, num_samples=1,
                                                              prior_rate=-1.0), E,
     r"prior_rate=-1\.0 must be a finite number > 0"),
    (hmc.stack_chains, lambda: hmc.stack_chains([]), E, r"positions is empty; pass one parameter pytree per chain"),
    (hmc.chain_diagnostics, lambda: hmc.chain_diagnostics(np.zeros((1, 10))), E,
     r"draws has shape \(1, 10\); it needs \(chains >= 2, draws >= 4"),
    (mass_windows, lambda: mass_windows(-5), E, r"num_warmup=-5 must be an integer >= 0"),
    (surrogate.mlp_logits, lambda: surrogate.mlp_logits(PARAMS, X), E,
     r"mlp_logits needs the parameters of bnnbook\.nets\.mlp"),
    # approximations
    (approximations.dropout_logits, lambda: approximations.dropout_logits(MLP_PARAMS, X, KEY, rate=1.0), E,
     r"rate=1\.0 is the probability of dropping a unit and must be in \[0, 1\)"),
    (approximations.mc_dropout_probs, lambda: approximations.mc_dropout_probs(MLP_PARAMS, X, KEY, 0.1, 0), E,
     r"num_draws=0 must be a positive integer"),
    (approximations.fit_members, lambda: approximations.fit_members(loss_fn, DRAWS, optax.sgd(0.1), X,
                                                                    jnp.zeros(4, int), num_epochs=0, batch_size=2,
                                                                    key=KEY), E,
     r"num_epochs=0 must be a positive integer"),
    (approximations.member, lambda: approximations.member(DRAWS, 2), E,
     r"index=2 must be an integer in \[0, 2\).*silently clamp"),
    (approximations.members_probs, lambda: approximations.members_probs(APPLY, DRAWS, X, block=0), E,
     r"block=0 must be an integer >= 1"),
    (approximations.stack_members, lambda: approximations.stack_members(lambda k: PARAMS, KEY, 0), E,
     r"num_members=0 must be a positive integer"),
    (approximations.fit_last_layer, lambda: approximations.fit_last_layer(MLP_PARAMS, X, jnp.zeros(3, int)), E,
     r"labels has 3 entries but inputs has 4 rows; pass one label per input"),
    (approximations.last_layer_features, lambda: approximations.last_layer_features(PARAMS, X), E,
     r"the last-layer Laplace needs the parameters of bnnbook\.nets\.mlp"),
    (approximations.last_layer_probs, lambda: approximations.last_layer_probs(None, MLP_PARAMS, X, KEY, 0), E,
     r"num_draws=0 must be a positive integer"),
    (approximations.run_sgmcmc, lambda: approximations.run_sgmcmc("langevin", None, None, DRAWS, X, jnp.zeros(4),
                                                                  num_epochs=1, batch_size=2, step_size=1e-3,
                                                                  key=KEY), E,
     r"kernel='langevin': use 'sgld' or 'sghmc'"),
    (approximations.fit_temperature, lambda: approximations.fit_temperature(np.array([[0.0, NAN]]), np.array([0])),
     E, r"logits contain NaN or inf"),
    (approximations.nll_at_temperature, lambda: approximations.nll_at_temperature(PROBS, LABELS, 0.0), E,
     r"temperature=0\.0 must be a finite number > 0"),
    (approximations.scaled_probs, lambda: approximations.scaled_probs(PROBS, -1.0), E,
     r"temperature=-1\.0 must be positive"),
    (laplace_lib.last_layer_mean, lambda: laplace_lib.last_layer_mean({}), E, r"params has layers \[\]"),
    (laplace_lib.last_layer_hessian, lambda: laplace_lib.last_layer_hessian(jnp.ones((3, 4)), jnp.ones((5, 2))), E,
     r"features must have shape \(n, F\) and mean \(F, classes\); got \(3, 4\) and \(5, 2\)"),
    (laplace_lib.log_evidence, lambda: laplace_lib.log_evidence(0.0, np.zeros(2), np.ones(2), [-1.0]), E,
     r"prior_precisions must be positive and finite"),
    # added with the figures of chapters 1-3
    (priors.constrained_least_squares, lambda: priors.constrained_least_squares(np.ones((3, 2)), np.ones(3), -1.0, 1),
     E, r"radius=-1\.0 must be positive and finite, e\.g\. 1\.0"),
    (train.fit_stacked, lambda: train.fit_stacked(lambda p, b, k: (jnp.sum(p), {}), jnp.ones((3, 2)), optax.sgd(0.1),
                                                  (np.ones((4, 1)),), member_args=(jnp.ones(2),),
                                                  key=KEY, num_steps=1), E,
     r"stacked_params and member_args need one shared leading member axis; got sizes \[2, 3\]"),
    (vi.linear_regression_elbo_gap, lambda: vi.linear_regression_elbo_gap(np.ones((3, 2)), np.ones(3), 1.0, 1.0,
                                                                        np.zeros(2), -np.eye(2)), E,
     r"cov is not positive definite"),
    (last_layer.regression_band, lambda: last_layer.regression_band(np.ones((3, 2)), np.ones(3), np.ones((4, 2)), -1.0),
     E, r"noise_std must be a finite number > 0, got -1\.0"),
]


def _name(function) -> str:
    return f"{function.__module__.replace('bnnbook.', '')}.{function.__qualname__}"


@pytest.mark.parametrize("function, call, error, pattern", CASES, ids=[_name(case[0]) for case in CASES])
def test_bad_input_is_refused_with_a_message_naming_it(function, call, error, pattern):
    with pytest.raises(error) as caught:
        call()
    assert re.search(pattern, str(caught.value), re.S), f"{_name(function)}: message {str(caught.value)!r}"


# --------------------------------------------------------------------------
# The TensorFlow side (its own table: the modules import TensorFlow).
# --------------------------------------------------------------------------

def _keras_cases(tf, keras, klayers, kflipout):
    tiny = keras.Sequential([keras.layers.Dense(1)])
    tiny.build((None, 2))
    x = np.ones((3, 2), np.float32)
    return [
        (klayers.ScaleMixturePrior, lambda: klayers.ScaleMixturePrior(sigma1=-1.0), E,
         r"sigma1=-1\.0 must be finite and > 0; pass a standard deviation"),
        (klayers.DenseVariational, lambda: klayers.DenseVariational(0, klayers.ScaleMixturePrior(), 1.0), E,
         r"units=0 must be an integer >= 1"),
        (klayers.gaussian_nll, lambda: klayers.gaussian_nll(0.0), E, r"noise_std=0\.0 must be finite and > 0"),
        (klayers.predictive_draws, lambda: klayers.predictive_draws(tiny, x, num_draws=0), E,
         r"num_draws=0 must be an integer >= 1"),
        (kflipout.bayesian_lenet5, lambda: kflipout.bayesian_lenet5(0), E, r"num_train=0 must be an integer >= 1"),
        (kflipout.height_cnn, lambda: kflipout.height_cnn(100, channels=(8,)), E,
         r"channels=\(8,\) must give the two conv layers' channel counts"),
        (kflipout.train, lambda: kflipout.train(tiny, x, np.zeros(2), num_steps=1), E,
         r"inputs has 3 examples but targets has 2"),
        (kflipout.predictive_draws, lambda: kflipout.predictive_draws(tiny, x, num_draws=0), E,
         r"num_draws=0 must be an integer >= 1"),
        (kflipout.posterior_stats, lambda: kflipout.posterior_stats(tiny), E,
         r"model has no layer with a kernel posterior"),
    ]


def _import_keras():
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("tf_keras")
    from bnnbook.keras import flipout as kflipout, layers as klayers
    return tf, keras, klayers, kflipout


def test_bad_input_on_the_tensorflow_side():
    cases = _keras_cases(*_import_keras())
    for function, call, error, pattern in cases:
        with pytest.raises(error) as caught:
            call()
        assert re.search(pattern, str(caught.value), re.S), f"{_name(function)}: message {str(caught.value)!r}"


# --------------------------------------------------------------------------
# What needs no row, and why.
# --------------------------------------------------------------------------

_CONTAINER = "a record with no checks of its own: made by the function that returns it, which validates"
EXEMPT = {
    # no argument, or nothing that can be bad
    "bnnbook.runtime.on_cpu": "takes no argument",
    "bnnbook.runtime.results_dir": "any folder is accepted; nothing is read or written",
    "bnnbook.runtime.git_commit": "any folder: outside a git checkout it returns 'unknown' by design",
    "bnnbook.data.data_dir": "takes no argument (reads $BNNBOOK_DATA, which fetch reports when a file is missing)",
    "bnnbook.results.anchored_summary": "reads whatever runs are stored; a folder with none gives (0, 0) by design",
    "bnnbook.results.verdict": "any value is allowed: a non-number or a missing anchor gives '' by design",
    "bnnbook.nets.count_params": "counts the scalars of any pytree; an empty tree has 0",
    "bnnbook.hmc.default_groups": "any pytree gives its arrays by path; sample_hierarchical rejects an empty result",
    "bnnbook.keras.stderr_to_devnull": "takes no argument",
    "bnnbook.keras.import_tensorflow": "takes no argument",
    # pure building blocks under jit / vmap / grad, validated by their driver
    "bnnbook.hmc.kinetic_energy": "evaluated inside hmc_step under jit; hmc.sample validates the inverse mass",
    "bnnbook.hmc.hmc_step": "one transition inside the jitted scan of hmc.sample, which validates every input",
    "bnnbook.hmc.dual_averaging_init": "traced inside hmc.sample's warm-up; sample validates step_size",
    "bnnbook.hmc.dual_averaging_update": "traced inside hmc.sample's warm-up; sample validates target_accept",
    "bnnbook.hmc.surrogate.bf16_matmul": "a jax.custom_vjp matmul traced in the leapfrog gradient; the log density "
                                         "given to hmc.sample is checked finite at the start",
    "bnnbook.layers.dense_perturbation": "traced inside SharedDense/SharedConv2D, whose constructors validate",
    "bnnbook.layers.conv2d": "traced inside SharedConv2D/FlipoutConv2D, which validate stride and padding",
    "bnnbook.flipout.random_signs": "traced inside FlipoutDense/FlipoutConv2D, whose constructors validate",
    "bnnbook.flipout.flipout_dense": "traced inside FlipoutDense, which checks the input shape",
    "bnnbook.flipout.flipout_conv2d": "traced inside FlipoutConv2D, which checks the input shape",
    "bnnbook.vi.classifier.logits": "traced inside classifier.train's jitted epoch; point_probs and "
                                    "predictive_probs check the weights and images",
    "bnnbook.vi.classifier.complexity_cost": "traced inside classifier.train's jitted loss; train validates the prior",
    "bnnbook.approximations.sgmcmc.sgld_init": "wraps any position pytree; run_sgmcmc validates its inputs",
    "bnnbook.approximations.sgmcmc.sghmc_init": "wraps any position pytree; run_sgmcmc validates its inputs",
    "bnnbook.approximations.sgmcmc.sgld_step": "one step traced in run_sgmcmc's jitted epoch; run_sgmcmc validates",
    "bnnbook.approximations.sgmcmc.sghmc_step": "one step traced in run_sgmcmc's jitted epoch; run_sgmcmc checks "
                                                "friction * step_size < 1",
    "bnnbook.approximations.sgmcmc.cyclical_step_size": "traced in run_sgmcmc's jitted epoch; run_sgmcmc validates "
                                                        "step_size and epochs_per_cycle",
    # exceptions and records
    "bnnbook.data.DataNotFoundError": "an exception class",
    "bnnbook.data.ChecksumError": "an exception class",
    "bnnbook.train.NonFiniteError": "an exception class",
    "bnnbook.runtime.Run": _CONTAINER + " (runtime.start); its save_results has a row",
    "bnnbook.data.Split": _CONTAINER + " (data.load_images)",
    "bnnbook.data.ImageData": _CONTAINER + " (data.load_images)",
    "bnnbook.data.Probes": _CONTAINER + " (data.ood_probes)",
    "bnnbook.results.Anchor": "a constant of the results table, written in results.py",
    "bnnbook.results.Headline": "a constant of the results table, written in results.py",
    "bnnbook.results.Row": _CONTAINER + " (results.collect)",
    "bnnbook.train.FitResult": _CONTAINER + " (train.fit)",
    "bnnbook.vi.classifier.Fit": _CONTAINER + " (classifier.train)",
    "bnnbook.predictive.Predictive": _CONTAINER + " (predictive.summarize)",
    "bnnbook.hmc.HMCState": _CONTAINER + " (hmc.sample)",
    "bnnbook.hmc.HMCInfo": _CONTAINER + " (hmc.hmc_step inside hmc.sample)",
    "bnnbook.hmc.DualAveragingState": _CONTAINER + " (hmc.dual_averaging_init inside hmc.sample)",
    "bnnbook.hmc.HMCResult": _CONTAINER + " (hmc.sample)",
    "bnnbook.approximations.laplace.LastLayerLaplace": _CONTAINER + " (approximations.fit_last_layer)",
    "bnnbook.approximations.sgmcmc.SGLDState": _CONTAINER + " (sgld_init inside run_sgmcmc)",
    "bnnbook.approximations.sgmcmc.SGHMCState": _CONTAINER + " (sghmc_init inside run_sgmcmc)",
    "bnnbook.approximations.sgmcmc.SGMCMCRun": _CONTAINER + " (approximations.run_sgmcmc)",
}


def _resolve(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _api_modules() -> list[str]:
    text = (ROOT / "api.md").read_text()
    return re.findall(r"automodule:: (\S+)", text)


def _public_callables(module_names):
    """``{id: (dotted name, object)}`` of every public function and class of the modules (first name wins)."""
    found = {}
    for module_name in module_names:
        module = importlib.import_module(module_name)
        names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
        for name in names:
            obj = getattr(module, name)
            if inspect.ismodule(obj) or not callable(obj):
                continue
            found.setdefault(id(obj), (f"{module_name}.{name}", obj))
    # documented one by one on the API page (autofunction), outside an __all__
    for dotted in re.findall(r"autofunction:: (\S+)", (ROOT / "api.md").read_text()):
        if not any(dotted.startswith(module_name + ".") for module_name in module_names):
            continue
        obj = _resolve(dotted)
        found.setdefault(id(obj), (dotted, obj))
    return found


def _covered(cases) -> set[int]:
    return {id(case[0]) for case in cases}


def _check_coverage(module_names, cases):
    public = _public_callables(module_names)
    exempt = {id(_resolve(name)) for name in EXEMPT}
    covered = _covered(cases)
    missing = sorted(name for key, (name, _) in public.items() if key not in covered and key not in exempt)
    assert not missing, f"add a row to CASES (or a reason to EXEMPT) for: {missing}"
    both = sorted(name for key, (name, _) in public.items() if key in covered and key in exempt)
    assert not both, f"in CASES and in EXEMPT at once: {both}"


def test_every_public_callable_is_covered():
    modules = [m for m in _api_modules() if not m.startswith("bnnbook.keras.")]
    _check_coverage(modules, CASES)


def test_every_public_callable_of_the_tensorflow_side_is_covered():
    cases = _keras_cases(*_import_keras())
    _check_coverage([m for m in _api_modules() if m.startswith("bnnbook.keras")], cases)


def test_exempt_entries_name_real_public_callables_with_a_reason():
    for name, reason in EXEMPT.items():
        assert callable(_resolve(name)), name
        assert len(reason) > 15, f"{name}: say why it needs no row"


def test_the_coverage_check_notices_a_new_function(monkeypatch):
    def brand_new_helper(x):  # a public function with neither a row nor a reason
        return x
    monkeypatch.setattr(metrics, "brand_new_helper", brand_new_helper, raising=False)
    monkeypatch.setattr(metrics, "__all__", [*metrics.__all__, "brand_new_helper"])
    with pytest.raises(AssertionError, match=r"bnnbook\.metrics\.brand_new_helper"):
        _check_coverage(["bnnbook.metrics"], CASES)


# --------------------------------------------------------------------------
# Data files, the profile, and nothing half-written.
# --------------------------------------------------------------------------

@pytest.mark.skipif(not (SHARED / "mnist" / "t10k-labels-idx1-ubyte.gz").exists(), reason="no shared MNIST copy")
def test_truncated_real_file_in_bnnbook_data_names_the_file_and_the_fix(monkeypatch, tmp_path):
    good = (SHARED / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()  # 4.5 kB
    (tmp_path / "mnist").mkdir()
    target = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    target.write_bytes(good[: len(good) - 100])
    monkeypatch.setenv("BNNBOOK_DATA", str(tmp_path))
    with pytest.raises(data.ChecksumError) as caught:
        data.fetch("mnist", "t10k-labels-idx1-ubyte.gz", download=False)
    message = str(caught.value)
    assert str(target) in message and "corrupt or truncated" in message
    assert "Delete it and load again" in message and "copy a good copy there" in message


def test_corrupt_but_complete_file_is_a_checksum_error_naming_file_and_fix(monkeypatch, tmp_path):
    (tmp_path / "mnist").mkdir()
    target = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    target.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + b"\x01\x02\x03"))
    monkeypatch.setenv("BNNBOOK_DATA", str(tmp_path))
    with pytest.raises(data.ChecksumError, match=r"SHA-256 of the decompressed bytes is [0-9a-f]{64}, expected") as c:
        data.fetch("mnist", "t10k-labels-idx1-ubyte.gz", download=False)
    assert str(target) in str(c.value) and "Delete it and load again" in str(c.value)


def test_offline_without_the_file_says_what_to_put_where_and_tries_no_network(monkeypatch, tmp_path):
    tried = []
    monkeypatch.setattr(data.mnist, "_download", lambda urls, destination, timeout: tried.extend(urls) or
                        ["<urlopen error [Errno -3] Temporary failure in name resolution>"])
    monkeypatch.setenv("BNNBOOK_DATA", str(tmp_path))
    with pytest.raises(data.DataNotFoundError) as caught:
        data.fetch("fashion_mnist", "t10k-labels-idx1-ubyte.gz")
    message = str(caught.value)
    assert f"$BNNBOOK_DATA={tmp_path}" in message and "could not be downloaded" in message
    assert f"Put the file at {tmp_path / 'fashion-mnist' / 't10k-labels-idx1-ubyte.gz'}" in message
    assert "set BNNBOOK_DATA to a folder that holds fashion-mnist/t10k-labels-idx1-ubyte.gz" in message
    assert tried and not (tmp_path / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").exists()  # nothing half-written


def test_unknown_profile_in_the_environment(monkeypatch):
    monkeypatch.setenv("BNNBOOK_PROFILE", "bogus")
    with pytest.raises(ValueError, match=r"BNNBOOK_PROFILE='bogus' is not a profile; set it to one of quick, full "
                                         r"\(or unset it for the default\)"):
        runtime.resolve_profile(has_accelerator=False)


def test_a_refused_save_leaves_the_previous_results_file_untouched(tmp_path):
    path = runtime.save_results(_run(), {"accuracy": 0.9}, directory=tmp_path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"metric 'nll' = inf is not finite; refusing to record it"):
        runtime.save_results(_run(), {"accuracy": 0.95, "nll": float("inf")}, directory=tmp_path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left behind


def test_tracers_pass_the_value_checks_so_building_blocks_stay_traceable():
    # The NaN checks added to the KLs and likelihoods must not break jit/grad: under a trace they are skipped.
    kl = jax.jit(lambda m: vi.gaussian_kl(m, 1.0, 0.0, 2.0))(jnp.float32(0.5))
    assert np.isfinite(kl)
    grad = jax.grad(lambda m: likelihoods.gaussian_log_likelihood(jnp.ones(2), m, 1.0))(jnp.zeros(2))
    np.testing.assert_allclose(grad, [1.0, 1.0])
    assert np.isfinite(jax.jit(lambda q: vi.closed_form_kl(q, priors.Gaussian(1.0)))(Q))
