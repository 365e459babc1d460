#!/usr/bin/env bash
# The GPU path in one go, in well under 8 minutes on an H100/H200-class GPU:
#   1. the GPU-marked tests (CUDA vs CPU in fp32, bf16 quality within 2 %, repeatable runs, the precision probe),
#   2. the GPU benchmark (300 evaluations at 512 px in fp32 and bf16, and a run with the defaults).
# Run from the repository root:  bash benchmarks/gpu_check.sh   (log: gpu_check.log, or $OUT/gpu_check.log)
# Without a CUDA GPU it says so, shows the tests skipped with their reason, and exits 0.
set -o pipefail
cd "$(dirname "$0")/.." || exit 1
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python
LOG=${OUT:-.}/gpu_check.log

{
  echo "# gpu_check $(date -u +%Y-%m-%dT%H:%MZ)"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  "$PY" -c "import torch; print('torch', torch.__version__, '| CUDA available:', torch.cuda.is_available())"
  if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "no CUDA: the GPU tests are skipped and the GPU benchmark is not run"
    timeout 120 "$PY" -m pytest -q -p no:cacheprovider -rs -m gpu tests/test_gpu.py
    exit 0
  fi
  status=0
  timeout 240 "$PY" -m pytest -q -p no:cacheprovider -rs -m gpu tests/test_gpu.py || status=1
  timeout 180 "$PY" benchmarks/bench_gpu.py --device cuda || status=1
  echo "gpu_check: $([ $status = 0 ] && echo passed || echo FAILED)"
  exit $status
} 2>&1 | tee "$LOG"
