#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/url.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <ostream>
#include <thread>

#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "cli/terminal.hpp"
#include "cli/user_session.hpp"

namespace sessiond::cli {

namespace json = boost::json;
namespace urls = boost::urls;

namespace {

TimePoint now() { return std::chrono::floor<Duration>(std::chrono::system_clock::now()); }

std::string trim(std::string_view text) {
  const auto* ws = " \t\r\n";
  const auto first = text.find_first_not_of(ws);
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(ws);
  return std::string(text.substr(first, last - first + 1));
}

const json::value* member(const json::value& v, std::string_view key) {
  return v.is_object() ? v.get_object().if_contains(key) : nullptr;
}

std::int64_t int_member(const json::value& v, std::string_view key) {
  const auto* m = member(v, key);
  return m != nullptr && m->is_int64() ? m->get_int64() : 0;
}

Failure with_message(Failure f, std::string message) {
  f.message = std::move(message);
  return f;
}

// Who calls the admin API: the admin key, or else the saved session (its role must be one of the
// server's admin.roles).
class AdminCaller {
 public:
  static Outcome<AdminCaller> open(Context& ctx, const AdminOptions& admin) {
    std::string key;
    std::string key_source;
    if (!admin.key_file.empty()) {
      std::ifstream in(admin.key_file);
      if (!in) {
        return Failure::usage("cannot read the admin key file " + admin.key_file + " (" +
                              std::strerror(errno) +
                              "): sessiond keeps its key in <data_dir>/admin.key");
      }
      std::string line;
      std::getline(in, line);
      key = trim(line);
      if (key.empty()) return Failure::usage("the admin key file " + admin.key_file + " is empty");
      key_source = "the key in " + admin.key_file;
    } else if (const char* env = std::getenv("SESSIOND_ADMIN_KEY"); env != nullptr) {
      key = trim(env);
      key_source = "the key in SESSIOND_ADMIN_KEY";
    }

    auto file = ctx.token_file();
    if (!key.empty()) {
      // The saved session only tells which server to call; a broken file does not matter here.
      std::optional<SavedSession> saved;
      if (file) {
        if (auto loaded = file->load(); loaded && loaded->has_value()) saved = std::move(**loaded);
      }
      auto server = ctx.server(saved ? &*saved : nullptr);
      if (!server) return server.error();
      return AdminCaller(ctx.api(*server), std::move(key), std::move(key_source));
    }

    if (!file) return file.error();
    auto loaded = file->load();
    if (!loaded) return loaded.error();
    if (!loaded->has_value()) {
      return Failure::usage(
          "no admin key: pass --admin-key-file FILE (sessiond's <data_dir>/admin.key) or set "
          "SESSIOND_ADMIN_KEY, or sign in as a user whose role may use the admin API");
    }
    auto session = UserSession::restore(ctx);
    if (!session) return session.error();
    return AdminCaller(std::move(*session));
  }

  Outcome<json::value> call(std::string_view method, std::string_view target,
                            const std::optional<json::value>& body = std::nullopt) {
    if (session_) {
      auto answer = session_->call(method, target, body);
      if (!answer && answer.error().code == "forbidden") {
        return with_message(answer.error(),
                            "your session's role (" + role_of_session() +
                                ") may not use the admin API: give the admin key with "
                                "--admin-key-file FILE or SESSIOND_ADMIN_KEY");
      }
      return answer;
    }
    auto answer = api_->call(method, target, body, key_);
    if (!answer && answer.error().status == 401) {
      return with_message(answer.error(),
                          "the server does not accept " + key_source_ +
                              " as its admin key: check --admin-key-file or SESSIOND_ADMIN_KEY "
                              "(sessiond keeps the key in <data_dir>/admin.key)");
    }
    return answer;
  }

 private:
  AdminCaller(Api api, std::string key, std::string source)
      : api_(std::move(api)), key_(std::move(key)), key_source_(std::move(source)) {}
  explicit AdminCaller(UserSession session) : session_(std::move(session)) {}

  std::string role_of_session() const {
    const auto* role = session_->saved().user.if_contains("role");
    return role != nullptr && role->is_string() ? std::string(role->get_string()) : "unknown";
  }

