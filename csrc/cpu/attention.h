#pragma once
#include <cstdint>

#include "core/isa.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

// Attention of a decoder over an encoder (the book's TimeAttention: AttentionWeight then
// WeightSum at every decoder step), all Td steps at once. For each n of the batch, with
// hs_enc[n] (Te, H) and hs_dec[n] (Td, H):
//   a[n]   (Td, Te) = softmax over Te of hs_dec[n] @ hs_enc[n]^T
//   out[n] (Td, H)  = a[n] @ hs_enc[n]
template <typename T>
void attention_forward(const T* hs_enc, const T* hs_dec, T* out, T* a, int64_t N, int64_t Te,
                       int64_t Td, int64_t H);

// Gradients for dout (N, Td, H), the a of the forward:
//   da = dout[n] @ hs_enc[n]^T;  ds = a * (da - rowsum(a * da))       (softmax backward)
//   dhs_enc[n] = a^T @ dout[n] + ds^T @ hs_dec[n]   (summed over decoder steps, as the book's
//                                                      TimeAttention accumulates it)
//   dhs_dec[n] = ds @ hs_enc[n]
template <typename T>
void attention_backward(const T* hs_enc, const T* hs_dec, const T* a, const T* dout,
                        T* dhs_enc, T* dhs_dec, int64_t N, int64_t Te, int64_t Td, int64_t H);

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
