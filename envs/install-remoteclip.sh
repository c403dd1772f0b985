#!/usr/bin/env bash
# Installs (called by every envs/<env>.post-deploy.sh, which Snakemake runs inside a freshly
# created environment under --sdm conda, from its working directory) this repository's remoteclip package, editable (code changes need no
# new environment) and without dependencies (the environment file lists the ones needed).
# Snakemake copies environment files to .snakemake/conda/, so a relative `pip: -e ..` in the
# YAML would point there; the repository is taken from REMOTECLIP_ROOT, else the working
# directory (run Snakemake from the repository root, or export REMOTECLIP_ROOT).
set -euo pipefail
root="${REMOTECLIP_ROOT:-$PWD}"
if ! grep -qs '^name = "remoteclip"' "$root/pyproject.toml"; then
  echo "envs post-deploy: $root is not the remoteclip repository; run Snakemake from the repository root or export REMOTECLIP_ROOT=/path/to/the/repository" >&2
  exit 1
fi
python -m pip install --no-deps --no-build-isolation --editable "$root"
