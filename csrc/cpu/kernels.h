// The list of CPU kernels reached through the kernel table (cpu/dispatch.h): one entry per
// function template of csrc/cpu/<family>.h, each instantiated for float and double. A new kernel
// is declared in its family's header, defined in its .cpp and named here.
#pragma once
#include <type_traits>

#define FASTNN_CPU_KERNELS(X)                                                                   \
  X(relu_forward) X(relu_backward) X(sigmoid_forward) X(sigmoid_backward) X(tanh_forward)       \
  X(tanh_backward) X(relu6_forward) X(relu6_backward) X(silu_forward) X(silu_backward)         \
  X(affine_forward) X(affine_backward)                                                          \
  X(batchnorm_forward_train) X(batchnorm_forward_infer) X(batchnorm_backward)                   \
  X(channel_batchnorm_forward) X(channel_batchnorm_backward) X(channel_affine)                  \
  X(group_norm_forward) X(group_norm_backward)                                                  \
  X(im2col) X(col2im) X(conv2d_forward) X(conv2d_backward)                                      \
  X(conv2d_relu_maxpool_forward) X(conv2d_relu_maxpool_backward)                                \
  X(maxpool2d_forward) X(maxpool2d_backward) X(avgpool2d_forward) X(avgpool2d_backward)         \
  X(softmax_forward) X(softmax_cross_entropy_forward) X(softmax_cross_entropy_backward)         \
  X(softmax_cross_entropy_backward_dense)                                                       \
  X(sgd_update) X(momentum_update) X(nesterov_update) X(adagrad_update) X(rmsprop_update)       \
  X(adam_update)                                                                                \
  X(rnn_forward) X(rnn_backward) X(lstm_forward) X(lstm_backward) X(gru_forward) X(gru_backward) \
  X(embedding_forward) X(embedding_backward) X(embedding_dot_forward)                           \
  X(embedding_dot_backward) X(attention_forward) X(attention_backward)

namespace fastnn::cpu {

// A table entry: the kernel's address, cast back to its own type by cpu/dispatch.h.
using AnyKernel = void (*)();

enum class Kernel : int {
#define FASTNN_KERNEL_ID(name) name,
  FASTNN_CPU_KERNELS(FASTNN_KERNEL_ID)
#undef FASTNN_KERNEL_ID
  count
};

// Entries per table: each kernel for float, then for double.
constexpr int kKernelSlots = 2 * static_cast<int>(Kernel::count);

template <typename T>
constexpr int kernel_slot(Kernel k) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  return 2 * static_cast<int>(k) + (std::is_same_v<T, double> ? 1 : 0);
}

}  // namespace fastnn::cpu
