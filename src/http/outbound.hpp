// service::Outbound on Beast: POSTs to http:// and https:// URLs, with keep-alive.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <string>

#include "service/outbound.hpp"

namespace sessiond::http {

// POSTs over HTTP/1.1 and reads the answer, whatever its status.
//
// - URL: http or https, host (name, IPv4, [IPv6]), optional port (80/443 by default), path and
//   query; user information or another scheme -> invalid_request. Request headers that would
//   change the framing (Host, Content-Length, Transfer-Encoding, Connection) or hold CR, LF or
//   NUL -> invalid_request.
// - One deadline, request.timeout, covers resolve, connect, TLS handshake, write and read.
// - https: the peer's chain is verified against the system's CAs (honouring SSL_CERT_FILE and
//   SSL_CERT_DIR) plus `ca_file` when given; the host name (or IP address) must match the
//   certificate; SNI is sent for names.
// - Answer bodies: the first 64 KiB are kept; a longer body is cut there (the call succeeds with
//   the first 64 KiB) and the connection is closed rather than read to its end.
// - Keep-alive: idle connections are pooled per io_context, per caller executor and per origin
//   (scheme, host, port, and for https the trust settings), at most 4 per origin, for at most 30 s.
//   A pooled connection the server has closed is dropped before use; a request on a reused
//   connection that fails before any byte of an answer arrived is sent once more on a new one
//   (POST is not idempotent: the receiver may see it twice if it acted before closing).
// - Errors: upstream_unavailable for every transport failure (resolve, connect, TLS, timeout,
//   malformed answer, connection closed); the detail names the origin and the step, never the
//   body, the path or a header value.
//
// post() may be called concurrently from any number of threads and io_contexts; each call runs on
// the caller's executor. The object must outlive the calls it runs. Idle connections belong to
// their io_context and are closed when it is destroyed.
class BeastOutbound final : public service::Outbound {
 public:
  // `ca_file`: a PEM file of extra trusted certificates (tests, private CAs). Throws
  // std::runtime_error when it cannot be loaded.
  explicit BeastOutbound(std::string ca_file = {});
  ~BeastOutbound() override;
  BeastOutbound(const BeastOutbound&) = delete;
  BeastOutbound& operator=(const BeastOutbound&) = delete;

  boost::asio::awaitable<Result<service::OutboundResponse>> post(
      service::OutboundRequest request) override;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

}  // namespace sessiond::http
