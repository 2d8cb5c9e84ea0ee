// Blocking on the outside, asynchronous inside: each step is a Beast/Asio operation run to
// completion on a private io_context, because tcp_stream deadlines apply to async operations only.
#include "cli/http_client.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <poll.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <optional>

namespace sessiond::cli {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using asio::ip::tcp;
using boost::system::error_code;
using Deadline = std::chrono::steady_clock::time_point;

namespace {

// The largest answer read: a full page of events (1000) is well under 1 MiB.
constexpr std::uint64_t kMaxBody = 16 * 1024 * 1024;

std::string seconds_text(std::chrono::milliseconds d) {
  const auto ms = d.count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  return std::to_string(ms) + " ms";
}

}  // namespace

struct HttpClient::Impl {
  ServerUrl server;
  HttpOptions options;
  asio::io_context io{1};
  std::optional<ssl::context> tls_context;  // built on the first https connection
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;

  Impl(ServerUrl s, HttpOptions o) : server(std::move(s)), options(std::move(o)) {}

  bool open() const { return plain != nullptr || secure != nullptr; }
  beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }

  void run() {
    io.restart();
    io.run();
  }

  void close() {
    if (open()) {
      error_code ignored;
      lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
      lowest().socket().close(ignored);
    }
    secure.reset();
    plain.reset();
    buffer.clear();
  }

  // A kept-alive connection has nothing to read between answers: readable means the server
  // closed it (its idle timeout). Reconnecting then is cheaper than a failed write and a retry.
  bool closed_by_peer() {
    pollfd p{lowest().socket().native_handle(), POLLIN, 0};
    return ::poll(&p, 1, 0) != 0;
  }

  std::string url() const { return server.to_string(); }

  Failure timed_out() const {
    return Failure::unreachable(
        url() + " did not answer within " + seconds_text(options.timeout) +
        ": check that sessiond runs there, or give it longer with --timeout");
  }

  Failure failed(std::string_view doing, const error_code& ec) {
    if (ec == beast::error::timeout) return timed_out();
    if (ec == asio::error::connection_refused) {
      return Failure::unreachable("cannot connect to " + url() +
                                  ": connection refused. Is sessiond running there? Check "
                                  "--server (or SESSIONCTL_SERVER).");
    }
    if (ec.category() == asio::error::get_ssl_category()) return tls_failed(ec);
    if (ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == bhttp::error::end_of_stream || ec == ssl::error::stream_truncated) {
      return Failure::unreachable(url() + " closed the connection without answering (" +
                                  std::string(doing) + "): check --server and try again");
    }
    if (ec.category() == bhttp::make_error_code(bhttp::error::bad_version).category()) {
      return Failure::unreachable(url() + " did not answer in HTTP (" + ec.message() +
                                  "): check --server" +
                                  (server.tls ? "" : " (does it want https://?)"));
    }
    return Failure::unreachable("cannot " + std::string(doing) + " " + url() + ": " + ec.message() +
                                ". Check --server and your network.");
  }

