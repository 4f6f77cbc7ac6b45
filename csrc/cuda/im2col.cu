// im2col (one thread per col entry) and col2im (one thread per pixel, gathering: no atomics).
#include "cuda/body/im2col.h"
#include "cuda/launch.cuh"
#include "cuda/ops.h"

namespace fastnn::cuda {

template <typename T>
void im2col(const T* x, T* col, const ConvShape& s, void* stream) {
  const int64_t n = s.N * s.OH * s.OW * s.C * s.FH * s.FW;
  for_each(n, stream, [=] __device__(int64_t i) { col[i] = body::im2col_element(x, s, i); },
           "im2col");
}

template <typename T>
void col2im(const T* col, T* x, const ConvShape& s, void* stream) {
  const int64_t n = s.N * s.C * s.H * s.W;
  for_each(n, stream, [=] __device__(int64_t i) { x[i] = body::col2im_element(col, s, i); },
           "col2im");
}

template void im2col<float>(const float*, float*, const ConvShape&, void*);
template void im2col<double>(const double*, double*, const ConvShape&, void*);
template void col2im<float>(const float*, float*, const ConvShape&, void*);
template void col2im<double>(const double*, double*, const ConvShape&, void*);

}  // namespace fastnn::cuda
