// Which instruction-set level of the CPU kernels runs (see core/isa.h): chosen once at import,
// the highest level compiled into this module that the CPU supports, at most FASTNN_CPU.
#pragma once
#include <string>
#include <vector>

#include "cpu/kernels.h"

namespace fastnn::cpu {

// Levels compiled into this module, lowest first: baseline, avx2, avx512 on x86-64 (baseline
// only elsewhere), or native alone for a FASTNN_NATIVE build.
std::vector<std::string> compiled_levels();
// The highest of baseline, avx2, avx512 that this CPU and OS support (baseline off x86-64).
std::string detected_level();
// The level whose kernels run.
std::string active_level();

// Chooses the kernels: the highest compiled level the CPU supports, capped by `cap` (the value
// of FASTNN_CPU; null or empty for no cap). Throws std::invalid_argument for a level this build
// lacks and std::runtime_error when the CPU lacks even the baseline.
void select_level(const char* cap);

namespace detail {
extern const AnyKernel* active_table;
}

// The kernel table of the active level (cpu/dispatch.h reads it on every call).
inline const AnyKernel* active_kernels() { return detail::active_table; }

}  // namespace fastnn::cpu
