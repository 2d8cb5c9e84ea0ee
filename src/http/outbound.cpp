// Why the pieces look as they do:
// - Idle connections live in a service of their io_context (ConnectionPool), not in BeastOutbound:
//   a socket must be destroyed before its io_context, and a service is shut down with it.
// - Pooled connections are matched on the caller's executor too: a Beast stream runs its timer on
//   the executor it was made with, so a connection made on one strand is not used from another.
// - Asio's resolver cannot be cancelled (getaddrinfo runs on a background thread and a cancelled
//   lookup still waits for it): at the deadline the call stops waiting and leaves the lookup to
//   finish alone, its result going to a channel nobody reads.
#include "http/outbound.hpp"

#include <openssl/ssl.h>
#include <poll.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>
#include <charconv>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace sessiond::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
namespace urls = boost::urls;
using asio::awaitable;
using asio::ip::tcp;
using boost::system::error_code;
using service::OutboundRequest;
using service::OutboundResponse;
using SteadyTime = std::chrono::steady_clock::time_point;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kMaxBody = 64 * 1024;
constexpr std::size_t kMaxIdlePerOrigin = 4;
constexpr auto kMaxIdleTime = std::chrono::seconds{30};

// Where a URL points, in the forms the call needs.
struct Target {
  bool tls = false;
  std::string host;  // a name or an address, IPv6 without brackets
  bool host_is_address = false;
  std::uint16_t port = 0;
  std::string host_header;  // "host[:port]", IPv6 in brackets, the port when not the default
  std::string path;         // path and query, "/" at least
  std::string origin;       // "https://host:port": in details and pool keys (no path: it may
                            // hold a secret)
};

