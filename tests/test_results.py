"""bnnbook.results: reading chapters' results back and judging them against anchors."""

import json
import pathlib

import pytest

from bnnbook import results, runtime


def _write(tmp_path, chapter, profile, metrics):
    run = runtime.Run(chapter=chapter, profile=profile, framework="jax", backend="cpu",
                      devices=("cpu:0",), versions={"jax": "0.x"})
    runtime.save_results(run, metrics, tmp_path)


def test_collect_prefers_the_full_profile_and_flattens(tmp_path, monkeypatch):
    _write(tmp_path, "demo", "quick", {"acc": 0.5})
    _write(tmp_path, "demo", "full", {"acc": 0.9, "per_class": {"a": 0.1}})
    _write(tmp_path, "other", "quick", {"mse": 0.02})
    (tmp_path / "bench.json").write_text(json.dumps({"x": {"ratio": 3}}))
    monkeypatch.setitem(results.ANCHORS, ("demo", "acc"), results.Anchor(0.95, "paper", "higher"))
    monkeypatch.setitem(results.ANCHORS, ("other", "mse"), results.Anchor(0.05, "paper", "lower"))
    rows = {(r.chapter, r.metric): r for r in results.collect(tmp_path)}
    assert set(rows) == {("demo", "acc"), ("demo", "per_class.a"), ("other", "mse")}
    assert rows["demo", "acc"].value == 0.9 and rows["demo", "acc"].profile == "full"
    assert rows["other", "mse"].profile == "quick"  # falls back when there is no full run
    assert rows["demo", "acc"].verdict == "below"   # 0.9 < 0.95, higher is better
    assert rows["other", "mse"].verdict == "meets"  # 0.02 <= 0.05, lower is better
    assert rows["demo", "per_class.a"].verdict == ""
    table = results.markdown_table(list(rows.values()), anchored_only=True)
    assert table.count("\n") == 2 + 2 and "| demo | acc | 0.9 | 0.95 | paper | below | full |" in table
    runs = results.runs_table(list(rows.values()))
    assert runs.count("\n") == 2 + 2 and "| other | quick | cpu (cpu:0) | jax 0.x |" in runs
    # Provenance: outside a git checkout the commit is "unknown"; the wall time is recorded.
    assert rows["demo", "acc"].commit == "unknown" and rows["demo", "acc"].wall_seconds >= 0
    assert "| unknown |" in runs and " min |" in runs


def test_every_anchor_names_a_direction():
    for key, anchor in results.ANCHORS.items():
        assert anchor.better in ("higher", "lower"), key


def test_collect_rejects_unknown_profile(tmp_path):
    with pytest.raises(ValueError, match="prefer='best'"):
        results.collect(tmp_path, prefer="best")


def test_chapter_entry_prefers_the_asked_profile_and_is_none_when_missing(tmp_path):
    assert results.chapter_entry("demo", tmp_path) is None
    _write(tmp_path, "demo", "quick", {"row": {"accuracy": 0.5, "letters": {"auroc": 0.8, "score": "MI"}}})
    entry = results.chapter_entry("demo", tmp_path)  # no full run: the quick one
    assert entry["profile"] == "quick" and entry["metrics"]["row"]["letters"]["score"] == "MI"
    _write(tmp_path, "demo", "full", {"row": {"accuracy": 0.9}})
    assert results.chapter_entry("demo", tmp_path)["metrics"]["row"]["accuracy"] == 0.9
    assert results.chapter_entry("demo", tmp_path, prefer="quick")["metrics"]["row"]["accuracy"] == 0.5
    with pytest.raises(ValueError, match="prefer='best'"):
        results.chapter_entry("demo", tmp_path, prefer="best")


def test_bench_table_judges_each_backend_against_the_goal():
    bench = {"flipout_vs_shared_step_time": {"cpu": {"lenet_like_cnn": 1.95, "device": "cpu:cpu"},
                                             "gpu": {"lenet_like_cnn": 1.25, "device": "gpu:H200"}},
             "hmc_gradient_throughput": {"gpu": {"tflops_per_second": 43.2, "device": "gpu:H200"}}}
    lines = results.bench_table(bench).splitlines()
    assert lines[0] == "| figure | goal | cpu | gpu |"
    cnn = next(line for line in lines if "LeNet-like CNN" in line)
    assert "| <= 1.6 | 1.95 (below), cpu:cpu | 1.25 (meets), gpu:H200 |" in cnn  # lower is better
    mlp = next(line for line in lines if "MLP 784-256-256-10" in line)
    assert mlp.endswith("| <= 1.6 |  |  |")  # not measured: empty cells, no verdict
    tflops = next(line for line in lines if "TFLOP/s" in line)
    assert tflops.endswith("|  |  | 43.2, gpu:H200 |")  # a figure without a goal is shown as it is
    assert len(lines) == 2 + len(results.BENCH_FIGURES)
    assert results.bench_table({}).startswith("No benchmark figures are stored yet")


