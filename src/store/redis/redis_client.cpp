#include "store/redis/redis_client.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <charconv>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <utility>

#include "store/redis/detail/connection.hpp"

namespace sessiond::store::redis {
namespace asio = boost::asio;
using detail::Connection;
using detail::ConnectionRegistry;

namespace {

// Details name what is wrong, never a piece of the URL: a malformed URL can put the password
// where the host or port should be.
Error url_error(std::string_view what) {
  return Error{Errc::invalid_request, "store.url: " + std::string(what)};
}

bool starts_with_icase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), text.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == b;
         });
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const int high = hex_value(text[i + 1]);
    const int low = hex_value(text[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return out;
}

template <class T>
std::optional<T> parse_number(std::string_view text) {
  T value{};
  if (text.empty() || text.size() > 10) return std::nullopt;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

Error unavailable(std::string detail) { return Error{Errc::store_unavailable, std::move(detail)}; }

}  // namespace

Result<RedisUrl> RedisUrl::parse(std::string_view text) {
  if (starts_with_icase(text, "rediss://")) {
    return url_error("TLS (rediss://) is not supported; use redis://");
  }
  if (!starts_with_icase(text, "redis://")) return url_error("must start with redis://");
  std::string_view rest = text.substr(std::string_view("redis://").size());

  RedisUrl url;
  // The last '@' ends the user information, so an unencoded '@' or '/' in a password still works.
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const auto colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      return url_error("the user information must be user:password or :password");
    }
    auto user = percent_decode(userinfo.substr(0, colon));
    auto password = percent_decode(userinfo.substr(colon + 1));
    if (!user || !password) return url_error("bad percent-encoding in the user or password");
    if (password->empty()) return url_error("the password is empty");
    url.user = std::move(*user);
    url.password = std::move(*password);
  }

  const auto slash = rest.find('/');
  std::string_view host_port = rest.substr(0, slash);
  const std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  if (host_port.find_first_of("?#") != std::string_view::npos ||
      path.find_first_of("?#") != std::string_view::npos) {
    return url_error("query parameters and fragments are not supported");
  }

  std::string_view port_text;
  bool has_port = false;
  if (!host_port.empty() && host_port.front() == '[') {
    const auto close = host_port.find(']');
    if (close == std::string_view::npos) return url_error("an IPv6 address lacks its closing ']'");
    url.host = std::string(host_port.substr(1, close - 1));
    const std::string_view after = host_port.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return url_error("expected :port after the IPv6 address");
      port_text = after.substr(1);
      has_port = true;
    }
  } else {
    const auto colon = host_port.find(':');
    if (colon != std::string_view::npos &&
        host_port.find(':', colon + 1) != std::string_view::npos) {
      return url_error("an IPv6 address must be in brackets: redis://[::1]:6379");
    }
    url.host = std::string(host_port.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = host_port.substr(colon + 1);
      has_port = true;
    }
  }
  if (url.host.empty()) return url_error("the host is missing");
  if (has_port) {
    const auto port = parse_number<unsigned>(port_text);
    if (!port || *port == 0 || *port > 65535) {
      return url_error("the port must be a number from 1 to 65535");
    }
    url.port = static_cast<std::uint16_t>(*port);
  }
  if (!path.empty()) {
    const auto db = parse_number<int>(path);
    if (!db || *db < 0) return url_error("the database must be a number: redis://host:port/0");
    url.db = *db;
  }
  return url;
}

Script make_script(std::string source) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_Digest(source.data(), source.size(), digest.data(), &length, EVP_sha1(), nullptr) != 1) {
    throw std::runtime_error("SHA-1 is not available");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string sha1;
  sha1.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    sha1.push_back(kHex[digest[i] >> 4]);
    sha1.push_back(kHex[digest[i] & 0x0F]);
  }
  return Script{std::move(source), std::move(sha1)};
}

struct RedisClient::Impl {
  Impl(RedisUrl url, ClientOptions options)
      : shared(std::make_shared<detail::ClientShared>(std::move(url), options)) {}

  // The calling context's connection, created on first use; null once stopped.
  std::shared_ptr<Connection> connection_for(const asio::any_io_executor& executor) {
    if (stopped.load(std::memory_order_acquire)) return nullptr;
    auto& context = asio::query(executor, asio::execution::context);
    auto& registry = asio::use_service<ConnectionRegistry>(context);
    if (auto found = registry.find(id)) return found;
    const std::lock_guard lock(mutex);
    if (stopped.load(std::memory_order_relaxed)) return nullptr;
    auto connection = registry.insert(id, std::make_shared<Connection>(executor, shared, id));
    std::erase_if(connections, [](const auto& weak) { return weak.expired(); });
    connections.push_back(connection);
    return connection;
  }

