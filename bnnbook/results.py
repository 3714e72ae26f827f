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
    citation: str = ""  # the key of the paper in references.bib ("" for a goal of a bench/ script)


_BBB = "Blundell et al. 2015, Table 1 (2 x 400)"
_TARGET = "this book's target"  # goals of the bench/ scripts only; chapters are judged against published figures

#: ``(chapter, metric)`` -> the published :class:`Anchor` the metric is measured against. Only figures
#: from a paper in ``references.bib`` are anchors; a chapter's own aims are not (the appendix labels
#: those rows "no published figure" and does not count them as met or missed).
ANCHORS: dict[tuple[str, str], Anchor] = {
    ("bayes_by_backprop", "mnist_test_error.SGD (Adam), no regularisation"): Anchor(
        0.0183, _BBB + ", SGD, no dropout", "lower", citation="blundell2015weight"),
    ("bayes_by_backprop", "mnist_test_error.dropout"): Anchor(
        0.0151, _BBB + ", SGD, dropout", "lower", citation="blundell2015weight"),
    ("bayes_by_backprop", "mnist_test_error.Bayes by Backprop, Gaussian prior"): Anchor(
        0.0182, _BBB + ", Gaussian prior", "lower", citation="blundell2015weight"),
    ("bayes_by_backprop", "mnist_test_error.Bayes by Backprop, scale mixture"): Anchor(
        0.0136, _BBB + ", scale mixture prior", "lower", citation="blundell2015weight"),
}


@dataclasses.dataclass(frozen=True)
class Headline:
    """A chapter's headline number for the scoreboard: ``metric`` (a flattened key of its results), a label,
    and where its spread is stored: ``sd`` (a key holding the sd over seeds) or ``ci`` (a key holding
    ``{"low", "high"}``, a 95% bootstrap interval)."""

    metric: str
    label: str
    sd: str | None = None
    ci: str | None = None
    percent: bool = False  # shown as a percentage


def _bbb(method: str) -> Headline:
    return Headline(f"mnist_test_error.{method}", f"MNIST test error, {method}",
                    sd=f"mnist_test_error_sd.{method}", percent=True)


def _approx(slug: str, name: str) -> list[Headline]:
    # Mean and sd over the three seeds; the bootstrap interval is the first seed's (over the test images).
    base = f"methods.{slug}"
    rows = [Headline(f"{base}.test_accuracy_seed_mean", f"{name}: test accuracy", sd=f"{base}.test_accuracy_seed_sd",
                     ci=f"{base}.test_accuracy_ci", percent=True),
            Headline(f"{base}.test_nll_seed_mean", f"{name}: test NLL", sd=f"{base}.test_nll_seed_sd"),
            Headline(f"{base}.test_ece_seed_mean", f"{name}: test ECE", sd=f"{base}.test_ece_seed_sd")]
    return rows + [Headline(f"{base}.auroc_seed_mean.{probe}", f"{name}: AUROC, {probe}", sd=f"{base}.auroc_seed_sd.{probe}",
                            ci=f"{base}.auroc_ci.{probe}") for probe in ("letters", "uniform noise", "Fashion-MNIST")]


#: chapter -> its headline numbers, in the order the appendix shows them.
HEADLINES: dict[str, list[Headline]] = {
    "why_bnn": [Headline("test_accuracy", "MNIST test accuracy of the chapter's network", percent=True),
                Headline("share_confident_noise", "share of noise images classified with confidence", percent=True)],
    "mle_map": [Headline("mnist_1000.MLE.accuracy", "MNIST (1,000 training images), MLE accuracy", percent=True),
                Headline("mnist_1000.Gaussian MAP.accuracy", "same, Gaussian MAP accuracy", percent=True),
                Headline("mnist_1000.Laplace MAP.accuracy", "same, Laplace MAP accuracy", percent=True)],
    "free_energy": [Headline("blr_exact_posterior_elbo_error", "ELBO minus log evidence at the exact posterior"),
                    Headline("blr_best_mean_field_gap", "best mean-field gap to the log evidence")],
    "bayes_by_backprop": [_bbb("SGD (Adam), no regularisation"), _bbb("dropout"),
                          _bbb("Bayes by Backprop, Gaussian prior"), _bbb("Bayes by Backprop, scale mixture")],
    "flipout": [Headline("lenet_test_accuracy", "Flipout LeNet-5: MNIST test accuracy", percent=True),
                Headline("lenet_test_ece", "Flipout LeNet-5: test ECE"),
                Headline("variance_ratio_at_128_fixed_batch_wide", "gradient variance, shared / Flipout, batch 128")],
    "hmc": [Headline("mnist_hmc_test_accuracy", "HMC 784-100-10: MNIST test accuracy", percent=True),
            Headline("mnist_hmc_test_nll", "HMC: test NLL"),
            Headline("mnist_max_rhat_probs", "HMC: largest split R-hat of the test probabilities"),
            Headline("regression_test_mse", "HMC regression: test MSE")],
    "approximations": (_approx("map", "MAP") + _approx("temp", "MAP + temperature") + _approx("ens", "deep ensemble (5)")
                       + _approx("drop", "MC dropout") + _approx("laplace", "last-layer Laplace")
                       + _approx("bbb", "Bayes by Backprop")
                       + _approx("sgld", "cyclical SGLD") + _approx("sghmc", "cyclical SGHMC")),
    "ood": [Headline("vi_test_accuracy", "VI MLP (64-64): MNIST test accuracy", percent=True),
            Headline("vi_beta1_test_accuracy", "VI MLP, beta = 1: MNIST test accuracy", percent=True)]
           + [Headline(f"table_auroc_entropy.{method}.{probe}", f"{method}: AUROC, {probe} (predictive entropy)",
                       ci=f"table_auroc_entropy_ci.{method}.{probe}")
              for method in ("VI MLP", "VI MLP, beta = 1") for probe in ("letters", "uniform noise", "Fashion-MNIST")],
}


