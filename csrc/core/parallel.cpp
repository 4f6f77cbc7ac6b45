#include "core/parallel.h"

#include <cblas.h>

namespace fastnn {

void set_num_threads(int n) {
  if (n < 1) n = 1;
  omp_set_num_threads(n);
  scipy_openblas_set_num_threads(1);  // fastnn::gemm splits large GEMMs over OpenMP threads
}

int get_num_threads() { return omp_get_max_threads(); }

}  // namespace fastnn
