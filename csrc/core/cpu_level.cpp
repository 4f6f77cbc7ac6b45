#include "core/cpu_level.h"

#include <cstdint>
#include <stdexcept>

#if defined(__x86_64__) || defined(_M_X64)
#define FASTNN_X86_64 1
#if defined(_MSC_VER)
#include <immintrin.h>
#include <intrin.h>
#else
#include <cpuid.h>
#endif
#endif

// The kernel table of each compiled level (cpu/kernel_table.cpp, compiled once per level;
// CMakeLists.txt defines FASTNN_LEVEL_<name> for each).
namespace fastnn::cpu {
#ifdef FASTNN_LEVEL_BASELINE
namespace baseline { const AnyKernel* kernel_table(); }
#endif
#ifdef FASTNN_LEVEL_AVX2
namespace avx2 { const AnyKernel* kernel_table(); }
#endif
#ifdef FASTNN_LEVEL_AVX512
namespace avx512 { const AnyKernel* kernel_table(); }
#endif
#ifdef FASTNN_LEVEL_NATIVE
namespace native { const AnyKernel* kernel_table(); }
#endif
}  // namespace fastnn::cpu

namespace fastnn::cpu {
namespace detail {
const AnyKernel* active_table = nullptr;
}

namespace {

// The x86-64 levels, lowest first; off x86-64 only the first exists.
constexpr const char* kLevelNames[] = {"baseline", "avx2", "avx512"};

struct Compiled {
  const char* name;
  int rank;  // index in kLevelNames; native counts as any
  const AnyKernel* (*table)();
};

std::vector<Compiled> compiled() {
  std::vector<Compiled> levels;
#ifdef FASTNN_LEVEL_BASELINE
  levels.push_back({"baseline", 0, &baseline::kernel_table});
#endif
#ifdef FASTNN_LEVEL_AVX2
  levels.push_back({"avx2", 1, &avx2::kernel_table});
#endif
#ifdef FASTNN_LEVEL_AVX512
  levels.push_back({"avx512", 2, &avx512::kernel_table});
#endif
#ifdef FASTNN_LEVEL_NATIVE
  levels.push_back({"native", 0, &native::kernel_table});
#endif
  return levels;
}

#ifdef FASTNN_X86_64
struct Regs {
  uint32_t a = 0, b = 0, c = 0, d = 0;
};

Regs cpuid(uint32_t leaf, uint32_t sub = 0) {
  Regs r;
#if defined(_MSC_VER)
  int v[4];
  __cpuidex(v, static_cast<int>(leaf), static_cast<int>(sub));
  r = {uint32_t(v[0]), uint32_t(v[1]), uint32_t(v[2]), uint32_t(v[3])};
#else
  __cpuid_count(leaf, sub, r.a, r.b, r.c, r.d);
#endif
  return r;
}

// The register state the OS saves on a context switch (XCR0); only valid with OSXSAVE.
uint64_t xcr0() {
#if defined(_MSC_VER)
  return _xgetbv(0);
#else
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
#endif
}

bool bit(uint32_t r, int i) { return (r >> i) & 1u; }

// -1 below x86-64-v2, else the index in kLevelNames of the highest level (v2, v3, v4).
int x86_level() {
  const uint32_t max_leaf = cpuid(0).a;
  const uint32_t max_ext = cpuid(0x80000000u).a;
  const Regs l1 = cpuid(1);
  const Regs l7 = max_leaf >= 7 ? cpuid(7, 0) : Regs{};
  const Regs e1 = max_ext >= 0x80000001u ? cpuid(0x80000001u) : Regs{};
  // x86-64-v2: SSE3, SSSE3, SSE4.1, SSE4.2, POPCNT, CMPXCHG16B, LAHF/SAHF.
  const bool v2 = bit(l1.c, 0) && bit(l1.c, 9) && bit(l1.c, 19) && bit(l1.c, 20) &&
                  bit(l1.c, 23) && bit(l1.c, 13) && bit(e1.c, 0);
  if (!v2) return -1;
  const bool osxsave = bit(l1.c, 27);
  const uint64_t xcr = osxsave ? xcr0() : 0;
  // x86-64-v3: AVX, AVX2, BMI1, BMI2, F16C, FMA, LZCNT, MOVBE, with YMM state saved by the OS.
  const bool v3 = osxsave && (xcr & 0x6) == 0x6 && bit(l1.c, 28) && bit(l7.b, 5) &&
                  bit(l7.b, 3) && bit(l7.b, 8) && bit(l1.c, 29) && bit(l1.c, 12) &&
                  bit(e1.c, 5) && bit(l1.c, 22);
  if (!v3) return 0;
  // x86-64-v4: AVX512F, BW, CD, DQ, VL, with opmask and ZMM state saved by the OS.
  const bool v4 = (xcr & 0xE6) == 0xE6 && bit(l7.b, 16) && bit(l7.b, 30) && bit(l7.b, 28) &&
                  bit(l7.b, 17) && bit(l7.b, 31);
  return v4 ? 2 : 1;
}
#else
int x86_level() { return 0; }
#endif

const char* active_name = "";

}  // namespace

std::vector<std::string> compiled_levels() {
  std::vector<std::string> names;
  for (const auto& l : compiled()) names.emplace_back(l.name);
  return names;
}

std::string detected_level() {
  const int level = x86_level();
  return level < 0 ? "below x86-64-v2" : kLevelNames[level];
}

std::string active_level() { return active_name; }

void select_level(const char* cap) {
  const std::vector<Compiled> levels = compiled();
  int max_rank = x86_level();
#ifndef FASTNN_LEVEL_NATIVE
  if (max_rank < 0)
    throw std::runtime_error(
        "fastnn: this CPU lacks x86-64-v2 (SSE4.2, POPCNT), the least fastnn's kernels are "
        "built for; build fastnn from source with -C cmake.define.FASTNN_NATIVE=ON");
#endif
  if (cap && *cap) {
    // Only a level compiled into this build (a FASTNN_NATIVE build has native alone, another
    // processor baseline alone): a level it cannot honour is an error, not silently ignored.
    const std::string want(cap);
    const Compiled* found = nullptr;
    for (const auto& l : levels)
      if (want == l.name) found = &l;
    if (!found) {
      std::string names;
      for (const auto& l : levels) names += (names.empty() ? "" : ", ") + std::string(l.name);
      throw std::invalid_argument("FASTNN_CPU='" + want + "' is not a level of this build (" +
                                  names + ")");
    }
    if (found->rank < max_rank) max_rank = found->rank;
  }
  const Compiled* best = &levels.front();
  for (const auto& l : levels)
    if (l.rank <= max_rank) best = &l;
  active_name = best->name;
  detail::active_table = best->table();
}

}  // namespace fastnn::cpu
