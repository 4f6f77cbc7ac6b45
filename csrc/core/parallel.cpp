#include "core/parallel.h"

#include <cblas.h>
#include <pthread.h>

#include <atomic>

namespace fastnn {
namespace {
// The budget set by set_num_threads (0: not set yet, OpenMP's default). OpenMP keeps its thread
// count per calling thread, so each thread adopts the budget when a kernel asks for it.
std::atomic<int> budget{0};

// After fork() the child holds only the forking thread, and GNU OpenMP's thread pool does not
// survive it: a parallel region in the child would wait forever for threads that are gone. The
// child of a process that may have used fastnn's threads therefore keeps to one thread.
std::atomic<bool> forked{false};
void on_fork_in_child() {
  forked.store(true);
  budget.store(1);
}
const int fork_handler = pthread_atfork(nullptr, nullptr, on_fork_in_child);
}  // namespace

void set_num_threads(int n) {
  if (n < 1 || forked.load()) n = 1;
  budget.store(n);
  omp_set_num_threads(n);
  scipy_openblas_set_num_threads(1);  // fastnn::gemm splits large GEMMs over OpenMP threads
}

int get_num_threads() {
  const int n = budget.load();
  if (n == 0) return omp_get_max_threads();
  if (!omp_in_parallel() && omp_get_max_threads() != n) omp_set_num_threads(n);
  return n;
}

}  // namespace fastnn
