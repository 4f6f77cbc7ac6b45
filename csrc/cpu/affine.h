#pragma once
#include <cstdint>

#include "core/isa.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

// Affine on a batch flattened to x (N, D), W (D, M), b (M,): out (N, M) = x @ W + b.
// W_trans: W is stored transposed, as a C-contiguous (M, D) array (the book's tied weights
// embed_W.T, read in place instead of copied).
template <typename T>
void affine_forward(const T* x, const T* W, const T* b, T* out, int64_t N, int64_t D, int64_t M,
                    bool W_trans);

// Backward from dout (N, M): dx (N, D) = dout @ W^T, dW (D, M) = x^T @ dout, db (M,) = sum_i dout.
// dx may be null: only dW and db are computed. With W_trans, W and dW are stored transposed
// (M, D).
template <typename T>
void affine_backward(const T* dout, const T* x, const T* W, T* dx, T* dW, T* db, int64_t N,
                     int64_t D, int64_t M, bool W_trans);

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