Error bad_url(std::string_view why) {
  return Error(Errc::invalid_request, "outbound URL: " + std::string(why));
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

Result<Target> parse_target(std::string_view text) {
  auto parsed = urls::parse_uri(text);
  if (!parsed) return bad_url("not an absolute URL");
  const urls::url_view& url = *parsed;
  Target t;
  if (url.scheme_id() == urls::scheme::https) {
    t.tls = true;
  } else if (url.scheme_id() != urls::scheme::http) {
    return bad_url("the scheme must be http or https");
  }
  if (!url.has_authority()) return bad_url("no host");
  if (url.has_userinfo()) return bad_url("user information is not supported");
  std::string bracketed;
  switch (url.host_type()) {
    case urls::host_type::name:
      t.host = url.host_address();
      if (t.host.empty()) return bad_url("no host");
      for (char c : t.host) {
        if (!is_name_char(c)) return bad_url("the host is not a valid name");
      }
      bracketed = t.host;
      break;
    case urls::host_type::ipv4:
      t.host = url.host_address();
      t.host_is_address = true;
      bracketed = t.host;
      break;
    case urls::host_type::ipv6:
      t.host = url.host_ipv6_address().to_string();
      t.host_is_address = true;
      bracketed = "[" + t.host + "]";
      break;
    default: return bad_url("no usable host");
  }
  const std::uint16_t default_port = t.tls ? 443 : 80;
  t.port = default_port;
  if (url.has_port() && !url.port().empty()) {
    // port_number() wraps ports over 65535 around instead of refusing them.
    const std::string_view text = url.port();
    unsigned long port = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
    if (ec != std::errc() || end != text.data() + text.size() || port == 0 || port > 65535) {
      return bad_url("the port must be 1 to 65535");
    }
    t.port = static_cast<std::uint16_t>(port);
  }
  t.host_header = bracketed;
  if (t.port != default_port) t.host_header += ":" + std::to_string(t.port);
  t.path = url.encoded_path();
  if (t.path.empty()) t.path = "/";
  if (url.has_query()) t.path += "?" + std::string(url.encoded_query());
  t.origin = (t.tls ? "https://" : "http://") + bracketed + ":" + std::to_string(t.port);
  return t;
}

bool is_token(std::string_view s) {
  constexpr std::string_view kSymbols = "!#$%&'*+-.^_`|~";
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    kSymbols.find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

bool is_field_value(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

Result<void> check_headers(const OutboundRequest& request) {
  if (!is_field_value(request.content_type)) {
    return Error(Errc::invalid_request, "outbound content type holds CR, LF or NUL");
  }
  for (const auto& [name, value] : request.headers) {
    if (!is_token(name)) return Error(Errc::invalid_request, "outbound header name is not a token");
    if (!is_field_value(value)) {
      return Error(Errc::invalid_request, "outbound header " + name + " holds CR, LF or NUL");
    }
    for (std::string_view framing : {"host", "content-length", "transfer-encoding", "connection"}) {
      if (iequals(name, framing)) {
        return Error(Errc::invalid_request, "outbound header " + name + " is set by the client");
      }
    }
  }
  return {};
}

Error failure(const Target& t, std::string_view step, const error_code& ec, Duration timeout) {
  if (ec == beast::error::timeout || ec == asio::error::timed_out) {
    return Error(Errc::upstream_unavailable, t.origin + ": no answer within " +
                                                 std::to_string(timeout.count()) + " ms (" +
                                                 std::string(step) + ")");
  }
  return Error(Errc::upstream_unavailable,
               t.origin + ": " + std::string(step) + " failed (" + ec.message() + ")");
}

// The errors of a connection the server closed before answering.
bool closed_by_peer(const error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::connection_aborted ||
         ec == asio::error::not_connected || ec == bhttp::error::end_of_stream ||
         ec == ssl::error::stream_truncated;
}

struct Connection {
  std::shared_ptr<ssl::context> tls;  // declared first: outlives the stream that uses it
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;

  beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }

  // An idle kept-alive connection has nothing to read: readable (data, EOF, reset) means the
  // server closed it or broke the protocol.
  bool peer_closed() {
    pollfd p{lowest().socket().native_handle(), POLLIN, 0};
    return ::poll(&p, 1, 0) != 0;
  }
};

// The idle connections of one io_context.
class ConnectionPool final : public asio::execution_context::service {
 public:
  static inline asio::execution_context::id id;

  explicit ConnectionPool(asio::execution_context& context) : service(context) {}

  // An idle connection to `key` made on `executor`, checked to be still open; null when none.
  std::unique_ptr<Connection> take(const std::string& key, const asio::any_io_executor& executor) {
    std::vector<std::unique_ptr<Connection>> dropped;  // closed outside the lock
    for (;;) {
      std::unique_ptr<Connection> found;
      {
        std::lock_guard lock(mutex_);
        prune(dropped);
        // The newest first: the least likely to have been closed by the server.
        for (auto it = idle_.rbegin(); it != idle_.rend(); ++it) {
          if (it->key == key && it->executor == executor) {
            found = std::move(it->connection);
            idle_.erase(std::next(it).base());
            break;
          }
        }
      }
      if (!found || !found->peer_closed()) return found;
      dropped.push_back(std::move(found));
    }
  }

  void put(const std::string& key, const asio::any_io_executor& executor,
           std::unique_ptr<Connection> connection) {
    connection->lowest().expires_never();
    std::vector<std::unique_ptr<Connection>> dropped;
    std::lock_guard lock(mutex_);
    prune(dropped);
    std::size_t same = 0;
    auto oldest = idle_.end();
    for (auto it = idle_.begin(); it != idle_.end(); ++it) {
      if (it->key == key && it->executor == executor) {
        if (same++ == 0) oldest = it;
      }
    }
    if (same >= kMaxIdlePerOrigin) {
      dropped.push_back(std::move(oldest->connection));
      idle_.erase(oldest);
    }
    idle_.push_back(Idle{key, executor, std::move(connection), std::chrono::steady_clock::now()});
  }

 private:
  struct Idle {
    std::string key;
    asio::any_io_executor executor;
    std::unique_ptr<Connection> connection;
    SteadyTime since;
  };

  void shutdown() override {
    std::vector<Idle> doomed;
    std::lock_guard lock(mutex_);
    doomed.swap(idle_);
  }

  void prune(std::vector<std::unique_ptr<Connection>>& dropped) {
    const auto now = std::chrono::steady_clock::now();
    std::erase_if(idle_, [&](Idle& idle) {
      if (now - idle.since < kMaxIdleTime) return false;
      dropped.push_back(std::move(idle.connection));
      return true;
    });
  }

  std::mutex mutex_;
  std::vector<Idle> idle_;  // oldest first
};

using ResolveChannel =
    asio::experimental::concurrent_channel<void(error_code, tcp::resolver::results_type)>;

awaitable<Result<std::vector<tcp::endpoint>>> resolve(asio::any_io_executor executor,
                                                      const Target& t, SteadyTime deadline,
                                                      Duration timeout) {
  using namespace asio::experimental::awaitable_operators;
  std::vector<tcp::endpoint> endpoints;
  if (t.host_is_address) {
    endpoints.emplace_back(asio::ip::make_address(t.host), t.port);
    co_return endpoints;
  }
  auto channel = std::make_shared<ResolveChannel>(executor, 1);
  auto resolver = std::make_shared<tcp::resolver>(executor);
  resolver->async_resolve(
      t.host, std::to_string(t.port), tcp::resolver::numeric_service,
      [channel, resolver](const error_code& ec, tcp::resolver::results_type found) {
        channel->try_send(ec, std::move(found));
      });
  asio::steady_timer timer(executor);
  timer.expires_at(deadline);
  auto first = co_await (channel->async_receive(kUseTuple) || timer.async_wait(kUseTuple));
  if (first.index() == 1) co_return failure(t, "name resolution", beast::error::timeout, timeout);
  auto& [ec, found] = std::get<0>(first);
  if (ec) co_return failure(t, "name resolution", ec, timeout);
  for (const auto& entry : found) endpoints.push_back(entry.endpoint());
  co_return endpoints;
}

awaitable<Result<std::unique_ptr<Connection>>> open_connection(asio::any_io_executor executor,
                                                               const Target& t,
                                                               std::shared_ptr<ssl::context> tls,
                                                               SteadyTime deadline,
                                                               Duration timeout) {
  auto endpoints = co_await resolve(executor, t, deadline, timeout);
  if (!endpoints) co_return endpoints.error();

  auto stream = std::make_unique<beast::tcp_stream>(executor);
  stream->expires_at(deadline);
  auto [connect_ec, endpoint] = co_await stream->async_connect(*endpoints, kUseTuple);
  if (connect_ec) co_return failure(t, "connect", connect_ec, timeout);
  error_code ignored;
  stream->socket().set_option(tcp::no_delay(true), ignored);

  auto connection = std::make_unique<Connection>();
  if (!t.tls) {
    connection->plain = std::move(stream);
    co_return connection;
  }
  connection->tls = std::move(tls);
  connection->secure =
      std::make_unique<beast::ssl_stream<beast::tcp_stream>>(std::move(*stream), *connection->tls);
  auto& secure = *connection->secure;
  // SNI carries names only (RFC 6066); host_name_verification checks names and addresses.
  if (!t.host_is_address && SSL_set_tlsext_host_name(secure.native_handle(), t.host.c_str()) != 1) {
    co_return Error(Errc::upstream_unavailable, t.origin + ": TLS setup failed");
  }
  secure.set_verify_mode(ssl::verify_peer);
  secure.set_verify_callback(ssl::host_name_verification(t.host));
  beast::get_lowest_layer(secure).expires_at(deadline);
  auto [handshake_ec] = co_await secure.async_handshake(ssl::stream_base::client, kUseTuple);
  if (handshake_ec) co_return failure(t, "TLS handshake", handshake_ec, timeout);
  co_return connection;
}

struct Exchange {
  error_code ec;
  std::string_view step;
  bool answer_started = false;  // a byte of the answer arrived
  bool reusable = false;
  OutboundResponse response;
};

template <class Stream>
awaitable<Exchange> exchange(Stream& stream, Connection& connection,
                             const bhttp::request<bhttp::string_body>& message,
                             SteadyTime deadline) {
  Exchange out;
  connection.lowest().expires_at(deadline);
  auto [write_ec, written] = co_await bhttp::async_write(stream, message, kUseTuple);
  if (write_ec) {
    out.ec = write_ec;
    out.step = "sending the request";
    co_return out;
  }

  bhttp::response_parser<bhttp::buffer_body> parser;
  parser.body_limit(boost::none);  // a long body is cut at kMaxBody below, not refused
  auto [header_ec, header_bytes] =
      co_await bhttp::async_read_header(stream, connection.buffer, parser, kUseTuple);
  out.answer_started = parser.got_some() || connection.buffer.size() != 0;
  if (header_ec) {
    out.ec = header_ec;
    out.step = "reading the answer";
    co_return out;
  }
  out.response.status = static_cast<int>(parser.get().result_int());

  std::string& body = out.response.body;
  body.resize(kMaxBody);
  std::size_t used = 0;
  bool cut = false;
  auto& window = parser.get().body();
  while (!parser.is_done()) {
    if (used == kMaxBody) {
      cut = true;
      break;
    }
    window.data = body.data() + used;
    window.size = kMaxBody - used;
    auto [read_ec, read_bytes] =
        co_await bhttp::async_read(stream, connection.buffer, parser, kUseTuple);
    used = kMaxBody - window.size;
    if (read_ec == bhttp::error::need_buffer) continue;
    if (read_ec) {
      out.ec = read_ec;
      out.step = "reading the answer";
      co_return out;
    }
  }
  body.resize(used);
  out.reusable = !cut && parser.get().keep_alive() && connection.buffer.size() == 0;
  co_return out;
}

}  // namespace

struct BeastOutbound::Impl {
  std::string ca_file;
  std::shared_ptr<ssl::context> tls;
};

BeastOutbound::BeastOutbound(std::string ca_file) {
  auto impl = std::make_shared<Impl>();
  impl->tls = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(impl->tls->native_handle(), TLS1_2_VERSION);
  error_code ec;
  impl->tls->set_default_verify_paths(ec);  // none on this machine is no error: ca_file may do
  if (!ca_file.empty()) {
    impl->tls->load_verify_file(ca_file, ec);
    if (ec) throw std::runtime_error("cannot load the CA file " + ca_file + ": " + ec.message());
  }
  impl->tls->set_verify_mode(ssl::verify_peer);
  impl->ca_file = std::move(ca_file);
  impl_ = std::move(impl);
}

BeastOutbound::~BeastOutbound() = default;

awaitable<Result<OutboundResponse>> BeastOutbound::post(OutboundRequest request) {
  const std::shared_ptr<const Impl> impl = impl_;
  auto target = parse_target(request.url);
  if (!target) co_return target.error();
  if (auto checked = check_headers(request); !checked) co_return checked.error();

  const asio::any_io_executor executor = co_await asio::this_coro::executor;
  const SteadyTime deadline = std::chrono::steady_clock::now() + request.timeout;
  auto& pool = asio::use_service<ConnectionPool>(asio::query(executor, asio::execution::context));
  // https connections are shared only between clients that trust the same certificates.
  const std::string key = target->tls ? target->origin + " " + impl->ca_file : target->origin;

  bhttp::request<bhttp::string_body> message(bhttp::verb::post, target->path, 11);
  message.set(bhttp::field::host, target->host_header);
  message.set(bhttp::field::user_agent, "sessiond");
  if (!request.content_type.empty()) message.set(bhttp::field::content_type, request.content_type);
  for (const auto& [name, value] : request.headers) message.set(name, value);
  message.body() = std::move(request.body);
  message.content_length(message.body().size());

  for (int attempt = 1;; ++attempt) {
    std::unique_ptr<Connection> connection;
    if (attempt == 1) connection = pool.take(key, executor);
    const bool reused = connection != nullptr;
    if (!connection) {
      auto opened =
          co_await open_connection(executor, *target, impl->tls, deadline, request.timeout);
      if (!opened) co_return opened.error();
      connection = std::move(*opened);
    }
    Exchange done;
    if (connection->secure) {
      done = co_await exchange(*connection->secure, *connection, message, deadline);
    } else {
      done = co_await exchange(*connection->plain, *connection, message, deadline);
    }
    if (!done.ec) {
      if (done.reusable) pool.put(key, executor, std::move(connection));
      co_return std::move(done.response);
    }
    // The server closed a kept-alive connection as the request went out: once more, afresh.
    if (reused && !done.answer_started && closed_by_peer(done.ec)) continue;
    co_return failure(*target, done.step, done.ec, request.timeout);
  }
}

}  // namespace sessiond::http
