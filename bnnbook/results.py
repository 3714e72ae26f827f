"""Headline results of every chapter next to the published figures they are
measured against (NumPy-free, framework-free).

Taught in the appendix "Results and reproducibility"; chapters write their
numbers with :meth:`bnnbook.runtime.Run.save_results` into
``results/<chapter>.json``, and :func:`collect` reads them back.

:data:`ANCHORS` maps ``(chapter, metric)`` to the published figure the metric
is measured against: the value, its source, and whether higher or lower is
better. A metric without an anchor is reported as it is.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
from typing import Iterable

from bnnbook import runtime


@dataclasses.dataclass(frozen=True)
class Anchor:
    """A published figure: ``value`` from ``source``; ``better`` is ``"higher"`` or ``"lower"``."""

    value: float
    source: str
    better: str
    label: str = ""


_PAPER_BBB = "Blundell et al. 2015, Table 1 (2 x 400, scale mixture)"
_TARGET = "this book's target"

#: ``(chapter, metric)`` -> the :class:`Anchor` (published figure, or the book's target) it is measured against.
ANCHORS: dict[tuple[str, str], Anchor] = {
    ("free_energy", "blr_exact_posterior_elbo_error"): Anchor(1e-3, _TARGET, "lower", "ELBO = log evidence at the exact posterior"),
    ("free_energy", "blr_random_q_above_evidence"): Anchor(0, "ELBO <= log p(D) (theory)", "lower"),
    ("bayes_by_backprop", "mnist_test_error.Bayes by Backprop, scale mixture"): Anchor(0.0136, _PAPER_BBB, "lower"),
    ("bayes_by_backprop", "sinusoid_epistemic_ratio_far_vs_inside"): Anchor(5.0, _TARGET, "higher", "1 draw per step"),
    ("bayes_by_backprop", "sinusoid_epistemic_ratio_far_vs_inside_many_draws"): Anchor(
        5.0, _TARGET, "higher", "100 draws per step"),
    ("flipout", "lenet_test_accuracy"): Anchor(0.985, "published mean-field LeNet-5 baseline", "higher"),
    ("flipout", "lenet_test_ece"): Anchor(0.010, _TARGET, "lower"),
    ("flipout", "variance_ratio_at_128_fixed_batch_wide"): Anchor(10.0, _TARGET, "higher", "MLP, sigma = 1"),
    ("flipout", "variance_ratio_at_128_cnn.0.1"): Anchor(10.0, _TARGET, "higher", "LeNet-like CNN, sigma = 0.1"),
    ("flipout", "step_time_ratio_mlp"): Anchor(1.6, _TARGET + " (theory: 2x the FLOPs)", "lower"),
    ("flipout", "step_time_ratio_cnn"): Anchor(1.6, _TARGET + " (theory: 2x the FLOPs)", "lower"),
    ("flipout", "spider_over_child_spread_batch5"): Anchor(5.0, _TARGET, "higher"),
    ("flipout", "spider_over_child_spread_batch50"): Anchor(5.0, _TARGET, "higher"),
    ("hmc", "regression_test_mse"): Anchor(0.0105, _TARGET + " (noise floor 0.01)", "lower"),
    ("hmc", "mnist_hmc_test_accuracy"): Anchor(0.980, _TARGET + " (full profile, GPU)", "higher"),
    ("hmc", "mnist_max_rhat_probs"): Anchor(1.05, _TARGET, "lower"),
    ("ood", "vi_test_accuracy"): Anchor(0.979, "JAX mean-field VI reference post (64-64 MLP)", "higher"),
    ("ood", "best_auroc_noise"): Anchor(0.99, _TARGET, "higher"),
    ("ood", "best_auroc_letters"): Anchor(0.95, _TARGET, "higher"),
    ("ood", "best_auroc_fashion_mnist"): Anchor(0.95, _TARGET, "higher"),
}


_BENCH_SOURCE = _TARGET + " (bench/)"

#: ``(benchmark, figure)`` in ``results/bench.json`` -> what the figure is, and the goal (an :class:`Anchor`,
#: or ``None``) its ``bench/`` script is measured against.
BENCH_FIGURES: dict[tuple[str, str], tuple[str, Anchor | None]] = {
    ("flipout_vs_shared_step_time", "mlp_784_256_256_10"): (
        "Flipout / shared step time, MLP 784-256-256-10, batch 128", Anchor(1.6, _BENCH_SOURCE, "lower")),
    ("flipout_vs_shared_step_time", "lenet_like_cnn"): (
        "Flipout / shared step time, LeNet-like CNN, batch 128", Anchor(1.6, _BENCH_SOURCE, "lower")),
    ("hmc_vs_blackjax", "worst_time_ratio"): (
        "HMC time per iteration, ours / BlackJAX (worse of two targets)", Anchor(1.1, _BENCH_SOURCE, "lower")),
    ("predictive_vmap_vs_loop", "ratio"): (
        "predictive draws: jitted per-draw loop / one vmapped call", Anchor(100.0, _BENCH_SOURCE, "higher")),
    ("hmc_gradient_throughput", "gradient_ms"): ("MNIST HMC: one full-batch gradient (55,000 images), ms", None),
    ("hmc_gradient_throughput", "tflops_per_second"): ("MNIST HMC: that gradient in TFLOP/s (XLA's count)", None),
}


def bench_table(bench: dict) -> str:
    """A Markdown table of ``results/bench.json``: each figure of :data:`BENCH_FIGURES`, per backend, with its verdict.

    ``bench`` maps a benchmark to ``{backend: record}`` (as the ``bench/`` scripts
    save it); a column per backend found, each cell the figure, its verdict and
    the device it was measured on. Taught in the appendix "Results and reproducibility".
    """
    if not isinstance(bench, dict):
        raise ValueError(f"bench must be the dict read from results/bench.json, got {type(bench).__name__}")
    backends = sorted({backend for entry in bench.values() if isinstance(entry, dict)
                       for backend, record in entry.items() if isinstance(record, dict)})
    if not backends:
        return "No benchmark figures are stored yet (`make bench` runs every `bench/` script).\n"
    lines = ["| figure | goal | " + " | ".join(backends) + " |", "|---|---|" + "---|" * len(backends)]
    for (name, field), (label, goal) in BENCH_FIGURES.items():
        cells = []
        for backend in backends:
            record = bench.get(name, {}).get(backend)
            if not isinstance(record, dict) or field not in record:
                cells.append("")
                continue
            judged = verdict(record[field], goal)
            cells.append(f"{_format(record[field])}{f' ({judged})' if judged else ''}, {record.get('device', '?')}")
        goal_text = f"{'<=' if goal.better == 'lower' else '>='} {_format(goal.value)}" if goal else ""
        lines.append(f"| {label} | {goal_text} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@dataclasses.dataclass(frozen=True)
class Row:
    """One metric of one chapter's stored run."""

    chapter: str
    metric: str
    value: float | str
    profile: str
    device: str
    versions: str
    date: str
    anchor: Anchor | None
    commit: str = "not recorded"  # the git commit of the code that produced the number (runtime.git_commit)
    wall_seconds: float | None = None  # the chapter's wall time up to save_results

    @property
    def verdict(self) -> str:
        """``"meets"`` when the figure is at least as good as the anchor, ``"below"`` when not, else ``""``."""
        return verdict(self.value, self.anchor)


