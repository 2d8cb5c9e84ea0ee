#include "http/problem.hpp"

#include <spdlog/spdlog.h>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace sessiond::http {

int status_for(Errc code) {
  switch (code) {
    case Errc::invalid_request: return 400;
    case Errc::invalid_credentials:
    case Errc::invalid_otp:
    case Errc::token_invalid:
    case Errc::token_expired:
    case Errc::session_expired:
    case Errc::session_revoked: return 401;
    case Errc::session_limit:
    case Errc::conflict: return 409;
    case Errc::csrf:
    case Errc::forbidden: return 403;
    case Errc::not_found: return 404;
    case Errc::method_not_allowed: return 405;
    case Errc::payload_too_large: return 413;
    case Errc::headers_too_large: return 431;
    case Errc::rate_limited: return 429;
    case Errc::store_unavailable:
    case Errc::database_unavailable:
    case Errc::upstream_unavailable: return 503;
    case Errc::internal: return 500;
  }
  return 500;
}

namespace {
std::string_view title_for(Errc code) {
  switch (code) {
    case Errc::invalid_request: return "Invalid request";
    case Errc::invalid_credentials: return "Invalid credentials";
    case Errc::invalid_otp: return "Invalid one-time code";
    case Errc::token_invalid: return "Invalid token";
    case Errc::token_expired: return "Token expired";
    case Errc::session_expired: return "Session expired";
    case Errc::session_revoked: return "Session revoked";
    case Errc::session_limit: return "Session limit reached";
    case Errc::csrf: return "CSRF check failed";
    case Errc::forbidden: return "Forbidden";
    case Errc::not_found: return "Not found";
    case Errc::conflict: return "Conflict";
    case Errc::method_not_allowed: return "Method not allowed";
    case Errc::payload_too_large: return "Payload too large";
    case Errc::headers_too_large: return "Request headers too large";
    case Errc::rate_limited: return "Too many requests";
    case Errc::store_unavailable: return "Session store unavailable";
    case Errc::database_unavailable: return "Database unavailable";
    case Errc::upstream_unavailable: return "Upstream service unavailable";
    case Errc::internal: return "Internal error";
  }
  return "Internal error";
}
std::string_view detail_for(Errc code) {
  switch (code) {
    case Errc::store_unavailable: return "the session store cannot be reached; try again shortly";
    case Errc::database_unavailable: return "the database cannot be reached; try again shortly";
    case Errc::upstream_unavailable: return "a service sessiond depends on did not answer; try again shortly";
    case Errc::internal: return "internal error";
    default: return title_for(code);
  }
}

}  // namespace

Response problem(const Error& error) {
  Response r;
  r.status = status_for(error.code);
  r.content_type = "application/problem+json";
  boost::json::object body;
  body["type"] = "about:blank";
  body["title"] = title_for(error.code);
  body["status"] = r.status;
  // Details of store and internal failures come from below the service (a connection error, an
  // address): they go to the log, not to clients.
  const bool internal_detail =
      error.code == Errc::store_unavailable || error.code == Errc::upstream_unavailable ||
      error.code == Errc::internal;
  if (internal_detail && !error.detail.empty())
    spdlog::debug("{}: {}", code_name(error.code), error.detail);
  body["detail"] = error.detail.empty() || internal_detail ? detail_for(error.code)
                                                           : std::string_view(error.detail);
  body["code"] = code_name(error.code);
  if (error.reason) body["reason"] = reason_name(*error.reason);
  if (error.code == Errc::rate_limited) {
    body["retry_after"] = error.retry_after_seconds;
    r.set_header("Retry-After", std::to_string(error.retry_after_seconds));
  }
  if (r.status == 401) {
    r.set_header("WWW-Authenticate", "Bearer realm=\"sessiond\"");
  }
  if (r.status == 503) r.set_header("Retry-After", "1");
  r.body = boost::json::serialize(body);
  return r;
}

}  // namespace sessiond::http
