#!/usr/bin/env bash
# GPU check, on a machine with an NVIDIA GPU, nvcc, CuPy and PyTorch CUDA (CI has no GPU and
# runs .ci/cuda_build.sh instead): builds fastnn._C in place with the CUDA kernels for this
# GPU's architecture (and, through .ci/dev_build.sh, the test-only _C_testing for the body
# tests), runs the whole test suite (the GPU parity tests run instead of skipping), then the GPU
# benchmarks. Logs go to $OUT (or ./gpu_check) as well as to the terminal.
# Usage: .ci/gpu_check.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu_check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"

nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)
BUILD=build/gpu .ci/dev_build.sh -DFASTNN_CUDA=ON -DFASTNN_CUDA_ARCHITECTURES="$arch" \
  >"$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
python3 - <<'PY'
import fastnn, fastnn.cuda
assert fastnn.build_info()["cuda"], "built without CUDA"
assert fastnn.cuda.is_available(), fastnn.cuda.reason()
print("fastnn", fastnn.__version__, "CUDA available")
PY

status=0
python3 -m pytest -q -p no:cacheprovider --tb=short -rfE "$@" tests >"$out/pytest.log" 2>&1 \
  || status=1
tail -n 40 "$out/pytest.log"
python3 -m benchmarks --only bench_gpu --json "$out/bench_gpu.json" 2>&1 \
  | tee "$out/bench_gpu.log" || status=1
exit $status