def verdict(value, anchor: Anchor | None) -> str:
    """``"meets"`` when ``value`` is at least as good as ``anchor``, ``"below"`` when not, ``""`` without one."""
    if anchor is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return ""
    if anchor.better == "higher":
        return "meets" if value >= anchor.value else "below"
    return "meets" if value <= anchor.value else "below"


def _flatten(metrics: dict, prefix: str = "") -> Iterable[tuple[str, float | str]]:
    for name, value in metrics.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value


def chapter_entry(chapter: str, directory: str | os.PathLike | None = None, prefer: str = "full") -> dict | None:
    """The stored run of one chapter: ``{"metrics": ..., "profile": ..., "backend": ..., ...}``, or ``None``.

    Reads ``<results>/<chapter>.json`` (see :func:`bnnbook.runtime.results_dir`)
    and returns the ``prefer`` profile's entry when there is one, otherwise the
    other profile's; ``None`` when the chapter has not been run yet. Chapter
    "Rejecting out-of-distribution inputs" uses it to add the models of the
    Flipout and HMC chapters to its table.
    """
    if prefer not in runtime.PROFILES:
        raise ValueError(f"prefer={prefer!r}; use one of {runtime.PROFILES}")
    path = runtime.results_dir(directory) / f"{chapter}.json"
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    for profile in (prefer, *runtime.PROFILES):
        if profile in record:
            return record[profile]
    return None