def test_verdict_and_bench_table_reject_what_they_cannot_judge():
    goal = results.Anchor(100.0, "target", "higher")
    assert results.verdict(120.0, goal) == "meets" and results.verdict(12.0, goal) == "below"
    assert results.verdict(float("nan"), goal) == "" and results.verdict(True, goal) == ""
    assert results.verdict(12.0, None) == ""
    with pytest.raises(ValueError, match="bench must be the dict read from results/bench.json, got list"):
        results.bench_table([])


def test_save_results_records_the_commit_of_a_git_checkout_and_marks_changes(tmp_path):
    import subprocess

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", "code.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    _write(tmp_path / "results", "demo", "full", {"acc": 0.9})  # results/ itself does not count as a change
    entry = json.loads((tmp_path / "results" / "demo.json").read_text())["full"]
    assert entry["commit"] == head
    (tmp_path / "code.py").write_text("x = 2\n")
    _write(tmp_path / "results", "demo", "full", {"acc": 0.9})
    entry = json.loads((tmp_path / "results" / "demo.json").read_text())["full"]
    assert entry["commit"] == head + "+uncommitted"
    assert not list((tmp_path / "results").glob(".*.tmp"))  # the atomic write leaves no temporary file


def test_scoreboard_shows_only_full_runs_and_cites_the_published_figure(tmp_path, monkeypatch):
    monkeypatch.setitem(results.HEADLINES, "demo", [
        results.Headline("err", "test error", sd="err_sd", percent=True),
        results.Headline("auroc", "AUROC", ci="auroc_ci")])
    monkeypatch.setitem(results.ANCHORS, ("demo", "err"), results.Anchor(0.02, "Paper, Table 1", "lower",
                                                                          citation="paper2020"))
    _write(tmp_path, "demo", "quick", {"err": 0.5, "err_sd": 0.1, "auroc": 0.6})
    assert results.scoreboard("demo", tmp_path).startswith("No full-profile run of `demo`")  # quick is not a result
    _write(tmp_path, "demo", "full", {"err": 0.015, "err_sd": 0.001, "auroc": 0.9,
                                      "auroc_ci": {"low": 0.85, "high": 0.95}})
    table = results.scoreboard("demo", tmp_path)
    assert "| test error | 1.50% ± 0.10% (sd over seeds) | 2.00%, Paper, Table 1 {cite}`paper2020` | -0.50% (meets) |" in table
    assert "| AUROC | 0.9, 95% interval [0.85, 0.95] | no published figure |" in table
    assert "0.5" not in table.replace("0.50%", "")  # no quick-profile number leaks in
    assert "| full, " in table and "unknown" in table  # provenance: profile, date and commit
    assert results.anchored_summary(tmp_path) == (1, 1)
    with pytest.raises(ValueError, match="chapter='nope'"):
        results.scoreboard("nope", tmp_path)


def test_every_anchor_is_a_paper_of_the_bibliography():
    bib = (pathlib.Path(__file__).resolve().parents[1] / "references.bib").read_text()
    for key, anchor in results.ANCHORS.items():
        assert anchor.citation and "{" + anchor.citation + "," in bib, (key, anchor.citation)


def test_headlines_name_metrics_that_the_stored_full_runs_hold():
    # A typo in a headline would silently drop its row from the appendix.
    folder = pathlib.Path(__file__).resolve().parents[1] / "results"
    for chapter, headlines in results.HEADLINES.items():
        path = folder / f"{chapter}.json"
        entry = json.loads(path.read_text()).get("full") if path.exists() else None
        if entry is None:
            continue
        flat = dict(results._flatten(entry["metrics"]))
        for headline in headlines:
            for key in (headline.metric, headline.sd):
                assert key is None or key in flat, (chapter, key)
            if headline.ci:
                assert f"{headline.ci}.low" in flat and f"{headline.ci}.high" in flat, (chapter, headline.ci)
