#!/usr/bin/env bash
# Developer build: compiles fastnn._C and the test-only fastnn._C_testing (-DFASTNN_TESTING=ON,
# tests/native) into fastnn/ in place, so `PYTHONPATH=. pytest` runs against the working tree
# without reinstalling. Usage: [BUILD=dir] .ci/dev_build.sh [extra cmake -D args]
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
build=${BUILD:-build/dev}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFASTNN_TESTING=ON \
  -DPython_EXECUTABLE="$(command -v "$py")" \
  -Dpybind11_DIR="$("$py" -m pybind11 --cmakedir)" "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
cp "$build"/_C*.so "$build"/tests/native/_C_testing*.so fastnn/
