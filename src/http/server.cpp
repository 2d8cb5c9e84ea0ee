#include "http/server.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

namespace sessiond::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::awaitable;
using asio::ip::tcp;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

// Writes the response's status line, headers and (unless `head`) body into `out`, as Beast's
// serializer would with prepare_payload(), but into one buffer: one flat write instead of
// Beast's buffer sequences, which showed up in profiles of verify. `keep_alive` follows
// Beast's rule: HTTP/1.1 says "close" when it ends, HTTP/1.0 says "keep-alive" when it does not.
void serialize(std::string& out, const Response& response, unsigned version, bool keep_alive,
               bool head) {
  const auto status = static_cast<unsigned>(response.status);
  const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(response.status));
  out.clear();
  out.append(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  char code[4] = {static_cast<char>('0' + status / 100 % 10),
                  static_cast<char>('0' + status / 10 % 10), static_cast<char>('0' + status % 10),
                  ' '};
  out.append(code, sizeof code);
  out.append(reason.data(), reason.size());
  out.append("\r\nServer: sessiond\r\n");
  if (!response.content_type.empty()) {
    out.append("Content-Type: ").append(response.content_type).append("\r\n");
  }
  for (const auto& [name, value] : response.headers) {
    out.append(name).append(": ").append(value).append("\r\n");
  }
  if (version == 10 && keep_alive) out.append("Connection: keep-alive\r\n");
  if (version != 10 && !keep_alive) out.append("Connection: close\r\n");
  out.append("Content-Length: ").append(std::to_string(response.body.size())).append("\r\n\r\n");
  if (!head) out.append(response.body);
}

Method to_method(bhttp::verb v) {
  switch (v) {
    case bhttp::verb::get: return Method::get;
    case bhttp::verb::head: return Method::head;
    case bhttp::verb::post: return Method::post;
    case bhttp::verb::put: return Method::put;
    case bhttp::verb::patch: return Method::patch;
    case bhttp::verb::delete_: return Method::del;
    case bhttp::verb::options: return Method::options;
    default: return Method::other;
  }
}

std::string field(const bhttp::request<bhttp::string_body>& req, bhttp::field f) {
  auto it = req.find(f);
  return it == req.end() ? std::string() : std::string(it->value());
}

std::string field(const bhttp::request<bhttp::string_body>& req, std::string_view name) {
  auto it = req.find(name);
  return it == req.end() ? std::string() : std::string(it->value());
}

}  // namespace

// One live connection, as seen by drain(). Touched only on its own io_context, except `busy`.
struct Connection {
  tcp::socket* socket = nullptr;
  asio::any_io_executor executor;
  std::atomic<bool> busy{false};
  bool alive = true;
};

struct HttpServer::Impl {
  ServerOptions options;
  RequestHandler handler;
  TrustedProxies proxies;
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::vector<std::thread> threads;
  std::atomic<bool> draining{false};
  std::mutex connections_mutex;
  std::unordered_set<std::shared_ptr<Connection>> connections;
  std::atomic<std::size_t> connection_count{0};

  awaitable<void> accept_loop(tcp::acceptor& acceptor);
  awaitable<void> serve(tcp::socket socket);
  awaitable<void> write_simple(beast::tcp_stream& stream, int status, std::string body);
  awaitable<void> linger(beast::tcp_stream& stream);
  void forget(const std::shared_ptr<Connection>& c) {
    std::lock_guard lock(connections_mutex);
    connections.erase(c);
  }
};

HttpServer::HttpServer(ServerOptions options, RequestHandler handler, TrustedProxies proxies)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
  impl_->proxies = std::move(proxies);
  const int n = std::max(1, impl_->options.threads);
  for (int i = 0; i < n; ++i) impl_->contexts.push_back(std::make_unique<asio::io_context>(1));
}

HttpServer::~HttpServer() { stop(); }

asio::io_context& HttpServer::main_context() { return *impl_->contexts.front(); }

