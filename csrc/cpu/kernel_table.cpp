// The kernel table of one instruction-set level: compiled with the kernels of that level
// (FASTNN_ISA, see core/isa.h), it holds their addresses in the order of cpu/kernels.h.
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

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

// Addresses only: the table is constant-initialised, so loading the module runs no code of a
// level the CPU may lack.
const AnyKernel* kernel_table() {
#define FASTNN_KERNEL_ENTRY(name) \
  reinterpret_cast<AnyKernel>(&name<float>), reinterpret_cast<AnyKernel>(&name<double>),
  static const AnyKernel table[kKernelSlots] = {FASTNN_CPU_KERNELS(FASTNN_KERNEL_ENTRY)};
#undef FASTNN_KERNEL_ENTRY
  return table;
}

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
