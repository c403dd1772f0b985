#!/usr/bin/env bash
# The GPU check, run on a lent CUDA machine by the device tool (see README, "Benchmarks"):
# ViT-B-32, batch 256, random init, bf16 autocast. Each stage has its own time limit and writes
# its output under $OUT as it goes, so a stage that hangs cannot take the others' results along:
#   env.txt      GPU, driver, torch/open_clip versions, cores, /dev/shm
#   loader.txt   the data loader alone (images/s) at several worker counts
#   ours.txt     remoteclip.train's steady-state samples/s and mean data wait per step
#   ours/        its log.csv and stdout.txt, and gpu_util.csv (nvidia-smi once a second while it trains)
#   theirs.txt   open_clip_train.main on the same shards, model, batch and precision
# Expects wheels for open_clip_torch/ftfy/wcwidth/webdataset==0.2.86/braceexpand in .whl/
# and shards in .gpu/shards (benchmarks/bench_train.py --make-shards .gpu --images 3000 --size 256).
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

echo "== loader alone"
timeout -k 5 100 python3 - <<'EOF' 2>&1 | tee "$OUT/loader.txt"
import os
from bench_train import loader_alone
for w in [int(w) for w in os.environ.get('LOADER_WORKERS', '4 8 12').split()]:
    print(f"workers {w:2d}: {loader_alone('.gpu/shards', int(os.environ['BATCH']), os.environ['ARCH'], w, os.environ['DEVICE'], seconds=8):8.1f} images/s", flush=True)
EOF

echo "== remoteclip.train"
# GPU utilisation once a second while our loop trains: a starved GPU shows as low readings
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 1 > "$OUT/ours/gpu_util.csv" 2>&1 &
SMI=$!
timeout -k 5 150 python3 - <<EOF 2>&1 | tee "$OUT/ours.txt"
import statistics
from pathlib import Path
from bench_train import ours
rate, wait = ours(Path('.gpu/shards'), $STEPS, $BATCH, '$ARCH', $WORKERS, 16, '$DEVICE', 'auto', out=Path('/tmp/ours'))
print(f"remoteclip.train {rate:.1f} samples/s, mean data wait {statistics.mean(wait) * 1e3:.1f} ms/step")
EOF
kill $SMI 2>/dev/null
cp /tmp/ours/log.csv /tmp/ours/stdout.txt "$OUT/ours/" 2>/dev/null

echo "== open_clip_train"
timeout -k 5 150 python3 - <<EOF 2>&1 | tee "$OUT/theirs.txt"
from pathlib import Path
from bench_train import openclip_train
print(f"open_clip_train {openclip_train(Path('.gpu/shards'), $STEPS, $BATCH, '$ARCH', $WORKERS, 16, '$DEVICE', 'amp_bf16'):.1f} samples/s")
EOF
