"""bnnbook: the helpers of the executable book on Bayesian neural networks.

Importing ``bnnbook`` loads neither JAX nor TensorFlow. Each submodule names
the framework it needs:

* framework-free (NumPy, matplotlib): :mod:`bnnbook.data`, :mod:`bnnbook.metrics`,
  :mod:`bnnbook.ood`, :mod:`bnnbook.results`, :mod:`bnnbook.plots`,
  :mod:`bnnbook.runtime` (imports the framework you ask for)
* JAX side: :mod:`bnnbook.nets`, :mod:`bnnbook.train`, :mod:`bnnbook.likelihoods`,
  :mod:`bnnbook.priors`, :mod:`bnnbook.vi`, :mod:`bnnbook.predictive`,
  :mod:`bnnbook.layers`, :mod:`bnnbook.flipout`, :mod:`bnnbook.hmc`
* TensorFlow side: :mod:`bnnbook.keras` (never imported by the JAX side)

so a JAX chapter never pulls TensorFlow onto the GPU, and vice versa.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
