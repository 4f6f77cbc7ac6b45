#pragma once
#include <cstdint>

#include "core/isa.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

// Embedding (the book's Embedding / TimeEmbedding): W (V, D) holds one row per word id; idx
// holds n ids already checked to lie in [0, V).

// out (n, D) = W[idx].
template <typename T>
void embedding_forward(const T* W, const int64_t* idx, T* out, int64_t n, int64_t D);

// dW (V, D) = 0, then dW[idx[i]] += dout[i] for i = 0, 1, ..., n-1: np.add.at(dW, idx, dout)
// on a zeroed dW, with each row's contributions added in the same order, so the result is
// NumPy's to the bit and does not depend on the thread count.
template <typename T>
void embedding_backward(const int64_t* idx, const T* dout, T* dW, int64_t n, int64_t V,
                        int64_t D);

// EmbeddingDot (negative sampling): out[i] = sum_d W[idx[i], d] * h[i, d] for h (N, D).
template <typename T>
void embedding_dot_forward(const T* W, const int64_t* idx, const T* h, T* out, int64_t N,
                           int64_t D);

// Its backward for dout (N,): dW (V, D) = 0, then dW[idx[i]] += dout[i] * h[i] in order of i
// (as embedding_backward; the compiler may fuse the multiply-add, so equal to NumPy's within
// rounding), and dh[i] = dout[i] * W[idx[i]]. W is read again instead of
// keeping W[idx] from the forward; dh may be null (not wanted).
template <typename T>
void embedding_dot_backward(const T* W, const int64_t* idx, const T* h, const T* dout, T* dW,
                            T* dh, int64_t N, int64_t V, int64_t D);

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
