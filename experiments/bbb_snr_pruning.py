"""Why pruning by signal-to-noise ratio loses to pruning by |mean| in chapter "Bayes by Backprop".

Chapter 4 trains the 2 x 400 scale-mixture network for 30 epochs and finds
that removing the weights with the lowest |mu| / sigma hurts far more than
removing the smallest |mu|, the opposite of Blundell et al.'s Table 2. This
script trains seed 0 of that network (the chapter's chosen prior: pi = 0.75,
sigma1 = 1, sigma2 = e^-8; same data, batch, epochs, schedule and
init_rho = -5) once at the chapter's settings and once with a larger learning
rate for the rho parameters only, and prints for each: the posterior-mean test
error, the correlation of log |mu| with log sigma over all weights, and the
test error after removing 50, 75 and 95% of the weights by each rule.

Measured on the 2-core AMD EPYC (Zen 4) CPU of 2026-12-07, about 200 s of
training per setting:

    rho rate        error   corr(log|mu|, log sigma)   by SNR 50/75/95%         by |mu| 50/75/95%
    (means' 1e-3)   1.73%   +0.53                      2.03% / 23.6% / 80.8%    1.86% / 1.88% / 17.0%
    3e-3            1.95%   +0.08                      2.01% /  3.1% / 38.1%    2.03% / 2.14% /  8.5%
    1e-2            3.59%   -0.04                      (stopped at epoch 3: the posterior widened and stayed at 4% error)

What it says. After 30 epochs at the means' rate the scales have grown most
on the weights that moved most (a positive correlation), so dividing by sigma
demotes weights the network uses. Letting the scales move faster removes that
correlation and makes SNR pruning much better, but the posterior then gets
wider than the data support in this budget and the unpruned error rises;
|mu| still wins. The paper's picture (SNR beats |mu| at 95% removed) needs a
posterior trained far longer than a 2-core CPU affords in the chapter's hour.

Run: ``BNNBOOK_DATA=<folder with MNIST> python experiments/bbb_snr_pruning.py`` (about 7 minutes here).
"""

import time

import jax
import numpy as np

from bnnbook import data, priors, vi
from bnnbook.vi import classifier

FRACTIONS = (0.5, 0.75, 0.95)


def pruned_errors(fit, test_images, test_labels):
    q = {"mean": fit.mean[0], "rho": fit.rho[0]}
    errors = {}
    for rule, prune in (("SNR", vi.prune_by_signal_to_noise), ("|mu|", vi.prune_by_magnitude)):
        errors[rule] = [float(classifier.error_rate(classifier.point_probs(prune(q, f)[0], test_images, fit.sizes),
                                                    test_labels)[0]) for f in FRACTIONS]
    return errors


def main():
    mnist = data.load_mnist(flatten=True, validation_size=10_000)
    pixel_scale = 255.0 / 126.0  # as in the chapter (Blundell et al. divide by 126)
    train_xy = (mnist.train.images * pixel_scale, mnist.train.labels)
    val_xy = (mnist.validation.images * pixel_scale, mnist.validation.labels)
    test_images, test_labels = mnist.test.images * pixel_scale, mnist.test.labels
    prior = priors.ScaleMixture(pi=0.75, sigma1=1.0, sigma2=float(np.exp(-8.0)))
    for rho_rate in (None, 3e-3):
        started = time.perf_counter()
        fit = classifier.train(train_xy, val_xy, prior=prior, hidden=(400, 400), seeds=(0,), epochs=30,
                               rho_learning_rate=rho_rate, desc=f"rho learning rate {rho_rate or 'of the means'}")
        mean, sigma = np.asarray(fit.mean[0]), np.asarray(jax.nn.softplus(fit.rho[0]))
        error = float(classifier.error_rate(classifier.point_probs(fit.mean[0], test_images, fit.sizes),
                                            test_labels)[0])
        corr = np.corrcoef(np.log(np.abs(mean) + 1e-12), np.log(sigma))[0, 1]
        errors = pruned_errors(fit, test_images, test_labels)
        print(f"rho rate {rho_rate or 'of the means'}: {time.perf_counter() - started:.0f} s, best epoch "
              f"{int(fit.best_epoch[0]) + 1}, posterior-mean test error {error:.2%}, corr(log|mu|, log sigma) "
              f"{corr:+.2f}, sigma quantiles 10/50/90% {np.quantile(sigma, [0.1, 0.5, 0.9]).round(4)}")
        for rule, values in errors.items():
            print(f"  removed by {rule:<5}" + "  ".join(f"{f:.0%}: {e:.2%}" for f, e in zip(FRACTIONS, values)))


if __name__ == "__main__":
    main()
