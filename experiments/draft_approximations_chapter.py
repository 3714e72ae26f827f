import nbformat as nbf
cells = []
md = lambda s: cells.append(nbf.v4.new_markdown_cell(s.strip()))
code = lambda s: cells.append(nbf.v4.new_code_cell(s.strip()))

md(r"""
# Practical approximations

Full-batch HMC (chapter "Hamiltonian Monte Carlo for Bayesian neural
networks") is the reference: it samples the posterior of the 784-100-10
network, but it pays a pass over all 55,000 training images for every
leapfrog step. The methods people use every day are cheaper approximations
of the same predictive
$p(y \mid x, \mathcal{D}) = \int p(y \mid x, w)\, p(w \mid \mathcal{D})\, dw$.
Each replaces the posterior by something that costs about as much as
training the network a few times:

* **deep ensembles**: a handful of networks trained from different random starts;
* **MC dropout**: one network trained with dropout, and dropout left on at test time;
* **the last-layer Laplace approximation**: a Gaussian around a trained network's last layer;
* **stochastic-gradient MCMC** (SGLD, SGHMC): Langevin or Hamiltonian dynamics on minibatch gradients;
* **temperature scaling**: no posterior at all, one number that softens the probabilities
  of a single network; the calibration baseline the others must beat.

This chapter builds each one on the same network as the HMC chapter, looks at
what each predicts on a 2-D toy, and then scores all of them on one table:
every MNIST test image, three probe sets of inputs that are not digits, rotated
digits, and an interval on every number.
""")

code(r"""
# On Colab (or anywhere bnnbook is missing) install it from the book's repository.
import importlib.util, subprocess, sys
if importlib.util.find_spec("bnnbook") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "git+https://github.com/bnnbook/bnnbook"], check=True)

import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from bnnbook import bootstrap, data, metrics, nets, ood, runtime
from bnnbook.approximations import dropout, ensemble, laplace, sgmcmc, temperature

run = runtime.start("approximations")
""")

md(r"""
## Why: one network is sure of itself far from its data

Two interleaved half moons, 200 points, and a small network (two hidden
layers of 50 tanh units). The colour is the predictive probability of the
more likely class: white where the model is unsure (0.5), dark where it is
sure. A single trained network (MAP, left) is sure almost everywhere,
including corners of the plane with no data at all. The other panels are the
approximations of this chapter on the same data, each explained below.
""")

