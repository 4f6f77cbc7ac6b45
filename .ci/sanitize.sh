#!/usr/bin/env bash
# ASan + UBSan run: builds fastnn._C and the test-only _C_testing (for the body tests) with
# -DFASTNN_SANITIZE=ON in build/sanitize (the dev build in build/dev and fastnn/_C*.so are not
# touched), copies the working tree into a scratch directory with those modules, and runs the
# test subset there with the ASan runtime preloaded.
# Exits non-zero on a test failure or on any sanitizer report.
# Usage: .ci/sanitize.sh [pytest args]   (default: the whole of tests/)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# The interpreter itself, not a launcher script (pyenv shims are bash scripts).
py=$("${PYTHON:-python3}" -c "import sys; print(sys.executable)")
build=build/sanitize
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DFASTNN_SANITIZE=ON -DFASTNN_TESTING=ON \
  -DPython_EXECUTABLE="$(command -v "$py")" \
  -Dpybind11_DIR="$("$py" -m pybind11 --cmakedir)" >/dev/null
cmake --build "$build" -j"$(nproc)"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# The working tree without build outputs (tests also read docs/ and examples/).
tar --exclude=./build --exclude=./.git --exclude='*/__pycache__' --exclude=./.hypothesis -cf - . |
  tar -xf - -C "$scratch"
rm -f "$scratch"/fastnn/_C*.so  # _C and _C_testing of the dev build
cp "$build"/_C*.so "$build"/tests/native/_C_testing*.so "$scratch"/fastnn/

# The ASan runtime must be the first library loaded; libstdc++ is preloaded too so that ASan's
# __cxa_throw interceptor finds the real one (python itself does not link libstdc++).
asan=$("${CXX:-c++}" -print-file-name=libasan.so)
stdcxx=$("${CXX:-c++}" -print-file-name=libstdc++.so)
for lib in "$asan" "$stdcxx"; do
  [ -f "$lib" ] || { echo "sanitize.sh: $lib not found" >&2; exit 1; }
done
log="$scratch/sanitizer.log"
cd "$scratch"
# Python keeps memory until exit by design (no leak checking); a huge malloc returns NULL as it
# does without ASan, so NumPy raises MemoryError (the oversized-request tests check that).
status=0
env LD_PRELOAD="$asan $stdcxx" \
  ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1:log_path=$log" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$log" \
  PYTHONPATH="$scratch" HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-ci}" \
  "$py" -m pytest -q -p no:cacheprovider "${@:-tests}" || status=$?
if compgen -G "$log*" >/dev/null; then
  cat "$log"* >&2
  # "failed to allocate" warnings are the oversized-request tests (malloc returned NULL)
  if grep -qE "ERROR: AddressSanitizer|runtime error:|SUMMARY: " "$log"*; then
    echo "sanitize.sh: sanitizer reports above" >&2
    exit 1
  fi
fi
[ "$status" -eq 0 ] || { echo "sanitize.sh: tests failed (status $status)" >&2; exit "$status"; }
echo "sanitize.sh: clean (ASan + UBSan)"
