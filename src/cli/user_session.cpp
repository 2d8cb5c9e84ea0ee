#include "cli/user_session.hpp"

#include <chrono>

namespace sessiond::cli {

namespace json = boost::json;

namespace {

// Refresh a little before the access token expires: the request still has to reach the server.
constexpr std::chrono::seconds kRefreshAhead{5};

TimePoint now() { return std::chrono::floor<Duration>(std::chrono::system_clock::now()); }

std::string string_member(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

bool is_token_rejected(const Failure& f) {
  return f.status == 401 && (f.code == "token_expired" || f.code == "token_invalid");
}

}  // namespace

Outcome<SavedSession> session_from_tokens(const ServerUrl& server, const json::value& answer) {
  const auto bad = [&server] {
    return Failure::unreachable(server.to_string() +
                                " did not answer with tokens as sessiond does: check --server");
  };
  if (!answer.is_object()) return bad();
  const json::object& o = answer.get_object();
  SavedSession s;
  s.server = server.to_string();
  s.access_token = string_member(o, "access_token");
  s.refresh_token = string_member(o, "refresh_token");
  s.session_id = string_member(o, "session_id");
  const auto* expires_in = o.if_contains("expires_in");
  if (s.access_token.empty() || s.refresh_token.empty() || s.session_id.empty() ||
      expires_in == nullptr || !expires_in->is_int64()) {
    return bad();
  }
  s.access_expires_at = now() + std::chrono::seconds(expires_in->get_int64());
  if (const auto* user = o.if_contains("user"); user != nullptr && user->is_object()) {
    s.user = user->get_object();
  }
  return s;
}

std::string login_hint(const SavedSession& saved) {
  std::string hint = "sessionctl";
  auto server = ServerUrl::parse(saved.server);
  auto default_server = ServerUrl::parse(kDefaultServer);
  if (server && default_server && server->to_string() != default_server->to_string()) {
    hint += " --server " + server->to_string();
  }
  const std::string email = string_member(saved.user, "email");
  const std::string mobile = string_member(saved.user, "mobile_number");
  if (!email.empty()) return hint + " login --email " + email;
  if (!mobile.empty()) return hint + " login --mobile " + mobile;
  return hint + " login --email EMAIL";
}

Outcome<UserSession> UserSession::restore(Context& ctx) {
  auto file = ctx.token_file();
  if (!file) return file.error();
  auto loaded = file->load();
  if (!loaded) return loaded.error();
  if (!loaded->has_value()) {
    return Failure::refused("not signed in: run `sessionctl login --email EMAIL` first");
  }
  SavedSession saved = std::move(**loaded);
  auto own = ServerUrl::parse(saved.server);
  if (!own) {
    return Failure::usage(file->path().string() +
                          " names no valid server: remove it and sign in again");
  }
  if (ctx.globals().server) {
    auto asked = ServerUrl::parse(*ctx.globals().server);
    if (!asked) return asked.error();
    if (asked->to_string() != own->to_string()) {
      return Failure::usage("you are signed in to " + own->to_string() + ", not " +
                            asked->to_string() +
                            ": leave out --server (and SESSIONCTL_SERVER), or run `sessionctl "
                            "logout` and sign in to " +
                            asked->to_string());
    }
  }
  return UserSession(std::move(*file), std::move(saved), ctx.api(*own));
}

Outcome<UserSession> UserSession::adopt(Context& ctx, TokenFile file, SavedSession saved) {
  auto own = ServerUrl::parse(saved.server);
  if (!own) {
    return Failure::usage(file.path().string() +
                          " names no valid server: remove it and sign in again");
  }
  return UserSession(std::move(file), std::move(saved), ctx.api(*own));
}

Outcome<json::value> UserSession::call(std::string_view method, std::string_view target,
                                       const std::optional<json::value>& body) {
  bool refreshed = false;
  if (now() + kRefreshAhead >= saved_.access_expires_at) {
    if (auto r = refresh(); !r) return r.error();
    refreshed = true;
  }
  auto answer = api_.call(method, target, body, saved_.access_token);
  // The server's clock decides: a token this machine thought valid may have expired there.
  if (!answer && !refreshed && is_token_rejected(answer.error())) {
    if (auto r = refresh(); !r) return r.error();
    answer = api_.call(method, target, body, saved_.access_token);
  }
  if (!answer && (is_session_ended(answer.error()) || is_token_rejected(answer.error()))) {
    return ended(answer.error());
  }
  return answer;
}

Outcome<void> UserSession::refresh() {
  auto answer = api_.call("POST", "/api/v1/auth/refresh",
                          json::object{{"refresh_token", saved_.refresh_token}});
  if (!answer) {
    if (answer.error().status == 401) return ended(answer.error());
    return answer.error();
  }
  auto next = session_from_tokens(api_.server(), *answer);
  if (!next) return next.error();
  if (next->user.empty()) next->user = saved_.user;
  saved_ = std::move(*next);
  // The old refresh token is spent: without this write the session would be lost.
  if (auto saved = file_.save(saved_); !saved) {
    Failure f = saved.error();
    f.message += " (the session's new tokens could not be saved: sign in again)";
    return f;
  }
  return {};
}

void UserSession::forget() const { file_.remove(); }

Failure UserSession::ended(const Failure& from_server) const {
  forget();
  Failure f = from_server;
  f.exit = Exit::refused;
  f.message = "your session on " + saved_.server +
              " has ended: " + why_session_ended(from_server.code, from_server.reason) +
              ". Sign in again: " + login_hint(saved_);
  return f;
}

}  // namespace sessiond::cli