  Failure tls_failed(const error_code& ec) {
    const int reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
    std::string why = ec.message();
    std::string next = "check --server";
    if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED && secure) {
      const long verify = SSL_get_verify_result(secure->native_handle());
      why = "the server's certificate is not trusted (" +
            std::string(X509_verify_cert_error_string(verify)) + ")";
      next = verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH
                 ? "connect with the name the certificate was issued for"
                 : "if it comes from a private CA, pass that CA's certificate with --cacert FILE";
    } else if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG) {
      why = "the server does not speak TLS there";
      next = "use http:// if sessiond serves plain HTTP";
    }
    return Failure::unreachable("TLS with " + url() + " failed: " + why + "; " + next + ".");
  }

  Outcome<void> ensure_tls_context() {
    if (tls_context) return {};
    ssl::context context(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(context.native_handle(), TLS1_2_VERSION);
    error_code ec;
    context.set_default_verify_paths(ec);  // the system's CAs; honours SSL_CERT_FILE
    if (!options.ca_file.empty()) {
      context.load_verify_file(options.ca_file, ec);
      if (ec) {
        return Failure::usage("--cacert " + options.ca_file +
                              ": cannot load it as PEM CA certificates (" + ec.message() + ")");
      }
    }
    context.set_verify_mode(ssl::verify_peer);
    tls_context.emplace(std::move(context));
    return {};
  }

  Outcome<void> connect(Deadline deadline) {
    if (server.tls) {
      if (auto ready = ensure_tls_context(); !ready) return ready.error();
    }
    // Name resolution has no stream deadline: a timer cancels it.
    tcp::resolver resolver(io);
    asio::steady_timer timer(io);
    error_code resolve_ec = asio::error::would_block;
    bool resolve_timed_out = false;
    tcp::resolver::results_type endpoints;
    resolver.async_resolve(server.host, std::to_string(server.port),
                           [&](const error_code& ec, tcp::resolver::results_type found) {
                             resolve_ec = ec;
                             endpoints = std::move(found);
                             timer.cancel();
                           });
    timer.expires_at(deadline);
    timer.async_wait([&](const error_code& ec) {
      if (!ec) {
        resolve_timed_out = true;
        resolver.cancel();
      }
    });
    run();
    if (resolve_timed_out) return timed_out();
    if (resolve_ec) {
      return Failure::unreachable("cannot find the server " + server.host + " (" +
                                  resolve_ec.message() + "): check --server");
    }

    auto stream = std::make_unique<beast::tcp_stream>(io);
    stream->expires_at(deadline);
    error_code connect_ec = asio::error::would_block;
    stream->async_connect(endpoints,
                          [&](const error_code& ec, const tcp::endpoint&) { connect_ec = ec; });
    run();
    if (connect_ec) return failed("connect to", connect_ec);
    stream->socket().set_option(tcp::no_delay(true));
    if (!server.tls) {
      plain = std::move(stream);
      return {};
    }

    secure =
        std::make_unique<beast::ssl_stream<beast::tcp_stream>>(std::move(*stream), *tls_context);
    SSL* handle = secure->native_handle();
    // OpenSSL checks the name itself, so a mismatch reports X509_V_ERR_HOSTNAME_MISMATCH.
    if (server.host_is_address()) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(handle), server.host.c_str());
    } else {
      SSL_set_tlsext_host_name(handle, server.host.c_str());
      SSL_set1_host(handle, server.host.c_str());
    }
    error_code handshake_ec = asio::error::would_block;
    beast::get_lowest_layer(*secure).expires_at(deadline);
    secure->async_handshake(ssl::stream_base::client,
                            [&](const error_code& ec) { handshake_ec = ec; });
    run();
    if (handshake_ec) {
      Failure f = failed("connect to", handshake_ec);
      close();
      return f;
    }
    return {};
  }

  template <class Stream>
  error_code exchange(Stream& stream, bhttp::request<bhttp::string_body>& request,
                      bhttp::response_parser<bhttp::string_body>& parser, Deadline deadline) {
    lowest().expires_at(deadline);
    error_code result = asio::error::would_block;
    bhttp::async_write(stream, request, [&](const error_code& ec, std::size_t) {
      if (ec) {
        result = ec;
        return;
      }
      bhttp::async_read(stream, buffer, parser,
                        [&](const error_code& read_ec, std::size_t) { result = read_ec; });
    });
    run();
    return result;
  }

  Outcome<HttpResponse> send(std::string_view method, std::string_view target,
                             const HttpHeaders& headers, std::string_view body) {
    const Deadline deadline = std::chrono::steady_clock::now() + options.timeout;
    if (open() && closed_by_peer()) close();
    if (!open()) {
      if (auto connected = connect(deadline); !connected) return connected.error();
    }

    bhttp::request<bhttp::string_body> request;
    request.method_string(method);
    request.target(server.base_path + std::string(target));
    request.version(11);
    request.set(bhttp::field::host, server.host_header());
    request.set(bhttp::field::user_agent, options.user_agent);
    for (const auto& [name, value] : headers) request.set(name, value);
    if (!body.empty() || method == "POST" || method == "PATCH" || method == "PUT") {
      request.body() = std::string(body);
      request.prepare_payload();
    }

    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(kMaxBody);
    const error_code ec = secure ? exchange(*secure, request, parser, deadline)
                                 : exchange(*plain, request, parser, deadline);
    if (ec) {
      Failure f = failed("talk to", ec);
      close();
      return f;
    }
    auto& message = parser.get();
    HttpResponse response;
    response.status = static_cast<int>(message.result_int());
    response.content_type = std::string(message[bhttp::field::content_type]);
    response.retry_after = std::string(message[bhttp::field::retry_after]);
    response.body = std::move(message.body());
    if (!message.keep_alive()) close();
    return response;
  }
};

HttpClient::HttpClient(ServerUrl server, HttpOptions options)
    : impl_(std::make_unique<Impl>(std::move(server), std::move(options))) {}
HttpClient::~HttpClient() {
  if (impl_) impl_->close();
}
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

Outcome<HttpResponse> HttpClient::send(std::string_view method, std::string_view target,
                                       const HttpHeaders& headers, std::string_view body) {
  return impl_->send(method, target, headers, body);
}

const ServerUrl& HttpClient::server() const { return impl_->server; }

}  // namespace sessiond::cli
