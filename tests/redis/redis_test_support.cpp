#include "redis/redis_test_support.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdlib>

namespace sessiond::store::redis::testing {

std::optional<std::string> shared_server_url() {
  const char* url = std::getenv(kUrlVariable);
  if (url == nullptr || *url == '\0') return std::nullopt;
  return std::string(url);
}

RedisUrl url_of(const test_support::PrivateRedis& server, std::string_view user,
                std::string_view password, int db) {
  RedisUrl url;
  url.host = "127.0.0.1";
  url.port = server.port();
  url.user = std::string(user);
  url.password = std::string(password);
  url.db = db;
  return url;
}

void run_all(boost::asio::io_context& io, std::vector<boost::asio::awaitable<void>> tasks,
             std::chrono::milliseconds limit) {
  struct Outcome {
    std::size_t remaining = 0;
    std::exception_ptr failure;
  };
  auto outcome = std::make_shared<Outcome>();
  outcome->remaining = tasks.size();
  if (tasks.empty()) return;
  io.restart();
  for (auto& task : tasks) {
    boost::asio::co_spawn(io, std::move(task), [outcome, &io](std::exception_ptr e) {
      if (e && !outcome->failure) outcome->failure = e;
      if (--outcome->remaining == 0) io.stop();
    });
  }
  io.run_for(limit);
  if (outcome->remaining != 0)
    throw std::runtime_error("the tasks did not finish in time (a hang)");
  if (outcome->failure) std::rethrow_exception(outcome->failure);
}

boost::asio::awaitable<void> pause(std::chrono::milliseconds delay) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, delay);
  co_await timer.async_wait(boost::asio::use_awaitable);
}

}  // namespace sessiond::store::redis::testing
