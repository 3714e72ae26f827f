"""Posterior predictive: 500 weight draws on 1,000 inputs, one jitted vmap vs a per-draw loop.

Usage: .venv/bin/python bench/bench_predictive.py

The model is the sinusoid regressor of chapter "The reparameterization trick
and Bayes by Backprop" (1-20-20-1 ReLU MLP under a mean-field ``q``). Both
sides compute the same 500 draws: :func:`bnnbook.predictive.variational_outputs`
(one compiled ``jax.vmap`` over the draws, mapped in blocks of draws
sized to stay in the CPU cache) against two Python loops of 500
predict calls: one that calls a *jitted* single-draw function (the best a
loop can do: one dispatch per draw) and one that runs the same code eagerly,
op by op (what a loop over ``sample`` and ``apply`` does without ``jax.jit``).
Everything is compiled and warmed up before timing; each time is the median
of several repeats. Prints the ratios and merges them into
``results/bench.json`` under ``"predictive_vmap_vs_loop"`` (other keys are
kept); ``"ratio"`` there is the stricter one, against the jitted loop.
Goal: >= 100x on CPU.

A note on what bounds the ratio: a loop pays a fixed cost per call (dispatch,
and for the eager loop one dispatch per operation) on top of the work of the
draw itself, while the vmap pays only the work. With 1,000 inputs the work
per draw (about 0.9 MFLOP) is no longer small next to a dispatch, so the
ratio is bounded by (overhead + work) / work; it is largest for few inputs.
"""

from __future__ import annotations

import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from _record import save
from bnnbook import nets, predictive, vi

NUM_DRAWS = 500
NUM_INPUTS = 1000
REPEATS = 5


def median_seconds(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> dict:
    inputs = jnp.linspace(-1.5, 1.5, NUM_INPUTS, dtype=jnp.float32)[:, None]
    net = nets.mlp((20, 20), 1)
    q = vi.init_mean_field(net.init(jax.random.key(0), inputs), init_scale=0.1)
    key = jax.random.key(1)

    def vmapped():
        return np.asarray(predictive.variational_outputs(net.apply, q, inputs, key, NUM_DRAWS))

    one_draw = jax.jit(lambda q, k: net.apply(vi.sample(q, k), inputs))
    draw_keys = jax.random.split(key, NUM_DRAWS)  # the same keys vi.sample(q, key, NUM_DRAWS) uses

    def loop():
        return np.stack([np.asarray(one_draw(q, draw_keys[s])) for s in range(NUM_DRAWS)])

    def eager_loop():
        return np.stack([np.asarray(net.apply(vi.sample(q, draw_keys[s]), inputs)) for s in range(NUM_DRAWS)])

    fast = vmapped()  # compile and warm up all three
    for slow in (loop(), eager_loop()):
        np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-4)  # the same draws, computed three ways
    vmap_s, loop_s, eager_s = (median_seconds(fn) for fn in (vmapped, loop, eager_loop))
    ratio, eager_ratio = loop_s / vmap_s, eager_s / vmap_s
    print(f"{NUM_DRAWS} draws x {NUM_INPUTS} inputs on {jax.default_backend()} ({platform.processor() or 'cpu'}), "
          f"median of {REPEATS}:")
    print(f"  jitted vmap (bnnbook.predictive)   {vmap_s * 1e3:8.1f} ms")
    print(f"  loop of jitted per-draw calls      {loop_s * 1e3:8.1f} ms   ratio {ratio:6.1f}x")
    print(f"  eager loop (no jit)                {eager_s * 1e3:8.1f} ms   ratio {eager_ratio:6.1f}x")
    print(f"vmap vs per-draw loop: {ratio:.1f}x (jitted loop), {eager_ratio:.1f}x (eager loop); goal >= 100x")
    record = {"ratio": ratio, "ratio_vs_eager_loop": eager_ratio, "vmap_seconds": vmap_s, "loop_seconds": loop_s,
              "eager_loop_seconds": eager_s, "num_draws": NUM_DRAWS, "num_inputs": NUM_INPUTS}
    return save("predictive_vmap_vs_loop", record)


if __name__ == "__main__":
    main()
