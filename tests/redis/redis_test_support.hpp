// Helpers for the Redis client tests: the shared test server's URL, private redis-server processes
// (for tests that restart, kill or reconfigure a server), and running awaitables with a time limit.
#pragma once

#include <sys/types.h>

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

namespace sessiond::store::redis::testing {

inline constexpr const char* kUrlVariable = "SESSIOND_TEST_REDIS_URL";

// The URL of the shared test server, or nullopt when SESSIOND_TEST_REDIS_URL is unset.
std::optional<std::string> shared_server_url();

// A free TCP port on 127.0.0.1 (bound, read, released).
std::uint16_t free_port();

// A redis-server of the test's own, on 127.0.0.1 and a temporary directory, stopped by PID in the
// destructor. The binary is $SESSIOND_TEST_REDIS_SERVER or redis-server from PATH.
class RedisServer {
 public:
  // Starts on `port` (a free one when 0) and waits until it answers; throws when it cannot.
  explicit RedisServer(std::vector<std::string> extra_args = {}, std::uint16_t port = 0);
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  std::uint16_t port() const { return port_; }
  // redis://[userinfo@]127.0.0.1:port[/db]
  RedisUrl url(std::string_view user = "", std::string_view password = "", int db = 0) const;

  // SIGKILL, as a crash: clients see their connections drop at once.
  void kill();
  // Starts again on the same port and waits until it answers.
  void start();

 private:
  std::vector<std::string> extra_args_;
  std::uint16_t port_ = 0;
  std::string dir_;
  pid_t pid_ = -1;
};

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