  std::optional<Api> api_;
  std::string key_;
  std::string key_source_;
  std::optional<UserSession> session_;
};

std::string when(const json::value& object, std::string_view key, bool seconds = false) {
  auto t = time_member(object, key);
  return t ? local_time(*t, seconds) : "-";
}

void print_user(Context& ctx, const json::value& user, std::string_view headline) {
  if (ctx.json()) {
    ctx.print_json(user);
    return;
  }
  if (!headline.empty()) ctx.out() << headline << "\n";
  const auto* disabled = member(user, "disabled");
  const auto* has_password = member(user, "has_password");
  Table table({"id", text_member(user, "id")});
  table.add({"email", text_member(user, "email")});
  table.add({"mobile", text_member(user, "mobile_number")});
  table.add({"role", text_member(user, "role")});
  table.add({"disabled",
             disabled != nullptr && disabled->is_bool() && disabled->get_bool() ? "yes" : "no"});
  table.add(
      {"password", has_password != nullptr && has_password->is_bool() && has_password->get_bool()
                       ? "set"
                       : "none"});
  table.add({"attributes", text_member(user, "attributes")});
  table.add({"created", when(user, "created_at")});
  table.add({"updated", when(user, "updated_at")});
  table.print(ctx.out());
}

Failure no_such_user(const Failure& f, std::int64_t user_id) {
  return with_message(f, "there is no user with id " + std::to_string(user_id));
}

// The body fields shared by create and update: role, password, attributes.
Outcome<void> common_fields(const UserFields& fields, json::object& body) {
  if (!fields.role.empty()) body["role"] = fields.role;
  if (!fields.attributes.empty()) {
    boost::system::error_code ec;
    auto attributes = json::parse(fields.attributes, ec);
    if (ec || !attributes.is_object()) {
      return Failure::usage("--attributes must be a JSON object, e.g. '{\"hotel_id\": 7}'");
    }
    body["attributes"] = std::move(attributes);
  }
  if (fields.ask_password) {
    auto password = read_secret("Password for the user: ", "the password");
    if (!password) return password.error();
    if (stdin_is_terminal()) {
      auto again = read_secret("Password again: ", "the password");
      if (!again) return again.error();
      if (*again != *password) return Failure::usage("the two passwords differ: try again");
    }
    body["password"] = *password;
  }
  return {};
}

Failure refused_fields(const Failure& f) {
  if (f.code == "invalid_request") return with_message(f, "the server refused: " + f.detail);
  return f;
}

void print_sessions(Context& ctx, const json::array& list) {
  Table table({"SESSION", "ROLE", "DEVICE", "IP", "SIGNED IN", "LAST ACTIVE", "METHOD"});
  for (const auto& s : list) {
    auto last = time_member(s, "last_activity");
    table.add({text_member(s, "session_id"), text_member(s, "role"), text_member(s, "device_info"),
               text_member(s, "last_ip"), when(s, "created_at"),
               last ? relative_time(*last, now()) : "-", text_member(s, "auth_method")});
  }
  table.print(ctx.out());
}

// "auth_method=password device_info=Other"
std::string detail_text(const json::value& detail) {
  if (!detail.is_object()) return json::serialize(detail);
  std::string out;
  for (const auto& [k, v] : detail.get_object()) {
    if (!out.empty()) out += " ";
    out += std::string(k) + "=" + text_member(detail, k);
  }
  return out;
}

void print_event(Context& ctx, const json::value& e) {
  if (ctx.json()) {
    ctx.print_json(e);
    return;
  }
  std::string line = when(e, "at", true) + "  " + text_member(e, "type");
  if (const auto* u = member(e, "user_id"); u != nullptr && !u->is_null()) {
    line += "  user " + text_member(e, "user_id");
  }
  if (const auto* s = member(e, "session_id"); s != nullptr && !s->is_null()) {
    line += "  session " + text_member(e, "session_id");
  }
  line += "  " + text_member(e, "ip_address");
  if (const auto* d = member(e, "detail"); d != nullptr) {
    const std::string detail = detail_text(*d);
    if (!detail.empty()) line += "  " + detail;
  }
  ctx.out() << line << std::endl;  // flushed: --follow is read as it comes
}

}  // namespace

Outcome<void> admin_users_create(Context& ctx, const AdminOptions& admin, const UserFields& user) {
  if (user.email.empty() && user.mobile.empty()) {
    return Failure::usage("a user needs --email or --mobile (or both)");
  }
  json::object body;
  if (!user.email.empty()) body["email"] = user.email;
  if (!user.mobile.empty()) body["mobile_number"] = user.mobile;
  if (auto ok = common_fields(user, body); !ok) return ok.error();
  auto caller = AdminCaller::open(ctx, admin);
  if (!caller) return caller.error();
  auto created = caller->call("POST", "/admin/v1/users", json::value(std::move(body)));
  if (!created) {
    if (created.error().status == 409) {
      return with_message(created.error(),
                          "a user with this email or mobile number already exists");
    }
    return refused_fields(created.error());
  }
  print_user(ctx, *created, "Created user " + text_member(*created, "id") + ".");
  return {};
}

Outcome<void> admin_users_show(Context& ctx, const AdminOptions& admin, std::int64_t user_id) {
  auto caller = AdminCaller::open(ctx, admin);
  if (!caller) return caller.error();
  auto user = caller->call("GET", "/admin/v1/users/" + std::to_string(user_id));
  if (!user) {
    if (user.error().code == "not_found") return no_such_user(user.error(), user_id);
    return user.error();
  }
  print_user(ctx, *user, "");
  return {};
}

Outcome<void> admin_users_update(Context& ctx, const AdminOptions& admin, std::int64_t user_id,
                                 const UserFields& changes) {
  json::object body;
  if (changes.disable) body["disabled"] = true;
  if (changes.enable) body["disabled"] = false;
  if (auto ok = common_fields(changes, body); !ok) return ok.error();
  if (body.empty()) {
    return Failure::usage(
        "nothing to change: give --role, --disable, --enable, --password or --attributes");
  }
  auto caller = AdminCaller::open(ctx, admin);
  if (!caller) return caller.error();
  auto user = caller->call("PATCH", "/admin/v1/users/" + std::to_string(user_id),
                           json::value(std::move(body)));
  if (!user) {
    if (user.error().code == "not_found") return no_such_user(user.error(), user_id);
    return refused_fields(user.error());
  }
  std::string headline = "Updated user " + std::to_string(user_id) + ".";
  if (changes.disable || !changes.role.empty()) {
    headline += " A new role or disabling ends all of the user's sessions.";
  }
  print_user(ctx, *user, headline);
  return {};
}

Outcome<void> admin_sessions_list(Context& ctx, const AdminOptions& admin, std::int64_t user_id) {
  auto caller = AdminCaller::open(ctx, admin);
  if (!caller) return caller.error();
  auto list = caller->call("GET", "/admin/v1/users/" + std::to_string(user_id) + "/sessions");
  if (!list) {
    if (list.error().code == "not_found") return no_such_user(list.error(), user_id);
    return list.error();
  }
  if (ctx.json()) {
    ctx.print_json(*list);
    return {};
  }
  if (!list->is_array() || list->get_array().empty()) {
    ctx.out() << "User " << user_id << " has no live sessions.\n";
    return {};
  }
  print_sessions(ctx, list->get_array());
  return {};
}

Outcome<void> admin_sessions_revoke(Context& ctx, const AdminOptions& admin,
                                    const AdminRevokeOptions& options) {
  if ((options.user_id > 0) == !options.session_id.empty()) {
    return Failure::usage("admin sessions revoke needs a SESSION_ID or --user ID (not both)");
  }
  if (!options.session_id.empty() && !is_session_id(options.session_id)) {
    return Failure::usage(options.session_id +
                          " is not a session id (a UUID): see them with "
                          "`sessionctl admin sessions list --user ID`");
  }
  auto caller = AdminCaller::open(ctx, admin);
  if (!caller) return caller.error();

  if (!options.session_id.empty()) {
    auto done = caller->call("DELETE", "/admin/v1/sessions/" + options.session_id);
    if (!done) {
      if (done.error().code == "not_found") {
        return with_message(done.error(), "no live session has the id " + options.session_id);
      }
      return done.error();
    }
    if (ctx.json()) {
      ctx.print_json(json::object{{"revoked", 1}, {"session_id", options.session_id}});
    } else {
      ctx.out() << "Ended session " << options.session_id << ".\n";
    }
    return {};
  }

  const std::string user_path = "/admin/v1/users/" + std::to_string(options.user_id) + "/sessions";
  if (!options.yes && stdin_is_terminal()) {
    auto list = caller->call("GET", user_path);
    if (!list) {
      if (list.error().code == "not_found") return no_such_user(list.error(), options.user_id);
      return list.error();
    }
    const std::size_t n = list->is_array() ? list->get_array().size() : 0;
    if (n > 0) {
      print_sessions(ctx, list->get_array());
      if (!confirm("End " + std::string(n == 1 ? "this session" : "these sessions") + " of user " +
                   std::to_string(options.user_id) + "?")) {
        return Failure::refused("cancelled: no session was ended");
      }
    }
  }
  auto done = caller->call("DELETE", user_path);
  if (!done) {
    if (done.error().code == "not_found") return no_such_user(done.error(), options.user_id);
    return done.error();
  }
  const std::int64_t n = int_member(*done, "revoked");
  if (ctx.json()) {
    ctx.print_json(*done);
  } else {
    ctx.out() << "Ended " << n << (n == 1 ? " session" : " sessions") << " of user "
              << options.user_id << ".\n";
  }
  return {};
}

Outcome<void> admin_events(Context& ctx, const AdminOptions& admin, const EventsOptions& options) {
  urls::url target("/admin/v1/events");
  if (options.user_id > 0) target.params().append({"user_id", std::to_string(options.user_id)});
  if (!options.session_id.empty()) {
    if (!is_session_id(options.session_id)) {
      return Failure::usage("--session " + options.session_id + " is not a session id (a UUID)");
    }
    target.params().append({"session_id", options.session_id});
  }
  if (!options.type.empty()) target.params().append({"type", options.type});
  if (!options.since.empty()) {
    std::optional<TimePoint> since = parse_rfc3339(options.since);
    if (!since) {
      if (auto back = parse_duration(options.since)) since = now() - *back;
    }
    if (!since) {
      return Failure::usage("--since " + options.since +
                            ": expected an RFC 3339 time (2026-11-23T06:00:00Z) or how long back "
                            "from now (90s, 5m, 8h, 30d)");
    }
    target.params().append({"since", format_rfc3339(*since)});
  }
  Duration interval{};
  if (options.follow) {
    auto parsed = parse_duration(options.interval);
    if (!parsed || *parsed <= Duration::zero()) {
      return Failure::usage("--interval " + options.interval +
                            ": expected a duration such as 500ms, 2s or 1m");
    }
    interval = *parsed;
  }
  auto caller = AdminCaller::open(ctx, admin);
  if (!caller) return caller.error();

  urls::url first = target;
  if (options.limit > 0) first.params().append({"limit", std::to_string(options.limit)});
  auto events = caller->call("GET", first.buffer());
  if (!events) return events.error();
  if (!events->is_array()) return Failure::unreachable("the event list is not a list");
  if (!options.follow) {
    if (ctx.json()) {
      ctx.print_json(*events);
      return {};
    }
    const auto& list = events->get_array();
    if (list.empty()) ctx.out() << "No events.\n";
    // Oldest first, like a log; the server answers newest first.
    for (auto it = list.rbegin(); it != list.rend(); ++it) print_event(ctx, *it);
    return {};
  }

  // Following: event ids grow with every event written, and the server lists them by id, newest
  // first; each poll prints the ones not seen yet, oldest first.
  std::int64_t last_id = 0;
  const auto show_new = [&](const json::array& list) {
    std::vector<const json::value*> fresh;
    for (const auto& e : list) {
      if (int_member(e, "id") > last_id) fresh.push_back(&e);
    }
    for (auto it = fresh.rbegin(); it != fresh.rend(); ++it) print_event(ctx, **it);
    for (const auto* e : fresh) last_id = std::max(last_id, int_member(*e, "id"));
  };
  show_new(events->get_array());
  urls::url poll = target;
  poll.params().append({"limit", "1000"});
  bool reported_outage = false;
  for (;;) {
    std::this_thread::sleep_for(interval);
    auto more = caller->call("GET", poll.buffer());
    if (!more) {
      if (more.error().exit != Exit::unreachable) return more.error();
      if (!reported_outage) {
        ctx.err() << "sessionctl: " << more.error().message << " (still trying)" << std::endl;
        reported_outage = true;
      }
      continue;
    }
    reported_outage = false;
    if (more->is_array()) show_new(more->get_array());
  }
}

Outcome<void> admin_stats(Context& ctx, const AdminOptions& admin) {
  auto caller = AdminCaller::open(ctx, admin);
  if (!caller) return caller.error();
  auto stats = caller->call("GET", "/admin/v1/stats");
  if (!stats) return stats.error();
  if (ctx.json()) {
    ctx.print_json(*stats);
    return {};
  }
  const auto counts = [](const json::value* object) {
    std::string out;
    if (object == nullptr || !object->is_object()) return out;
    for (const auto& [k, v] : object->get_object()) {
      if (!out.empty()) out += ", ";
      out += std::string(k) + " " + text_member(*object, k);
    }
    return out;
  };
  const auto hour_day = [&](std::string_view key) {
    const auto* m = member(*stats, key);
    if (m == nullptr) return std::string("-");
    return text_member(*m, "last_hour") + " in the last hour, " + text_member(*m, "last_day") +
           " in the last day";
  };
  const std::string by_role = counts(member(*stats, "live_by_role"));
  Table table({"live sessions", text_member(*stats, "live_sessions") +
                                    (by_role.empty() ? "" : " (" + by_role + ")")});
  const std::string by_device = counts(member(*stats, "live_by_device"));
  table.add({"by device", by_device.empty() ? "-" : by_device});
  table.add({"sign-ins", hour_day("sign_ins")});
  table.add({"failures", hour_day("failures")});
  table.print(ctx.out());
  return {};
}

}  // namespace sessiond::cli
