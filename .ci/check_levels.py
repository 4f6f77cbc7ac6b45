"""Static check of a portable build's object files (after .ci/dev_build.sh): code that every
CPU runs holds no instruction above the baseline.

1. The module's own objects (bindings, core) and the baseline kernels contain no VEX or EVEX
   instruction (AVX and up): x86-64-v2 has none.
2. A higher level's kernels may share inline functions with the lower levels (the C++ library's,
   say) under one symbol; the linker keeps the first copy, and CMakeLists.txt links the levels
   lowest first. So every such shared symbol of the avx2 or avx512 objects must also be defined
   by the module's objects or a lower level's, or else a lower level could call a higher copy.
Usage: python .ci/check_levels.py [build dir, default build/dev]
"""

import pathlib
import re
import subprocess
import sys

build = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "build/dev") / "CMakeFiles"
LEVELS = ["baseline", "avx2", "avx512"]
VEX = re.compile(r"^v|%[yz]mm|%k[0-7]\b")


def objects(group):
    found = sorted((build / f"{group}.dir").rglob("*.o"))
    if not found:
        sys.exit(f"check_levels: no objects for {group} under {build}")
    return found


def vex_count(obj):
    sections = subprocess.run(["objdump", "-h", str(obj)], check=True, capture_output=True,
                              text=True).stdout
    if ".gnu.lto_" in sections:
        sys.exit(f"check_levels: {obj} holds link-time-optimisation code, not machine code")
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(obj)], check=True,
                         capture_output=True, text=True).stdout
    n = 0
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and re.match(r"^\s*[0-9a-f]+:$", parts[0]) and VEX.search(parts[1]):
            n += 1
    return n


def symbols(objs, kinds):
    out = subprocess.run(["nm", "--defined-only", *map(str, objs)], check=True,
                         capture_output=True, text=True).stdout
    return {p[2] for p in (line.split() for line in out.splitlines())
            if len(p) == 3 and p[1] in kinds}


failures = []
for obj in objects("_C") + objects("fastnn_kernels_baseline"):
    n = vex_count(obj)
    if n:
        failures.append(f"{obj}: {n} AVX (VEX/EVEX) instructions in baseline code")

lower = symbols(objects("_C") + objects("fastnn_kernels_baseline"), set("TtWVu"))
for level in LEVELS[1:]:
    objs = objects(f"fastnn_kernels_{level}")
    own = re.compile(rf"\d+{level}\d")  # mangled names inside the namespace fastnn::cpu::<level>
    for sym in sorted(symbols(objs, set("WVu"))):
        if not own.search(sym) and sym not in lower and not sym.startswith("DW.ref."):
            failures.append(f"{level}: shared symbol {sym} has no lower-level copy")
    lower |= symbols(objs, set("TtWVu"))

if failures:
    print("\n".join(failures))
    sys.exit(1)
print(f"check_levels: baseline code has no AVX instruction; the shared symbols of the higher "
      f"levels all have lower-level copies ({build})")