  asio::awaitable<Result<std::vector<Reply>>> execute(
      std::vector<std::vector<std::string>> commands,
      std::chrono::steady_clock::time_point deadline) {
    const auto executor = co_await asio::this_coro::executor;
    if (std::chrono::steady_clock::now() >= deadline) {
      co_return unavailable("redis: command timed out");
    }
    auto connection = connection_for(executor);
    if (!connection) co_return unavailable("redis: client stopped");
    auto waiter = std::make_shared<detail::Waiter>(commands.size(), deadline);
    // Named, not written inside the co_await (g++ 12 miscompiles some temporaries there).
    const auto initiation = [&commands](auto handler, std::shared_ptr<Connection> connection,
                                        std::shared_ptr<detail::Waiter> waiter) {
      auto slot = asio::get_associated_cancellation_slot(handler);
      if (slot.is_connected()) {
        // The caller's own cancellation (e.g. an awaitable operator): the reply is discarded.
        slot.assign([weak_connection = std::weak_ptr<Connection>(connection),
                     weak_waiter = std::weak_ptr<detail::Waiter>(waiter)](asio::cancellation_type) {
          const auto connection = weak_connection.lock();
          const auto waiter = weak_waiter.lock();
          if (connection && waiter) connection->cancel(waiter);
        });
        waiter->slot = slot;
      }
      waiter->handler =
          std::make_unique<detail::Waiter::HandlerOf<decltype(handler)>>(std::move(handler));
      connection->submit(commands, waiter);
    };
    co_return co_await asio::async_initiate<decltype(asio::use_awaitable),
                                            void(Result<std::vector<Reply>>)>(
        initiation, asio::use_awaitable, std::move(connection), std::move(waiter));
  }

  std::chrono::steady_clock::time_point deadline() const {
    return std::chrono::steady_clock::now() + shared->options.command_timeout;
  }

  static inline std::atomic<std::uint64_t> next_id{1};

  const std::uint64_t id = next_id.fetch_add(1);
  std::shared_ptr<detail::ClientShared> shared;
  std::atomic<bool> stopped{false};
  std::mutex mutex;                                    // guards connections, orders with stopped
  std::vector<std::weak_ptr<Connection>> connections;  // one per context that called
};

RedisClient::RedisClient(RedisUrl url, ClientOptions options)
    : impl_(std::make_shared<Impl>(std::move(url), options)) {}

RedisClient::~RedisClient() { stop(); }

asio::awaitable<Result<Reply>> RedisClient::command(std::vector<std::string> args) {
  if (args.empty()) co_return Error{Errc::internal, "redis: empty command"};
  const auto impl = impl_;
  std::vector<std::vector<std::string>> commands;
  commands.push_back(std::move(args));
  auto replies = co_await impl->execute(std::move(commands), impl->deadline());
  if (!replies) co_return replies.error();
  co_return std::move(replies->front());
}

asio::awaitable<Result<std::vector<Reply>>> RedisClient::pipeline(
    std::vector<std::vector<std::string>> commands) {
  if (commands.empty()) co_return std::vector<Reply>{};
  for (const auto& command : commands) {
    if (command.empty()) co_return Error{Errc::internal, "redis: empty command"};
  }
  const auto impl = impl_;
  co_return co_await impl->execute(std::move(commands), impl->deadline());
}

asio::awaitable<Result<Reply>> RedisClient::eval(const Script& script,
                                                 std::vector<std::string> keys,
                                                 std::vector<std::string> args) {
  const auto impl = impl_;
  const auto deadline = impl->deadline();  // one deadline for the whole call, retry included
  std::vector<std::string> evalsha;
  evalsha.reserve(3 + keys.size() + args.size());
  evalsha.push_back("EVALSHA");
  evalsha.push_back(script.sha1);
  evalsha.push_back(std::to_string(keys.size()));
  std::move(keys.begin(), keys.end(), std::back_inserter(evalsha));
  std::move(args.begin(), args.end(), std::back_inserter(evalsha));

  std::vector<std::vector<std::string>> first;
  first.push_back(evalsha);
  auto replies = co_await impl->execute(std::move(first), deadline);
  if (!replies) co_return replies.error();
  Reply reply = std::move(replies->front());
  if (!reply.is_error() || !reply.str.starts_with("NOSCRIPT")) co_return reply;

  // The script cache is empty after a restart, a failover or SCRIPT FLUSH. Loading and calling
  // again in one write costs one more round trip.
  std::vector<std::vector<std::string>> retry;
  retry.push_back(std::vector<std::string>{"SCRIPT", "LOAD", script.source});
  retry.push_back(std::move(evalsha));
  replies = co_await impl->execute(std::move(retry), deadline);
  if (!replies) co_return replies.error();
  if ((*replies)[0].is_error()) co_return std::move((*replies)[0]);  // e.g. a syntax error
  co_return std::move((*replies)[1]);
}

void RedisClient::stop() {
  std::vector<std::shared_ptr<Connection>> live;
  {
    const std::lock_guard lock(impl_->mutex);
    impl_->stopped.store(true, std::memory_order_release);
    for (const auto& weak : impl_->connections) {
      if (auto connection = weak.lock()) live.push_back(std::move(connection));
    }
    impl_->connections.clear();
  }
  for (auto& connection : live) {
    const auto executor = connection->executor();
    asio::dispatch(executor, [connection = std::move(connection)] { connection->shutdown(); });
  }
}

std::uint64_t RedisClient::commands_written() const {
  return impl_->shared->commands_written.load(std::memory_order_relaxed);
}

std::uint64_t RedisClient::writes() const {
  return impl_->shared->writes.load(std::memory_order_relaxed);
}

}  // namespace sessiond::store::redis
