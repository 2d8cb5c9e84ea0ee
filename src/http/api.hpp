// The HTTP API of SPEC §5: registers every route on a Router and maps JSON to SessionService calls.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <functional>
#include <unordered_map>

#include "core/config.hpp"
#include "http/message.hpp"
#include "http/metrics.hpp"
#include "http/router.hpp"
#include "service/session_service.hpp"

namespace sessiond::http {

class Api {
 public:
  Api(const Config& config, service::SessionService& service, Metrics& metrics);

  // Handles one request end to end: routing, errors, metrics. Never throws.
  boost::asio::awaitable<Response> handle(Request& request);

  // While draining at shutdown /readyz answers 503.
  void set_draining() { draining_ = true; }

 private:
  void add_routes();
  const Config& config_;
  service::SessionService& service_;
  Metrics& metrics_;
  Router router_;
  // Filled once after the routes are added; read without a lock on every request.
  std::unordered_map<const std::string*, Metrics::Series*> series_;
  Metrics::Series* unmatched_ = nullptr;
  std::atomic<bool> draining_{false};
};

}  // namespace sessiond::http
