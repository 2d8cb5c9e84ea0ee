#include "core/error.hpp"

#include <array>
#include <stdexcept>
#include <utility>

namespace sessiond {

std::string_view code_name(Errc code) {
  switch (code) {
    case Errc::invalid_request: return "invalid_request";
    case Errc::invalid_credentials: return "invalid_credentials";
    case Errc::invalid_otp: return "invalid_otp";
    case Errc::token_invalid: return "token_invalid";
    case Errc::token_expired: return "token_expired";
    case Errc::session_expired: return "session_expired";
    case Errc::session_revoked: return "session_revoked";
    case Errc::session_limit: return "session_limit";
    case Errc::csrf: return "csrf";
    case Errc::forbidden: return "forbidden";
    case Errc::not_found: return "not_found";
    case Errc::conflict: return "conflict";
    case Errc::method_not_allowed: return "method_not_allowed";
    case Errc::payload_too_large: return "payload_too_large";
    case Errc::headers_too_large: return "headers_too_large";
    case Errc::rate_limited: return "rate_limited";
    case Errc::store_unavailable: return "store_unavailable";
    case Errc::database_unavailable: return "database_unavailable";
    case Errc::upstream_unavailable: return "upstream_unavailable";
    case Errc::internal: return "internal";
  }
  return "internal";
}

namespace {
constexpr std::array<std::pair<EndReason, std::string_view>, 10> kReasons{{
    {EndReason::logout, "logout"},
    {EndReason::revoked_by_user, "revoked_by_user"},
    {EndReason::revoked_others, "revoked_others"},
    {EndReason::revoked_by_admin, "revoked_by_admin"},
    {EndReason::max_sessions_exceeded, "max_sessions_exceeded"},
    {EndReason::expired, "expired"},
    {EndReason::refresh_token_reuse, "refresh_token_reuse"},
    {EndReason::password_changed, "password_changed"},
    {EndReason::user_disabled, "user_disabled"},
    {EndReason::role_changed, "role_changed"},
}};
}  // namespace

std::string_view reason_name(EndReason reason) {
  for (const auto& [r, name] : kReasons) {
    if (r == reason) return name;
  }
  return "expired";
}

std::optional<EndReason> parse_reason(std::string_view name) {
  for (const auto& [r, n] : kReasons) {
    if (n == name) return r;
  }
  return std::nullopt;
}

void throw_exception_from_error(const Error& e, const boost::source_location& /*loc*/) {
  throw std::runtime_error(std::string("unchecked error: ") + std::string(code_name(e.code)) +
                           (e.detail.empty() ? "" : ": " + e.detail));
}

}  // namespace sessiond
