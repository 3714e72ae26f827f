"""Bayesian dense and 2-D convolution layers for Haiku with one weight draw
per call, shared by every example of the minibatch (the plain
reparameterization estimator), and the closed-form KL of their posterior.

Taught in chapter "Flipout", where they are the baseline that
:mod:`bnnbook.flipout` improves on.

Every layer holds a mean-field Gaussian posterior on its kernel and bias as
four Haiku parameters::

    {"w_mean", "w_rho", "b_mean", "b_rho"}      # scale = softplus(rho)

and on each call draws ``W = w_mean + softplus(w_rho) * eps`` with
``eps ~ N(0, I)`` from ``hk.next_rng_key()``. The same ``W`` multiplies
every example, so the examples of a minibatch share one weight perturbation:
averaging over more examples does not average that perturbation away.

:class:`SharedDense` and :class:`SharedConv2D` use the module names
``"bayes_dense"`` and ``"bayes_conv2d"``, the same names as the Flipout layers
of :mod:`bnnbook.flipout`, so one network built with either estimator has the
*same* parameter tree: the two estimators can be compared on identical
parameters. :func:`to_mean_field` turns such a tree into the ``{"mean",
"rho"}`` posterior of :mod:`bnnbook.vi`, and :func:`kl_divergence` gives its
KL to a Gaussian prior.
"""

from __future__ import annotations

import math
from typing import Sequence

import haiku as hk
import jax
import jax.numpy as jnp

from bnnbook import priors, vi
from bnnbook._checks import check_count

PARAM_NAMES = ("w_mean", "w_rho", "b_mean", "b_rho")
DENSE_NAME = "bayes_dense"
CONV_NAME = "bayes_conv2d"
_PADDINGS = ("SAME", "VALID")


def _check_rho(init_rho) -> float:
    value = float(init_rho)
    if not math.isfinite(value):
        raise ValueError(f"init_rho={init_rho!r} must be finite; the initial scale is softplus(init_rho), "
                         f"e.g. init_rho=-5.0 for a scale of about 0.0067")
    return value


def _check_padding(padding) -> str:
    if padding not in _PADDINGS:
        raise ValueError(f"padding={padding!r} must be 'SAME' or 'VALID'")
    return padding


def _kernel_shape(kernel_shape) -> tuple[int, int]:
    shape = (kernel_shape, kernel_shape) if isinstance(kernel_shape, int) else tuple(kernel_shape)
    if len(shape) != 2 or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in shape):
        raise ValueError(f"kernel_shape={kernel_shape!r} must be an integer >= 1 or a pair of them, e.g. 5 or (5, 5)")
    return shape


class _Variational(hk.Module):
    """Creates the four posterior parameters; subclasses decide how the noise enters."""

    def __init__(self, init_rho: float, name: str):
        super().__init__(name=name)
        self.init_rho = _check_rho(init_rho)

    def _posterior(self, kernel_shape, fan_in, num_out, dtype):
        # He initialisation of the means (ReLU networks), a small constant posterior scale.
        w_init = hk.initializers.VarianceScaling(2.0, "fan_in", "truncated_normal")
        w_mean = hk.get_parameter("w_mean", kernel_shape, dtype, init=w_init)
        w_rho = hk.get_parameter("w_rho", kernel_shape, dtype, init=hk.initializers.Constant(self.init_rho))
        b_mean = hk.get_parameter("b_mean", (num_out,), dtype, init=jnp.zeros)
        b_rho = hk.get_parameter("b_rho", (num_out,), dtype, init=hk.initializers.Constant(self.init_rho))
        return w_mean, jax.nn.softplus(w_rho), b_mean, jax.nn.softplus(b_rho)


def dense_perturbation(key, w_scale, b_scale):
    """One draw of the kernel and bias perturbations ``scale * eps`` (the same two keys in every layer kind).

    Taught in chapter "Flipout".
    """
    w_key, b_key = jax.random.split(key)
    return (w_scale * jax.random.normal(w_key, w_scale.shape, w_scale.dtype),
            b_scale * jax.random.normal(b_key, b_scale.shape, b_scale.dtype))