Result<std::uint16_t> HttpServer::bind() {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(impl_->options.host, ec);
  if (ec) return Error(Errc::invalid_request, "not an IP address: " + impl_->options.host);
  auto fail = [&](std::uint16_t port) {
    return Error(Errc::invalid_request, "cannot listen on " + impl_->options.host + ":" +
                                            std::to_string(port) + ": " + ec.message());
  };
  // Each io_context has its own acceptor on the same port (SO_REUSEPORT). SO_REUSEPORT would also
  // let a second sessiond share a port that is taken: a plain bind first proves it is free (and
  // picks the port when 0 was asked for).
  std::uint16_t port = impl_->options.port;
  {
    tcp::acceptor probe(*impl_->contexts.front());
    probe.open(address.is_v6() ? tcp::v6() : tcp::v4(), ec);
    if (!ec) probe.bind(tcp::endpoint(address, port), ec);
    if (ec) return fail(port);
    port = probe.local_endpoint().port();
  }
  for (auto& ctx : impl_->contexts) {
    auto acceptor = std::make_unique<tcp::acceptor>(*ctx);
    tcp::endpoint endpoint(address, port);
    acceptor->open(endpoint.protocol(), ec);
    if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) {
      int one = 1;
      ::setsockopt(acceptor->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
      acceptor->bind(endpoint, ec);
    }
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail(port);
    impl_->acceptors.push_back(std::move(acceptor));
  }
  return port;
}

void HttpServer::start() {
  for (std::size_t i = 0; i < impl_->contexts.size(); ++i) {
    asio::co_spawn(*impl_->contexts[i], impl_->accept_loop(*impl_->acceptors[i]), asio::detached);
  }
  for (auto& ctx : impl_->contexts) {
    impl_->threads.emplace_back([c = ctx.get()] {
      auto guard = asio::make_work_guard(*c);
      c->run();
    });
  }
}

void HttpServer::drain(Duration grace) {
  impl_->draining = true;
  for (std::size_t i = 0; i < impl_->acceptors.size(); ++i) {
    asio::post(*impl_->contexts[i], [a = impl_->acceptors[i].get()] {
      boost::system::error_code ignored;
      a->close(ignored);
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + grace;
  for (;;) {
    std::vector<std::shared_ptr<Connection>> open;
    {
      std::lock_guard lock(impl_->connections_mutex);
      open.assign(impl_->connections.begin(), impl_->connections.end());
    }
    if (open.empty()) break;
    const bool force = std::chrono::steady_clock::now() >= deadline;
    for (auto& c : open) {
      if (!force && c->busy) continue;
      asio::post(c->executor, [c] {
        if (!c->alive) return;
        boost::system::error_code ignored;
        c->socket->cancel(ignored);
        c->socket->shutdown(tcp::socket::shutdown_both, ignored);
      });
    }
    if (force) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void HttpServer::stop() {
  for (auto& ctx : impl_->contexts) ctx->stop();
  for (auto& t : impl_->threads) {
    if (t.joinable()) t.join();
  }
  impl_->threads.clear();
}

awaitable<void> HttpServer::Impl::accept_loop(tcp::acceptor& acceptor) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kUseTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      // Out of descriptors or a transient error: back off briefly instead of spinning.
      spdlog::warn("accept failed: {}", ec.message());
      asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(50));
      co_await pause.async_wait(kUseTuple);
      continue;
    }
    if (connection_count.load() >= options.max_connections) {
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    asio::co_spawn(acceptor.get_executor(), serve(std::move(socket)), asio::detached);
  }
}

// Answers an error the connection cannot recover from; the caller then closes the connection.
awaitable<void> HttpServer::Impl::write_simple(beast::tcp_stream& stream, int status,
                                               std::string body) {
  bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status), 11};
  res.set(bhttp::field::server, "sessiond");
  res.set(bhttp::field::content_type, "application/problem+json");
  res.set(bhttp::field::connection, "close");
  res.body() = std::move(body);
  res.prepare_payload();
  stream.expires_after(options.request_timeout);
  auto [ec, written] = co_await bhttp::async_write(stream, res, kUseTuple);
  if (!ec) co_await linger(stream);
}

// After an error answer the client may still be sending a body or headers we will not read.
// Closing a socket with unread data sends a reset, which can destroy the answer before the client
// has read it (RFC 9112 §9.6): so end our side, then read and discard for a bounded time and size.
awaitable<void> HttpServer::Impl::linger(beast::tcp_stream& stream) {
  constexpr std::size_t kMaxDiscard = 1024 * 1024;
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.expires_after(std::min<Duration>(options.request_timeout, std::chrono::seconds(2)));
  std::array<char, 8192> sink;
  std::size_t discarded = 0;
  while (discarded < kMaxDiscard) {
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), kUseTuple);
    if (ec) break;
    discarded += n;
  }
}

