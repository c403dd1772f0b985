#!/usr/bin/env bash
# The GPU check, run on a lent CUDA machine by the device tool (see README, "Benchmarks"):
# ViT-B-32, batch 256, random init, AMP bf16: our loop against open_clip_train on the same
# shards, and the data loader alone against the step's consumption.
# Expects wheels for open_clip_torch/ftfy/wcwidth/webdataset==0.2.86/braceexpand in .whl/
# and shards in .gpu/shards (benchmarks/bench_train.py --make-shards .gpu --images 3000 --size 256).
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src BENCH_WEBDATASET_SITE=/tmp/site HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, open_clip; print('torch', torch.__version__, 'open_clip', open_clip.__version__, torch.cuda.get_device_name())" | tee -a "$OUT/gpu.txt"
nproc | tee -a "$OUT/gpu.txt"
python3 benchmarks/bench_train.py --shards .gpu/shards --device cuda --arch ViT-B-32 --batch 256 --steps 80 \
    --workers 8 --threads 16 2>&1 | tail -n 12 | tee "$OUT/bench_vitb32.txt"
