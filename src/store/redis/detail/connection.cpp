#include "store/redis/detail/connection.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <exception>
#include <string_view>
#include <utility>

namespace sessiond::store::redis::detail {
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

// Bugs inside the client's own coroutines surface from io_context::run(), never vanish.
void rethrow(std::exception_ptr failure) {
  if (failure) std::rethrow_exception(failure);
}

Error unavailable(std::string detail) { return Error{Errc::store_unavailable, std::move(detail)}; }

}  // namespace

Connection::Connection(asio::any_io_executor executor, std::shared_ptr<ClientShared> shared,
                       std::uint64_t client_id)
    : executor_(std::move(executor)),
      shared_(std::move(shared)),
      client_id_(client_id),
      deadline_timer_(executor_),
      backoff_(shared_->options.reconnect_min) {}

void Connection::submit(const std::vector<std::vector<std::string>>& commands,
                        const std::shared_ptr<Waiter>& waiter) {
  switch (state_) {
    case State::stopped: complete(waiter, unavailable("redis: client stopped")); return;
    case State::backoff:
      if (std::chrono::steady_clock::now() < retry_at_) {
        complete(waiter, unavailable("redis: unreachable, waiting before reconnecting"));
        return;
      }
      state_ = State::idle;
      break;
    default: break;
  }

  const std::size_t mark = write_buffer_.size();
  for (const auto& command : commands) {
    if (!append_command(write_buffer_, command)) {
      write_buffer_.resize(mark);
      complete(waiter, Error{Errc::internal, "redis: cannot encode a command"});
      return;
    }
  }
  pending_.insert(pending_.end(), commands.size(), waiter);
  buffered_commands_ += commands.size();
  watch_deadline(waiter->deadline);

  if (state_ == State::idle) {
    start_connect();
  } else if (state_ == State::ready && link_->writer_idle) {
    link_->writer_idle = false;
    link_->write_signal.cancel();
  }
}

void Connection::cancel(const std::shared_ptr<Waiter>& waiter) {
  // Its entries stay in the FIFO, so later replies still line up. A caller's own cancellation
  // says nothing about the server: the connection is kept and the late reply discarded.
  complete(waiter, unavailable("redis: call cancelled"), /*from_cancellation=*/true);
}

void Connection::complete(const std::shared_ptr<Waiter>& waiter, Result<std::vector<Reply>> result,
                          bool from_cancellation) {
  if (waiter->done) return;
  waiter->done = true;
  // A slot's handler must not be cleared from inside itself; a later emit finds the waiter done.
  if (waiter->slot.is_connected() && !from_cancellation) waiter->slot.clear();
  waiter->slot = {};
  if (!waiter->handler) return;
  // Posted, never run here: the caller resumes after the loop that completed it.
  asio::post(executor_,
             [handler = std::move(waiter->handler), result = std::move(result)]() mutable {
               handler->complete(std::move(result));
             });
}

void Connection::watch_deadline(std::chrono::steady_clock::time_point deadline) {
  if (deadline_armed_ && deadline_at_ <= deadline) return;
  deadline_armed_ = true;
  deadline_at_ = deadline;
  deadline_timer_.expires_at(deadline);  // cancels a later wait, whose handler then does nothing
  deadline_timer_.async_wait([self = shared_from_this(),
                              generation = ++deadline_generation_](boost::system::error_code ec) {
    if (ec || generation != self->deadline_generation_) return;
    self->deadline_armed_ = false;
    self->sweep();
  });
}

void Connection::sweep() {
  if (state_ == State::stopped) return;
  const auto now = std::chrono::steady_clock::now();
  bool expired = false;
  for (const auto& waiter : pending_) {
    if (!waiter->done && waiter->deadline <= now) {
      complete(waiter, unavailable("redis: command timed out"));
      expired = true;
    }
  }
  // A reply after the deadline could be discarded like a cancelled call's, but a server or
  // network that stopped answering would then make every later call wait out its whole deadline
  // while the queue grows, and a half-open TCP connection would never be noticed. So a passed
  // deadline on a ready connection resets it: the other calls in flight fail too (their outcome
  // is as unknown as the expired one's) and the next call starts afresh. While connecting, the
  // connect has its own timeout; the command still goes out once connected and its reply is
  // discarded.
  if (expired && state_ == State::ready) {
    drop(link_, "redis: command timed out, connection reset");
  }
  std::optional<std::chrono::steady_clock::time_point> next;
  for (const auto& waiter : pending_) {
    if (!waiter->done && (!next || waiter->deadline < *next)) next = waiter->deadline;
  }
  if (next) watch_deadline(*next);
}

