// One thread pool: set_num_threads() sizes OpenMP's and keeps OpenBLAS single-threaded;
// fastnn::gemm (core/blas.h) splits large GEMMs over the OpenMP threads, so cores are never
// oversubscribed.
#pragma once
#include <cstdint>
#include <omp.h>

namespace fastnn {

// In a child made by fork() the budget is 1 whatever n is (GNU OpenMP cannot start threads there).
void set_num_threads(int n);
// The budget; also makes it the OpenMP thread count of the calling thread (Python threads other
// than the one that called set_num_threads would otherwise keep OpenMP's default). Every kernel
// asks for it before its parallel regions.
int get_num_threads();

// Parallel loops pay off only past a few thousand elements, and not inside a parallel region
// (its threads are busy already). On `parallel for simd` write `if (parallel: worth_parallel(n))`:
// a bare if clause also governs the simd part (OpenMP 5) and left small loops scalar.
constexpr int64_t kParallelGrain = 1 << 14;

inline bool worth_parallel(int64_t work) {
  return work >= kParallelGrain && !omp_in_parallel() && get_num_threads() > 1;
}

}  // namespace fastnn
