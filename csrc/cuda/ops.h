// The CUDA kernels, same op names as csrc/cpu: raw device pointers and sizes, enqueued on
// `stream` (a cudaStream_t; CuPy's current stream) of the current device. Plain C++ so that
// the binding compiles without CUDA headers. Errors throw std::runtime_error with CUDA's text.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/body/common.h"
#include "cuda/body/recurrent.h"

namespace fastnn::cuda {

// "" when a CUDA device can be used, else why not (no driver, no device, no cuBLAS...).
std::string unavailable_reason();
// Makes `device` current for the calling thread (CuPy arrays carry their device).
void set_device(int device);

template <typename T> void relu_forward(const T* x, T* y, bool* mask, int64_t n, void* stream);
template <typename T>
void relu_backward(const T* dout, const bool* mask, T* dx, int64_t n, void* stream);
template <typename T> void sigmoid_forward(const T* x, T* y, int64_t n, void* stream);
template <typename T>
void sigmoid_backward(const T* dout, const T* y, T* dx, int64_t n, void* stream);
template <typename T> void tanh_forward(const T* x, T* y, int64_t n, void* stream);
template <typename T> void tanh_backward(const T* dout, const T* y, T* dx, int64_t n, void* stream);

template <typename T> void im2col(const T* x, T* col, const ConvShape& s, void* stream);
template <typename T> void col2im(const T* col, T* x, const ConvShape& s, void* stream);

// b may be null. Scratch (the col matrix) comes from the stream-ordered allocator.
template <typename T>
void conv2d_forward(const T* x, const T* W, const T* b, T* out, const ConvShape& s, int64_t FN,
                    void* stream);
template <typename T>
void conv2d_backward(const T* dout, const T* x, const T* W, T* dx, T* dW, T* db,
                     const ConvShape& s, int64_t FN, void* stream);

// Depthwise convolution (groups == s.C): W (FN, 1, FH, FW) with FN a multiple of s.C, filter f
// reading channel f / (FN / s.C). b may be null; dx may be null (not computed). No scratch.
template <typename T>
void depthwise_forward(const T* x, const T* W, const T* b, T* out, const ConvShape& s, int64_t FN,
                       void* stream);
template <typename T>
void depthwise_backward(const T* dout, const T* x, const T* W, T* dx, T* dW, T* db,
                        const ConvShape& s, int64_t FN, void* stream);

template <typename T>
void maxpool2d_forward(const T* x, T* out, int32_t* arg, const ConvShape& s, void* stream);
template <typename T>
void maxpool2d_backward(const T* dout, const int32_t* arg, T* dx, const ConvShape& s,
                        void* stream);
template <typename T> void avgpool2d_forward(const T* x, T* out, const ConvShape& s, void* stream);
template <typename T>
void avgpool2d_backward(const T* dout, T* dx, const ConvShape& s, void* stream);

template <typename T>
void affine_forward(const T* x, const T* W, const T* b, T* out, int64_t N, int64_t D, int64_t M,
                    void* stream);
template <typename T>
void affine_backward(const T* dout, const T* x, const T* W, T* dx, T* dW, T* db, int64_t N,
                     int64_t D, int64_t M, void* stream);

template <typename T> void softmax_forward(const T* x, T* y, int64_t rows, int64_t C, void* stream);
// y = softmax(x) and row_loss[i] = -log(y[i, t_i] + eps) (0 when ignored, NaN for a label
// outside [0, C)); the caller sums row_loss on the device.
template <typename T>
void softmax_cross_entropy_forward(const T* x, const int64_t* t, T* y, T* row_loss, int64_t N,
                                   int64_t C, double eps, bool has_ignore, int64_t ignore_label,
                                   void* stream);
template <typename T>
void softmax_cross_entropy_backward(const T* y, const int64_t* t, T* dx, int64_t N, int64_t C,
                                    double scale, bool has_ignore, int64_t ignore_label,
                                    void* stream);
template <typename T>
void softmax_cross_entropy_backward_dense(const T* y, const T* t, T* dx, int64_t n, double scale,
                                          void* stream);

template <typename T>
void batchnorm_forward_train(const T* x, const T* gamma, const T* beta, const T* running_mean,
                             const T* running_var, T* out, T* xc, T* xn, T* std,
                             T* new_running_mean, T* new_running_var, int64_t N, int64_t D,
                             double momentum, double eps, void* stream);
template <typename T>
void batchnorm_forward_infer(const T* x, const T* gamma, const T* beta, const T* running_mean,
                             const T* running_var, T* out, int64_t N, int64_t D, double eps,
                             void* stream);
template <typename T>
void batchnorm_backward(const T* dout, const T* gamma, const T* xc, const T* xn, const T* std,
                        T* dx, T* dgamma, T* dbeta, int64_t N, int64_t D, void* stream);

template <typename T> void sgd_update(T* p, const T* g, int64_t n, T lr, void* stream);
template <typename T>
void momentum_update(T* p, T* v, const T* g, int64_t n, T lr, T momentum, void* stream);
template <typename T>
void nesterov_update(T* p, T* v, const T* g, int64_t n, T lr, T momentum, void* stream);
template <typename T>
void adagrad_update(T* p, T* h, const T* g, int64_t n, T lr, T eps, void* stream);
template <typename T>
void rmsprop_update(T* p, T* h, const T* g, int64_t n, T lr, T decay_rate, T eps, void* stream);
template <typename T>
void adam_update(T* p, T* m, T* v, const T* g, int64_t n, T lr_t, T beta1, T beta2, T eps,
                 void* stream);

// ---- Recurrent sequences: the semantics, layouts, optional (null) pointers and output arrays
// of csrc/cpu/rnn.h, lstm.h and gru.h, on device pointers (x (T*N, D) time-major, ...). Scratch
// comes from the stream-ordered allocator.
template <typename Real>
void rnn_forward(Layout L, bool relu, const Real* x, const Real* h0, const Real* Wx,
                 const Real* Wh, const Real* b, int64_t T, int64_t N, int64_t D, int64_t H,
                 Real* hs, void* stream);
template <typename Real>
void rnn_backward(Layout L, bool relu, const Real* x, const Real* h0, const Real* Wx,
                  const Real* Wh, const Real* hs, const Real* dhs, const Real* dhn, int64_t T,
                  int64_t N, int64_t D, int64_t H, Real* dx, Real* dh0, Real* dWx, Real* dWh,
                  Real* db, void* stream);
template <typename Real>
void lstm_forward(Layout L, const Real* x, const Real* h0, const Real* c0, const Real* Wx,
                  const Real* Wh, const Real* b, const Real* Whr, int64_t T, int64_t N, int64_t D,
                  int64_t H, int64_t P, Real* hs, Real* cs, Real* gates, Real* hfull,
                  void* stream);
template <typename Real>
void lstm_backward(Layout L, const Real* x, const Real* h0, const Real* c0, const Real* Wx,
                   const Real* Wh, const Real* Whr, const Real* hs, const Real* cs,
                   const Real* gates, const Real* hfull, const Real* dhs, const Real* dhn,
                   const Real* dcn, int64_t T, int64_t N, int64_t D, int64_t H, int64_t P,
                   Real* dx, Real* dh0, Real* dc0, Real* dWx, Real* dWh, Real* db, Real* dWhr,
                   void* stream);
template <typename Real>
void gru_forward(Layout L, const Real* x, const Real* h0, const Real* Wx, const Real* Wh,
                 const Real* bx, const Real* bh, int64_t T, int64_t N, int64_t D, int64_t H,
                 Real* hs, Real* gates, Real* aux, void* stream);
template <typename Real>
void gru_backward(Layout L, const Real* x, const Real* h0, const Real* Wx, const Real* Wh,
                  const Real* hs, const Real* gates, const Real* aux, const Real* dhs,
                  const Real* dhn, int64_t T, int64_t N, int64_t D, int64_t H, Real* dx,
                  Real* dh0, Real* dWx, Real* dWh, Real* dbx, Real* dbh, void* stream);

// One optimizer step for many parameters in one launch (up to 32 per launch): parameter k has
// n[k] elements p[k], its state s0[k], s1[k] (null where the rule keeps less) and gradient
// g[k]; hyper holds the rule's hyper-parameters in the order of the single updates above.
enum class OptimRule { SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam };
template <typename T>
void optim_update_list(OptimRule rule, const std::vector<T*>& p, const std::vector<T*>& s0,
                       const std::vector<T*>& s1, const std::vector<const T*>& g,
                       const std::vector<int64_t>& n, const double (&hyper)[4], void* stream);

}  // namespace fastnn::cuda