void Connection::shutdown() {
  state_ = State::stopped;
  if (link_) close_link();
  fail_all(unavailable("redis: client stopped"));
  deadline_timer_.cancel();
  auto& context = asio::query(executor_, asio::execution::context);
  asio::use_service<ConnectionRegistry>(context).erase(client_id_, this);
}

void Connection::discard_waiters() {
  state_ = State::stopped;
  std::vector<std::unique_ptr<Waiter::Handler>> handlers;
  for (const auto& waiter : pending_) {
    waiter->done = true;
    if (waiter->slot.is_connected()) waiter->slot.clear();
    if (waiter->handler) handlers.push_back(std::move(waiter->handler));
  }
  pending_.clear();
  handlers.clear();  // destroys the suspended callers, here, while this connection is still held
}

void Connection::start_connect() {
  state_ = State::connecting;
  link_ = std::make_shared<Link>(executor_);
  asio::co_spawn(
      executor_, [self = shared_from_this(), link = link_] { return self->connect(link); },
      rethrow);
}

asio::awaitable<void> Connection::connect(std::shared_ptr<Link> link) {
  const RedisUrl& url = shared_->url;
  link->watchdog.expires_after(shared_->options.connect_timeout);
  link->watchdog.async_wait([self = shared_from_this(), link](boost::system::error_code ec) {
    if (!ec && !link->ready) self->connect_failed(link, "redis: connect timed out");
  });

  auto [resolve_ec, endpoints] = co_await link->resolver.async_resolve(
      url.host, std::to_string(url.port), tcp::resolver::numeric_service, kAwait);
  if (link != link_) co_return;
  if (resolve_ec) {
    connect_failed(link, "redis: cannot resolve the host: " + resolve_ec.message());
    co_return;
  }
  auto [connect_ec, endpoint] = co_await asio::async_connect(link->socket, endpoints, kAwait);
  if (link != link_) co_return;
  if (connect_ec) {
    connect_failed(link, "redis: cannot connect: " + connect_ec.message());
    co_return;
  }
  boost::system::error_code ignored;
  link->socket.set_option(tcp::no_delay(true), ignored);

  // AUTH and SELECT go out before anything queued meanwhile: the writer starts only afterwards.
  std::vector<std::vector<std::string>> handshake;
  if (!url.password.empty()) {
    std::vector<std::string> auth{"AUTH"};
    if (!url.user.empty()) auth.push_back(url.user);
    auth.push_back(url.password);
    handshake.push_back(std::move(auth));
  }
  if (url.db != 0) {
    std::vector<std::string> select{"SELECT", std::to_string(url.db)};
    handshake.push_back(std::move(select));
  }
  if (!handshake.empty()) {
    std::string request;
    for (const auto& command : handshake) {
      if (!append_command(request, command)) {
        connect_failed(link, "redis: cannot encode the handshake");
        co_return;
      }
    }
    auto [write_ec, written] =
        co_await asio::async_write(link->socket, asio::buffer(request), kAwait);
    if (link != link_) co_return;
    if (write_ec) {
      connect_failed(link, "redis: handshake failed: " + write_ec.message());
      co_return;
    }
    std::size_t answered = 0;
    while (answered < handshake.size()) {
      Reply reply;
      const auto status = link->parser.next(reply);
      if (status == ReplyParser::Status::protocol_error) {
        connect_failed(link, "redis: protocol error during the handshake");
        co_return;
      }
      if (status == ReplyParser::Status::reply) {
        if (reply.is_error()) {
          // Redis's message names the failure (WRONGPASS, NOAUTH, DB index out of range), never
          // the password.
          const bool auth = answered == 0 && !url.password.empty();
          connect_failed(
              link,
              std::string(auth ? "redis: AUTH failed: " : "redis: SELECT failed: ") + reply.str);
          co_return;
        }
        ++answered;
        continue;
      }
      auto [read_ec, n] =
          co_await link->socket.async_read_some(asio::buffer(link->read_buffer), kAwait);
      if (link != link_) co_return;
      if (read_ec) {
        connect_failed(link, "redis: connection closed during the handshake");
        co_return;
      }
      if (!link->parser.feed(std::string_view(link->read_buffer.data(), n))) {
        connect_failed(link, "redis: protocol error during the handshake");
        co_return;
      }
    }
  }

  link->ready = true;
  link->watchdog.cancel();
  state_ = State::ready;
  backoff_ = shared_->options.reconnect_min;
  asio::co_spawn(
      executor_, [self = shared_from_this(), link] { return self->read_loop(link); }, rethrow);
  asio::co_spawn(
      executor_, [self = shared_from_this(), link] { return self->write_loop(link); }, rethrow);
}

