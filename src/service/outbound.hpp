// Outbound HTTP: how the service reaches an SMS gateway (otp.sender = "webhook:URL") and the
// webhook receiver ([webhooks] url). The interface lives here so the service stays transport-free;
// http/outbound.hpp implements it with Beast (http:// and https://).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/time.hpp"

namespace sessiond::service {

struct OutboundRequest {
  std::string url;  // http://host[:port]/path or https://...
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // sent as POST with Content-Length
  std::string content_type = "application/json";
  Duration timeout{std::chrono::seconds{5}};  // for the whole call: connect, send, read
};

struct OutboundResponse {
  int status = 0;
  std::string body;  // at most 64 KiB are kept
};

class Outbound {
 public:
  virtual ~Outbound() = default;
  // POSTs the request and reads the answer, whatever its status. Errors: invalid_request when the
  // URL is not http(s)://host[:port][/path]; upstream_unavailable when name resolution, connect,
  // TLS (certificate chain or host name), the timeout or a malformed answer fails the call.
  // May be called concurrently from any io thread; the caller resumes on its own executor.
  virtual boost::asio::awaitable<Result<OutboundResponse>> post(OutboundRequest request) = 0;
};

}  // namespace sessiond::service
