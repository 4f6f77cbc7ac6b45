// Python side of the CUDA kernels (built only with FASTNN_CUDA). fastnn/ops/meta.py validates,
// fastnn/ops/cuda.py allocates the outputs as CuPy arrays and passes raw device pointers (ints),
// the device id and CuPy's current stream; every function here takes (f64, device, stream,
// pointers..., sizes...), with f64 choosing the double or the float kernel.
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bind/registry.h"
#include "core/shapes.h"
#include "cuda/ops.h"

namespace fastnn::bind {
namespace {

using Ptr = std::uintptr_t;

template <typename T> T* p(Ptr a) { return reinterpret_cast<T*>(a); }

// Runs fn(T{}) with T = double or float on `device`, without the GIL.
template <typename Fn>
void run(bool f64, int device, Fn&& fn) {
  py::gil_scoped_release nogil;
  cuda::set_device(device);
  if (f64) fn(double{});
  else fn(float{});
}

// The window of op over an x (N, C, H, W) shape, checked as the CPU bindings check theirs.
ConvShape window(const char* op, const std::vector<int64_t>& x, int64_t FH, int64_t FW,
                 int64_t stride, int64_t pad) {
  FASTNN_CHECK(x.size() == 4, "expected an (N, C, H, W) shape, got ", shape_str(x));
  return checked_window(op, x[0], x[1], x[2], x[3], FH, FW, stride, pad);
}

using Shape = std::vector<int64_t>;

// An optimizer's update rule and how many state arrays and hyper-parameters it takes.
struct OptimSpec {
  cuda::OptimRule rule;
  size_t states, hypers;
};

OptimSpec optim_spec(const std::string& name, size_t states, size_t hypers) {
  OptimSpec spec{cuda::OptimRule::SGD, 0, 1};
  if (name == "momentum") spec = {cuda::OptimRule::Momentum, 1, 2};
  else if (name == "nesterov") spec = {cuda::OptimRule::Nesterov, 1, 2};
  else if (name == "adagrad") spec = {cuda::OptimRule::AdaGrad, 1, 2};
  else if (name == "rmsprop") spec = {cuda::OptimRule::RMSprop, 1, 3};
  else if (name == "adam") spec = {cuda::OptimRule::Adam, 2, 4};
  else FASTNN_CHECK(name == "sgd", "unknown optimizer ", name);
  FASTNN_CHECK(states == spec.states && hypers == spec.hypers, name, ": expected ", spec.states,
               " state arrays and ", spec.hypers, " hyper-parameters");
  return spec;
}

void bind_cuda(py::module_& m) {
  m.def("cuda_unavailable_reason", [] { return cuda::unavailable_reason(); },
        "'' when a CUDA device and cuBLAS can be used, else the reason");

  m.def("cuda_relu_forward", [](bool f64, int dev, Ptr st, Ptr x, Ptr y, Ptr mask, int64_t n) {
    run(f64, dev, [&](auto t) {
      using T = decltype(t);
      cuda::relu_forward(p<const T>(x), p<T>(y), p<bool>(mask), n, p<void>(st));
    });
  });
  m.def("cuda_relu_backward", [](bool f64, int dev, Ptr st, Ptr dout, Ptr mask, Ptr dx,
                                 int64_t n) {
    run(f64, dev, [&](auto t) {
      using T = decltype(t);
      cuda::relu_backward(p<const T>(dout), p<const bool>(mask), p<T>(dx), n, p<void>(st));
    });
  });
  m.def("cuda_unary_forward", [](const std::string& op, bool f64, int dev, Ptr st, Ptr x, Ptr y,
                                 int64_t n) {
    FASTNN_CHECK(op == "sigmoid" || op == "tanh", "unknown activation ", op);
    run(f64, dev, [&](auto t) {
      using T = decltype(t);
      if (op == "sigmoid") cuda::sigmoid_forward(p<const T>(x), p<T>(y), n, p<void>(st));
      else cuda::tanh_forward(p<const T>(x), p<T>(y), n, p<void>(st));
    });
  });
  m.def("cuda_unary_backward", [](const std::string& op, bool f64, int dev, Ptr st, Ptr dout,
                                  Ptr y, Ptr dx, int64_t n) {
    FASTNN_CHECK(op == "sigmoid" || op == "tanh", "unknown activation ", op);
    run(f64, dev, [&](auto t) {
      using T = decltype(t);
      if (op == "sigmoid")
        cuda::sigmoid_backward(p<const T>(dout), p<const T>(y), p<T>(dx), n, p<void>(st));
      else cuda::tanh_backward(p<const T>(dout), p<const T>(y), p<T>(dx), n, p<void>(st));
    });
  });

  m.def("cuda_im2col", [](bool f64, int dev, Ptr st, Ptr x, Ptr col, Shape shape, int64_t FH,
                          int64_t FW, int64_t stride, int64_t pad) {
    const auto s = window("im2col", shape, FH, FW, stride, pad);
    run(f64, dev, [&](auto t) {
      using T = decltype(t);
      cuda::im2col(p<const T>(x), p<T>(col), s, p<void>(st));
    });
  });
  m.def("cuda_col2im", [](bool f64, int dev, Ptr st, Ptr col, Ptr x, Shape shape, int64_t FH,
                          int64_t FW, int64_t stride, int64_t pad) {
    const auto s = window("col2im", shape, FH, FW, stride, pad);
    run(f64, dev, [&](auto t) {
      using T = decltype(t);
      cuda::col2im(p<const T>(col), p<T>(x), s, p<void>(st));
    });
  });

  // b == 0: no bias.
  m.def("cuda_conv2d_forward", [](bool f64, int dev, Ptr st, Ptr x, Ptr W, Ptr b, Ptr out,
                                  Shape shape, int64_t FN, int64_t FH, int64_t FW,
                                  int64_t stride, int64_t pad) {
    const auto s = window("Convolution", shape, FH, FW, stride, pad);
    run(f64, dev, [&](auto t) {
      using T = decltype(t);
      cuda::conv2d_forward(p<const T>(x), p<const T>(W), p<const T>(b), p<T>(out), s, FN,
                           p<void>(st));
    });
  });
  m.def("cuda_conv2d_backward", [](bool f64, int dev, Ptr st, Ptr dout, Ptr x, Ptr W, Ptr dx,
                                   Ptr dW, Ptr db, Shape shape, int64_t FN, int64_t FH,
                                   int64_t FW, int64_t stride, int64_t pad) {
    const auto s = window("Convolution", shape, FH, FW, stride, pad);
    run(f64, dev, [&](auto t) {
      using T = decltype(t);
      cuda::conv2d_backward(p<const T>(dout), p<const T>(x), p<const T>(W), p<T>(dx), p<T>(dW),
                            p<T>(db), s, FN, p<void>(st));
    });
  });

  // groups == C (shape[1]): W (FN, 1, FH, FW). b == 0: no bias; dx == 0: no dx.
  m.def("cuda_depthwise_forward", [](bool f64, int dev, Ptr st, Ptr x, Ptr W, Ptr b, Ptr out,
                                     Shape shape, int64_t FN, int64_t FH, int64_t FW,
                                     int64_t stride, int64_t pad) {
    const auto s = window("Convolution", shape, FH, FW, stride, pad);
    FASTNN_CHECK(s.C >= 1 && FN % s.C == 0, "depthwise: FN=", FN, " is not a multiple of C=",
                 s.C);
    run(f64, dev, [&](auto t) {
      using T = decltype(t);
      cuda::depthwise_forward(p<const T>(x), p<const T>(W), p<const T>(b), p<T>(out), s, FN,
                              p<void>(st));
    });
  });
  m.def("cuda_depthwise_backward", [](bool f64, int dev, Ptr st, Ptr dout, Ptr x, Ptr W, Ptr dx,
                                      Ptr dW, Ptr db, Shape shape, int64_t FN, int64_t FH,
                                      int64_t FW, int64_t stride, int64_t pad) {
    const auto s = window("Convolution", shape, FH, FW, stride, pad);
    FASTNN_CHECK(s.C >= 1 && FN % s.C == 0, "depthwise: FN=", FN, " is not a multiple of C=",
                 s.C);
    run(f64, dev, [&](auto t) {
      using T = decltype(t);
      cuda::depthwise_backward(p<const T>(dout), p<const T>(x), p<const T>(W), p<T>(dx),
                               p<T>(dW), p<T>(db), s, FN, p<void>(st));
    });
  });

  m.def("cuda_maxpool2d_forward", [](bool f64, int dev, Ptr st, Ptr x, Ptr out, Ptr arg,
                                     Shape shape, int64_t FH, int64_t FW, int64_t stride,
                                     int64_t pad) {
    const auto s = window("Pooling", shape, FH, FW, stride, pad);
    run(f64, dev, [&](auto t) {
      using T = decltype(t);
      cuda::maxpool2d_forward(p<const T>(x), p<T>(out), p<int32_t>(arg), s, p<void>(st));
    });
  });
  m.def("cuda_maxpool2d_backward", [](bool f64, int dev, Ptr st, Ptr dout, Ptr arg, Ptr dx,
                                      Shape shape, int64_t FH, int64_t FW, int64_t stride,
                                      int64_t pad) {
    const auto s = window("Pooling.backward", shape, FH, FW, stride, pad);
    run(f64, dev, [&](auto t) {
      using T = decltype(t);
      cuda::maxpool2d_backward(p<const T>(dout), p<const int32_t>(arg), p<T>(dx), s,
                               p<void>(st));
    });
  });
  m.def("cuda_avgpool2d_forward", [](bool f64, int dev, Ptr st, Ptr x, Ptr out, Shape shape,
                                     int64_t FH, int64_t FW, int64_t stride, int64_t pad) {
    const auto s = window("AvgPooling", shape, FH, FW, stride, pad);
    run(f64, dev, [&](auto t) {
      using T = decltype(t);
      cuda::avgpool2d_forward(p<const T>(x), p<T>(out), s, p<void>(st));
    });
  });
  m.def("cuda_avgpool2d_backward", [](bool f64, int dev, Ptr st, Ptr dout, Ptr dx, Shape shape,
                                      int64_t FH, int64_t FW, int64_t stride, int64_t pad) {
    const auto s = window("AvgPooling.backward", shape, FH, FW, stride, pad);
    run(f64, dev, [&](auto t) {
      using T = decltype(t);
      cuda::avgpool2d_backward(p<const T>(dout), p<T>(dx), s, p<void>(st));
    });
  });

  m.def("cuda_affine_forward", [](bool f64, int dev, Ptr st, Ptr x, Ptr W, Ptr b, Ptr out,
                                  int64_t N, int64_t D, int64_t M) {
    run(f64, dev, [&](auto t) {
      using T = decltype(t);
      cuda::affine_forward(p<const T>(x), p<const T>(W), p<const T>(b), p<T>(out), N, D, M,
                           p<void>(st));
    });
  });
  m.def("cuda_affine_backward", [](bool f64, int dev, Ptr st, Ptr dout, Ptr x, Ptr W, Ptr dx,
                                   Ptr dW, Ptr db, int64_t N, int64_t D, int64_t M) {
    run(f64, dev, [&](auto t) {
      using T = decltype(t);
      cuda::affine_backward(p<const T>(dout), p<const T>(x), p<const T>(W), p<T>(dx), p<T>(dW),
                            p<T>(db), N, D, M, p<void>(st));
    });
  });

  m.def("cuda_softmax_forward", [](bool f64, int dev, Ptr st, Ptr x, Ptr y, int64_t rows,
                                   int64_t C) {
    run(f64, dev, [&](auto t) {
      using T = decltype(t);
      cuda::softmax_forward(p<const T>(x), p<T>(y), rows, C, p<void>(st));
    });
  });
  m.def("cuda_softmax_cross_entropy_forward",
        [](bool f64, int dev, Ptr st, Ptr x, Ptr labels, Ptr y, Ptr row_loss, int64_t N,
           int64_t C, double eps, std::optional<int64_t> ignore) {
          run(f64, dev, [&](auto t) {
            using T = decltype(t);
            cuda::softmax_cross_entropy_forward(p<const T>(x), p<const int64_t>(labels), p<T>(y),
                                                p<T>(row_loss), N, C, eps, ignore.has_value(),
                                                ignore.value_or(0), p<void>(st));
          });
        });
  m.def("cuda_softmax_cross_entropy_backward",
        [](bool f64, int dev, Ptr st, Ptr y, Ptr labels, Ptr dx, int64_t N, int64_t C,
           double scale, std::optional<int64_t> ignore) {
          run(f64, dev, [&](auto t) {
            using T = decltype(t);
            cuda::softmax_cross_entropy_backward(p<const T>(y), p<const int64_t>(labels),
                                                 p<T>(dx), N, C, scale, ignore.has_value(),
                                                 ignore.value_or(0), p<void>(st));
          });
        });
  m.def("cuda_softmax_cross_entropy_backward_dense",
        [](bool f64, int dev, Ptr st, Ptr y, Ptr target, Ptr dx, int64_t n, double scale) {
          run(f64, dev, [&](auto t) {
            using T = decltype(t);
            cuda::softmax_cross_entropy_backward_dense(p<const T>(y), p<const T>(target),
                                                       p<T>(dx), n, scale, p<void>(st));
          });
        });

  m.def("cuda_batchnorm_forward_train",
        [](bool f64, int dev, Ptr st, Ptr x, Ptr gamma, Ptr beta, Ptr rm, Ptr rv, Ptr out,
           Ptr xc, Ptr xn, Ptr std, Ptr new_rm, Ptr new_rv, int64_t N, int64_t D,
           double momentum, double eps) {
          run(f64, dev, [&](auto t) {
            using T = decltype(t);
            cuda::batchnorm_forward_train(p<const T>(x), p<const T>(gamma), p<const T>(beta),
                                          p<const T>(rm), p<const T>(rv), p<T>(out), p<T>(xc),
                                          p<T>(xn), p<T>(std), p<T>(new_rm), p<T>(new_rv), N, D,
                                          momentum, eps, p<void>(st));
          });
        });
  m.def("cuda_batchnorm_forward_infer",
        [](bool f64, int dev, Ptr st, Ptr x, Ptr gamma, Ptr beta, Ptr rm, Ptr rv, Ptr out,
           int64_t N, int64_t D, double eps) {
          run(f64, dev, [&](auto t) {
            using T = decltype(t);
            cuda::batchnorm_forward_infer(p<const T>(x), p<const T>(gamma), p<const T>(beta),
                                          p<const T>(rm), p<const T>(rv), p<T>(out), N, D, eps,
                                          p<void>(st));
          });
        });
  m.def("cuda_batchnorm_backward",
        [](bool f64, int dev, Ptr st, Ptr dout, Ptr gamma, Ptr xc, Ptr xn, Ptr std, Ptr dx,
           Ptr dgamma, Ptr dbeta, int64_t N, int64_t D) {
          run(f64, dev, [&](auto t) {
            using T = decltype(t);
            cuda::batchnorm_backward(p<const T>(dout), p<const T>(gamma), p<const T>(xc),
                                     p<const T>(xn), p<const T>(std), p<T>(dx), p<T>(dgamma),
                                     p<T>(dbeta), N, D, p<void>(st));
          });
        });

  // name in sgd, momentum, nesterov, adagrad, rmsprop, adam; state: the optimizer's arrays
  // (v, h, or m and v), hyper: its scalars in the order of csrc/cpu/optim.h.
  m.def("cuda_optim_update", [](const std::string& name, bool f64, int dev, Ptr st, Ptr param,
                                std::vector<Ptr> state, Ptr grad, int64_t n,
                                std::vector<double> hyper) {
    const OptimSpec spec = optim_spec(name, state.size(), hyper.size());
    run(f64, dev, [&](auto t) {
      using T = decltype(t);
      auto h = [&](size_t k) { return static_cast<T>(hyper[k]); };
      T* pp = p<T>(param);
      const T* g = p<const T>(grad);
      void* s = p<void>(st);
      switch (spec.rule) {
        case cuda::OptimRule::SGD: cuda::sgd_update(pp, g, n, h(0), s); break;
        case cuda::OptimRule::Momentum:
          cuda::momentum_update(pp, p<T>(state[0]), g, n, h(0), h(1), s);
          break;
        case cuda::OptimRule::Nesterov:
          cuda::nesterov_update(pp, p<T>(state[0]), g, n, h(0), h(1), s);
          break;
        case cuda::OptimRule::AdaGrad:
          cuda::adagrad_update(pp, p<T>(state[0]), g, n, h(0), h(1), s);
          break;
        case cuda::OptimRule::RMSprop:
          cuda::rmsprop_update(pp, p<T>(state[0]), g, n, h(0), h(1), h(2), s);
          break;
        case cuda::OptimRule::Adam:
          cuda::adam_update(pp, p<T>(state[0]), p<T>(state[1]), g, n, h(0), h(1), h(2), h(3), s);
          break;
      }
    });
  });

  // The same step for many parameters of one device and dtype: params[k] of sizes[k]
  // elements, its state arrays states[k] and gradient grads[k].
  m.def("cuda_optim_update_list", [](const std::string& name, bool f64, int dev, Ptr st,
                                     std::vector<Ptr> params, std::vector<std::vector<Ptr>> states,
                                     std::vector<Ptr> grads, std::vector<int64_t> sizes,
                                     std::vector<double> hyper) {
    const size_t K = params.size();
    FASTNN_CHECK(states.size() == K && grads.size() == K && sizes.size() == K, name,
                 ": got ", K, " parameters, ", states.size(), " state lists, ", grads.size(),
                 " gradients and ", sizes.size(), " sizes");
    if (K == 0) return;
    const OptimSpec spec = optim_spec(name, states[0].size(), hyper.size());
    for (size_t k = 0; k < K; ++k)
      FASTNN_CHECK(states[k].size() == spec.states && sizes[k] >= 0, name, ": parameter ", k,
                   " has ", states[k].size(), " state arrays and ", sizes[k], " elements");
    double h[4] = {0, 0, 0, 0};
    std::copy(hyper.begin(), hyper.end(), h);
    run(f64, dev, [&](auto t) {
      using T = decltype(t);
      std::vector<T*> P(K), S0(K, nullptr), S1(K, nullptr);
      std::vector<const T*> G(K);
      for (size_t k = 0; k < K; ++k) {
        P[k] = p<T>(params[k]);
        G[k] = p<const T>(grads[k]);
        if (spec.states > 0) S0[k] = p<T>(states[k][0]);
        if (spec.states > 1) S1[k] = p<T>(states[k][1]);
      }
      cuda::optim_update_list(spec.rule, P, S0, S1, G, sizes, h, p<void>(st));
    });
  });
}

Registrar reg("cuda", &bind_cuda);

// ---------------------------------------------------------------- recurrent (rnn, lstm, gru)
// Time-major sequences and the outputs of csrc/cpu/rnn.h, lstm.h, gru.h; pointer 0 stands for
// an absent optional array (h0, c0, b, bx, bh, Whr, hfull, dhs, dhn, dcn, dWhr, dbh), so
// fastnn/ops/cuda.py passes a real allocation for a present Whr without elements (CuPy gives
// empty arrays pointer 0). torch picks Layout::Torch. fastnn/ops/meta.py checks the shapes, with
// the CPU binding's messages.

Layout layout(bool torch) { return torch ? Layout::Torch : Layout::Book; }

void bind_cuda_recurrent(py::module_& m) {
  m.def("cuda_rnn_forward", [](bool f64, int dev, Ptr st, Ptr x, Ptr h0, Ptr Wx, Ptr Wh, Ptr b,
                               Ptr hs, int64_t T, int64_t N, int64_t D, int64_t H, bool relu,
                               bool torch) {
    run(f64, dev, [&](auto t) {
      using R = decltype(t);
      cuda::rnn_forward(layout(torch), relu, p<const R>(x), p<const R>(h0), p<const R>(Wx),
                        p<const R>(Wh), p<const R>(b), T, N, D, H, p<R>(hs), p<void>(st));
    });
  });
  m.def("cuda_rnn_backward", [](bool f64, int dev, Ptr st, Ptr x, Ptr h0, Ptr Wx, Ptr Wh, Ptr hs,
                                Ptr dhs, Ptr dhn, Ptr dx, Ptr dh0, Ptr dWx, Ptr dWh, Ptr db,
                                int64_t T, int64_t N, int64_t D, int64_t H, bool relu,
                                bool torch) {
    run(f64, dev, [&](auto t) {
      using R = decltype(t);
      cuda::rnn_backward(layout(torch), relu, p<const R>(x), p<const R>(h0), p<const R>(Wx),
                         p<const R>(Wh), p<const R>(hs), p<const R>(dhs), p<const R>(dhn), T, N,
                         D, H, p<R>(dx), p<R>(dh0), p<R>(dWx), p<R>(dWh), p<R>(db), p<void>(st));
    });
  });

  m.def("cuda_lstm_forward", [](bool f64, int dev, Ptr st, Ptr x, Ptr h0, Ptr c0, Ptr Wx, Ptr Wh,
                                Ptr b, Ptr Whr, Ptr hs, Ptr cs, Ptr gates, Ptr hfull, int64_t T,
                                int64_t N, int64_t D, int64_t H, int64_t P, bool torch) {
    FASTNN_CHECK(!Whr || torch, "LSTM: a projection (Whr) needs the torch layout");
    run(f64, dev, [&](auto t) {
      using R = decltype(t);
      cuda::lstm_forward(layout(torch), p<const R>(x), p<const R>(h0), p<const R>(c0),
                         p<const R>(Wx), p<const R>(Wh), p<const R>(b), p<const R>(Whr), T, N, D,
                         H, P, p<R>(hs), p<R>(cs), p<R>(gates), p<R>(hfull), p<void>(st));
    });
  });
  m.def("cuda_lstm_backward", [](bool f64, int dev, Ptr st, Ptr x, Ptr h0, Ptr c0, Ptr Wx,
                                 Ptr Wh, Ptr Whr, Ptr hs, Ptr cs, Ptr gates, Ptr hfull, Ptr dhs,
                                 Ptr dhn, Ptr dcn, Ptr dx, Ptr dh0, Ptr dc0, Ptr dWx, Ptr dWh,
                                 Ptr db, Ptr dWhr, int64_t T, int64_t N, int64_t D, int64_t H,
                                 int64_t P, bool torch) {
    FASTNN_CHECK(!Whr || torch, "LSTM: a projection (Whr) needs the torch layout");
    run(f64, dev, [&](auto t) {
      using R = decltype(t);
      cuda::lstm_backward(layout(torch), p<const R>(x), p<const R>(h0), p<const R>(c0),
                          p<const R>(Wx), p<const R>(Wh), p<const R>(Whr), p<const R>(hs),
                          p<const R>(cs), p<const R>(gates), p<const R>(hfull), p<const R>(dhs),
                          p<const R>(dhn), p<const R>(dcn), T, N, D, H, P, p<R>(dx), p<R>(dh0),
                          p<R>(dc0), p<R>(dWx), p<R>(dWh), p<R>(db), p<R>(dWhr), p<void>(st));
    });
  });

  m.def("cuda_gru_forward", [](bool f64, int dev, Ptr st, Ptr x, Ptr h0, Ptr Wx, Ptr Wh, Ptr bx,
                               Ptr bh, Ptr hs, Ptr gates, Ptr aux, int64_t T, int64_t N,
                               int64_t D, int64_t H, bool torch) {
    FASTNN_CHECK(torch || !bh, "GRU: the book's GRU has a single bias");
    run(f64, dev, [&](auto t) {
      using R = decltype(t);
      cuda::gru_forward(layout(torch), p<const R>(x), p<const R>(h0), p<const R>(Wx),
                        p<const R>(Wh), p<const R>(bx), p<const R>(bh), T, N, D, H, p<R>(hs),
                        p<R>(gates), p<R>(aux), p<void>(st));
    });
  });
  m.def("cuda_gru_backward", [](bool f64, int dev, Ptr st, Ptr x, Ptr h0, Ptr Wx, Ptr Wh, Ptr hs,
                                Ptr gates, Ptr aux, Ptr dhs, Ptr dhn, Ptr dx, Ptr dh0, Ptr dWx,
                                Ptr dWh, Ptr dbx, Ptr dbh, int64_t T, int64_t N, int64_t D,
                                int64_t H, bool torch) {
    FASTNN_CHECK(torch == bool(dbh), "GRU: dbh must be given exactly in the torch layout");
    run(f64, dev, [&](auto t) {
      using R = decltype(t);
      cuda::gru_backward(layout(torch), p<const R>(x), p<const R>(h0), p<const R>(Wx),
                         p<const R>(Wh), p<const R>(hs), p<const R>(gates), p<const R>(aux),
                         p<const R>(dhs), p<const R>(dhn), T, N, D, H, p<R>(dx), p<R>(dh0),
                         p<R>(dWx), p<R>(dWh), p<R>(dbx), p<R>(dbh), p<void>(st));
    });
  });
}

Registrar reg_recurrent("cuda_recurrent", &bind_cuda_recurrent);

}  // namespace
}  // namespace fastnn::bind