asio::awaitable<void> Connection::write_loop(std::shared_ptr<Link> link) {
  std::string writing;
  for (;;) {
    if (link != link_) co_return;
    if (write_buffer_.empty()) {
      link->writer_idle = true;
      link->write_signal.expires_at(asio::steady_timer::time_point::max());
      co_await link->write_signal.async_wait(kAwait);
      link->writer_idle = false;
      continue;
    }
    // Everything queued since the last write goes out in one write: this is the pipelining.
    writing.clear();
    writing.swap(write_buffer_);
    const std::uint64_t commands = std::exchange(buffered_commands_, 0);
    auto [ec, n] = co_await asio::async_write(link->socket, asio::buffer(writing), kAwait);
    if (link != link_) co_return;
    if (ec) {
      drop(link, "redis: write failed: " + ec.message());
      co_return;
    }
    shared_->commands_written.fetch_add(commands, std::memory_order_relaxed);
    shared_->writes.fetch_add(1, std::memory_order_relaxed);
  }
}

asio::awaitable<void> Connection::read_loop(std::shared_ptr<Link> link) {
  for (;;) {
    auto [ec, n] = co_await link->socket.async_read_some(asio::buffer(link->read_buffer), kAwait);
    if (link != link_) co_return;
    if (ec) {
      drop(link, ec == asio::error::eof ? "redis: connection closed by the server"
                                        : "redis: read failed: " + ec.message());
      co_return;
    }
    if (!link->parser.feed(std::string_view(link->read_buffer.data(), n))) {
      drop(link, "redis: protocol error");
      co_return;
    }
    for (;;) {
      Reply reply;
      const auto status = link->parser.next(reply);
      if (status == ReplyParser::Status::incomplete) break;
      if (status == ReplyParser::Status::protocol_error || pending_.empty()) {
        drop(link, "redis: protocol error");
        co_return;
      }
      deliver(std::move(reply));
    }
  }
}

void Connection::deliver(Reply reply) {
  const auto waiter = std::move(pending_.front());
  pending_.pop_front();
  if (waiter->done) return;
  waiter->replies.push_back(std::move(reply));
  if (waiter->replies.size() == waiter->expected) complete(waiter, std::move(waiter->replies));
}

void Connection::connect_failed(const std::shared_ptr<Link>& link, std::string detail) {
  if (link != link_) return;
  close_link();
  fail_all(unavailable(std::move(detail)));
  state_ = State::backoff;
  retry_at_ = std::chrono::steady_clock::now() + backoff_;
  backoff_ =
      std::min<std::chrono::steady_clock::duration>(backoff_ * 2, shared_->options.reconnect_max);
}

void Connection::drop(const std::shared_ptr<Link>& link, std::string detail) {
  if (link != link_) return;
  close_link();
  fail_all(unavailable(std::move(detail)));
  state_ = State::idle;
}

void Connection::close_link() {
  const auto link = std::move(link_);
  boost::system::error_code ignored;
  link->socket.close(ignored);
  link->resolver.cancel();
  link->watchdog.cancel();
  link->write_signal.cancel();
}

void Connection::fail_all(const Error& error) {
  // Completing only queues the caller's resumption, so no waiter runs inside this loop.
  for (const auto& waiter : pending_) complete(waiter, error);
  pending_.clear();
  write_buffer_.clear();
  buffered_commands_ = 0;
}

std::shared_ptr<Connection> ConnectionRegistry::find(std::uint64_t client_id) {
  const std::lock_guard lock(mutex_);
  const auto it = connections_.find(client_id);
  return it == connections_.end() ? nullptr : it->second;
}

std::shared_ptr<Connection> ConnectionRegistry::insert(std::uint64_t client_id,
                                                       std::shared_ptr<Connection> candidate) {
  const std::lock_guard lock(mutex_);
  return connections_.try_emplace(client_id, std::move(candidate)).first->second;
}

void ConnectionRegistry::erase(std::uint64_t client_id, const Connection* connection) {
  std::shared_ptr<Connection> erased;  // destroyed after the lock is released
  const std::lock_guard lock(mutex_);
  const auto it = connections_.find(client_id);
  if (it != connections_.end() && it->second.get() == connection) {
    erased = std::move(it->second);
    connections_.erase(it);
  }
}

void ConnectionRegistry::shutdown() {
  std::unordered_map<std::uint64_t, std::shared_ptr<Connection>> connections;
  {
    const std::lock_guard lock(mutex_);
    connections.swap(connections_);
  }
  for (auto& [id, connection] : connections) connection->discard_waiters();
}

}  // namespace sessiond::store::redis::detail