def _lookup(flat: dict, key: str | None):
    """``flat[key]``, or the dict of ``key``'s children (e.g. ``{"low", "high"}``), or ``None``."""
    if key is None:
        return None
    if key in flat:
        return flat[key]
    prefix = key + "."
    nested = {k[len(prefix):]: v for k, v in flat.items() if k.startswith(prefix)}
    return nested or None


def _stored_metrics(chapter: str, directory, profile: str) -> dict | None:
    """The flattened metrics of ``chapter``'s stored ``profile`` run (no fallback to the other profile), or ``None``."""
    path = runtime.results_dir(directory) / f"{chapter}.json"
    entry = json.loads(path.read_text()).get(profile) if path.exists() else None
    return None if entry is None else {"entry": entry, "flat": dict(_flatten(entry["metrics"]))}


def _short_commit(commit: str) -> str:
    head, _, rest = commit.partition("+")
    return (head[:10] if len(head) == 40 else head) + (f"+{rest}" if rest else "")


def scoreboard(chapter: str, directory: str | os.PathLike | None = None, profile: str = "full") -> str:
    """The appendix's table of one chapter: its :data:`HEADLINES` from the stored ``profile`` run only.

    Each row: our value (with the sd over seeds and/or the 95% bootstrap interval where stored), the
    published anchor with its citation key and the difference, or "no published figure", and where the
    number was made (profile, date, commit). A chapter without a stored ``profile`` run gives a line saying
    so: quick-profile numbers are never shown as results. Taught in the appendix "Results and reproducibility".
    """
    if chapter not in HEADLINES:
        raise ValueError(f"chapter={chapter!r} has no headlines; known: {sorted(HEADLINES)}")
    if profile not in runtime.PROFILES:
        raise ValueError(f"profile={profile!r}; use one of {runtime.PROFILES}")
    stored = _stored_metrics(chapter, directory, profile)
    if stored is None:
        return f"No {profile}-profile run of `{chapter}` is stored yet.\n"
    entry, flat = stored["entry"], stored["flat"]
    provenance = f"{entry.get('profile', profile)}, {entry.get('date', '?')}, {_short_commit(entry.get('commit', 'not recorded'))}"
    lines = ["| number | ours | published | difference | made |", "|---|---|---|---|---|"]
    for headline in HEADLINES[chapter]:
        value = _lookup(flat, headline.metric)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        shown = (lambda x: f"{100 * x:.2f}%") if headline.percent else (lambda x: f"{x:.4g}")
        ours = shown(value)
        sd = _lookup(flat, headline.sd)
        if isinstance(sd, (int, float)):
            ours += f" ± {f'{100 * sd:.2f}%' if headline.percent else f'{sd:.2g}'} (sd over seeds)"
        ci = _lookup(flat, headline.ci)
        if isinstance(ci, dict) and {"low", "high"} <= set(ci):
            ours += f", 95% interval [{shown(ci['low'])}, {shown(ci['high'])}]"
        anchor = ANCHORS.get((chapter, headline.metric))
        if anchor is None:
            published, difference = "no published figure", ""
        else:
            published = f"{shown(anchor.value)}, {anchor.source} {{cite}}`{anchor.citation}`"
            difference = f"{'+' if value >= anchor.value else '-'}{shown(abs(value - anchor.value))} ({verdict(value, anchor)})"
        lines.append(f"| {headline.label} | {ours} | {published} | {difference} | {provenance} |")
    if len(lines) == 2:
        return f"The stored {profile} run of `{chapter}` has none of its headline numbers.\n"
    return "\n".join(lines) + "\n"


def anchored_summary(directory: str | os.PathLike | None = None) -> tuple[int, int]:
    """``(met, judged)`` over the published anchors whose chapter has a stored full run."""
    met = judged = 0
    for (chapter, metric), anchor in ANCHORS.items():
        stored = _stored_metrics(chapter, directory, "full")
        judged_here = verdict(_lookup(stored["flat"], metric), anchor) if stored else ""
        if judged_here:
            judged += 1
            met += judged_here == "meets"
    return met, judged


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


def _check_rows(rows) -> list[Row]:
    rows = list(rows)
    bad = [type(row).__name__ for row in rows if not isinstance(row, Row)]
    if bad:
        raise ValueError(f"rows must be bnnbook.results.Row objects, as made by collect(); got {sorted(set(bad))}")
    return rows


def markdown_table(rows: list[Row], anchored_only: bool = False) -> str:
    """A Markdown table of ``rows``: chapter, metric, our figure, the anchor, its source, verdict, profile.

    Where each chapter's numbers were made (device, versions, date) is in :func:`runs_table`.
    """
    header = ("| chapter | metric | ours | anchor | source | verdict | profile |\n"
              "|---|---|---|---|---|---|---|\n")
    lines = []
    for row in _check_rows(rows):
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
    for row in _check_rows(rows):
        seen.setdefault(row.chapter, row)

    def minutes(seconds) -> str:
        return "not recorded" if seconds is None else f"{seconds / 60:.1f} min"

    lines = [f"| {r.chapter} | {r.profile} | {r.device} | {r.versions} | {r.date} | {_short_commit(r.commit)} | "
             f"{minutes(r.wall_seconds)} |" for r in seen.values()]
    return header + "\n".join(lines) + "\n"


__all__ = ["Anchor", "ANCHORS", "BENCH_FIGURES", "HEADLINES", "Headline", "Row", "anchored_summary", "scoreboard", "bench_table", "chapter_entry", "collect", "markdown_table",
           "runs_table", "verdict"]
