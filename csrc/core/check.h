// Argument checks that become Python exceptions: std::invalid_argument -> ValueError,
// std::out_of_range -> IndexError (pybind11 translates both).
#pragma once
#include <cstdint>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace fastnn {

template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

inline std::string shape_str(const std::vector<int64_t>& shape) {
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  if (shape.size() == 1) os << ",";
  os << ")";
  return os.str();
}

// Sizes handed to BLAS are 32-bit ints (scipy-openblas32).
inline int blas_int(int64_t n, const char* what) {
  if (n < 0 || n > std::numeric_limits<int>::max())
    throw std::invalid_argument(str_cat(what, " = ", n, " is too large for BLAS (max 2^31-1)"));
  return static_cast<int>(n);
}

// a * b and a + b of non-negative sizes, or ValueError naming `what` when the result does not
// fit in int64 (signed overflow would be undefined behaviour and wrap to a wrong, small size).
inline int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r))
    throw std::invalid_argument(str_cat(what, " = ", a, " * ", b, " does not fit in 64 bits"));
  return r;
}

inline int64_t checked_add(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r))
    throw std::invalid_argument(str_cat(what, " = ", a, " + ", b, " does not fit in 64 bits"));
  return r;
}

}  // namespace fastnn

#define FASTNN_CHECK(cond, ...)                                        \
  do {                                                                 \
    if (!(cond)) throw std::invalid_argument(::fastnn::str_cat(__VA_ARGS__)); \
  } while (0)

#define FASTNN_CHECK_INDEX(cond, ...)                                  \
  do {                                                                 \
    if (!(cond)) throw std::out_of_range(::fastnn::str_cat(__VA_ARGS__)); \
  } while (0)
