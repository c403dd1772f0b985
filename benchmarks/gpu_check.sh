#!/usr/bin/env bash
# The GPU check, run on a lent CUDA machine by the device tool (see README, "Benchmarks"):
# ViT-B-32, batch 256, random init, bf16 autocast. Each stage has its own time limit and writes
# its output under $OUT as it goes, so a stage that hangs cannot take the others' results along:
#   env.txt      GPU, driver, torch/open_clip versions, cores, /dev/shm
#   topk_ties.txt whether torch.topk orders exact ties alike on CPU and CUDA
#   loader.txt   the data loader alone (images/s) at several worker counts
#   ours.txt     remoteclip.train per configuration (ViT-B-32 with the CPU loader, the device
#                loader, the device loader + torch.compile; RN50; ViT-L-14 with gradient
#                checkpointing): samples/s, data wait per step, TFLOP/s, MFU, GPU utilisation
#   ours/<name>/ each run's log.csv, stdout.txt and gpu_util.csv (nvidia-smi once a second)
#   theirs.txt   open_clip_train.main on the same shards, model, batch and precision
# Expects wheels for open_clip_torch/ftfy/wcwidth/webdataset==0.2.86/braceexpand in .whl/
# and shards in .gpu/shards (benchmarks/bench_train.py --make-shards .gpu --images 3000 --size 256).
# About 9.5 minutes (stage limits 30 + 60 + 90 + 90 + 150 + 80 + 100 s), within one 10-minute device
# command; THEIRS=1 runs open_clip_train on the same shards instead of our five runs (a second command).
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src:$PWD/benchmarks BENCH_WEBDATASET_SITE=/tmp/site HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT/ours"
STEPS=${STEPS:-60}
WORKERS=${WORKERS:-12}
ARCH=${ARCH:-ViT-B-32}
BATCH=${BATCH:-256}
DEVICE=${DEVICE:-cuda}
export ARCH BATCH DEVICE

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, open_clip; print('torch', torch.__version__, 'open_clip', open_clip.__version__, torch.cuda.get_device_name())"
  echo "cores $(nproc)"; df -h /dev/shm | tail -n 1
} 2>&1 | tee "$OUT/env.txt"

echo "== torch.topk with exact ties, CPU against CUDA (retrieval's recall@k on tied scores)"
# recall@k reads the indices topk returns; equal scores (duplicate captions) are ordered by
# whatever the kernel does. Same order on both devices: the tie ranges in the report hold for both.
timeout -k 5 30 python3 - <<'EOF' 2>&1 | tee "$OUT/topk_ties.txt"
import torch
g = torch.Generator().manual_seed(0)
scores = torch.randint(0, 4, (64, 500), generator=g).float()  # many exact ties per row
for k in (1, 5, 10):
    cpu = scores.topk(k, dim=1).indices
    cuda = scores.cuda().topk(k, dim=1).indices.cpu()
    print(f"k={k}: {int((cpu == cuda).all(dim=1).sum())} of 64 rows in the same order", flush=True)
EOF

echo "== loader alone"
timeout -k 5 60 python3 - <<'EOF' 2>&1 | tee "$OUT/loader.txt"
import os
from bench_train import loader_alone
for w in [int(w) for w in os.environ.get('LOADER_WORKERS', '4 8 12').split()]:
    print(f"workers {w:2d}: {loader_alone('.gpu/shards', int(os.environ['BATCH']), os.environ['ARCH'], w, os.environ['DEVICE'], seconds=5):8.1f} images/s", flush=True)
EOF

echo "== remoteclip.train"
# One line per configuration (issue 17's measurements): samples/s, mean data wait per step and
# MFU from log.csv, GPU utilisation from nvidia-smi once a second while it trains. Each run has
# its own time limit; its log.csv and stdout.txt land in $OUT/ours/<name>/ as it goes.
train_variant() {  # name arch batch time-limit train-json model-json
  local name=$1 arch=$2 batch=$3 limit=$4 train=$5 model=$6
  mkdir -p "$OUT/ours/$name"
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 1 > "$OUT/ours/$name/gpu_util.csv" 2>&1 &
  local smi=$!
  timeout -k 5 "$limit" python3 - <<EOF 2>&1 | tee -a "$OUT/ours.txt"
import csv, json, statistics
from pathlib import Path
from bench_train import ours
out = Path('$OUT/ours/$name')
rate, wait, _ = ours(Path('.gpu/shards'), $STEPS, $batch, '$arch', $WORKERS, 16, '$DEVICE', 'auto', out=out,
                     augmentation=json.loads('$train'), model=json.loads('$model'))
rows = list(csv.DictReader(open(out / 'log.csv')))[5:]
mfu = [float(r['mfu']) for r in rows if r['mfu']]
util = [float(l.split(',')[1].split()[0]) for l in open(out / 'gpu_util.csv').read().splitlines()[1:] if '%' in l]
print(f"$name: {rate:.1f} samples/s, data wait {statistics.mean(wait) * 1e3:.1f} ms/step, "
      f"{statistics.mean(float(r['tflops']) for r in rows):.1f} TFLOP/s, MFU {statistics.mean(mfu) if mfu else float('nan'):.3f}, "
      f"GPU util median {statistics.median(util) if util else float('nan'):.0f} %", flush=True)
EOF
  kill $smi 2>/dev/null
}
if [ "${THEIRS:-0}" != 1 ]; then
: > "$OUT/ours.txt"
train_variant vitb32-cpu-loader "$ARCH" "$BATCH" 90 '{}' '{}'
train_variant vitb32-device-loader "$ARCH" "$BATCH" 90 '{"loader": "device"}' '{}'
train_variant vitb32-device-loader-compile "$ARCH" "$BATCH" 150 '{"loader": "device", "compile": true}' '{}'
train_variant rn50-device-loader RN50 "$BATCH" 80 '{"loader": "device"}' '{}'
train_variant vitl14-device-loader-gradckpt ViT-L-14 64 100 '{"loader": "device"}' '{"grad_checkpointing": true}'
exit 0
fi

echo "== open_clip_train"
timeout -k 5 150 python3 - <<EOF 2>&1 | tee "$OUT/theirs.txt"
from pathlib import Path
from bench_train import openclip_train
rate, _ = openclip_train(Path('.gpu/shards'), $STEPS, $BATCH, '$ARCH', $WORKERS, 16, '$DEVICE', 'amp_bf16')
print(f"open_clip_train {rate:.1f} samples/s")
EOF
