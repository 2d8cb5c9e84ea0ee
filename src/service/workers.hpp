// A bounded pool of threads for blocking work (argon2id, database calls): coroutines on io threads
// hand work to it and resume on their own executor when it is done.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstddef>
#include <type_traits>
#include <utility>

namespace sessiond::service {

class Workers {
 public:
  explicit Workers(std::size_t threads) : pool_(threads) {}
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;
  ~Workers() { stop(); }

  // Runs `fn` on a pool thread; the awaiting coroutine resumes on its own executor.
  template <class Fn>
  auto run(Fn fn) -> boost::asio::awaitable<std::invoke_result_t<Fn&>> {
    using R = std::invoke_result_t<Fn&>;
    co_return co_await boost::asio::co_spawn(
        pool_, [fn = std::move(fn)]() mutable -> boost::asio::awaitable<R> { co_return fn(); },
        boost::asio::use_awaitable);
  }

  // Finishes queued work and joins the threads.
  void stop() { pool_.join(); }

 private:
  boost::asio::thread_pool pool_;
};

}  // namespace sessiond::service
