// Affine: the GEMMs run in cuBLAS; the bias add is this body and db is a column sum
// (column_partial with Elem<T> in common.h).
#pragma once
#include "cuda/body/common.h"

namespace fastnn::body {

// out (N, M) += b (M,) at idx.
template <typename T>
FASTNN_HD void bias_add_element(T* out, const T* b, int64_t M, int64_t idx) {
  out[idx] += b[idx % M];
}

}  // namespace fastnn::body
