"""Mean-field Gaussian variational inference over any parameter tree, the
variational free energy, and exact references to check it against.

Taught in chapter "The variational free energy"; the chapters "The
reparameterization trick and Bayes by Backprop" and "Rejecting
out-of-distribution inputs" train with it.

The variational posterior ``q`` is a plain dict of two trees with the
structure of the network's parameters (for example a Haiku ``params`` dict)::

    {"mean": tree, "rho": tree}       # scale = softplus(rho)  (Bayes by Backprop)
    {"mean": tree, "log_var": tree}   # scale = exp(log_var / 2)

so every weight ``w_j`` has its own ``q(w_j) = N(mean_j, scale_j^2)``, all
independent (mean field). The dict is an ordinary pytree: optax optimises it,
:func:`bnnbook.train.fit` trains it, ``jax.jit``/``jax.vmap`` pass it through.

The objective is the variational free energy

    F(q) = beta * KL(q || p) - E_q[log p(D | w)],

the *complexity cost* plus the *likelihood cost*. With ``beta = 1``,
``F(q) = KL(q || p(w | D)) - log p(D) >= -log p(D)``, and ``-F`` is the
evidence lower bound (ELBO).

Pieces:

* :func:`init_mean_field`, :func:`stddev`, :func:`sample`, :func:`log_prob`:
  the variational family.
* :func:`gaussian_kl` (elementwise, closed form), :func:`kl_divergence`
  (a tree against a prior: closed form for a :class:`bnnbook.priors.Gaussian`,
  Monte Carlo otherwise), :func:`monte_carlo_kl`, and :func:`quadrature_kl`
  (deterministic 1-D quadrature per weight: the reference for priors without
  a closed form).
* :func:`free_energy` (the terms separately) and :func:`free_energy_loss`
  (a ``loss_fn(q, batch, key)`` for :func:`bnnbook.train.fit`, with the KL
  scaled for minibatches).
* :func:`kl_weights`: how the KL is shared among the minibatches of an epoch
  (``1/M`` each, ``1/N`` per example, or the Blundell et al. schedule).
* :func:`reparameterized_gradient` and :func:`score_function_gradient`:
  the two Monte Carlo estimators of ``grad E_q[f(w)]``, and
  :func:`signal_to_noise` / :func:`prune_by_signal_to_noise` (and the
  baseline :func:`prune_by_magnitude`) (chapter "The reparameterization
  trick and Bayes by Backprop").
* :mod:`bnnbook.vi.classifier`: Bayes by Backprop for an MLP classifier on a
  flat parameter vector, fast enough for all of MNIST on a CPU (same chapter).
* Exact references in NumPy float64 for Bayesian linear regression
  (:func:`linear_regression_posterior`, :func:`linear_regression_log_evidence`,
  :func:`linear_regression_elbo`, :func:`linear_regression_mean_field`,
  :func:`gaussian_kl_full`, :func:`linear_regression_elbo_gap`), against which the chapter checks all of
  the above.
* :mod:`bnnbook.vi.last_layer`: a Bayesian last layer on a trained network (chapter "Why Bayesian
  neural networks").
"""

from bnnbook.vi.conjugate import (gaussian_kl_full, linear_regression_elbo, linear_regression_log_evidence,
                                  linear_regression_mean_field, linear_regression_posterior,
                                  linear_regression_elbo_gap)
from bnnbook.vi.estimators import reparameterized_gradient, score_function_gradient
from bnnbook.vi.kl import closed_form_kl, gaussian_kl, kl_divergence, monte_carlo_kl, quadrature_kl
from bnnbook.vi.meanfield import init_mean_field, inverse_softplus, log_prob, parameterization, sample, stddev
from bnnbook.vi.objectives import KL_SCHEMES, free_energy, free_energy_loss, kl_weights
from bnnbook.vi.pruning import prune_by_magnitude, prune_by_signal_to_noise, signal_to_noise

__all__ = [
    "init_mean_field", "inverse_softplus", "parameterization", "stddev", "sample", "log_prob",
    "gaussian_kl", "closed_form_kl", "monte_carlo_kl", "quadrature_kl", "kl_divergence",
    "free_energy", "free_energy_loss", "kl_weights", "KL_SCHEMES",
    "reparameterized_gradient", "score_function_gradient", "signal_to_noise", "prune_by_signal_to_noise",
    "prune_by_magnitude",
    "linear_regression_posterior", "linear_regression_log_evidence", "linear_regression_elbo",
    "linear_regression_mean_field", "gaussian_kl_full", "linear_regression_elbo_gap",
]
