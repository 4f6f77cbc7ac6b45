#!/usr/bin/env bash
# valgrind memcheck of a short training-like run (.ci/valgrind_train.py). _C is built in
# build/valgrind without -march=native (valgrind cannot decode AVX-512) and run from a scratch
# copy of the package, so the dev build is not touched. Python's allocator is bypassed
# (PYTHONMALLOC=malloc) so its pools do not show up as noise; leaks are not checked.
# Fails on any invalid read/write/free, use of uninitialised memory or mismatched free whose
# stack passes through fastnn's _C, OpenBLAS, OpenMP or NumPy.
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
  valgrind --tool=memcheck --leak-check=no --num-callers=50 --log-file="$log" \
  "$py" .ci/valgrind_train.py
# CPython (not built --with-valgrind) reports uninitialised reads in its own object and GC code,
# and ld.so word-sized strncmp reads of rpaths; an error counts when its stack passes through
# fastnn's _C, OpenBLAS, OpenMP or NumPy (where a bad pointer, a wrong size or an output left
# partly unwritten by a kernel would surface).
"$py" - "$log" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
blocks = re.split(r"\n==\d+== \n", text)
kinds = ("Invalid read", "Invalid write", "Invalid free", "uninitialised", "Mismatched free",
         "overlap", "Syscall param")
ours = re.compile(r"_C\.cpython|fastnn::|scipy_openblas|libgomp|_multiarray_umath")
errors = [b for b in blocks if any(k in b for k in kinds)]
bad = [b for b in errors if ours.search(b)]
summary = re.findall(r"ERROR SUMMARY: .*", text)
print(summary[-1] if summary else "no ERROR SUMMARY")
print(f"valgrind.sh: {len(errors)} error contexts, {len(bad)} through fastnn/_C, OpenBLAS, OpenMP "
      f"or NumPy ({len(errors) - len(bad)} only in CPython or ld.so, ignored)")
for b in bad:
    print(b, file=sys.stderr)
sys.exit(1 if bad or not summary else 0)
PY
echo "valgrind.sh: no invalid reads or writes in fastnn"
