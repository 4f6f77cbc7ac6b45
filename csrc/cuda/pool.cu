// Max and average pooling: forward one thread per output, backward one thread per input
// pixel gathering from the windows over it (no atomics).
#include "cuda/body/pool.h"
#include "cuda/launch.cuh"
#include "cuda/ops.h"

namespace fastnn::cuda {

template <typename T>
void maxpool2d_forward(const T* x, T* out, int32_t* arg, const ConvShape& s, void* stream) {
  for_each(s.N * s.C * s.OH * s.OW, stream,
           [=] __device__(int64_t o) { body::maxpool_forward_element(x, out, arg, s, o); },
           "maxpool2d_forward");
}

template <typename T>
void maxpool2d_backward(const T* dout, const int32_t* arg, T* dx, const ConvShape& s,
                        void* stream) {
  for_each(s.N * s.C * s.H * s.W, stream,
           [=] __device__(int64_t i) { dx[i] = body::maxpool_backward_element(dout, arg, s, i); },
           "maxpool2d_backward");
}

template <typename T>
void avgpool2d_forward(const T* x, T* out, const ConvShape& s, void* stream) {
  for_each(s.N * s.C * s.OH * s.OW, stream,
           [=] __device__(int64_t o) { out[o] = body::avgpool_forward_element(x, s, o); },
           "avgpool2d_forward");
}

template <typename T>
void avgpool2d_backward(const T* dout, T* dx, const ConvShape& s, void* stream) {
  for_each(s.N * s.C * s.H * s.W, stream,
           [=] __device__(int64_t i) { dx[i] = body::avgpool_backward_element(dout, s, i); },
           "avgpool2d_backward");
}

#define FASTNN_INSTANTIATE(T)                                                                   \
  template void maxpool2d_forward<T>(const T*, T*, int32_t*, const ConvShape&, void*);          \
  template void maxpool2d_backward<T>(const T*, const int32_t*, T*, const ConvShape&, void*);   \
  template void avgpool2d_forward<T>(const T*, T*, const ConvShape&, void*);                    \
  template void avgpool2d_backward<T>(const T*, T*, const ConvShape&, void*);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // namespace fastnn::cuda
