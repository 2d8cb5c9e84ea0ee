// Domain errors shared by every layer, and the result type fallible calls return.
#pragma once

#include <boost/system/result.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace sessiond {

// Stable error codes (SPEC §5). The http layer maps each to a status and a problem+json body.
enum class Errc {
  invalid_request,
  invalid_credentials,
  invalid_otp,
  token_invalid,
  token_expired,
  session_expired,
  session_revoked,
  session_limit,
  csrf,
  forbidden,
  not_found,
  conflict,  // a unique value is taken (email, mobile number); answered 409
  method_not_allowed,
  payload_too_large,
  headers_too_large,
  rate_limited,
  store_unavailable,
  database_unavailable,
  // An outside service sessiond depends on for this request (the SMS gateway of otp.sender) did
  // not answer or refused: 503 upstream_unavailable. Not in SPEC §5's list: sessiond's addition.
  upstream_unavailable,
  internal,
};

// The code as it appears in problem+json bodies ("session_revoked").
std::string_view code_name(Errc code);

// Why a session ended (SPEC §4).
enum class EndReason {
  logout,
  revoked_by_user,
  revoked_others,
  revoked_by_admin,
  max_sessions_exceeded,
  expired,
  refresh_token_reuse,
  password_changed,
  user_disabled,
  role_changed,
};

std::string_view reason_name(EndReason reason);
std::optional<EndReason> parse_reason(std::string_view name);

// A failed call: a stable code, the end reason when a session ended, and a human detail that never
// contains a token, a password or an internal message.
struct Error {
  Errc code = Errc::internal;
  std::optional<EndReason> reason;
  std::string detail;
  int retry_after_seconds = 0;  // with rate_limited

  Error() = default;
  // NOLINTNEXTLINE: implicit by design
  Error(Errc c, std::string d = {}) : code(c), detail(std::move(d)) {}
  static Error ended(Errc c, EndReason r) {
    Error e(c);
    e.reason = r;
    return e;
  }
};

template <class T>
using Result = boost::system::result<T, Error>;

// Lets Result<T>::value() throw when misused (a bug, never expected traffic).
[[noreturn]] void throw_exception_from_error(const Error& e, const boost::source_location& loc);

}  // namespace sessiond
