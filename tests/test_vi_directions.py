"""bnnbook.vi.directions: the two KL directions, checked against direct minimisation."""

import numpy as np
import pytest
from scipy import optimize

from bnnbook import vi
from bnnbook.vi import directions

COVARIANCE = np.array([[1.0, 0.9], [0.9, 1.0]])


@pytest.mark.parametrize("direction", ["reverse", "forward"])
def test_mean_field_variances_minimise_the_kl_in_their_direction(direction):
    def kl(log_variances):
        diagonal = np.diag(np.exp(log_variances))
        if direction == "reverse":
            return vi.gaussian_kl_full(np.zeros(2), diagonal, np.zeros(2), COVARIANCE)
        return vi.gaussian_kl_full(np.zeros(2), COVARIANCE, np.zeros(2), diagonal)

    found = np.exp(optimize.minimize(kl, np.zeros(2), method="Nelder-Mead", options={"xatol": 1e-9}).x)
    np.testing.assert_allclose(directions.mean_field_variances(COVARIANCE)[direction], found, rtol=1e-4)


def test_reverse_mean_field_is_too_narrow_and_forward_is_the_marginal():
    variances = directions.mean_field_variances(COVARIANCE)
    np.testing.assert_allclose(variances["reverse"], 1 - 0.9 ** 2)  # the conditional variance
    np.testing.assert_allclose(variances["forward"], [1.0, 1.0])
    with pytest.raises(ValueError, match="positive definite"):
        directions.mean_field_variances([[1.0, 2.0], [2.0, 1.0]])


def test_gaussian_fits_to_a_bimodal_mixture_seek_a_mode_or_cover_both():
    weights, means, stds = [0.6, 0.4], [-2.0, 2.0], [0.5, 0.5]
    fits = directions.gaussian_fits_to_mixture(weights, means, stds)
    forward_mean, forward_std = fits["forward"]
    assert forward_mean == pytest.approx(0.6 * -2 + 0.4 * 2)
    assert forward_std == pytest.approx(np.sqrt(0.25 + 4 - forward_mean ** 2))
    reverse_mean, reverse_std = fits["reverse"]
    assert abs(reverse_mean + 2.0) < 0.05 and abs(reverse_std - 0.5) < 0.05  # on the heavier mode, its width
    # Each fit wins in its own direction.
    kl = lambda fit, direction: directions.kl_to_mixture(*fit, weights, means, stds, direction)  # noqa: E731
    assert kl(fits["reverse"], "reverse") < kl(fits["forward"], "reverse")
    assert kl(fits["forward"], "forward") < kl(fits["reverse"], "forward")
    # The quadrature agrees with the closed form when the "mixture" is one Gaussian.
    assert directions.kl_to_mixture(0.3, 1.2, [1.0], [0.0], [1.0]) == pytest.approx(
        vi.gaussian_kl_full(np.array([0.3]), np.array([[1.44]]), np.zeros(1), np.eye(1)), rel=1e-6)
    with pytest.raises(ValueError, match="sum to 1"):
        directions.gaussian_fits_to_mixture([0.5, 0.6], means, stds)
