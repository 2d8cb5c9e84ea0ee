#include "cli/api.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace sessiond::cli {

namespace json = boost::json;

namespace {

std::string string_member(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

bool is_json(std::string_view content_type) {
  return content_type.find("json") != std::string_view::npos;
}

}  // namespace

Api::Api(ServerUrl server, HttpOptions options) : http_(std::move(server), std::move(options)) {}

Outcome<json::value> Api::call(std::string_view method, std::string_view target,
                               const std::optional<json::value>& body, std::string_view bearer) {
  HttpHeaders headers{{"Accept", "application/json"}};
  std::string text;
  if (body) {
    headers.emplace_back("Content-Type", "application/json");
    text = json::serialize(*body);
  }
  if (!bearer.empty()) headers.emplace_back("Authorization", "Bearer " + std::string(bearer));
  auto answer = http_.send(method, target, headers, text);
  if (!answer) return answer.error();
  const HttpResponse& r = *answer;
  const std::string where = std::string(method) + " " + server().to_string() + std::string(target);

  boost::system::error_code ec;
  json::value parsed = r.body.empty() ? json::value() : json::parse(r.body, ec);
  const bool parsed_ok = !ec && (r.body.empty() || is_json(r.content_type));

  if (r.status >= 200 && r.status < 300) {
    if (!parsed_ok) {
      return Failure::unreachable(where + " answered HTTP " + std::to_string(r.status) +
                                  " with something that is not sessiond's JSON (" +
                                  (r.content_type.empty() ? "no Content-Type" : r.content_type) +
                                  "): check --server");
    }
    return parsed;
  }

  Failure f;
  f.status = r.status;
  f.exit =
      (r.status == 502 || r.status == 503 || r.status == 504) ? Exit::unreachable : Exit::refused;
  if (!parsed_ok || !parsed.is_object() || !parsed.get_object().contains("code")) {
    f.message = where + " answered HTTP " + std::to_string(r.status) +
                ", and not in sessiond's problem format: check --server" +
                (f.exit == Exit::unreachable ? ", or try again shortly" : "");
    return f;
  }
  const json::object& problem = parsed.get_object();
  f.code = string_member(problem, "code");
  f.reason = string_member(problem, "reason");
  f.detail = string_member(problem, "detail");
  const std::string said = f.detail.empty() ? f.code : f.detail + " (" + f.code + ")";
  if (f.code == "rate_limited") {
    std::string wait = r.retry_after;
    if (const auto* s = problem.if_contains("retry_after"); s != nullptr && s->is_int64()) {
      wait = std::to_string(s->get_int64());
    }
    f.message = "too many attempts: try again" + (wait.empty() ? " later" : " in " + wait + " s");
  } else if (f.exit == Exit::unreachable) {
    // sessiond's own details of a 503 already say "try again shortly".
    f.message = "the server cannot serve right now: " + said;
    if (f.detail.find("try again") == std::string::npos) f.message += "; try again shortly";
  } else if (r.status >= 500) {
    f.message = "the server failed: " + said + "; try again, and tell its operator if it persists";
  } else {
    f.message = "the server said no: " + said;
  }
  return f;
}

std::string why_session_ended(std::string_view code, std::string_view reason) {
  std::string why;
  if (reason == "logout") {
    why = "it was signed out";
  } else if (reason == "revoked_by_user") {
    why = "it was signed out from another of your sessions";
  } else if (reason == "revoked_others") {
    why = "another of your sessions signed out all the others";
  } else if (reason == "revoked_by_admin") {
    why = "an administrator ended it";
  } else if (reason == "max_sessions_exceeded") {
    why = "a newer sign-in took its place (your account may have only so many sessions at once)";
  } else if (reason == "expired") {
    why = "it expired (unused for too long, or past its maximum lifetime)";
  } else if (reason == "refresh_token_reuse") {
    why =
        "its refresh token was used twice, which can mean someone copied it, so the server "
        "ended it";
  } else if (reason == "password_changed") {
    why = "the account's password was changed";
  } else if (reason == "user_disabled") {
    why = "the account was disabled";
  } else if (reason == "role_changed") {
    why = "the account's role was changed";
  } else if (code == "session_expired") {
    why = "it expired";
  } else if (code == "token_invalid") {
    why = "the server no longer accepts its tokens";
  } else {
    why = "the server ended it";
  }
  return why + " (" + std::string(reason.empty() ? code : reason) + ")";
}

bool is_session_ended(const Failure& f) {
  return f.status == 401 && (f.code == "session_revoked" || f.code == "session_expired");
}

}  // namespace sessiond::cli