code(r"""
moons_x, moons_y = data.two_moons(200, noise_std=0.1, seed=0)
toy_net = nets.mlp((50, 50), 2, activation=jnp.tanh)
toy_init = lambda key: toy_net.init(key, moons_x[:1])
toy_prior_precision = 1.0

def toy_loss(params, x, y, key, rate=0.0):
    logits = dropout.dropout_logits(params, x, key, rate, activation=jnp.tanh)
    penalty = 0.5 * sum(jnp.sum(w ** 2) for w in jax.tree_util.tree_leaves(params))
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean() + toy_prior_precision * penalty / len(moons_y)

toy_epochs = run.choose(300, 1000)
toy_members, _ = ensemble.fit_members(toy_loss, ensemble.stack_members(toy_init, jax.random.key(0), 5), optax.adam(1e-2),
                                      moons_x, moons_y, num_epochs=toy_epochs, batch_size=50, key=jax.random.key(1),
                                      desc="toy ensemble")
toy_dropout, _ = ensemble.fit_members(lambda p, x, y, k: toy_loss(p, x, y, k, rate=0.2),
                                      ensemble.stack_members(toy_init, jax.random.key(2), 1), optax.adam(1e-2),
                                      moons_x, moons_y, num_epochs=toy_epochs, batch_size=50, key=jax.random.key(3),
                                      desc="toy dropout")
toy_map = ensemble.member(toy_members, 0)
toy_laplace = laplace.fit_last_layer(toy_map, moons_x, moons_y, activation=jnp.tanh,
                                     prior_precisions=np.logspace(-4, 6, 101))

def toy_log_prior(params):
    return -0.5 * toy_prior_precision * sum(jnp.sum(w ** 2) for w in jax.tree_util.tree_leaves(params))

def toy_log_likelihood(params, x, y):
    return jnp.take_along_axis(jax.nn.log_softmax(toy_net.apply(params, x)), y[:, None], 1).sum()

toy_sgld = sgmcmc.run_sgmcmc("sgld", toy_log_prior, toy_log_likelihood, ensemble.stack_members(toy_init, jax.random.key(4), 1),
                             moons_x, moons_y, num_epochs=toy_epochs, batch_size=50, step_size=1e-3,
                             epochs_per_cycle=toy_epochs // 5, exploration=0.5, key=jax.random.key(5), desc="toy SGLD")

grid_axis = np.linspace(-3, 4, 120, dtype=np.float32)
grid = np.stack(np.meshgrid(grid_axis, grid_axis - 0.25), -1).reshape(-1, 2)
toy_draws = {
    "MAP (one network)": ensemble.members_probs(toy_net.apply, jax.tree.map(lambda a: a[:1], toy_members), grid),
    "deep ensemble (5)": ensemble.members_probs(toy_net.apply, toy_members, grid),
    "MC dropout": dropout.mc_dropout_probs(ensemble.member(toy_dropout, 0), grid, jax.random.key(6), 0.2, 50,
                                           activation=jnp.tanh),
    "last-layer Laplace": laplace.last_layer_probs(toy_laplace, toy_map, grid, jax.random.key(7), 200, activation=jnp.tanh),
    "cyclical SGLD": ensemble.members_probs(toy_net.apply, jax.tree.map(lambda a: a[0], toy_sgld.samples), grid),
}
fig, axes = plt.subplots(1, 5, figsize=(17, 3.6), sharey=True)
for ax, (name, draws) in zip(axes, toy_draws.items()):
    confidence = np.asarray(draws).mean(0).max(-1).reshape(len(grid_axis), len(grid_axis))
    image = ax.contourf(grid_axis, grid_axis - 0.25, confidence, levels=np.linspace(0.5, 1, 11), cmap="Blues")
    ax.scatter(*moons_x[moons_y == 0].T, s=6, c="tab:orange")
    ax.scatter(*moons_x[moons_y == 1].T, s=6, c="tab:red")
    ax.set(title=name, xticks=[-2, 0, 2, 4])
fig.colorbar(image, ax=axes, label="predictive probability of the more likely class", shrink=0.9)
plt.show()
""")

md(r"""
The ensemble's members agree where the data are and disagree away from them,
so the mixture fades out along the directions nobody was trained on. MC dropout
and the last-layer Laplace approximation add width around a single network
and, on this toy, leave it nearly as sure as the MAP far from the moons: the
last layer cannot change what the hidden features do out there. SGLD's draws
come from one long chain, and how much they disagree depends on how far it
wanders within its cycles.

## The math, briefly

**Deep ensemble** {cite}`lakshminarayanan2017simple`. Train $M$ networks
$w_1, \dots, w_M$ to their MAP points from independent initialisations and
minibatch orders, and average:
$p(y \mid x) \approx \frac{1}{M}\sum_m p(y \mid x, w_m)$. It is a mixture of
point masses at different modes, not a posterior sample, but it captures the
disagreement between modes that the local methods below cannot see.

**MC dropout** {cite}`gal2016dropout`. Train with each hidden unit zeroed with
probability $r$ (the survivors scaled by $1/(1-r)$) and keep doing that at
test time: each pass with a fresh mask is one draw of a network, and the
average of $S$ passes is the predictive.

**Last-layer Laplace** {cite}`mackay1992practical,immer2021improving`. Keep the
trained hidden layers and write the logits as $f(x) = W^\top \phi(x)$ with
$\phi$ the last hidden layer (plus a 1 for the bias). The log posterior of $W$
is approximated by its second-order expansion at the trained $W_\ast$:

$$
q(W) = \mathcal{N}\big(W_\ast,\; (H + \lambda I)^{-1}\big), \qquad
H = \sum_n \big(\operatorname{diag}(p_n) - p_n p_n^\top\big) \otimes \phi_n \phi_n^\top ,
$$

and the prior precision $\lambda$ is the one that maximises the Laplace
estimate of the evidence,
$\log p(\mathcal{D} \mid \lambda) \approx \log p(\mathcal{D} \mid W_\ast)
- \tfrac{\lambda}{2}\lVert W_\ast \rVert^2 + \tfrac{P}{2}\log\lambda
- \tfrac12 \sum_k \log(h_k + \lambda)$, with $h_k$ the eigenvalues of $H$.
Because the logits are linear in $W$, the "linearised" predictive is exact
here and $H$ is the exact Hessian.

**SGLD and SGHMC** {cite}`welling2011bayesian,chen2014stochastic,zhang2020cyclical`.
With $g(\theta)$ the minibatch estimate of $\nabla \log p(\theta \mid \mathcal{D})$
(the minibatch log-likelihood scaled by $N/n$),

$$
\text{SGLD:}\quad \theta \leftarrow \theta + \varepsilon\, g(\theta) + \sqrt{2\varepsilon}\,\xi, \qquad
\text{SGHMC:}\quad \theta \leftarrow \theta + \varepsilon r,\;\;
r \leftarrow (1-\alpha\varepsilon)\, r + \varepsilon\, g(\theta) + \sqrt{2\alpha\varepsilon}\,\xi ,
$$

with $\xi \sim \mathcal{N}(0, I)$: gradient steps plus exactly the noise that
makes the posterior the stationary law as $\varepsilon \to 0$. There is no
Metropolis test, so the step size is a bias-variance dial. The cyclical
schedule restarts a large step at every cycle (to travel), lets it decay (to
sample), and keeps draws from the end of each cycle.

**Temperature scaling** {cite}`guo2017calibration`. Divide a network's
logits by one $T > 0$ fitted to minimise the NLL of the *validation* images.
The predicted class does not change, so accuracy is untouched.
""")

