"""Static checks of the book: the table of contents, each chapter's first cell,
and stored outputs from a real run (no execution here; nbval runs the chapters)."""

import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))


def _config_value(key: str) -> str:
    match = re.search(rf"^\s+{key}:\s*(\S+)", (ROOT / "_config.yml").read_text(), re.M)
    assert match, f"_config.yml has no {key}"
    return match.group(1)


def _toc_files() -> list[str]:
    return re.findall(r"^\s*-\s*file:\s*(\S+)", (ROOT / "_toc.yml").read_text(), re.M)


def _code_cells(path):
    notebook = json.loads(path.read_text())
    return [c for c in notebook["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]


def test_every_chapter_is_in_the_toc_and_every_toc_entry_exists():
    listed = [f for f in _toc_files() if f.startswith("chapters/")]
    assert sorted(listed) == sorted(f"chapters/{p.stem}" for p in CHAPTERS)
    for entry in listed:
        assert (ROOT / f"{entry}.ipynb").exists(), entry


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_first_cell_installs_bnnbook_from_the_configured_repository_and_starts_a_run(path):
    first = "".join(_code_cells(path)[0]["source"])
    repository = _config_value("url")
    assert f"git+{repository}" in first, f"{path.name}: install cell must use the repository URL of _config.yml"
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert f"git+{repository}@v{version}\"" in first, (
        f"{path.name}: the install cell must pin the release tag v{version} (pyproject.toml's version), "
        f"whose outputs the page shows, not the tip of main")
    assert 'find_spec("bnnbook") is None' in first  # install only when missing
    assert "runtime.start(" in first


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_stored_outputs_are_a_clean_run_that_prints_the_profile(path):
    cells = _code_cells(path)
    counts = [c["execution_count"] for c in cells]
    assert None not in counts, f"{path.name}: some code cells were never run"
    assert counts == sorted(counts), f"{path.name}: cells were run out of order"
    assert not [o for c in cells for o in c["outputs"] if o["output_type"] == "error"]
    # The book renders stored stderr too; library notices (e.g. TensorFlow's C++ start-up) belong off the page.
    stderr = "".join("".join(o["text"]) for c in cells for o in c["outputs"] if o.get("name") == "stderr")
    assert not stderr, f"{path.name}: stored stderr output: {stderr[:200]!r}"
    first_output = json.dumps(cells[0]["outputs"])
    assert re.search(r"profile: (quick|full)", first_output) and "devices:" in first_output
    assert "save_results(" in "".join(cells[-1]["source"])


def test_colab_launch_is_configured():
    assert "colab.research.google.com" in (ROOT / "_config.yml").read_text()


def _markdown(path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown"]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_has_the_same_shape(path):
    """What and why, math, code, results (a printed table and a figure), a summary, then 2-4 exercises."""
    cells = json.loads(path.read_text())["cells"]
    markdown = _markdown(path)
    # What and why: a title and an introduction before the first code cell.
    assert cells[0]["cell_type"] == "markdown" and markdown[0].startswith("# "), "the first cell is the title"
    assert len(re.sub(r"\s+", " ", markdown[0])) > 400, "the title cell says what the chapter does and why"
    # Math: at least one displayed equation.
    assert sum(text.count("$$") for text in markdown) >= 2, "no displayed equation"
    # Code, results table and figures, from the stored run.
    outputs = [o for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure in the stored outputs"
    printed = ["".join(o.get("text", "")) for o in outputs] + [
        "".join(o.get("data", {}).get("text/markdown", "")) for o in outputs]
    assert any(len([line for line in text.splitlines() if line.strip()]) >= 3 for text in printed), \
        "no printed table (three or more lines of output in one cell)"
    # Summary, then exercises, in this order, at the end of the chapter.
    headings = [line for text in markdown for line in text.splitlines() if line.startswith("## ")]
    assert headings[-2:] == ["## Summary", "## Exercises"], f"the last two sections are {headings[-2:]}"
    exercises = markdown[[i for i, text in enumerate(markdown) if text.startswith("## Exercises")][-1]]
    numbered = re.findall(r"^\d+\. ", exercises, flags=re.MULTILINE)
    assert 2 <= len(numbered) <= 4, f"{len(numbered)} exercises; the book's shape asks for 2-4"
    after_exercises = cells[[i for i, c in enumerate(cells) if "".join(c["source"]).startswith("## Exercises")][-1] + 1:]
    assert all(c["cell_type"] == "code" and "save_results" in "".join(c["source"]) for c in after_exercises), \
        "only the results-recording cell may follow the exercises"


# --------------------------------------------------------------------------
# Numbers in prose come from the run (myst-nb glue), not from the keyboard
# --------------------------------------------------------------------------

GLUE_REFERENCE = re.compile(r"\{glue:(?:text)?\}`([A-Za-z_][A-Za-z0-9_]*)(?::[^`]*)?`")
# Chapters whose prose binds every result to the run: all of them (issue 27).
GLUED_CHAPTERS = ["01_why_bnn", "02_mle_map", "03_free_energy", "04_bayes_by_backprop", "05_flipout", "06_hmc",
                  "07_approximations", "08_ood"]
# A decimal or a percentage: what a result looks like when it is typed in.
TYPED_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?%|(?<![\w.])\d+\.\d+(?![\w.])")


def _markdown_text(path) -> str:
    notebook = json.loads(path.read_text())
    return "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown")


def _glued_values(path) -> dict:
    notebook = json.loads(path.read_text())
    values = {}
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            scrapbook = output.get("metadata", {}).get("scrapbook", {})
            if "name" in scrapbook:
                values[scrapbook["name"]] = output.get("data", {}).get(scrapbook.get("mime_prefix", "") + "text/plain")
    return values


def _prose_without_math_code_and_glue(text: str) -> str:
    text = re.sub(r"```.*?```", " ", text, flags=re.S)  # fenced blocks (admonitions keep their prose below)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    text = re.sub(r"\$[^$\n]+\$", " ", text)
    text = GLUE_REFERENCE.sub(" ", text)
    text = re.sub(r"\{[a-z:]+\}`[^`]*`", " ", text)  # roles: {cite}`...`, {func}`...`, {ref}`...`
    text = re.sub(r"`[^`\n]*`", " ", text)  # inline code (settings such as `target_accept=0.8`)
    return re.sub(r"\((?:\d|[a-z]|[ivx]+)\)", " ", text)  # (1), (a), (iii): list labels, not "(0.5)"


def test_glued_chapters_exist_and_use_glue():
    assert set(GLUED_CHAPTERS) == {path.stem for path in CHAPTERS}, "every chapter's prose is checked for typed numbers"
    for stem in GLUED_CHAPTERS:
        path = ROOT / "chapters" / f"{stem}.ipynb"
        assert path.exists(), stem
        assert len(GLUE_REFERENCE.findall(_markdown_text(path))) >= 10, f"{stem}: its prose should quote the run by glue"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_glue_reference_is_glued_by_the_stored_run(path):
    references = set(GLUE_REFERENCE.findall(_markdown_text(path)))
    glued = _glued_values(path)
    missing = sorted(references - set(glued))
    assert not missing, f"{path.name}: prose refers to {missing}, which no stored output glues"
    for name in references:
        value = glued[name]
        text = "".join(value) if isinstance(value, list) else value
        assert text is not None and re.fullmatch(r"-?[0-9.e+-]+", text.strip()), (name, text)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_figures_survive_in_chapters_that_glue(path):
    # Gluing must not cost the inline figures (importing myst-nb in the kernel once did).
    cells = _code_cells(path)
    shows = sum("plt.show()" in "".join(c["source"]) for c in cells)
    images = sum(any(k.startswith("image/") for k in o.get("data", {})) for c in cells for o in c["outputs"])
    assert images >= shows, f"{path.name}: {shows} cells show a figure, the stored outputs hold {images} images"


@pytest.mark.parametrize("stem", GLUED_CHAPTERS)
def test_prose_of_glued_chapters_types_no_decimal_results(stem):
    prose = _prose_without_math_code_and_glue(_markdown_text(ROOT / "chapters" / f"{stem}.ipynb"))
    typed = TYPED_NUMBER.findall(prose)
    assert not typed, f"{stem}: numbers typed into the prose instead of glued: {typed[:10]}"


def test_the_decimal_check_catches_a_typed_number():
    # The check above must be able to fail: a typed accuracy is caught, a glued or mathematical one is not.
    typed = "HMC reached 98.41% accuracy, with $\\hat{R} \\le 1.01$ and {glue:text}`acc:.2f`."
    prose = _prose_without_math_code_and_glue(typed)
    assert TYPED_NUMBER.findall(prose) == ["98.41%"]
    # A number in parentheses is still a number; only list labels such as (1) are skipped.
    assert TYPED_NUMBER.findall(_prose_without_math_code_and_glue("unsure (0.5), as in (1)")) == ["0.5"]


def test_practical_approximations_chooses_nothing_on_test_digits_or_probes():
    # Issue 26: every choice (epochs, dropout rate, temperature, Laplace prior, SG-MCMC steps) is made on the
    # training and validation digits. The test digits and the probe sets are loaded in one cell and may be
    # used only from the cell that scores every method ("def predictive_draws") on.
    cells = ["".join(c["source"]) for c in _code_cells(ROOT / "chapters" / "07_approximations.ipynb")]
    scoring = next(i for i, source in enumerate(cells) if "def predictive_draws" in source)
    held_out = re.compile(r"\b(test_images|test_labels|probes|evaluation_sets)\b|\bmnist\.test\b")
    for index, source in enumerate(cells[:scoring]):
        kept = [line for line in source.splitlines()
                if not re.match(r"\s*(test_images, test_labels|probes) = ", line)]
        used = held_out.findall("\n".join(kept))
        assert not used, f"code cell {index} uses {sorted(set(used))} before the scoring cell"
    assert any(held_out.search(source) for source in cells[scoring:])  # the check looks at the right names


# --------------------------------------------------------------------------
# Chapters that teach: code no longer than the prose explains (issue 27)
# --------------------------------------------------------------------------

MAX_CODE_PROSE_RATIO = 0.6
# Issue 27 asks for <= 0.6 in chapters 1-3; the chapters not there yet are listed with their ratio after the first
# pass (strict: the mark must go once a chapter gets there).
RATIO_NOT_YET = {"02_mle_map": 0.84, "03_free_energy": 1.12}


def _code_prose_ratio(path) -> float:
    cells = json.loads(path.read_text())["cells"]
    length = lambda kind: sum(len("".join(c["source"])) for c in cells if c["cell_type"] == kind)  # noqa: E731
    return length("code") / length("markdown")


@pytest.mark.parametrize("stem", [
    pytest.param(stem, marks=pytest.mark.xfail(strict=True, reason=f"code/prose {RATIO_NOT_YET[stem]} (issue 27)"))
    if stem in RATIO_NOT_YET else stem for stem in ("01_why_bnn", "02_mle_map", "03_free_energy")])
def test_code_is_at_most_0_6_of_the_prose_by_characters(stem):
    ratio = _code_prose_ratio(ROOT / "chapters" / f"{stem}.ipynb")
    assert ratio <= MAX_CODE_PROSE_RATIO, f"{stem}: code/prose = {ratio:.2f} by characters"


def test_the_ratio_check_can_fail(tmp_path):
    notebook = {"cells": [{"cell_type": "markdown", "source": ["x" * 10]}, {"cell_type": "code", "source": ["y" * 7]}]}
    (tmp_path / "nb.ipynb").write_text(json.dumps(notebook))
    ratio = _code_prose_ratio(tmp_path / "nb.ipynb")
    assert ratio == pytest.approx(0.7) and ratio > MAX_CODE_PROSE_RATIO
