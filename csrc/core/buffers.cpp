#include "core/buffers.h"

#include <pthread.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>

namespace fastnn::buffers {
namespace {

// Each block starts with a header holding its capacity, so release() needs only the pointer.
constexpr std::size_t kHeader = 64;
constexpr std::size_t kPage = 4096;

struct Cache {
  std::mutex mu;
  std::multimap<std::size_t, void*> idle;  // capacity -> block (header included)
  std::size_t idle_total = 0;
  std::size_t limit = std::size_t(256) << 20;

  // Frees idle blocks, largest first, until at most `keep` bytes stay idle.
  void trim(std::size_t keep) {
    while (idle_total > keep && !idle.empty()) {
      auto last = std::prev(idle.end());
      idle_total -= last->first;
      std::free(last->second);
      idle.erase(last);
    }
  }
};

// Never destroyed: arrays freed during interpreter shutdown may still release into it. The lock
// is held across fork(), so a child never inherits it locked by a thread that is not copied.
Cache& cache() {
  static Cache* c = [] {
    auto* made = new Cache;
    pthread_atfork([] { cache().mu.lock(); }, [] { cache().mu.unlock(); },
                   [] { cache().mu.unlock(); });
    return made;
  }();
  return *c;
}

}  // namespace

void* acquire(std::size_t bytes) {
  if (bytes > SIZE_MAX / 2) return nullptr;
  const std::size_t cap = (bytes + kHeader + kPage - 1) / kPage * kPage;
  void* block = nullptr;
  {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    // The smallest idle block that fits, unless it would waste more than a quarter of itself.
    auto it = c.idle.lower_bound(cap);
    if (it != c.idle.end() && it->first - cap <= it->first / 4) {
      block = it->second;
      c.idle_total -= it->first;
      c.idle.erase(it);
    }
  }
  if (!block) {
    block = std::aligned_alloc(kHeader, cap);
    if (!block) return nullptr;
    *static_cast<std::size_t*>(block) = cap;
  }
  return static_cast<char*>(block) + kHeader;
}

void release(void* p) {
  if (!p) return;
  void* block = static_cast<char*>(p) - kHeader;
  const std::size_t cap = *static_cast<std::size_t*>(block);
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  if (c.idle_total + cap > c.limit) {
    std::free(block);
    return;
  }
  c.idle.emplace(cap, block);
  c.idle_total += cap;
}

std::size_t idle_bytes() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.idle_total;
}

std::size_t idle_limit() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.limit;
}

void set_idle_limit(std::size_t bytes) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.limit = bytes;
  c.trim(bytes);
}

void release_idle() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.trim(0);
}

}  // namespace fastnn::buffers
