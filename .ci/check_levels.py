"""Static check of a portable build's object files (after .ci/dev_build.sh or pip install .):
code that every CPU runs holds no instruction above the baseline.

1. The module's own objects (bindings, core) and the baseline kernels contain no instruction of
   x86-64-v3 or v4: no VEX or EVEX encoding (AVX and up), no BMI1/BMI2, LZCNT, TZCNT or MOVBE.
2. The avx2 and avx512 kernels do hold code of their level (ymm / zmm registers): a level whose
   -march flag went missing would pass every test and be slow.
3. They have no static initialisers (.init_array): those run when the module loads, on any CPU.
4. A higher level's kernels may share an inline function with other objects (the C++ library's,
   say) under one symbol, and the linker keeps the first copy it sees. CMakeLists.txt links the
   kernel levels lowest first, before the module's own objects; so every such symbol of the avx2
   or avx512 objects must also be defined by a lower kernel level, or else code of a lower level
   (or the bindings) could call the higher copy.
Usage: python .ci/check_levels.py [build dir, default build/dev]
"""

import pathlib
import re
import subprocess
import sys

build = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "build/dev") / "CMakeFiles"
LEVELS = ["baseline", "avx2", "avx512"]
ABOVE_V2 = re.compile(r"^(v\w+|shlx|sarx|shrx|rorx|andn|bzhi|pdep|pext|bextr|blsi|blsr|blsmsk|"
                      r"mulx|lzcnt|tzcnt|movbe)$")
WIDE = {"avx2": re.compile(r"%ymm"), "avx512": re.compile(r"%zmm")}


def objects(group):
    found = sorted((build / f"{group}.dir").rglob("*.o"))
    if not found:
        sys.exit(f"check_levels: no objects for {group} under {build}")
    return found


def tool(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def instructions(obj):
    """(mnemonic, operands) of every instruction of an object file."""
    if ".gnu.lto_" in tool("objdump", "-h", str(obj)):
        sys.exit(f"check_levels: {obj} holds link-time-optimisation code, not machine code")
    for line in tool("objdump", "-d", "--no-show-raw-insn", str(obj)).splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and re.match(r"^\s*[0-9a-f]+:$", parts[0]):
            words = parts[1].split(None, 1)
            if words:
                yield words[0], words[1] if len(words) > 1 else ""


def symbols(objs, kinds):
    out = tool("nm", "--defined-only", *map(str, objs))
    return {p[2] for p in (line.split() for line in out.splitlines())
            if len(p) == 3 and p[1] in kinds}


failures = []
for obj in objects("_C") + objects("fastnn_kernels_baseline"):
    n = sum(1 for op, args in instructions(obj) if ABOVE_V2.match(op) or "%ymm" in args
            or "%zmm" in args or re.search(r"%k[0-7]\b", args))
    if n:
        failures.append(f"{obj}: {n} instructions above x86-64-v2 in baseline code")

lower = symbols(objects("fastnn_kernels_baseline"), set("TtWVu"))
for level in LEVELS[1:]:
    objs = objects(f"fastnn_kernels_{level}")
    if not any(WIDE[level].search(args) for obj in objs for _, args in instructions(obj)):
        failures.append(f"{level}: no {WIDE[level].pattern} register in its kernels "
                        "(was it compiled for its level?)")
    for obj in objs:
        if ".init_array" in tool("objdump", "-h", str(obj)):
            failures.append(f"{obj}: static initialisers run at load time on every CPU")
    own = re.compile(rf"\d+{level}\d")  # mangled names inside the namespace fastnn::cpu::<level>
    for sym in sorted(symbols(objs, set("WVu"))):
        if not own.search(sym) and sym not in lower and not sym.startswith("DW.ref."):
            failures.append(f"{level}: shared symbol {sym} has no lower-level copy")
    lower |= symbols(objs, set("TtWVu"))

if failures:
    print("\n".join(failures))
    sys.exit(1)
print(f"check_levels: no instruction above x86-64-v2 in baseline code; avx2 and avx512 kernels "
      f"use their registers and load no initialiser; shared symbols have lower copies ({build})")
