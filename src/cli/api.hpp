// sessiond's HTTP API as sessionctl calls it: JSON in and out, and every answer that is not a
// success turned into a Failure that says what happened and what to do next.
#pragma once

#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "cli/failure.hpp"
#include "cli/http_client.hpp"

namespace sessiond::cli {

inline constexpr std::string_view kUserAgent = "sessionctl/0.1.0";

class Api {
 public:
  Api(ServerUrl server, HttpOptions options);

  // Sends `body` as JSON (when given) with `Authorization: Bearer <bearer>` (when not empty) and
  // returns the answer's JSON (null for an empty answer such as 204). Failure:
  // - unreachable: the server cannot be reached, answers 502/503/504 (try again later), or does
  //   not answer like sessiond (a success that is not JSON);
  // - refused: any other error status; `status`, `code`, `reason` and `detail` come from the
  //   problem+json body, and `message` is a generic sentence that commands may replace.
  Outcome<boost::json::value> call(std::string_view method, std::string_view target,
                                   const std::optional<boost::json::value>& body = std::nullopt,
                                   std::string_view bearer = {});

  const ServerUrl& server() const { return http_.server(); }

 private:
  HttpClient http_;
};

// Why a session ended, for a person, from the problem's `code` and `reason` (SPEC §4):
// "an administrator ended it (revoked_by_admin)".
std::string why_session_ended(std::string_view code, std::string_view reason);

// True for the codes that mean the session behind a token is over (session_revoked,
// session_expired).
bool is_session_ended(const Failure& f);

}  // namespace sessiond::cli