md(r"""
## MNIST: the network of the HMC chapter, trained eight ways

The data: 55,000 training images, 5,000 validation images (every choice below
is made on them), and all 10,000 test images. The network is chapter 6's
784-100-10 sigmoid MLP with its $\mathcal{N}(0, 1)$ prior on every weight
(weight decay $1/N$ per example). Every point estimate is trained with Adam
and a cosine decay from `learning_rate=1e-2`, batch 128; a preliminary
validation sweep (learning rates `3e-3` and `1e-2`, prior precisions `1` and
`10`) chose these. Three seeds of everything: fifteen MAP networks make three
ensembles of five, and the MAP, temperature and Laplace rows use the first
network of each ensemble.
""")

code(r"""
mnist = data.load_mnist(flatten=True, train_size=run.choose(10000, None), test_size=run.choose(2000, None))
probes = data.ood_probes(flatten=True, num_fashion=run.choose(2000, None))
train_images, train_labels = mnist.train.images, mnist.train.labels
val_images, val_labels = mnist.validation.images, mnist.validation.labels
test_images, test_labels = mnist.test.images, mnist.test.labels
num_train = len(train_labels)

network = nets.mlp((100,), 10, activation=jax.nn.sigmoid)  # chapter 6's network
init = lambda key: network.init(key, train_images[:1])
num_seeds, ensemble_size, batch_size = 3, 5, 128
num_epochs = run.choose(3, 40)
schedule = optax.cosine_decay_schedule(1e-2, num_epochs * (num_train // batch_size), alpha=0.01)

def squared_norm(params):
    return sum(jnp.sum(w ** 2) for w in jax.tree_util.tree_leaves(params))

def point_loss(prior_precision, dropout_rate=0.0):
    def loss(params, images, labels, key):
        logits = dropout.dropout_logits(params, images, key, dropout_rate, activation=jax.nn.sigmoid)
        nll = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        return nll + 0.5 * prior_precision * squared_norm(params) / num_train
    return loss

timings = {}
def timed(name, fn):
    started = time.perf_counter()
    out = fn()
    timings[name] = time.perf_counter() - started
    return out

map_members, _ = timed("MAP members", lambda: ensemble.fit_members(
    point_loss(1.0), ensemble.stack_members(init, jax.random.key(0), num_seeds * ensemble_size), optax.adam(schedule),
    train_images, train_labels, num_epochs=num_epochs, batch_size=batch_size, key=jax.random.key(1), desc="MAP x 15"))
mle_members, _ = timed("MLE", lambda: ensemble.fit_members(
    point_loss(0.0), ensemble.stack_members(init, jax.random.key(2), num_seeds), optax.adam(schedule),
    train_images, train_labels, num_epochs=num_epochs, batch_size=batch_size, key=jax.random.key(3), desc="MLE x 3"))
print({name: f"{seconds:.0f} s" for name, seconds in timings.items()})
""")

md(r"""
### MC dropout: the rate is chosen on the validation digits

Two rates, three seeds each, scored by the validation NLL of the 30-draw
MC-dropout predictive.
""")

