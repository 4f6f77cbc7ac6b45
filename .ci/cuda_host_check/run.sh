#!/usr/bin/env bash
# Runs the host code of the recurrent CUDA kernels (csrc/cuda/rnn.cu, lstm.cu, gru.cu: the time
# loops, GEMM arguments, pointer offsets, null/empty cases) on the CPU, no GPU needed: g++ builds
# them with the stand-in cuda/launch.cuh here (launches as loops, a naive GEMM that aborts on
# leading dimensions cuBLAS would reject) under ASan + UBSan, and check.py compares them with
# the CPU kernels of the current fastnn build. Usage: .ci/cuda_host_check/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py=$("${PYTHON:-python3}" -c "import sys; print(sys.executable)")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for f in rnn lstm gru; do cp "$root/csrc/cuda/$f.cu" "$tmp/$f.cpp"; done
"${CXX:-c++}" -std=c++17 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
  -fno-omit-frame-pointer -Wall -Wextra -Wno-unused-parameter -Werror -fPIC -shared \
  -I"$here" -I"$root/csrc" "$here/shim.cpp" "$tmp"/{rnn,lstm,gru}.cpp -o "$tmp/libhost.so"
asan=$("${CXX:-c++}" -print-file-name=libasan.so)
ubsan=$("${CXX:-c++}" -print-file-name=libubsan.so)
stdcxx=$("${CXX:-c++}" -print-file-name=libstdc++.so)
cd "$root"
env LD_PRELOAD="$asan $ubsan $stdcxx" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
  PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" "$py" "$here/check.py" "$tmp/libhost.so"
