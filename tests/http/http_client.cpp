// The blocking HTTP/1.1 client of the harness: Beast async operations run to completion on a
// private io_context, so every read and write has a deadline (tcp_stream timeouts apply to async
// operations only). The only Beast translation unit of the tests.
#include <poll.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "http/harness.hpp"

namespace sessiond::http_test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;
using boost::system::error_code;

struct HttpClient::Impl {
  std::uint16_t port = 0;
  std::chrono::milliseconds timeout{15s};
  asio::io_context ioc{1};
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  bool open = false;

  // Runs the operation started by `start` until it completes or its deadline passes.
  template <class Start>
  error_code run(std::chrono::milliseconds deadline, Start start) {
    error_code result = asio::error::would_block;
    stream.expires_after(deadline);
    start(result);
    ioc.restart();
    ioc.run();
    return result;
  }

  // A kept-alive connection should have nothing to read: readable means the server closed it.
  bool closed_by_peer() {
    if (!open) return true;
    pollfd p{stream.socket().native_handle(), POLLIN, 0};
    return ::poll(&p, 1, 0) != 0;
  }

  void reset() {
    error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.socket().close(ignored);
    buffer.clear();
    open = false;
  }

  error_code ensure_open() {
    if (open && !closed_by_peer()) return {};
    if (open) reset();
    const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
    auto ec = run(timeout, [&](error_code& out) {
      stream.async_connect(endpoint, [&out](error_code e) { out = e; });
    });
    open = !ec;
    return ec;
  }

  error_code write(std::string_view bytes) {
    return run(timeout, [&](error_code& out) {
      asio::async_write(stream, asio::buffer(bytes.data(), bytes.size()),
                        [&out](error_code e, std::size_t) { out = e; });
    });
  }

  // Reads one response; the error when none could be read.
  error_code read(HttpResponse& out, bool head) {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    parser.header_limit(64 * 1024);
    if (head) parser.skip(true);
    auto ec = run(timeout, [&](error_code& result) {
      bhttp::async_read(stream, buffer, parser,
                        [&result](error_code e, std::size_t) { result = e; });
    });
    if (ec) return ec;
    auto& msg = parser.get();
    out.status = static_cast<int>(msg.result_int());
    for (const auto& f : msg.base()) {
      out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
    out.body = std::move(msg.body());
    if (!msg.keep_alive()) reset();
    return {};
  }
};

HttpClient::HttpClient(std::uint16_t port, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()) {
  impl_->port = port;
  impl_->timeout = timeout;
}

HttpClient::~HttpClient() {
  if (impl_) impl_->reset();
}

HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

bool HttpClient::connected() const { return impl_->open; }

void HttpClient::close() { impl_->reset(); }

HttpResponse HttpClient::request(std::string_view method, std::string_view target,
                                 const Headers& headers, std::string_view body) {
  HttpResponse response;
  if (auto ec = impl_->ensure_open()) {
    ADD_FAILURE() << "cannot connect to 127.0.0.1:" << impl_->port << ": " << ec.message();
    return response;
  }
  bhttp::request<bhttp::string_body> req;
  req.version(11);
  req.method_string(method);
  req.target(target);
  bool has_host = false;
  for (const auto& [name, value] : headers) {
    has_host = has_host || beast::iequals(name, "Host");
    req.insert(name, value);
  }
  if (!has_host) req.set(bhttp::field::host, "127.0.0.1:" + std::to_string(impl_->port));
  req.body() = std::string(body);
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    req.content_length(body.size());
  }
  std::ostringstream wire;
  wire << req;
  if (auto ec = impl_->write(wire.str())) {
    ADD_FAILURE() << method << " " << target << ": write failed: " << ec.message();
    impl_->reset();
    return response;
  }
  if (auto ec = impl_->read(response, method == "HEAD")) {
    ADD_FAILURE() << method << " " << target << ": no response: " << ec.message();
    impl_->reset();
    return HttpResponse{};
  }
  return response;
}

bool HttpClient::connect() {
  if (auto ec = impl_->ensure_open()) {
    ADD_FAILURE() << "cannot connect to 127.0.0.1:" << impl_->port << ": " << ec.message();
    return false;
  }
  return true;
}

std::uint16_t HttpClient::local_port() const {
  if (!impl_->open) return 0;
  error_code ec;
  auto endpoint = impl_->stream.socket().local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

std::optional<HttpResponse> HttpClient::send_raw(std::string_view bytes) {
  if (!write_raw(bytes)) return std::nullopt;
  return read_response();
}

bool HttpClient::write_raw(std::string_view bytes) {
  if (!connect()) return false;
  if (auto ec = impl_->write(bytes)) {
    // The server may close (and reset) before it has read everything we send.
    impl_->reset();
    return false;
  }
  return true;
}

std::optional<HttpResponse> HttpClient::read_response() {
  if (!impl_->open) return std::nullopt;
  HttpResponse response;
  auto ec = impl_->read(response, false);
  if (ec == beast::error::timeout) {
    ADD_FAILURE() << "the server neither answered nor closed the connection";
  }
  if (ec) {
    impl_->reset();
    return std::nullopt;
  }
  return response;
}

bool accepts_connections(std::uint16_t port) {
  asio::io_context ioc;
  tcp::socket socket(ioc);
  error_code ec;
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  return !ec;
}

bool HttpClient::closed_by_server_within(std::chrono::milliseconds within) {
  if (!impl_->open) return true;
  char byte = 0;
  auto ec = impl_->run(within, [&](error_code& out) {
    impl_->stream.async_read_some(asio::buffer(&byte, 1),
                                  [&out](error_code e, std::size_t) { out = e; });
  });
  const bool closed = ec == asio::error::eof || ec == asio::error::connection_reset;
  if (!ec) ADD_FAILURE() << "the server sent bytes on an idle connection";
  impl_->reset();
  return closed;
}

}  // namespace sessiond::http_test
