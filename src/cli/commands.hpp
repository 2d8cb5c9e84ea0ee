// sessionctl's commands (SPEC §9). Each prints its result on the context's output (a line of JSON
// with --json) and returns a Failure saying what went wrong and what to do next.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "cli/context.hpp"
#include "cli/failure.hpp"

namespace sessiond::cli {

// ---- the user's own session ----

struct LoginOptions {
  std::string email;
  std::string mobile;
};
// Signs in by email and password (read without echo from a terminal, else a line of standard
// input) or by a one-time code sent to a mobile number, saves the session, and ends the session
// it replaces (if any).
Outcome<void> login(Context& ctx, const LoginOptions& options);

Outcome<void> whoami(Context& ctx);
Outcome<void> sessions(Context& ctx);

struct RevokeOptions {
  std::string session_id;
  bool others = false;
  bool yes = false;  // no confirmation on a terminal
};
Outcome<void> revoke(Context& ctx, const RevokeOptions& options);

// Ends the session and removes the file; succeeds when there is no session (any more) too.
Outcome<void> logout(Context& ctx);
Outcome<void> passwd(Context& ctx);

// ---- admin (the admin key, or a session whose role may use the admin API) ----

struct AdminOptions {
  std::string key_file;  // --admin-key-file; else SESSIOND_ADMIN_KEY; else the saved session
};

struct UserFields {
  std::string email;
  std::string mobile;
  std::string role;
  std::string attributes;  // a JSON object, as text
  bool ask_password = false;
  bool disable = false;
  bool enable = false;
};
Outcome<void> admin_users_create(Context& ctx, const AdminOptions& admin, const UserFields& user);
Outcome<void> admin_users_show(Context& ctx, const AdminOptions& admin, std::int64_t user_id);
Outcome<void> admin_users_update(Context& ctx, const AdminOptions& admin, std::int64_t user_id,
                                 const UserFields& changes);

Outcome<void> admin_sessions_list(Context& ctx, const AdminOptions& admin, std::int64_t user_id);
struct AdminRevokeOptions {
  std::string session_id;
  std::int64_t user_id = 0;
  bool yes = false;
};
Outcome<void> admin_sessions_revoke(Context& ctx, const AdminOptions& admin,
                                    const AdminRevokeOptions& options);

struct EventsOptions {
  std::int64_t user_id = 0;
  std::string session_id;
  std::string type;
  std::string since;  // RFC 3339, or a duration back from now ("1h")
  int limit = 0;      // 0: the server's default (100)
  bool follow = false;
  std::string interval = "2s";
};
Outcome<void> admin_events(Context& ctx, const AdminOptions& admin, const EventsOptions& options);
Outcome<void> admin_stats(Context& ctx, const AdminOptions& admin);

// True for a session id as sessiond makes them (a UUID: 8-4-4-4-12 hex digits).
bool is_session_id(std::string_view text);

}  // namespace sessiond::cli
