#!/usr/bin/env bash
# valgrind memcheck of a short training-like run (.ci/valgrind_train.py). _C is built in
# build/valgrind without -march=native (valgrind cannot decode AVX-512) and run from a scratch
# copy of the package, so the dev build is not touched. Python's allocator is bypassed
# (PYTHONMALLOC=malloc) so its pools do not show up as noise; leaks are not checked.
# Fails on any invalid read/write/free, use of uninitialised memory or mismatched free.
set -euo pipefail
cd "$(dirname "$0")/.."
# The interpreter itself, not a launcher script (pyenv shims would hide it from valgrind).
py=$("${PYTHON:-python3}" -c "import sys; print(sys.executable)")
build=build/valgrind
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFASTNN_NATIVE=OFF \
  -DPython_EXECUTABLE="$py" -Dpybind11_DIR="$("$py" -m pybind11 --cmakedir)" >/dev/null
cmake --build "$build" -j"$(nproc)"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r fastnn "$scratch"/
rm -f "$scratch"/fastnn/_C*.so
cp "$build"/_C*.so "$scratch"/fastnn/
log="$scratch/valgrind.log"
PYTHONMALLOC=malloc PYTHONPATH="$scratch" OMP_WAIT_POLICY=passive \
  valgrind --tool=memcheck --leak-check=no --log-file="$log" "$py" .ci/valgrind_train.py
grep -E "ERROR SUMMARY" "$log" | tail -1 || { cat "$log" >&2; exit 1; }
if grep -qE "Invalid (read|write|free)|uninitialised|Mismatched free|overlap" "$log"; then
  cat "$log" >&2
  echo "valgrind.sh: memory errors found" >&2
  exit 1
fi
echo "valgrind.sh: no invalid reads or writes"
