#include <boost/json/object.hpp>
#include <cctype>
#include <chrono>
#include <ostream>

#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "cli/terminal.hpp"
#include "cli/user_session.hpp"

namespace sessiond::cli {

namespace json = boost::json;

namespace {

TimePoint now() { return std::chrono::floor<Duration>(std::chrono::system_clock::now()); }

std::string string_member(const json::value& v, std::string_view key) {
  if (!v.is_object()) return {};
  const auto* m = v.get_object().if_contains(key);
  return m != nullptr && m->is_string() ? std::string(m->get_string()) : std::string();
}

// "ada@example.com", else the mobile number, else "user 7".
std::string user_name(const json::value& user) {
  if (auto email = string_member(user, "email"); !email.empty()) return email;
  if (auto mobile = string_member(user, "mobile_number"); !mobile.empty()) return mobile;
  return "user " + text_member(user, "id");
}

std::string when(const json::value& object, std::string_view key) {
  auto t = time_member(object, key);
  return t ? local_time(*t) : "-";
}

std::string ago(const json::value& object, std::string_view key) {
  auto t = time_member(object, key);
  return t ? relative_time(*t, now()) : "-";
}

std::string plural(std::int64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

Failure with_message(Failure f, std::string message) {
  f.message = std::move(message);
  return f;
}

// The table of `sessions`; `mark_current` adds the "*" column.
Table sessions_table(const json::array& list, bool mark_current) {
  std::vector<std::string> header{"SESSION", "DEVICE", "IP", "SIGNED IN", "LAST ACTIVE"};
  if (mark_current) header.insert(header.begin(), "");
  Table table(std::move(header));
  for (const auto& s : list) {
    std::string ip = string_member(s, "last_ip");
    if (ip.empty()) ip = text_member(s, "ip_address");
    std::vector<std::string> row{text_member(s, "session_id"), text_member(s, "device_info"), ip,
                                 when(s, "created_at"), ago(s, "last_activity")};
    if (mark_current) {
      const auto* current = s.is_object() ? s.get_object().if_contains("current") : nullptr;
      row.insert(row.begin(),
                 current != nullptr && current->is_bool() && current->get_bool() ? "*" : "");
    }
    table.add(std::move(row));
  }
  return table;
}

// The token response of a sign-in by one-time code.
Outcome<json::value> sign_in_by_code(Api& api, const std::string& mobile) {
  auto sent = api.call("POST", "/api/v1/auth/otp/send", json::object{{"mobile_number", mobile}});
  if (!sent) {
    if (sent.error().status == 404) {
      return with_message(sent.error(), api.server().to_string() +
                                            " does not offer sign-in by SMS code (POST "
                                            "/api/v1/auth/otp/send answered 404): sign in with "
                                            "--email instead");
    }
    if (sent.error().code == "invalid_request") {
      return with_message(sent.error(), "the server refused the number " + mobile + ": " +
                                            sent.error().detail +
                                            " (write it in E.164, e.g. +4915112345678)");
    }
    return sent.error();
  }
  std::string valid;
  if (const auto* s = sent->is_object() ? sent->get_object().if_contains("expires_in") : nullptr;
      s != nullptr && s->is_int64()) {
    const auto seconds = s->get_int64();
    valid = seconds < 60 ? " (valid for " + std::to_string(seconds) + " s)"
                         : " (valid for " + std::to_string((seconds + 59) / 60) + " min)";
  }
  auto code = read_line("A code was sent to " + mobile + valid + ". Code: ", "the code");
  if (!code) return code.error();
  auto tokens = api.call("POST", "/api/v1/auth/otp/verify",
                         json::object{{"mobile_number", mobile}, {"otp", *code}});
  if (!tokens && tokens.error().code == "invalid_otp") {
    return with_message(tokens.error(),
                        "that code is not right, or it has expired or been used: run `sessionctl "
                        "login --mobile '" +
                            mobile + "'` again for a new code");
  }
  return tokens;
}

Outcome<json::value> sign_in_by_password(Api& api, const std::string& email) {
  auto password = read_secret("Password for " + email + ": ", "the password");
  if (!password) return password.error();
  auto tokens = api.call("POST", "/api/v1/auth/login",
                         json::object{{"email", email}, {"password", *password}});
  if (!tokens && tokens.error().code == "invalid_credentials") {
    return with_message(tokens.error(),
                        "the email or password is not correct: check them and try again");
  }
  return tokens;
}

}  // namespace

bool is_session_id(std::string_view text) {
  if (text.size() != 36) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

Outcome<void> login(Context& ctx, const LoginOptions& options) {
  auto file = ctx.token_file();
  if (!file) return file.error();
  auto previous = file->load();
  if (!previous) return previous.error();
  auto server = ctx.server(previous->has_value() ? &**previous : nullptr);
  if (!server) return server.error();
  Api api = ctx.api(*server);

  auto tokens = options.email.empty() ? sign_in_by_code(api, options.mobile)
                                      : sign_in_by_password(api, options.email);
  if (!tokens) {
    if (tokens.error().code == "session_limit") {
      return with_message(tokens.error(),
                          "this account already has as many sessions as its role allows: sign "
                          "one out from another device (`sessionctl revoke ID`), or ask an "
                          "administrator");
    }
    return tokens.error();
  }
  auto session = session_from_tokens(*server, *tokens);
  if (!session) return session.error();

  // The session this one replaces would otherwise stay alive on its server, unreachable.
  if (previous->has_value() && (*previous)->session_id != session->session_id) {
    if (auto old = UserSession::adopt(ctx, *file, **previous); old) {
      (void)old->call("POST", "/api/v1/auth/logout");
    }
  }
  if (auto saved = file->save(*session); !saved) return saved.error();

  if (ctx.json()) {
    ctx.print_json(json::object{{"server", session->server},
                                {"session_id", session->session_id},
                                {"user", session->user},
                                {"access_expires_at", format_rfc3339(session->access_expires_at)}});
  } else {
    ctx.out() << "Signed in to " << session->server << " as " << user_name(session->user) << " ("
              << text_member(session->user, "role") << ").\n"
              << "Session " << session->session_id << ", saved in " << file->path().string()
              << ".\n";
  }
  return {};
}

Outcome<void> whoami(Context& ctx) {
  auto session = UserSession::restore(ctx);
  if (!session) return session.error();
  auto me = session->call("GET", "/api/v1/me");
  if (!me) return me.error();
  if (ctx.json()) {
    ctx.print_json(*me);
    return {};
  }
  const json::value user = me->is_object() && me->get_object().contains("user")
                               ? me->get_object().at("user")
                               : json::value();
  const json::value s = me->is_object() && me->get_object().contains("session")
                            ? me->get_object().at("session")
                            : json::value();
  Table table({"user", user_name(user) + " (id " + text_member(user, "id") + ", role " +
                           text_member(user, "role") + ")"});
  table.add({"session", text_member(s, "session_id")});
  table.add({"device", text_member(s, "device_info") + ", " + text_member(s, "last_ip")});
  table.add({"signed in", when(s, "created_at")});
  table.add({"expires", when(s, "expires_at") + " unless used (" + ago(s, "expires_at") +
                            "), at the latest " + when(s, "absolute_expires_at")});
  table.add({"server", session->server().to_string()});
  table.print(ctx.out());
  return {};
}

Outcome<void> sessions(Context& ctx) {
  auto session = UserSession::restore(ctx);
  if (!session) return session.error();
  auto list = session->call("GET", "/api/v1/sessions");
  if (!list) return list.error();
  if (ctx.json()) {
    ctx.print_json(*list);
    return {};
  }
  if (!list->is_array()) return Failure::unreachable("the session list is not a list");
  sessions_table(list->get_array(), true).print(ctx.out());
  ctx.out() << "(* this session; end one with `sessionctl revoke ID`, all others with "
               "`sessionctl revoke --others`)\n";
  return {};
}

Outcome<void> revoke(Context& ctx, const RevokeOptions& options) {
  if (options.others == !options.session_id.empty()) {
    return Failure::usage("revoke needs a SESSION_ID or --others (not both)");
  }
  if (!options.others && !is_session_id(options.session_id)) {
    return Failure::usage(options.session_id +
                          " is not a session id: run `sessionctl sessions` to see yours");
  }
  auto session = UserSession::restore(ctx);
  if (!session) return session.error();

  if (!options.others) {
    auto done = session->call("DELETE", "/api/v1/sessions/" + options.session_id);
    if (!done) {
      if (done.error().code == "not_found") {
        return with_message(done.error(), "none of your live sessions has the id " +
                                              options.session_id +
                                              ": run `sessionctl sessions` to see them");
      }
      return done.error();
    }
    const bool current = options.session_id == session->saved().session_id;
    if (current) session->forget();
    if (ctx.json()) {
      ctx.print_json(
          json::object{{"revoked", 1}, {"session_id", options.session_id}, {"current", current}});
    } else if (current) {
      ctx.out() << "Signed out this session (" << options.session_id << ").\n";
    } else {
      ctx.out() << "Signed out session " << options.session_id << ".\n";
    }
    return {};
  }

  auto list = session->call("GET", "/api/v1/sessions");
  if (!list) return list.error();
  json::array others;
  if (list->is_array()) {
    for (const auto& s : list->get_array()) {
      const auto* current = s.is_object() ? s.get_object().if_contains("current") : nullptr;
      if (current == nullptr || !current->is_bool() || !current->get_bool()) others.push_back(s);
    }
  }
  if (others.empty()) {
    if (ctx.json()) {
      ctx.print_json(json::object{{"revoked", 0}});
    } else {
      ctx.out() << "No other sessions.\n";
    }
    return {};
  }
  if (!options.yes && stdin_is_terminal()) {
    sessions_table(others, false).print(ctx.err());
    const auto question = others.size() == 1
                              ? std::string("Sign out this session?")
                              : "Sign out " + std::to_string(others.size()) + " sessions?";
    if (!confirm(question)) {
      return Failure::refused("cancelled: no session was signed out");
    }
  }
  auto done = session->call("DELETE", "/api/v1/sessions");
  if (!done) return done.error();
  std::int64_t n = 0;
  if (const auto* v = done->is_object() ? done->get_object().if_contains("revoked") : nullptr;
      v != nullptr && v->is_int64()) {
    n = v->get_int64();
  }
  if (ctx.json()) {
    ctx.print_json(json::object{{"revoked", n}});
  } else {
    ctx.out() << "Signed out " << plural(n, "other session", "other sessions") << ".\n";
  }
  return {};
}

Outcome<void> logout(Context& ctx) {
  auto file = ctx.token_file();
  if (!file) return file.error();
  auto saved = file->load();
  if (!saved) return saved.error();
  if (!saved->has_value()) {
    if (ctx.json()) {
      ctx.print_json(json::object{{"signed_out", false}});
    } else {
      ctx.out() << "Not signed in: nothing to do.\n";
    }
    return {};
  }
  auto session = UserSession::restore(ctx);
  if (!session) return session.error();
  auto done = session->call("POST", "/api/v1/auth/logout");
  if (!done) {
    if (done.error().status != 401) return done.error();
    // The session was already over (and its file is gone): what logout is for has happened.
    if (ctx.json()) {
      ctx.print_json(json::object{
          {"signed_out", false}, {"code", done.error().code}, {"reason", done.error().reason}});
    } else {
      ctx.out() << "The session had already ended: "
                << why_session_ended(done.error().code, done.error().reason) << ".\n";
    }
    return {};
  }
  session->forget();
  if (ctx.json()) {
    ctx.print_json(json::object{{"signed_out", true}, {"session_id", session->saved().session_id}});
  } else {
    ctx.out() << "Signed out of " << session->server().to_string() << ".\n";
  }
  return {};
}

Outcome<void> passwd(Context& ctx) {
  auto session = UserSession::restore(ctx);
  if (!session) return session.error();
  auto current = read_secret("Current password: ", "the current password");
  if (!current) return current.error();
  auto next = read_secret("New password: ", "the new password");
  if (!next) return next.error();
  if (stdin_is_terminal()) {
    auto again = read_secret("New password again: ", "the new password");
    if (!again) return again.error();
    if (*again != *next) {
      return Failure::usage("the two new passwords differ: nothing was changed, try again");
    }
  }
  auto done = session->call("POST", "/api/v1/me/password",
                            json::object{{"current_password", *current}, {"new_password", *next}});
  if (!done) {
    if (done.error().code == "invalid_credentials") {
      return with_message(done.error(), "the current password is not correct: nothing was changed");
    }
    if (done.error().code == "invalid_request") {
      return with_message(done.error(),
                          "the server refused the new password: " + done.error().detail);
    }
    return done.error();
  }
  if (ctx.json()) {
    ctx.print_json(json::object{{"password_changed", true}});
  } else {
    ctx.out() << "Password changed. Your other sessions were signed out; this one goes on.\n";
  }
  return {};
}

}  // namespace sessiond::cli
