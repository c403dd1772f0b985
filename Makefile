# Two commands do all set-up on a fresh machine:
#   make demo   # venv + install + the whole workflow on the embedded synthetic demo
#   make test   # venv + install (with test extras) + pytest
#   make test-min  # a second venv with every dependency at its floor + the fast tests (not in CI)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= all
MIN_VENV ?= .venv-min

.PHONY: demo test test-min lint bench install clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,lint,zoo]'  # zoo: transformers, so the tests load those releases too
	touch $@

install: $(BIN)/.installed

demo: $(BIN)/.installed
	HF_HUB_OFFLINE=1 $(BIN)/snakemake --cores $(CORES) --configfile config/config.yaml
	@echo
	@echo "Done. Start with results/report/index.md (tables, learning check, plots in results/report/plots/)."
	@echo "Every score: results/eval/summary.csv; the leakage audit: results/dedup/<run>/removed.tsv."
	@echo "HTML report: $(BIN)/snakemake --report results/report.zip"

test: $(BIN)/.installed
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

# Every dependency at the lower bound pyproject.toml states (tools/floor_pins.py writes the
# `name==floor` pins; pip picks the newest of everything else), the project without its
# dependencies, then the fast tests. Rebuilt from scratch each time; not part of CI.
test-min:
	rm -rf $(MIN_VENV)
	$(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/pip install --quiet --upgrade pip
	$(PYTHON) tools/floor_pins.py > $(MIN_VENV)/floors.txt
	$(MIN_VENV)/bin/pip install --quiet -r $(MIN_VENV)/floors.txt
	$(MIN_VENV)/bin/pip install --quiet --no-deps -e .
	$(MIN_VENV)/bin/pip check
	$(MIN_VENV)/bin/pip freeze --exclude-editable > $(MIN_VENV)/installed.txt
	HF_HUB_OFFLINE=1 $(MIN_VENV)/bin/python -m pytest -m "not slow" $(PYTEST_ARGS)


# ruff (lint, format), snakefmt, mypy on src/ (annotated functions), snakemake --lint on both configs
LINTED := src tests scripts tools benchmarks
lint: $(BIN)/.installed
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/mypy
	HF_HUB_OFFLINE=1 $(BIN)/snakemake --lint --configfile config/config.yaml
	HF_HUB_OFFLINE=1 $(BIN)/snakemake --lint --configfile config/paper.yaml
	HF_HUB_OFFLINE=1 $(BIN)/snakemake --lint --configfile config/ablations.yaml
	HF_HUB_OFFLINE=1 $(BIN)/snakemake --lint --configfile config/leaderboard.yaml

# every benchmark against the peer a user would pick (installed into .bench/ from PyPI), one run
# each; writes benchmarks/results.md and puts it into the README's performance table. Not in CI.
# BENCH_ARGS="--quick" checks that all of them run (tiny sizes, README left alone).
BENCH_ARGS ?= --readme
bench: $(BIN)/.installed
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

# derived results only: downloads, unpacked datasets and weights live in the data folder (data/)
clean:
	rm -rf results .snakemake
