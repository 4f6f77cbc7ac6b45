// One thread pool: set_num_threads() sizes OpenMP's and keeps OpenBLAS single-threaded;
// fastnn::gemm (core/blas.h) splits large GEMMs over the OpenMP threads, so cores are never
// oversubscribed.
#pragma once
#include <cstdint>
#include <omp.h>

namespace fastnn {

// The thread count is capped at 4 threads per processor and at most kMaxThreads: the kernels
// are compute-bound, so threads beyond the cores only add switching, and each OpenMP thread
// reserves a stack (8 MiB by default). Unbounded counts crashed inside libgomp (a segfault at
// 100000, "Thread creation failed" and exit() at 1000 under a memory limit).
constexpr int kThreadsPerProcessor = 4;
constexpr int kMaxThreads = 1024;
// min(kThreadsPerProcessor * processors, kMaxThreads); processors: the larger of the online
// CPUs and those OpenMP may use.
int max_num_threads();

// In a child made by fork() the budget is 1 whatever n is (GNU OpenMP cannot start threads there).
// n < 1 or n > max_num_threads(): std::invalid_argument. Before OpenMP's pool first grows to n,
// n - 1 threads are started and joined as a probe: where the system cannot start them (memory or
// process limits), std::runtime_error and the budget stays as it was, where libgomp would
// otherwise end the process.
void set_num_threads(int n);
// The budget; also makes it the OpenMP thread count of the calling thread (Python threads other
// than the one that called set_num_threads would otherwise keep OpenMP's default). Every kernel
// asks for it before its parallel regions. Before set_num_threads, OpenMP's default
// (OMP_NUM_THREADS) capped at max_num_threads().
int get_num_threads();

// Parallel loops pay off only past a few thousand elements, and not inside a parallel region
// (its threads are busy already). On `parallel for simd` write `if (parallel: worth_parallel(n))`:
// a bare if clause also governs the simd part (OpenMP 5) and left small loops scalar.
constexpr int64_t kParallelGrain = 1 << 14;

inline bool worth_parallel(int64_t work) {
  return work >= kParallelGrain && !omp_in_parallel() && get_num_threads() > 1;
}

}  // namespace fastnn
