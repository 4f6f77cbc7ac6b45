#!/usr/bin/env bash
# CI, build only (no GPU needed): `pip wheel . -C cmake.define.FASTNN_CUDA=ON` compiles the CUDA
# kernels (sm_80, sm_90) with nvcc against PyPI's nvidia-cublas headers, in a fresh virtual
# environment and a throwaway build folder (never the in-tree build/). The wheel must then
# install, import without a GPU or driver, report CUDA in build_info() with
# fastnn.cuda.is_available() False and a reason, and pass the kernel-body and CUDA tests (the
# GPU parity tests skip themselves with that reason). Usage: .ci/cuda_build.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
command -v nvcc >/dev/null || { echo "cuda_build: nvcc is not on PATH" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
# shellcheck disable=SC1091
source "$tmp/venv/bin/activate"
python -m pip install -q --upgrade pip
# cuBLAS headers for the build (found through sysconfig inside pip's isolated build) and the
# library for the import check.
python -m pip install -q nvidia-cublas

cd "$repo"
# FASTNN_TESTING=ON adds the test-only module _C_testing, which the body tests below need: this
# wheel is a CI check, never shipped (a release wheel is built without it).
python -m pip wheel . --no-deps -w "$tmp/wheel" -C cmake.define.FASTNN_CUDA=ON \
  -C cmake.define.FASTNN_TESTING=ON -C build-dir="$tmp/build"
python -m pip install -q "$tmp"/wheel/fastnn-*.whl pytest hypothesis

cd "$tmp"  # import the installed wheel, not the source tree
python - <<'PY'
import fastnn, fastnn.cuda
info = fastnn.build_info()
assert info["cuda"], "the wheel was built without CUDA"
print("fastnn.cuda.is_available():", fastnn.cuda.is_available(), "-", fastnn.cuda.reason())
PY
python -m pytest -q -p no:cacheprovider "$repo/tests/test_cuda_bodies.py" "$repo/tests/test_cuda.py"