code(r"""
dropout_rates = (0.1, 0.3)
num_dropout_draws = 30
dropout_fits, dropout_val_nll = {}, {}
for index, rate in enumerate(dropout_rates):
    dropout_fits[rate], _ = timed(f"MC dropout {rate}", lambda: ensemble.fit_members(
        point_loss(1.0, rate), ensemble.stack_members(init, jax.random.key(10 + index), num_seeds), optax.adam(schedule),
        train_images, train_labels, num_epochs=num_epochs, batch_size=batch_size, key=jax.random.key(20 + index),
        desc=f"dropout {rate}"))
    dropout_val_nll[rate] = np.mean([metrics.nll(np.asarray(dropout.mc_dropout_probs(
        ensemble.member(dropout_fits[rate], s), val_images, jax.random.key(30), rate, num_dropout_draws)).mean(0), val_labels)
        for s in range(num_seeds)])
dropout_rate = min(dropout_val_nll, key=dropout_val_nll.get)
print({rate: round(float(v), 4) for rate, v in dropout_val_nll.items()}, "-> rate", dropout_rate)
""")

md(r"""
### Temperature scaling and the last-layer Laplace approximation

Both start from a trained MAP network. The temperature is fitted on the
validation logits; the Laplace prior precision on the training data by the
evidence, with no validation data at all. The curve shows that evidence for
the first seed.
""")

code(r"""
map_seeds = [ensemble.member(map_members, s * ensemble_size) for s in range(num_seeds)]
logits_fn = jax.jit(network.apply)
temperatures = [temperature.fit_temperature(np.asarray(logits_fn(p, val_images)), val_labels) for p in map_seeds]
laplaces = timed("last-layer Laplace", lambda: [laplace.fit_last_layer(p, train_images, train_labels) for p in map_seeds])
print("temperatures:", [round(t, 3) for t in temperatures])
print("Laplace prior precisions:", [round(l.prior_precision, 3) for l in laplaces])

fig, ax = plt.subplots(figsize=(5.5, 3.2))
ax.semilogx(laplaces[0].prior_precisions, laplaces[0].log_evidence - laplaces[0].log_evidence.max())
ax.axvline(laplaces[0].prior_precision, color="k", linestyle=":")
ax.set(xlabel=r"prior precision $\lambda$ of the last layer", ylabel="log evidence (max = 0)",
       ylim=(-200, 10), title="Laplace evidence, first seed")
plt.show()
""")

md(r"""
### SGLD and SGHMC on minibatches

Three chains each from random initialisations, four cosine cycles over the
run; the first half of each cycle explores without noise and the end of
every later epoch is kept. The step sizes (`step_size=3e-5` for SGLD;
`step_size=4e-3` with friction `25` for SGHMC, both per summed log posterior)
were chosen on the validation digits in short runs.
""")

code(r"""
def log_prior(params):  # N(0, 1) on every weight, as in chapter 6
    return -0.5 * squared_norm(params)

def log_likelihood(params, images, labels):  # summed over the minibatch
    return jnp.take_along_axis(jax.nn.log_softmax(network.apply(params, images)), labels[:, None], 1).sum()

sg_settings = {"cyclical SGLD": dict(kernel="sgld", step_size=3e-5),
               "cyclical SGHMC": dict(kernel="sghmc", step_size=4e-3, friction=25.0)}
sg_runs = {}
for index, (name, setting) in enumerate(sg_settings.items()):
    sg_runs[name] = timed(name, lambda: sgmcmc.run_sgmcmc(
        log_prior=log_prior, log_likelihood_fn=log_likelihood,
        positions=ensemble.stack_members(init, jax.random.key(40 + index), num_seeds),
        images=train_images, labels=train_labels, num_epochs=num_epochs, batch_size=batch_size,
        epochs_per_cycle=max(num_epochs // 4, 1), exploration=0.5, key=jax.random.key(50 + index), desc=name, **setting))
    print(f"{name}: {len(sg_runs[name].kept_epochs)} draws per chain, epochs {sg_runs[name].kept_epochs.tolist()}")
""")

md(r"""
## Every method on the same images

Each method's predictive is a stack of probability draws on every image; the
scores below see nothing else. The out-of-distribution score is the same for
every method and fixed in advance: the **entropy of the predictive mean**
(high = reject). Nothing is selected on the test digits or on the probes.
""")

