// Private to the Redis client: one connection on one io_context, its waiters, and the registry
// that ties a client's connection to the execution context it serves.
//
// A Connection is touched only on the thread that runs its io_context (an io_context that calls
// the client is run by one thread, as HttpServer's are). Its life: idle -> connecting -> ready;
// a dropped connection goes back to idle (the next call reconnects at once), a failed connect to
// backoff (calls fail fast until the backoff passes), stop() to stopped.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error.hpp"
#include "store/redis/detail/resp.hpp"
#include "store/redis/redis_client.hpp"

namespace sessiond::store::redis::detail {

// What every connection of one client shares. Counters are read from any thread.
struct ClientShared {
  ClientShared(RedisUrl u, ClientOptions o) : url(std::move(u)), options(o) {}
  const RedisUrl url;
  const ClientOptions options;
  std::atomic<std::uint64_t> commands_written{0};
  std::atomic<std::uint64_t> writes{0};
};

// One call (one command or one pipeline) waiting for its replies. The caller's completion handler
// is kept here and posted to the connection's executor (the caller's own io_context) once the
// call is answered, failed or abandoned: no timer per call. Deadlines are watched by one timer per
// connection (Connection::sweep).
struct Waiter {
  // The caller's completion handler, type-erased (Boost 1.81's any_completion_handler recurses
  // without end when moved into place).
  struct Handler {
    virtual ~Handler() = default;
    virtual void complete(Result<std::vector<Reply>> result) = 0;
  };
  template <class H>
  struct HandlerOf final : Handler {
    explicit HandlerOf(H h) : handler(std::move(h)) {}
    void complete(Result<std::vector<Reply>> result) override {
      std::move(handler)(std::move(result));
    }
    H handler;
  };

  Waiter(std::size_t expected_replies, std::chrono::steady_clock::time_point call_deadline)
      : expected(expected_replies), deadline(call_deadline) {
    replies.reserve(expected_replies);
  }
  std::size_t expected;
  std::chrono::steady_clock::time_point deadline;
  std::vector<Reply> replies;
  std::unique_ptr<Handler> handler;
  boost::asio::cancellation_slot slot;  // the caller's, while connected to this call
  bool done = false;  // answered, failed, or abandoned: later replies are discarded
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(boost::asio::any_io_executor executor, std::shared_ptr<ClientShared> shared,
             std::uint64_t client_id);

  const boost::asio::any_io_executor& executor() const { return executor_; }

  // Encodes the commands, queues the waiter (whose handler is set) and, in the same step, wakes
  // the writer or starts connecting. The waiter completes later, never inside this call: with
  // store_unavailable while backing off after a failed connect, or once stopped.
  void submit(const std::vector<std::vector<std::string>>& commands,
              const std::shared_ptr<Waiter>& waiter);

  // The caller cancelled the waiter before its replies came: they are discarded when they come.
  void cancel(const std::shared_ptr<Waiter>& waiter);

  // Closes the connection for good and fails every waiter; unregisters it from its context.
  void shutdown();

  // The execution context is going away: drops every waiter's handler without calling it (that
  // destroys the suspended callers, which hold this connection).
  void discard_waiters();

 private:
  enum class State { idle, connecting, ready, backoff, stopped };

  // One TCP connection attempt and what lives exactly as long as it.
  struct Link {
    explicit Link(const boost::asio::any_io_executor& executor)
        : socket(executor), resolver(executor), watchdog(executor), write_signal(executor) {}
    boost::asio::ip::tcp::socket socket;
    boost::asio::ip::tcp::resolver resolver;
    boost::asio::steady_timer watchdog;      // connect timeout
    boost::asio::steady_timer write_signal;  // the idle writer waits on it; cancelled to wake it
    ReplyParser parser;
    std::vector<char> read_buffer = std::vector<char>(16 * 1024);
    bool ready = false;
    bool writer_idle = false;
  };

  void start_connect();
  boost::asio::awaitable<void> connect(std::shared_ptr<Link> link);
  boost::asio::awaitable<void> write_loop(std::shared_ptr<Link> link);
  boost::asio::awaitable<void> read_loop(std::shared_ptr<Link> link);
  void deliver(Reply reply);
  void complete(const std::shared_ptr<Waiter>& waiter, Result<std::vector<Reply>> result,
                bool from_cancellation = false);
  void watch_deadline(std::chrono::steady_clock::time_point deadline);
  void sweep();
  void connect_failed(const std::shared_ptr<Link>& link, std::string detail);
  void drop(const std::shared_ptr<Link>& link, std::string detail);
  void close_link();
  void fail_all(const Error& error);

  boost::asio::any_io_executor executor_;
  std::shared_ptr<ClientShared> shared_;
  std::uint64_t client_id_;
  State state_ = State::idle;
  std::shared_ptr<Link> link_;  // set while connecting or ready
  std::string write_buffer_;    // encoded commands not yet handed to the socket
  std::uint64_t buffered_commands_ = 0;
  std::deque<std::shared_ptr<Waiter>> pending_;  // one entry per command, in wire order
  boost::asio::steady_timer deadline_timer_;     // at the earliest deadline of a waiter, when armed
  bool deadline_armed_ = false;
  std::chrono::steady_clock::time_point deadline_at_;
  std::uint64_t deadline_generation_ = 0;  // tells a superseded wait from the current one
  std::chrono::steady_clock::duration backoff_;
  std::chrono::steady_clock::time_point retry_at_;
};

// Per execution context: the connection of each client that has been called there. Owned by the
// context, so connections die with it and a new context at a reused address never finds them.
class ConnectionRegistry final : public boost::asio::execution_context::service {
 public:
  static inline boost::asio::execution_context::id id;

  explicit ConnectionRegistry(boost::asio::execution_context& context) : service(context) {}

  std::shared_ptr<Connection> find(std::uint64_t client_id);
  // The existing connection, or `candidate` registered as the client's.
  std::shared_ptr<Connection> insert(std::uint64_t client_id,
                                     std::shared_ptr<Connection> candidate);
  void erase(std::uint64_t client_id, const Connection* connection);

 private:
  void shutdown() override;

  std::mutex mutex_;
  std::unordered_map<std::uint64_t, std::shared_ptr<Connection>> connections_;
};

}  // namespace sessiond::store::redis::detail