def collect(directory: str | os.PathLike | None = None, prefer: str = "full") -> list[Row]:
    """Every metric of every ``results/<chapter>.json``, one :class:`Row` each.

    For each chapter the ``prefer`` profile's entry is used when it exists,
    otherwise the other one. Files that are not chapter results
    (``bench.json``, ``chapter_times.json``) are skipped.
    """
    if prefer not in runtime.PROFILES:
        raise ValueError(f"prefer={prefer!r}; use one of {runtime.PROFILES}")
    folder = runtime.results_dir(directory)
    rows: list[Row] = []
    for path in sorted(folder.glob("*.json")):
        if path.stem in ("bench", "chapter_times"):
            continue
        entry = chapter_entry(path.stem, folder, prefer)
        if entry is None:
            continue
        versions = entry.get("versions", {})
        shown = ", ".join(f"{k} {versions[k]}" for k in ("jax", "tensorflow") if k in versions)
        device = f"{entry.get('backend', '?')} ({', '.join(entry.get('devices', []))})"
        for metric, value in _flatten(entry["metrics"]):
            rows.append(Row(chapter=path.stem, metric=metric, value=value, profile=entry.get("profile", "?"),
                            device=device, versions=shown, date=entry.get("date", "?"),
                            anchor=ANCHORS.get((path.stem, metric)),
                            commit=entry.get("commit", "not recorded"), wall_seconds=entry.get("wall_seconds")))
    return rows


def _format(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4g}"


def markdown_table(rows: list[Row], anchored_only: bool = False) -> str:
    """A Markdown table of ``rows``: chapter, metric, our figure, the anchor, its source, verdict, profile.

    Where each chapter's numbers were made (device, versions, date) is in :func:`runs_table`.
    """
    header = ("| chapter | metric | ours | anchor | source | verdict | profile |\n"
              "|---|---|---|---|---|---|---|\n")
    lines = []
    for row in rows:
        if anchored_only and row.anchor is None:
            continue
        anchor = row.anchor
        lines.append(f"| {row.chapter} | {row.metric} | {_format(row.value)} | "
                     f"{_format(anchor.value) if anchor else ''} | {anchor.source if anchor else ''} | "
                     f"{row.verdict} | {row.profile} |")
    return header + "\n".join(lines) + "\n"


def runs_table(rows: list[Row]) -> str:
    """A Markdown table with one line per chapter: profile, device, versions, date, commit and wall time of its run."""
    header = ("| chapter | profile | device | versions | date | commit | wall time |\n"
              "|---|---|---|---|---|---|---|\n")
    seen: dict[str, Row] = {}
    for row in rows:
        seen.setdefault(row.chapter, row)

    def short(commit: str) -> str:
        head, _, rest = commit.partition("+")
        return (head[:10] if len(head) == 40 else head) + (f"+{rest}" if rest else "")

    def minutes(seconds) -> str:
        return "not recorded" if seconds is None else f"{seconds / 60:.1f} min"

    lines = [f"| {r.chapter} | {r.profile} | {r.device} | {r.versions} | {r.date} | {short(r.commit)} | "
             f"{minutes(r.wall_seconds)} |" for r in seen.values()]
    return header + "\n".join(lines) + "\n"


__all__ = ["Anchor", "ANCHORS", "BENCH_FIGURES", "Row", "bench_table", "chapter_entry", "collect", "markdown_table",
           "runs_table", "verdict"]
