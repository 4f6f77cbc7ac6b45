#include "core/parallel.h"

#include <cblas.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/check.h"

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

// The largest count the probe below has started (OpenMP's pool keeps its threads, so a count
// once started needs no probe again).
std::mutex probe_mu;
int probed = 1;

void* idle(void*) { return nullptr; }

// Starts n - 1 threads with the default attributes (those libgomp uses), all alive at once as
// OpenMP's pool would be, then joins them. Throws std::runtime_error when one cannot start.
void probe_threads(int n) {
  std::lock_guard<std::mutex> lock(probe_mu);
  if (n <= probed) return;
  std::vector<pthread_t> started;
  started.reserve(n - 1);
  int err = 0;
  for (int i = 1; i < n && !err; ++i) {
    pthread_t t;
    err = pthread_create(&t, nullptr, idle, nullptr);
    if (!err) started.push_back(t);
  }
  for (pthread_t t : started) pthread_join(t, nullptr);
  if (err)
    throw std::runtime_error(str_cat("set_num_threads: the system cannot start ", n,
                                     " threads here (", started.size() + 1,
                                     " started; pthread_create: ", std::strerror(err),
                                     "); the thread count is unchanged"));
  probed = n;
}
}  // namespace

int max_num_threads() {
  const int procs = std::max({1, static_cast<int>(std::thread::hardware_concurrency()),
                              omp_get_num_procs()});
  return std::min(kThreadsPerProcessor * procs, kMaxThreads);
}

void set_num_threads(int n) {
  FASTNN_CHECK(n >= 1, "set_num_threads: n must be >= 1, got ", n);
  const int cap = max_num_threads();
  FASTNN_CHECK(n <= cap, "set_num_threads: n must be at most ", cap, " (", kThreadsPerProcessor,
               " threads per processor, at most ", kMaxThreads, "), got ", n);
  if (forked.load()) n = 1;
  probe_threads(n);
  budget.store(n);
  omp_set_num_threads(n);
  scipy_openblas_set_num_threads(1);  // fastnn::gemm splits large GEMMs over OpenMP threads
}

int get_num_threads() {
  const int n = budget.load();
  if (n == 0) {  // OMP_NUM_THREADS may ask for more than the cap: kernels never use more
    const int omp = omp_get_max_threads(), cap = max_num_threads();
    if (omp > cap && !omp_in_parallel()) omp_set_num_threads(cap);
    return std::min(omp, cap);
  }
  if (!omp_in_parallel() && omp_get_max_threads() != n) omp_set_num_threads(n);
  return n;
}

}  // namespace fastnn
