#!/usr/bin/env bash
# Snakemake runs this in the new environment (--sdm conda); the logic is shared by all envs.
# Snakemake copies env files into .snakemake/conda/, so the shared script is found through
# the repository (REMOTECLIP_ROOT, else the working directory), not beside this file.
exec bash "${REMOTECLIP_ROOT:-$PWD}/envs/install-remoteclip.sh"
