// A cache of large output buffers. Every kernel returns fresh arrays; when the previous step's
// arrays are freed, glibc hands their pages back to the system and the next step faults them in
// again (hundreds of page faults per step; docs/performance.md has the measurement). Buffers of at
// least kMinBytes are therefore kept here when freed and reused by the next request that fits.
// A block released while idle_limit() bytes would be exceeded is freed; release_idle() frees
// every idle block.
#pragma once
#include <cstddef>
#include <cstdint>
#include <new>

namespace fastnn::buffers {

constexpr std::size_t kMinBytes = std::size_t(64) << 10;

// Memory for at least `bytes` bytes, 64-byte aligned, or nullptr when the system has none;
// give it back with release().
void* acquire(std::size_t bytes);
void release(void* p);

std::size_t idle_bytes();
std::size_t idle_limit();
void set_idle_limit(std::size_t bytes);
void release_idle();

// Uninitialised scratch memory for n elements of T from the cache, given back at scope exit:
// the workspaces of a kernel that is called every step.
template <typename T>
class Scratch {
 public:
  explicit Scratch(std::size_t n = 0) {
    if (n == 0) return;
    if (n > SIZE_MAX / sizeof(T) || !(p_ = static_cast<T*>(acquire(n * sizeof(T)))))
      throw std::bad_alloc();
  }
  ~Scratch() { release(p_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  T* data() const { return p_; }

 private:
  T* p_ = nullptr;
};

}  // namespace fastnn::buffers
