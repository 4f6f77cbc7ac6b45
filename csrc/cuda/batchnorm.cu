// Batch normalization on x (N, D): column sums (one block per column), per-column finishes
// and per-element maps, the bodies of body/batchnorm.h.
#include "cuda/body/batchnorm.h"
#include "cuda/launch.cuh"
#include "cuda/ops.h"

namespace fastnn::cuda {

template <typename T>
void batchnorm_forward_train(const T* x, const T* gamma, const T* beta, const T* running_mean,
                             const T* running_var, T* out, T* xc, T* xn, T* std,
                             T* new_running_mean, T* new_running_var, int64_t N, int64_t D,
                             double momentum, double eps, void* stream) {
  Scratch<double> sums(D, stream);
  Scratch<T> mu(D, stream);
  double* s = sums.get();
  T* m = mu.get();
  // The statistics accumulate in double, as on the CPU.
  column_sum<double>(body::Elem<T>{x, D}, N, D, s, stream, "batchnorm (mean)");
  for_each(D, stream, [=] __device__(int64_t j) {
    m[j] = N ? static_cast<T>(s[j] / N) : T(0);
  }, "batchnorm (mean)");
  column_sum<double>(body::ElemSqDev<T>{x, m, D}, N, D, s, stream, "batchnorm (var)");
  for_each(D, stream, [=] __device__(int64_t j) {
    body::batchnorm_column_stats(s[j], m, running_mean, running_var, std, new_running_mean,
                                 new_running_var, N, momentum, eps, j);
  }, "batchnorm (stats)");
  for_each(N * D, stream, [=] __device__(int64_t i) {
    body::batchnorm_normalize_element(x, m, std, gamma, beta, xc, xn, out, D, i);
  }, "batchnorm (normalize)");
}

template <typename T>
void batchnorm_forward_infer(const T* x, const T* gamma, const T* beta, const T* running_mean,
                             const T* running_var, T* out, int64_t N, int64_t D, double eps,
                             void* stream) {
  const T e = static_cast<T>(eps);
  for_each(N * D, stream, [=] __device__(int64_t i) {
    out[i] = body::batchnorm_infer_element(x, gamma, beta, running_mean, running_var, e, D, i);
  }, "batchnorm_forward_infer");
}

template <typename T>
void batchnorm_backward(const T* dout, const T* gamma, const T* xc, const T* xn, const T* std,
                        T* dx, T* dgamma, T* dbeta, int64_t N, int64_t D, void* stream) {
  Scratch<T> work(5 * D, stream);
  T *s_xc_dout = work.get(), *s_xc = s_xc_dout + D, *a = s_xc + D, *c = a + D, *dmu_n = c + D;
  column_sum<T>(body::Elem<T>{dout, D}, N, D, dbeta, stream, "batchnorm_backward (dbeta)");
  column_sum<T>(body::ElemProduct<T>{xn, dout, D}, N, D, dgamma, stream,
                "batchnorm_backward (dgamma)");
  column_sum<T>(body::ElemProduct<T>{xc, dout, D}, N, D, s_xc_dout, stream,
                "batchnorm_backward");
  column_sum<T>(body::Elem<T>{xc, D}, N, D, s_xc, stream, "batchnorm_backward");
  const T* sd = dbeta;
  for_each(D, stream, [=] __device__(int64_t j) {
    body::batchnorm_backward_column(gamma, std, sd, s_xc_dout, s_xc, a, c, dmu_n, N, j);
  }, "batchnorm_backward (columns)");
  for_each(N * D, stream, [=] __device__(int64_t i) {
    dx[i] = body::batchnorm_backward_element(dout, xc, a, c, dmu_n, D, i);
  }, "batchnorm_backward (dx)");
}

#define FASTNN_INSTANTIATE(T)                                                                  \
  template void batchnorm_forward_train<T>(const T*, const T*, const T*, const T*, const T*,   \
                                           T*, T*, T*, T*, T*, T*, int64_t, int64_t, double,   \
                                           double, void*);                                     \
  template void batchnorm_forward_infer<T>(const T*, const T*, const T*, const T*, const T*,   \
                                           T*, int64_t, int64_t, double, void*);               \
  template void batchnorm_backward<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, \
                                      T*, int64_t, int64_t, void*);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // namespace fastnn::cuda
