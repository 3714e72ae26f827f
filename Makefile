# bnnbook: `make book` builds the HTML book, `make test` runs unit tests and
# every chapter (quick profile). Both create .venv with the locked versions
# on first use and reuse it afterwards.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UNIT_STAMP := $(VENV)/.installed-jax
# Pinned, hashed layers (tools/lock.py): jax.txt for the package and its tests, tf.txt and book.txt on top.
LOCK_JAX := requirements/jax.txt
LOCK_REST := requirements/tf.txt requirements/book.txt
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
CHAPTERS := $(sort $(wildcard chapters/*.ipynb))
# Chapters that use JAX only (04 and 05 also train TensorFlow models).
JAX_CHAPTERS := $(filter-out chapters/04_% chapters/05_%,$(CHAPTERS))
APPENDIX := $(sort $(wildcard appendix/*.ipynb))
PROFILE ?= full

# Offline copies of the data sets sit beside the checkout in this project's
# workspace; use them unless BNNBOOK_DATA is already set.
ifeq ($(strip $(BNNBOOK_DATA)),)
ifneq ($(wildcard ../shared/data/mnist),)
export BNNBOOK_DATA := $(abspath ../shared/data)
endif
endif
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: lock setup book check-book colab-check time-chapters test unit execute bench bench-gpu clean help

help:
	@echo "make book      build the HTML book into _build/html"
	@echo "make test      unit tests + every chapter in the quick profile (nbval)"
	@echo "make unit      unit tests only (installs the JAX layer only: TensorFlow tests are skipped)"
	@echo "make execute   re-run chapters in place: CHAPTER=chapters/NN.ipynb PROFILE=quick|full (default full)"
	@echo "make check-book  build the book, then check links, offline assets and rendering (needs chromium;"
	@echo "               CHECK_BOOK_FLAGS=--no-browser skips the rendering check)"
	@echo "make colab-check  install bnnbook as a chapter's first cell does on Colab (fresh venv, newest jax/tensorflow)"
	@echo "               and run the first cells of a JAX and a TF chapter"
	@echo "make time-chapters  time every chapter in the quick profile, stored outputs untouched"
	@echo "make bench     run every bench/ script on this machine; figures go to results/bench.json"
	@echo "make bench-gpu on a GPU machine: every benchmark's GPU figure and full-profile times of the JAX chapters"
	@echo "make setup     only create .venv with the locked dependencies"
	@echo "make lock      regenerate requirements/{jax,tf,book}.txt with uv (UPGRADE=1 for newer releases)"
	@echo "make clean     remove _build and the vendored MathJax"

# `make unit` needs only the JAX layer; everything else (TensorFlow, the book) is added on top.
$(UNIT_STAMP): $(LOCK_JAX) pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --require-hashes -r $(LOCK_JAX)
	$(PIP) --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name bnnbook --display-name "Python 3 (bnnbook)" >/dev/null
	touch $@

$(STAMP): $(UNIT_STAMP) $(LOCK_REST)
	$(PIP) --require-hashes $(addprefix -r ,$(LOCK_REST))
	touch $@

setup: $(STAMP)

lock:
	$(PYTHON) tools/lock.py $(if $(UPGRADE),--upgrade)

book: $(STAMP)
	$(BIN)/python tools/vendor_mathjax.py
	$(BIN)/jupyter-book build . --builder html --warningiserror --nitpick --keep-going
	@echo "open _build/html/index.html"

# Links, offline assets, and (with Debian's chromium) formulas and figures as a reader sees them.
CHECK_BOOK_FLAGS ?=
check-book: book
	$(BIN)/python tools/check_book.py _build/html $(CHECK_BOOK_FLAGS)

# Colab's packages (newest releases), bnnbook from a wheel of this checkout, first cells of chapters 1 and 5.
colab-check:
	$(PYTHON) tools/colab_check.py

# Every benchmark script; each prints its figure and merges it into results/bench.json.
BENCHES := $(sort $(wildcard bench/bench_*.py))
bench: $(STAMP)
	@for script in $(BENCHES); do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# Unit tests and every chapter, in one pytest run (one summary line).
test: $(STAMP)
	BNNBOOK_PROFILE=quick BNNBOOK_RESULTS=$(CURDIR)/_build/test-results \
	$(BIN)/python -m pytest tests $(CHAPTERS) $(APPENDIX) --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=1800 -p no:cacheprovider -q --durations=15

unit: $(UNIT_STAMP)
	$(BIN)/python -m pytest tests -q

CHAPTER ?= $(CHAPTERS)
execute: $(STAMP)
	BNNBOOK_PROFILE=$(PROFILE) $(BIN)/python tools/run_chapter.py $(CHAPTER)

# Time every chapter in the quick profile without touching the stored outputs
# (results/chapter_times.json; the goal is <= 15 minutes in all on a 2-core CPU).
time-chapters: $(STAMP)
	BNNBOOK_PROFILE=quick $(BIN)/python tools/run_chapter.py --time-only $(CHAPTERS)

# The GPU figures of the benchmarks page: run on a machine whose JAX sees a GPU.
# Every bench/ script keys its figures by backend, so they land beside the CPU's.
bench-gpu: $(STAMP)
	@$(BIN)/python -c "import jax, sys; jax.default_backend() == 'gpu' or sys.exit( \
		f'JAX in $(BIN) sees no GPU (backend {jax.default_backend()}); install its CUDA build first, e.g. ' \
		f'$(BIN)/pip install \"jax[cuda13]=={jax.__version__}\"')"
	@for script in $(BENCHES); do echo "== $$script"; $(BIN)/python $$script || exit 1; done
	BNNBOOK_PROFILE=full $(BIN)/python tools/run_chapter.py --time-only $(JAX_CHAPTERS)

clean:
	rm -rf _build _mathjax
