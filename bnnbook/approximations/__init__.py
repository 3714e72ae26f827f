"""Practical approximations to the posterior predictive, on one network.

Taught in chapter "Practical approximations". Each module is one method,
written for the 784-100-10 MNIST network of the HMC chapter (any
:func:`bnnbook.nets.mlp` works), and each returns what the rest of the book
consumes: *probability draws* of shape ``(draws, inputs, classes)``, so that
:mod:`bnnbook.metrics` and :mod:`bnnbook.ood` score every method alike.

* :mod:`~bnnbook.approximations.ensemble`: train many networks at once
  (``vmap`` over members), used by deep ensembles, MAP, MLE and MC dropout;
* :mod:`~bnnbook.approximations.dropout`: MC dropout;
* :mod:`~bnnbook.approximations.laplace`: the last-layer Laplace
  approximation, prior precision chosen by its marginal likelihood;
* :mod:`~bnnbook.approximations.sgmcmc`: SGLD and SGHMC kernels
  (``init``/``step`` over NamedTuple states) with a cyclical step size;
* :mod:`~bnnbook.approximations.temperature`: temperature scaling.
"""

from bnnbook.approximations import dropout, ensemble, laplace, sgmcmc, temperature
from bnnbook.approximations.dropout import dropout_logits, mc_dropout_probs
from bnnbook.approximations.ensemble import fit_members, member, members_probs, stack_members
from bnnbook.approximations.laplace import LastLayerLaplace, fit_last_layer, last_layer_features, last_layer_probs
from bnnbook.approximations.sgmcmc import (SGHMCState, SGLDState, cyclical_step_size, run_sgmcmc, sghmc_init,
                                           sghmc_step, sgld_init, sgld_step)
from bnnbook.approximations.temperature import fit_temperature, nll_at_temperature, scaled_probs

__all__ = ["dropout", "ensemble", "laplace", "sgmcmc", "temperature",
           "dropout_logits", "mc_dropout_probs", "fit_members", "member", "members_probs", "stack_members",
           "LastLayerLaplace", "fit_last_layer", "last_layer_features", "last_layer_probs",
           "SGLDState", "SGHMCState", "sgld_init", "sgld_step", "sghmc_init", "sghmc_step",
           "cyclical_step_size", "run_sgmcmc", "fit_temperature", "nll_at_temperature", "scaled_probs"]
