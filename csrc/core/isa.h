// Instruction-set levels of the CPU kernels.
//
// The kernels (csrc/cpu/*.cpp and core/blas.h) are compiled once per level, each copy with its
// own -march (CMakeLists.txt: baseline = x86-64-v2, avx2 = x86-64-v3, avx512 = x86-64-v4) and
// FASTNN_ISA set to the level's name, which makes every kernel symbol of that copy live in the
// inline namespace fastnn::cpu::<level>: the copies never share a symbol. The rest of the module
// (bindings, buffers, threads) is compiled once, for the baseline, and calls the kernels through
// the table of the level chosen at import (cpu/dispatch.h, core/cpu_level.cpp).
//
// Why whole translation units per level and not GCC's target_clones: OpenMP moves the body of
// every parallel loop into a function of its own, which target_clones does not clone, so the
// hot loops would stay at the baseline; and a table chosen at import lets FASTNN_CPU cap the
// level for tests and for users who need it.
#pragma once

#ifdef FASTNN_ISA
#define FASTNN_ISA_NAMESPACE inline namespace FASTNN_ISA
#else
// Outside the kernel translation units the headers only declare each kernel's signature.
#define FASTNN_ISA_NAMESPACE namespace signature
#endif
