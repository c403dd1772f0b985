# Two commands do all set-up on a fresh machine:
#   make demo   # venv + install + the whole workflow on the embedded synthetic demo
#   make test   # venv + install (with test extras) + pytest
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= all

.PHONY: demo test lint install clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
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

lint: $(BIN)/.installed
	HF_HUB_OFFLINE=1 $(BIN)/snakemake --lint --configfile config/config.yaml
	HF_HUB_OFFLINE=1 $(BIN)/snakemake --lint --configfile config/paper.yaml

# derived results only: downloads, unpacked datasets and weights live in the data folder (data/)
clean:
	rm -rf results .snakemake
