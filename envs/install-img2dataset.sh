#!/usr/bin/env bash
# Installs img2dataset (GAIA's image fetch, remoteclip.download.urllists) into a folder of its
# own, never into an environment: its pins (pandas < 3, webdataset < 0.3) conflict with the
# project's. Usage: envs/install-img2dataset.sh [folder] (default .peers/img2dataset, the
# default of `download.img2dataset_packages` in the config), with the Python that runs the
# workflow's download rules (the data environment's). About 750 MB.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
folder="${1:-.peers/img2dataset}"
python -m pip install --no-deps --upgrade --target "$folder" -r "$here/img2dataset.txt"
echo "img2dataset installed into $folder"