code(r"""
num_laplace_draws = 100

def predictive_draws(method, seed, images):
    if method == "MLE":
        return ensemble.members_probs(network.apply, jax.tree.map(lambda a: a[seed:seed + 1], mle_members), images)
    if method == "MAP":
        return jax.nn.softmax(logits_fn(map_seeds[seed], images))[None]
    if method == "MAP + temperature":
        return temperature.scaled_probs(np.asarray(logits_fn(map_seeds[seed], images)), temperatures[seed])[None]
    if method == "deep ensemble (5)":
        members = jax.tree.map(lambda a: a[seed * ensemble_size:(seed + 1) * ensemble_size], map_members)
        return ensemble.members_probs(network.apply, members, images)
    if method == "MC dropout":
        return dropout.mc_dropout_probs(ensemble.member(dropout_fits[dropout_rate], seed), images,
                                        jax.random.key(60 + seed), dropout_rate, num_dropout_draws)
    if method == "last-layer Laplace":
        return laplace.last_layer_probs(laplaces[seed], map_seeds[seed], images, jax.random.key(70 + seed),
                                        num_laplace_draws)
    return ensemble.members_probs(network.apply, jax.tree.map(lambda a: a[seed], sg_runs[method].samples), images)

methods = ["MLE", "MAP", "MAP + temperature", "deep ensemble (5)", "MC dropout", "last-layer Laplace",
           "cyclical SGLD", "cyclical SGHMC"]
probe_names = list(data.PROBE_NAMES)
evaluation_sets = {"MNIST test": test_images, **probes.images}

mean_probs, entropies, per_seed = {}, {}, {}
started = time.perf_counter()
for method in methods:
    per_seed[method] = []
    for seed in range(num_seeds):
        means = {name: np.asarray(predictive_draws(method, seed, images)).mean(0) for name, images in evaluation_sets.items()}
        scores = {name: ood.predictive_entropy(m[None]) for name, m in means.items()}
        test_mean = means["MNIST test"]
        per_seed[method].append({"accuracy": metrics.accuracy(test_mean, test_labels), "nll": metrics.nll(test_mean, test_labels),
                                 "ece": metrics.expected_calibration_error(test_mean, test_labels),
                                 "brier": metrics.brier_score(test_mean, test_labels),
                                 **{probe: metrics.auroc(scores["MNIST test"], scores[probe]) for probe in probe_names}})
        if seed == 0:
            mean_probs[method], entropies[method] = means, scores
timings["prediction, all methods"] = time.perf_counter() - started
print(f"predictions of {len(methods)} methods x {num_seeds} seeds on {sum(len(v) for v in evaluation_sets.values()):,} "
      f"images: {timings['prediction, all methods']:.0f} s")
""")

md(r"""
### Intervals

Two kinds of uncertainty sit on every number. **Seeds**: the mean and standard
deviation over the three training runs. **Test images**: a percentile
bootstrap over the test digits and, for an AUROC, over the probe images
separately (the letters by whole letter, since the 72 renderings of one letter
are not independent); it is computed for the first seed.
""")

code(r"""
num_resamples = run.choose(50, 500)
letter_groups = np.asarray(probes.letter_names)
score_fns = {"accuracy": metrics.accuracy, "nll": metrics.nll, "ece": metrics.expected_calibration_error,
             "brier": metrics.brier_score}
table = {}
for method in methods:
    row = {}
    test_mean = mean_probs[method]["MNIST test"]
    for name, fn in score_fns.items():
        values = [s[name] for s in per_seed[method]]
        row[name] = {"value": values[0], "ci": bootstrap.interval(fn, (test_mean, test_labels), num_resamples=num_resamples),
                     "seed_mean": float(np.mean(values)), "seed_sd": float(np.std(values, ddof=1))}
    for probe in probe_names:
        inside, outside = entropies[method]["MNIST test"], entropies[method][probe]
        values = [s[probe] for s in per_seed[method]]
        row[probe] = {"value": values[0], "fpr95": metrics.fpr_at_tpr(inside, outside),
                      "ci": bootstrap.interval(metrics.auroc, inside, outside, num_resamples=num_resamples,
                                               groups=[None, letter_groups if probe == "letters" else None]),
                      "seed_mean": float(np.mean(values)), "seed_sd": float(np.std(values, ddof=1))}
    table[method] = row

def cell(entry, scale=1.0, digits=3):
    low, high = entry["ci"]
    return f"{scale * entry['value']:.{digits}f} [{scale * low:.{digits}f}, {scale * high:.{digits}f}]"

header = ["method", "accuracy %", "NLL", "ECE", "Brier"] + [f"AUROC {p}" for p in probe_names]
print(f"MNIST test: {len(test_labels):,} digits; first seed, 95% bootstrap intervals")
print(" | ".join(header))
for method, row in table.items():
    print(" | ".join([method, cell(row["accuracy"], 100, 2), cell(row["nll"]), cell(row["ece"]), cell(row["brier"])]
                     + [cell(row[p]) for p in probe_names]))
""")