awaitable<void> HttpServer::Impl::serve(tcp::socket socket) {
  boost::system::error_code ec;
  auto remote = socket.remote_endpoint(ec);
  if (ec) co_return;
  std::string peer =
      remote.address().is_v6() && remote.address().to_v6().is_v4_mapped()
          ? asio::ip::make_address_v4(asio::ip::v4_mapped, remote.address().to_v6()).to_string()
          : remote.address().to_string();
  socket.set_option(tcp::no_delay(true), ec);

  beast::tcp_stream stream(std::move(socket));
  auto conn = std::make_shared<Connection>();
  conn->socket = &stream.socket();
  conn->executor = stream.get_executor();
  {
    std::lock_guard lock(connections_mutex);
    connections.insert(conn);
  }
  ++connection_count;

  beast::flat_buffer buffer;
  std::string out;  // the response being written, kept for the next one's capacity
  for (;;) {
    conn->busy = false;
    if (draining) break;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options.max_header));
    parser.body_limit(options.max_body);

    // Waiting for a request is bounded by idle_timeout; once its first byte is here, the whole
    // request (headers and body) must arrive within request_timeout.
    if (buffer.size() == 0) {
      stream.expires_after(options.idle_timeout);
      auto [wait_ec, n] = co_await stream.async_read_some(buffer.prepare(4096), kUseTuple);
      if (wait_ec) break;
      buffer.commit(n);
    }
    conn->busy = true;
    stream.expires_after(options.request_timeout);
    [[maybe_unused]] auto [read_ec, header_bytes] =
        co_await bhttp::async_read_header(stream, buffer, parser, kUseTuple);
    conn->busy = true;
    if (read_ec == bhttp::error::header_limit) {
      co_await write_simple(
          stream, 431,
          R"({"type":"about:blank","title":"Request headers too large","status":431,)"
          R"("detail":"request headers are limited to 16 KiB","code":"invalid_request"})");
      break;
    }
    if (read_ec == bhttp::error::body_limit) {
      co_await write_simple(
          stream, 413,
          R"({"type":"about:blank","title":"Payload too large","status":413,)"
          R"("detail":"the body is larger than max_body","code":"payload_too_large"})");
      break;
    }
    if (read_ec) {
      if (read_ec != bhttp::error::end_of_stream && read_ec != beast::error::timeout &&
          read_ec != asio::error::operation_aborted && read_ec != asio::error::connection_reset &&
          read_ec != asio::error::eof && read_ec != bhttp::error::partial_message) {
        co_await write_simple(stream, 400,
                              R"({"type":"about:blank","title":"Invalid request","status":400,)"
                              R"("detail":"malformed HTTP request","code":"invalid_request"})");
      }
      break;
    }
    if (!parser.is_done()) {
      auto [body_ec, body_bytes] = co_await bhttp::async_read(stream, buffer, parser, kUseTuple);
      if (body_ec == bhttp::error::body_limit) {
        co_await write_simple(
            stream, 413,
            R"({"type":"about:blank","title":"Payload too large","status":413,)"
            R"("detail":"the body is larger than max_body","code":"payload_too_large"})");
        break;
      }
      if (body_ec) break;
    }

    auto& msg = parser.get();
    Request request;
    request.method = to_method(msg.method());
    std::string_view target = msg.target();
    auto q = target.find('?');
    request.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) request.query = std::string(target.substr(q + 1));
    request.body = std::move(msg.body());
    request.authorization = field(msg, bhttp::field::authorization);
    request.cookie = field(msg, bhttp::field::cookie);
    request.user_agent = field(msg, bhttp::field::user_agent);
    request.content_type = field(msg, bhttp::field::content_type);
    request.csrf_token = field(msg, "X-CSRF-Token");
    // Every X-Forwarded-For line, in order, as one list (RFC 9110 §5.3): a proxy that adds a line
    // of its own must not leave the client's first line to speak for the client.
    for (const auto& f : msg.base()) {
      if (!beast::iequals(f.name_string(), "X-Forwarded-For")) continue;
      if (!request.forwarded_for.empty()) request.forwarded_for += ", ";
      request.forwarded_for.append(f.value().data(), f.value().size());
    }
    request.peer_ip = peer;
    request.client_ip = proxies.client_ip(peer, request.forwarded_for);
    const bool keep_alive = msg.keep_alive() && !draining;
    const unsigned version = msg.version();

    Response response = co_await handler(request);
    const bool keep = keep_alive && !draining;
    serialize(out, response, version, keep, request.method == Method::head);

    stream.expires_after(options.request_timeout);
    auto [write_ec, written] = co_await asio::async_write(stream, asio::buffer(out), kUseTuple);
    if (write_ec || !keep) break;
  }
  conn->alive = false;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  forget(conn);
  --connection_count;
}

}  // namespace sessiond::http
