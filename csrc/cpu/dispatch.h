// How the bindings call a CPU kernel: cpu::relu_forward<T>(args...) looks the kernel up in the
// table of the instruction-set level chosen at import (core/cpu_level.h) and calls it with the
// signature declared in its family's header. Include this instead of the family headers.
#pragma once
#include "core/cpu_level.h"
#include "cpu/activation.h"
#include "cpu/affine.h"
#include "cpu/attention.h"
#include "cpu/batchnorm.h"
#include "cpu/conv.h"
#include "cpu/embedding.h"
#include "cpu/gru.h"
#include "cpu/im2col.h"
#include "cpu/kernels.h"
#include "cpu/lstm.h"
#include "cpu/optim.h"
#include "cpu/pool.h"
#include "cpu/rnn.h"
#include "cpu/softmax.h"

#ifdef FASTNN_ISA
#error "cpu/dispatch.h is for the bindings; kernels call each other directly"
#endif

namespace fastnn::cpu {

#define FASTNN_KERNEL_DISPATCH(name)                                                    \
  template <typename T, typename... Args>                                               \
  inline auto name(Args... args) {                                                      \
    using Fn = decltype(&signature::name<T>);                                           \
    return reinterpret_cast<Fn>(active_kernels()[kernel_slot<T>(Kernel::name)])(args...); \
  }
FASTNN_CPU_KERNELS(FASTNN_KERNEL_DISPATCH)
#undef FASTNN_KERNEL_DISPATCH

}  // namespace fastnn::cpu
