// Helpers for the Redis client tests: the shared test server's URL, the URL of a private
// redis-server (tests/support/private_redis.hpp: for tests that restart, kill or reconfigure a
// server), and running awaitables with a time limit.
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
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "store/redis/redis_client.hpp"
#include "support/private_redis.hpp"

namespace sessiond::store::redis::testing {

inline constexpr const char* kUrlVariable = "SESSIOND_TEST_REDIS_URL";

// The URL of the shared test server, or nullopt when SESSIOND_TEST_REDIS_URL is unset.
std::optional<std::string> shared_server_url();

// The URL of a private server (tests/support/private_redis.hpp) with these credentials and
// database: redis://[user:password@]127.0.0.1:port[/db].
RedisUrl url_of(const test_support::PrivateRedis& server, std::string_view user = "",
                std::string_view password = "", int db = 0);

// Runs `task` on `io` until it finishes (then stops `io`, whose client connections keep reads
// pending) and returns its value. Throws when it has not finished within `limit`: a hang.
template <class T>
T run(boost::asio::io_context& io, boost::asio::awaitable<T> task,
      std::chrono::milliseconds limit = std::chrono::seconds{30}) {
  struct Outcome {
    bool done = false;
    std::exception_ptr failure;
    std::optional<std::conditional_t<std::is_void_v<T>, bool, T>> value;
  };
  auto outcome = std::make_shared<Outcome>();
  io.restart();
  if constexpr (std::is_void_v<T>) {
    boost::asio::co_spawn(io, std::move(task), [outcome, &io](std::exception_ptr e) {
      outcome->done = true;
      outcome->failure = e;
      io.stop();
    });
  } else {
    boost::asio::co_spawn(io, std::move(task), [outcome, &io](std::exception_ptr e, T v) {
      outcome->done = true;
      outcome->failure = e;
      if (!e) outcome->value.emplace(std::move(v));
      io.stop();
    });
  }
  io.run_for(limit);
  if (!outcome->done) throw std::runtime_error("the task did not finish in time (a hang)");
  if (outcome->failure) std::rethrow_exception(outcome->failure);
  if constexpr (!std::is_void_v<T>) return std::move(*outcome->value);
}

// Spawns every task on `io` at once and runs until all have finished (then stops `io`). Throws
// when they have not all finished within `limit`, or rethrows the first task's exception.
void run_all(boost::asio::io_context& io, std::vector<boost::asio::awaitable<void>> tasks,
             std::chrono::milliseconds limit = std::chrono::seconds{30});

// Waits `delay` on the calling coroutine's executor.
boost::asio::awaitable<void> pause(std::chrono::milliseconds delay);

}  // namespace sessiond::store::redis::testing
