#!/usr/bin/env bash
# CI, build only: compiles and links fastnn._C for aarch64 (64-bit Arm) with Debian's cross
# compiler (g++-aarch64-linux-gnu), against the aarch64 wheel of scipy-openblas32 from PyPI and
# this Python's headers (a module's C API is the same on both), to keep the C++ free of x86
# assumptions outside the dispatched kernels. Nothing runs: there is no Arm machine here.
# Usage: .ci/cross_build.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cxx=${CROSS_CXX:-aarch64-linux-gnu-g++}
if ! command -v "$cxx" >/dev/null; then
  apt-get update -qq && apt-get install -y -qq g++-aarch64-linux-gnu >/dev/null
fi
py=$("${PYTHON:-python3}" -c "import sys; print(sys.executable)")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$py" -m pip download -q --no-deps --only-binary=:all: --platform manylinux2014_aarch64 \
  --python-version 3.11 scipy-openblas32 -d "$tmp/wheel"
"$py" -m zipfile -e "$tmp"/wheel/scipy_openblas32-*.whl "$tmp/openblas"
ob="$tmp/openblas/scipy_openblas32"

cat >"$tmp/toolchain.cmake" <<TOOLCHAIN
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_CXX_COMPILER $cxx)
TOOLCHAIN

cmake -S "$repo" -B "$tmp/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE="$tmp/toolchain.cmake" \
  -DPython_EXECUTABLE="$py" -Dpybind11_DIR="$("$py" -m pybind11 --cmakedir)" \
  -DOPENBLAS_INCLUDE_DIR="$ob/include" -DOPENBLAS_LIB_DIR="$ob/lib" \
  -DOPENBLAS_LIB_NAME=libscipy_openblas.so \
  -DPython_INCLUDE_DIR="$("$py" -c "import sysconfig; print(sysconfig.get_paths()['include'])")" \
  -DPython_SOABI=cpython-311-aarch64-linux-gnu >"$tmp/configure.log" || { cat "$tmp/configure.log"; exit 1; }
grep "CPU kernel levels" "$tmp/configure.log"
cmake --build "$tmp/build" -j"$(nproc)"
so=$(ls "$tmp"/build/_C*.so)
file -b "$so" | tee "$tmp/file.txt"
grep -q "ARM aarch64" "$tmp/file.txt" || { echo "cross_build: $so is not an aarch64 binary" >&2; exit 1; }
# A shared module links with undefined symbols; each must be one the process will have: Python's
# C API, OpenBLAS's (scipy_*), or a versioned symbol of the C/C++/OpenMP runtimes.
# (Weak references, "w", may stay unresolved.)
"${CROSS_NM:-aarch64-linux-gnu-nm}" -D --undefined-only "$so" | awk '$1 == "U" {print $NF}' |
  grep -vE '^(_?Py|scipy_)|@' >"$tmp/unresolved.txt" || true
if [ -s "$tmp/unresolved.txt" ]; then
  echo "cross_build: symbols no library provides:" >&2; cat "$tmp/unresolved.txt" >&2; exit 1
fi
echo "cross_build: fastnn._C compiled and linked for aarch64; every undefined symbol has a provider"
