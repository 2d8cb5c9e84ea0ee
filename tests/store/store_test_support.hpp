// Helpers for the store tests: running awaitables synchronously, building sessions and ids.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <utility>

#include "core/crypto.hpp"
#include "core/session.hpp"
#include "core/time.hpp"

namespace sessiond::store::testing {

// The calling thread's io_context: one per thread for the thread's whole life, run by the thread
// itself only inside run().
inline boost::asio::io_context& thread_io_context() {
  thread_local boost::asio::io_context io;
  return io;
}

// Runs one awaitable to completion on the calling thread's io_context and returns its value. As
// in sessiond (one io_context per io thread), a Redis client keeps one connection per io_context:
// a thread's calls share one connection, and concurrent calls from several threads go through as
// many connections (and, on the memory store, really run in parallel). A connection keeps a read
// pending, so the io_context is stopped once the task is done, not run until it has no work.
// Throws when the task has not finished within `limit`: a hang.
template <class T>
T run(boost::asio::awaitable<T> task, std::chrono::seconds limit = std::chrono::seconds{30}) {
  struct Outcome {
    bool done = false;
    std::exception_ptr failure;
    std::optional<T> value;
  };
  auto& io = thread_io_context();
  // Shared with the completion handler, which outlives this call if the task hangs.
  auto outcome = std::make_shared<Outcome>();
  io.restart();
  boost::asio::co_spawn(io, std::move(task), [outcome, &io](std::exception_ptr e, T v) {
    outcome->done = true;
    outcome->failure = e;
    if (!e) outcome->value.emplace(std::move(v));
    io.stop();
  });
  io.run_for(limit);
  if (!outcome->done) throw std::runtime_error("the store call did not finish in time (a hang)");
  if (outcome->failure) std::rethrow_exception(outcome->failure);
  return std::move(*outcome->value);
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
