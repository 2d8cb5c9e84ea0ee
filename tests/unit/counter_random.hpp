// Deterministic randomness for unit tests: every byte is the next value of a counter.
#pragma once

#include <cstdint>
#include <mutex>
#include <span>

#include "core/crypto.hpp"

namespace sessiond::testing {

class CounterRandom final : public Random {
 public:
  explicit CounterRandom(std::uint8_t start = 0) : next_(start) {}

  void fill(std::span<std::uint8_t> out) override {
    std::lock_guard lock(mutex_);
    for (auto& byte : out) byte = next_++;
  }

 private:
  std::mutex mutex_;
  std::uint8_t next_;
};

}  // namespace sessiond::testing
