// Helpers for the store tests: running awaitables synchronously, building sessions and ids.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <exception>
#include <optional>
#include <utility>

#include "core/crypto.hpp"
#include "core/session.hpp"
#include "core/time.hpp"

namespace sessiond::store::testing {

// Runs one awaitable to completion on a private io_context (so any thread may call it).
template <class T>
T run(boost::asio::awaitable<T> task) {
  boost::asio::io_context io;
  std::optional<T> value;
  std::exception_ptr failure;
  boost::asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T v) {
    failure = e;
    if (!e) value.emplace(std::move(v));
  });
  io.run();
  if (failure) std::rethrow_exception(failure);
  return std::move(*value);
}

// A well-spread, deterministic session id for the n-th session of a test run.
inline SessionId test_session_id(std::uint64_t n) {
  SessionId id;
  std::uint64_t x = n;
  for (std::size_t i = 0; i < id.bytes.size(); ++i) {
    if (i % 8 == 0) {  // splitmix64
      x += 0x9E3779B97F4A7C15ULL;
      std::uint64_t z = x;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
      x = z ^ (z >> 31);
    }
    id.bytes[i] = static_cast<std::uint8_t>(x >> (8 * (i % 8)));
  }
  id.bytes[6] = static_cast<std::uint8_t>((id.bytes[6] & 0x0F) | 0x40);
  id.bytes[8] = static_cast<std::uint8_t>((id.bytes[8] & 0x3F) | 0x80);
  return id;
}

inline constexpr TimePoint kT0{std::chrono::seconds{1'800'000'000}};

}  // namespace sessiond::store::testing