def conv2d(inputs, kernel, stride: int, padding: str):
    """NHWC convolution with an HWIO kernel (the layout of every conv layer here).

    Taught in chapter "Flipout".
    """
    return jax.lax.conv_general_dilated(inputs, kernel, (stride, stride), padding,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


class SharedDense(_Variational):
    """Dense layer ``x W + b`` with one posterior draw of ``W, b`` per call, shared by the whole batch.

    Args:
        output_size: number of output units.
        init_rho: initial ``rho`` of every weight; the scale is ``softplus(rho)``.
        name: Haiku module name (default ``"bayes_dense"``, shared with
            :class:`bnnbook.flipout.FlipoutDense`).

    Taught in chapter "Flipout".
    """

    def __init__(self, output_size: int, init_rho: float = -5.0, name: str = DENSE_NAME):
        super().__init__(init_rho, name)
        self.output_size = check_count("output_size", output_size)

    def __call__(self, inputs):
        if inputs.ndim != 2:
            raise ValueError(f"inputs must have shape (batch, features); got {inputs.shape}. Flatten first.")
        w_mean, w_scale, b_mean, b_scale = self._posterior((inputs.shape[-1], self.output_size), inputs.shape[-1],
                                                           self.output_size, inputs.dtype)
        w_noise, b_noise = dense_perturbation(hk.next_rng_key(), w_scale, b_scale)
        return inputs @ (w_mean + w_noise) + (b_mean + b_noise)


class SharedConv2D(_Variational):
    """2-D convolution (NHWC) with one posterior draw of the kernel and bias per call, shared by the batch.

    Args:
        output_channels: number of output channels.
        kernel_shape: an integer or a pair ``(height, width)``.
        stride: the same stride along height and width.
        padding: ``"SAME"`` or ``"VALID"``.
        init_rho: initial ``rho`` of every weight.
        name: Haiku module name (default ``"bayes_conv2d"``, shared with
            :class:`bnnbook.flipout.FlipoutConv2D`).

    Taught in chapter "Flipout".
    """

    def __init__(self, output_channels: int, kernel_shape: int | Sequence[int] = 5, stride: int = 1,
                 padding: str = "SAME", init_rho: float = -5.0, name: str = CONV_NAME):
        super().__init__(init_rho, name)
        self.output_channels = check_count("output_channels", output_channels)
        self.kernel_shape = _kernel_shape(kernel_shape)
        self.stride = check_count("stride", stride)
        self.padding = _check_padding(padding)

    def _conv_posterior(self, inputs):
        if inputs.ndim != 4:
            raise ValueError(f"inputs must have shape (batch, height, width, channels); got {inputs.shape}")
        channels = inputs.shape[-1]
        shape = (*self.kernel_shape, channels, self.output_channels)
        return self._posterior(shape, channels * self.kernel_shape[0] * self.kernel_shape[1],
                               self.output_channels, inputs.dtype)

    def __call__(self, inputs):
        w_mean, w_scale, b_mean, b_scale = self._conv_posterior(inputs)
        w_noise, b_noise = dense_perturbation(hk.next_rng_key(), w_scale, b_scale)
        return conv2d(inputs, w_mean + w_noise, self.stride, self.padding) + (b_mean + b_noise)


def to_mean_field(params) -> dict:
    """The ``{"mean": tree, "rho": tree}`` posterior of :mod:`bnnbook.vi` held by a Bayesian layer tree.

    ``params`` is a Haiku parameter dict whose Bayesian modules hold
    ``w_mean, w_rho, b_mean, b_rho``; both output trees are
    ``{module: {"w": ..., "b": ...}}``. Modules without those names (for
    example an ordinary ``hk.Linear``) are left out.

    Taught in chapter "Flipout".
    """
    if not isinstance(params, dict):
        raise ValueError(f"params must be a Haiku parameter dict; got {type(params).__name__}")
    mean, rho = {}, {}
    for module, leaves in params.items():
        if isinstance(leaves, dict) and set(PARAM_NAMES) <= set(leaves):
            mean[module] = {"w": leaves["w_mean"], "b": leaves["b_mean"]}
            rho[module] = {"w": leaves["w_rho"], "b": leaves["b_rho"]}
    if not mean:
        raise ValueError(f"params has no Bayesian layer (a module with {', '.join(PARAM_NAMES)}); "
                         f"its modules are {sorted(params)}")
    return {"mean": mean, "rho": rho}


def kl_divergence(params, prior_scale: float = 1.0) -> jax.Array:
    """Closed-form ``KL(q || N(0, prior_scale^2 I))`` summed over every Bayesian layer in ``params``.

    Taught in chapter "Flipout".
    """
    return vi.closed_form_kl(to_mean_field(params), priors.Gaussian(prior_scale))


__all__ = ["PARAM_NAMES", "DENSE_NAME", "CONV_NAME", "SharedDense", "SharedConv2D", "dense_perturbation",
           "conv2d", "to_mean_field", "kl_divergence"]
