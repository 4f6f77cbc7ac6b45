// In-place optimizer updates, one thread per element (bodies of body/optim.h): one parameter
// per launch, or a list of parameters in one launch.
#include "cuda/body/optim.h"
#include "cuda/launch.cuh"
#include "cuda/ops.h"

namespace fastnn::cuda {

template <typename T>
void sgd_update(T* p, const T* g, int64_t n, T lr, void* stream) {
  for_each(n, stream, [=] __device__(int64_t i) { body::sgd_element(p, g, lr, i); }, "sgd");
}

template <typename T>
void momentum_update(T* p, T* v, const T* g, int64_t n, T lr, T momentum, void* stream) {
  for_each(n, stream, [=] __device__(int64_t i) {
    body::momentum_element(p, v, g, lr, momentum, i);
  }, "momentum");
}

template <typename T>
void nesterov_update(T* p, T* v, const T* g, int64_t n, T lr, T momentum, void* stream) {
  for_each(n, stream, [=] __device__(int64_t i) {
    body::nesterov_element(p, v, g, lr, momentum, i);
  }, "nesterov");
}

template <typename T>
void adagrad_update(T* p, T* h, const T* g, int64_t n, T lr, T eps, void* stream) {
  for_each(n, stream, [=] __device__(int64_t i) { body::adagrad_element(p, h, g, lr, eps, i); },
           "adagrad");
}

template <typename T>
void rmsprop_update(T* p, T* h, const T* g, int64_t n, T lr, T decay_rate, T eps, void* stream) {
  for_each(n, stream, [=] __device__(int64_t i) {
    body::rmsprop_element(p, h, g, lr, decay_rate, eps, i);
  }, "rmsprop");
}

template <typename T>
void adam_update(T* p, T* m, T* v, const T* g, int64_t n, T lr_t, T beta1, T beta2, T eps,
                 void* stream) {
  for_each(n, stream, [=] __device__(int64_t i) {
    body::adam_element(p, m, v, g, lr_t, beta1, beta2, eps, i);
  }, "adam");
}

namespace {

constexpr int kListMax = 32;  // parameters per launch, passed by value (about 1.3 KB)

template <typename T>
struct ParamList {
  T* p[kListMax];
  T* s0[kListMax];
  T* s1[kListMax];
  const T* g[kListMax];
  int64_t end[kListMax];  // running element counts: parameter k holds [end[k-1], end[k])
  int count;
};

// Elements are numbered across the parameters; each finds its parameter by the running ends.
template <typename T>
__global__ void update_list_kernel(ParamList<T> L, OptimRule rule, T h0, T h1, T h2, T h3) {
  const int64_t total = L.end[L.count - 1];
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += step) {
    int k = 0;
    while (i >= L.end[k]) ++k;
    const int64_t j = i - (k ? L.end[k - 1] : 0);
    switch (rule) {
      case OptimRule::SGD: body::sgd_element(L.p[k], L.g[k], h0, j); break;
      case OptimRule::Momentum: body::momentum_element(L.p[k], L.s0[k], L.g[k], h0, h1, j); break;
      case OptimRule::Nesterov: body::nesterov_element(L.p[k], L.s0[k], L.g[k], h0, h1, j); break;
      case OptimRule::AdaGrad: body::adagrad_element(L.p[k], L.s0[k], L.g[k], h0, h1, j); break;
      case OptimRule::RMSprop:
        body::rmsprop_element(L.p[k], L.s0[k], L.g[k], h0, h1, h2, j);
        break;
      case OptimRule::Adam:
        body::adam_element(L.p[k], L.s0[k], L.s1[k], L.g[k], h0, h1, h2, h3, j);
        break;
    }
  }
}

}  // namespace

template <typename T>
void optim_update_list(OptimRule rule, const std::vector<T*>& p, const std::vector<T*>& s0,
                       const std::vector<T*>& s1, const std::vector<const T*>& g,
                       const std::vector<int64_t>& n, const double (&hyper)[4], void* stream) {
  for (size_t first = 0; first < p.size(); first += kListMax) {
    ParamList<T> L{};
    int64_t total = 0;
    for (size_t k = first; k < p.size() && k < first + kListMax; ++k) {
      const int c = static_cast<int>(k - first);
      L.p[c] = p[k];
      L.s0[c] = s0[k];
      L.s1[c] = s1[k];
      L.g[c] = g[k];
      total += n[k];
      L.end[c] = total;
      L.count = c + 1;
    }
    if (total == 0) continue;
    constexpr int kThreads = 256;
    const int64_t blocks = (total + kThreads - 1) / kThreads;
    const unsigned grid = static_cast<unsigned>(blocks < 65535 * 16 ? blocks : 65535 * 16);
    update_list_kernel<T><<<grid, kThreads, 0, as_stream(stream)>>>(
        L, rule, T(hyper[0]), T(hyper[1]), T(hyper[2]), T(hyper[3]));
    check(cudaGetLastError(), "optimizer update (parameter list)");
  }
}

#define FASTNN_INSTANTIATE(T)                                                                 \
  template void sgd_update<T>(T*, const T*, int64_t, T, void*);                               \
  template void momentum_update<T>(T*, T*, const T*, int64_t, T, T, void*);                   \
  template void nesterov_update<T>(T*, T*, const T*, int64_t, T, T, void*);                   \
  template void adagrad_update<T>(T*, T*, const T*, int64_t, T, T, void*);                    \
  template void rmsprop_update<T>(T*, T*, const T*, int64_t, T, T, T, void*);                 \
  template void adam_update<T>(T*, T*, T*, const T*, int64_t, T, T, T, T, void*);          \
  template void optim_update_list<T>(OptimRule, const std::vector<T*>&,                       \
                                     const std::vector<T*>&, const std::vector<T*>&,          \
                                     const std::vector<const T*>&,                            \
                                     const std::vector<int64_t>&, const double (&)[4], void*);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // namespace fastnn::cuda