md(r"""
The same scores as mean $\pm$ standard deviation over the three seeds (each
seed is a full retraining), with the share of probe images still accepted when
95% of the test digits are (FPR at 95% TPR, first seed; lower is better), and
chapter 6's HMC run for reference. HMC's draws were not stored, so its row has
no intervals and no probe columns here (its own table scores the probes with
the best of four scores, a different protocol).
""")

code(r"""
hmc = runtime.load_results("hmc", "full")["metrics"] if run.profile == "full" else None
print(" | ".join(["method", "accuracy %", "NLL", "ECE"] + [f"AUROC {p}" for p in probe_names]
                 + [f"FPR95 {p}" for p in probe_names]))
for method, row in table.items():
    seeds = [f"{100 * row['accuracy']['seed_mean']:.2f} ± {100 * row['accuracy']['seed_sd']:.2f}"]
    seeds += [f"{row[k]['seed_mean']:.3f} ± {row[k]['seed_sd']:.3f}" for k in ("nll", "ece")]
    seeds += [f"{row[p]['seed_mean']:.3f} ± {row[p]['seed_sd']:.3f}" for p in probe_names]
    seeds += [f"{row[p]['fpr95']:.3f}" for p in probe_names]
    print(" | ".join([method] + seeds))
if hmc is not None:
    print(" | ".join(["HMC (chapter 6, 1 run)", f"{100 * hmc['mnist_hmc_test_accuracy']:.2f}",
                      f"{hmc['mnist_hmc_test_nll']:.3f}", f"{hmc['mnist_hmc_test_ece']:.3f}"]))
print("wall time on this CPU:", {name: f"{seconds:.0f} s" for name, seconds in timings.items()})
""")

md(r"""
## Dataset shift: rotated digits

The test digits rotated by $0^\circ$ to $180^\circ$ {cite}`ovadia2019can`.
Accuracy falls for every method alike (they share the network); what differs
is whether the probabilities admit it. A calibrated model's NLL and ECE
rise slowly as its accuracy falls.
""")

code(r"""
angles = np.arange(0, 181, run.choose(45, 15))
rotated = {int(angle): data.rotate(test_images, angle) for angle in angles}
shift = {method: {name: [] for name in ("accuracy", "nll", "ece")} for method in methods}
for method in methods:
    for angle, images in rotated.items():
        mean = np.asarray(predictive_draws(method, 0, images)).mean(0)
        shift[method]["accuracy"].append(metrics.accuracy(mean, test_labels))
        shift[method]["nll"].append(metrics.nll(mean, test_labels))
        shift[method]["ece"].append(metrics.expected_calibration_error(mean, test_labels))

fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))
for method in methods:
    style = "--" if method in ("MLE", "MAP") else "-"
    for ax, name in zip(axes, ("accuracy", "nll", "ece")):
        ax.plot(angles, shift[method][name], style, marker=".", label=method)
for ax, name in zip(axes, ("accuracy", "NLL", "ECE")):
    ax.set(xlabel="rotation (degrees)", ylabel=name, xticks=angles[::max(len(angles) // 7, 1)])
axes[1].set_yscale("log")
axes[0].legend(fontsize=8)
plt.show()
""")

code(r"""
slug = {"MLE": "mle", "MAP": "map", "MAP + temperature": "temp", "deep ensemble (5)": "ens", "MC dropout": "drop",
        "last-layer Laplace": "laplace", "cyclical SGLD": "sgld", "cyclical SGHMC": "sghmc"}
probe_slug = {"letters": "letters", "uniform noise": "noise", "Fashion-MNIST": "fashion"}
glued = {"num_test": len(test_labels), "num_train": num_train, "num_epochs": num_epochs, "dropout_rate": dropout_rate,
         "temperature": temperatures[0], "laplace_precision": laplaces[0].prior_precision,
         "num_resamples": num_resamples, "total_minutes": (time.time() - run.started) / 60}
for method, row in table.items():
    for name in ("accuracy", "nll", "ece", "brier"):
        glued[f"{slug[method]}_{name}"] = row[name]["value"] * (100 if name == "accuracy" else 1)
        glued[f"{slug[method]}_{name}_sd"] = row[name]["seed_sd"] * (100 if name == "accuracy" else 1)
    for probe, short in probe_slug.items():
        glued[f"{slug[method]}_auroc_{short}"] = row[probe]["value"]
        glued[f"{slug[method]}_auroc_{short}_low"], glued[f"{slug[method]}_auroc_{short}_high"] = row[probe]["ci"]
        glued[f"{slug[method]}_fpr95_{short}"] = row[probe]["fpr95"]
    glued[f"{slug[method]}_nll_at_90"] = shift[method]["nll"][list(angles).index(90)] if 90 in angles else float("nan")
    glued[f"{slug[method]}_accuracy_at_90"] = 100 * (shift[method]["accuracy"][list(angles).index(90)] if 90 in angles else float("nan"))
glued = {k: v for k, v in glued.items() if np.isfinite(v)}
run.glue(**glued)
""")

md(r"""
## Results

PLACEHOLDER_RESULTS
""")

md(r"""
## Exercises

1. Grow the ensemble from 1 to 15 members (the fifteen MAP networks are all
   trained above) and plot test NLL and letters AUROC against $M$. Where does
   it stop paying?

   ```{admonition} Solution
   :class: dropdown
   Average `ensemble.members_probs(network.apply, map_members, test_images)[:M]`
   over its first axis for each $M$. The NLL falls fastest over the first two
   to five members and flattens after: each new member adds less
   disagreement. The AUROC on letters keeps rising slowly, because letters
   are where members disagree most.
   ```

2. Fit the last-layer Laplace approximation with $\lambda$ chosen by the
   validation NLL instead of the evidence. Which $\lambda$ wins, and does the
   table change?

   ```{admonition} Solution
   :class: dropdown
   Loop over `laplaces[0].prior_precisions`, replace the `prior_precision`
   field (`laplaces[0]._replace(prior_precision=lam)`) and score
   `last_layer_probs` on `val_images`. The validation optimum is usually
   smaller than the evidence optimum (a wider posterior helps the NLL of the
   few hard digits), but the last layer alone barely moves the AUROC either
   way: its features do not change away from the data.
   ```

3. Run SGLD with a constant step size (`epochs_per_cycle=None`) and the same
   number of epochs. Compare the accuracy of single draws with that of the
   averaged predictive, and with the cyclical run.

   ```{admonition} Solution
   :class: dropdown
   With a constant step the chain keeps the injected noise at full size, so
   each draw is a noisier network than the ones kept at the small end of a
   cycle; the average of the draws recovers much of the gap. Cycles give
   draws from several basins and small-step draws within each.
   ```
""")

code(r"""
run.save_results({
    "methods": {slug[m]: {
        "name": m,
        "test_accuracy": table[m]["accuracy"]["value"], "test_nll": table[m]["nll"]["value"],
        "test_ece": table[m]["ece"]["value"], "test_brier": table[m]["brier"]["value"],
        "test_accuracy_seed_sd": table[m]["accuracy"]["seed_sd"], "test_nll_seed_sd": table[m]["nll"]["seed_sd"],
        "test_accuracy_ci": {"low": table[m]["accuracy"]["ci"][0], "high": table[m]["accuracy"]["ci"][1]},
        "auroc": {p: table[m][p]["value"] for p in probe_names},
        "auroc_ci": {p: {"low": table[m][p]["ci"][0], "high": table[m][p]["ci"][1]} for p in probe_names},
        "fpr95": {p: table[m][p]["fpr95"] for p in probe_names}} for m in methods},
    "ensemble_test_accuracy": table["deep ensemble (5)"]["accuracy"]["value"],
    "ensemble_test_nll": table["deep ensemble (5)"]["nll"]["value"],
    "ensemble_test_ece": table["deep ensemble (5)"]["ece"]["value"],
    "num_test_images": len(test_labels),
    "wall_seconds_by_step": {name: round(seconds, 1) for name, seconds in timings.items()},
})
""")

nb = nbf.v4.new_notebook()
nb.cells = cells
nb.metadata = {"kernelspec": {"display_name": "Python 3 (bnnbook)", "language": "python", "name": "bnnbook"},
               "language_info": {"name": "python"}}
nbf.write(nb, "/work/main/chapters/07_approximations.ipynb")
