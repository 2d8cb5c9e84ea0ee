#include "cli/app.hpp"

#include <CLI/CLI.hpp>
#include <boost/json/object.hpp>
#include <exception>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/context.hpp"

namespace sessiond::cli {

namespace json = boost::json;

namespace {

constexpr std::string_view kFooter =
    "Exit status: 0 ok, 1 the server said no (or not signed in), 2 bad usage, 3 cannot reach "
    "the server.\nThe session is kept in $XDG_CONFIG_HOME/sessionctl/session.json (default "
    "~/.config/sessionctl/). See docs/sessionctl.md.";

int report(Context& ctx, const Failure& failure) {
  ctx.err() << "sessionctl: " << failure.message << std::endl;
  if (ctx.json()) {
    json::object error{{"exit_status", static_cast<int>(failure.exit)},
                       {"message", failure.message}};
    if (failure.status != 0) error["status"] = failure.status;
    if (!failure.code.empty()) error["code"] = failure.code;
    if (!failure.reason.empty()) error["reason"] = failure.reason;
    if (!failure.detail.empty()) error["detail"] = failure.detail;
    ctx.print_json(json::object{{"error", std::move(error)}});
  }
  return static_cast<int>(failure.exit);
}

}  // namespace

int run(int argc, char** argv) {
  CLI::App app{"sessionctl: sign in to sessiond, see and end your sessions, and administer users",
               "sessionctl"};
  app.footer(std::string(kFooter));
  app.set_version_flag("--version", std::string(kUserAgent));
  // Global options may come anywhere: `sessionctl whoami --json` as well as `sessionctl --json
  // whoami`. Subcommands inherit this setting when they are created.
  app.fallthrough();
  app.require_subcommand(1);

  Globals globals;
  std::string server;
  app.add_option("--server", server,
                 "sessiond's URL, http:// or https:// (default: the saved session's server, else " +
                     std::string(kDefaultServer) + ")")
      ->envname("SESSIONCTL_SERVER");
  app.add_flag("--json", globals.json, "print machine-readable JSON (errors too, as {\"error\"})");
  app.add_option("--timeout", globals.timeout_seconds,
                 "seconds to wait for the server on each request (default 10)")
      ->check(CLI::PositiveNumber);
  app.add_option("--cacert", globals.ca_file,
                 "PEM file of CA certificates to trust for https, besides the system's")
      ->check(CLI::ExistingFile);

  // ---- the user's own session ----
  LoginOptions login_options;
  auto* login_cmd = app.add_subcommand(
      "login",
      "sign in and save the session (the password is read without echo from a terminal, "
      "or as one line of standard input)");
  auto* email_opt =
      login_cmd->add_option("--email", login_options.email, "sign in with this email and password");
  auto* mobile_opt = login_cmd->add_option("--mobile", login_options.mobile,
                                           "sign in with a code sent to this mobile number");
  email_opt->excludes(mobile_opt);

  auto* whoami_cmd = app.add_subcommand("whoami", "show the signed-in user and this session");
  auto* sessions_cmd =
      app.add_subcommand("sessions", "list your live sessions on every device (* marks this one)");

  RevokeOptions revoke_options;
  auto* revoke_cmd = app.add_subcommand("revoke", "sign out one of your sessions, or all others");
  auto* revoke_id = revoke_cmd->add_option("SESSION_ID", revoke_options.session_id,
                                           "the session to sign out (see `sessionctl sessions`)");
  auto* revoke_others = revoke_cmd->add_flag("--others", revoke_options.others,
                                             "sign out every session but this one");
  revoke_id->excludes(revoke_others);
  revoke_cmd->add_flag("-y,--yes", revoke_options.yes, "do not ask for confirmation");

  auto* logout_cmd = app.add_subcommand("logout", "sign out this session and forget it");
  auto* passwd_cmd = app.add_subcommand(
      "passwd",
      "change your password (ends your other sessions); piped: the current password, "
      "then the new one, one line each");

  // ---- admin ----
  AdminOptions admin_options;
  auto* admin_cmd = app.add_subcommand(
      "admin", "administer users and sessions with the admin key (or an admin session)");
  admin_cmd->require_subcommand(1);
  admin_cmd->add_option("--admin-key-file", admin_options.key_file,
                        "file holding the admin key (sessiond's <data_dir>/admin.key); "
                        "else SESSIOND_ADMIN_KEY, else the saved session");

  auto* users_cmd = admin_cmd->add_subcommand("users", "create, show and update users");
  users_cmd->require_subcommand(1);
  UserFields create_fields;
  auto* create_cmd = users_cmd->add_subcommand("create", "create a user");
  create_cmd->add_option("--email", create_fields.email, "the user's email");
  create_cmd->add_option("--mobile", create_fields.mobile, "the user's mobile number (E.164)");
  create_cmd->add_option("--role", create_fields.role, "the user's role, e.g. GUEST")->required();
  create_cmd->add_flag("--password", create_fields.ask_password,
                       "set a password: read without echo from a terminal, or one line of "
                       "standard input");
  create_cmd->add_option("--attributes", create_fields.attributes,
                         "a JSON object copied into the user's tokens, e.g. '{\"hotel_id\":7}'");

  std::int64_t show_id = 0;
  auto* show_cmd = users_cmd->add_subcommand("show", "show a user");
  show_cmd->add_option("USER_ID", show_id, "the user's id")->required()->check(CLI::PositiveNumber);

  std::int64_t update_id = 0;
  UserFields update_fields;
  auto* update_cmd = users_cmd->add_subcommand(
      "update", "change a user's role, password, attributes, or disable them");
  update_cmd->add_option("USER_ID", update_id, "the user's id")
      ->required()
      ->check(CLI::PositiveNumber);
  update_cmd->add_option("--role", update_fields.role, "a new role (ends the user's sessions)");
  auto* disable_opt = update_cmd->add_flag("--disable", update_fields.disable,
                                           "disable the user (ends their sessions)");
  auto* enable_opt = update_cmd->add_flag("--enable", update_fields.enable, "enable the user");
  disable_opt->excludes(enable_opt);
  update_cmd->add_flag("--password", update_fields.ask_password,
                       "set a new password: read without echo from a terminal, or one line of "
                       "standard input");
  update_cmd->add_option("--attributes", update_fields.attributes,
                         "replace the attributes with this JSON object");

  auto* admin_sessions_cmd = admin_cmd->add_subcommand("sessions", "list or end users' sessions");
  admin_sessions_cmd->require_subcommand(1);
  std::int64_t list_user = 0;
  auto* list_cmd = admin_sessions_cmd->add_subcommand("list", "list a user's live sessions");
  list_cmd->add_option("--user", list_user, "the user's id")
      ->required()
      ->check(CLI::PositiveNumber);
  AdminRevokeOptions admin_revoke;
  auto* admin_revoke_cmd = admin_sessions_cmd->add_subcommand(
      "revoke", "end one session by its id, or all sessions of a user (--user ID)");
  auto* admin_revoke_id =
      admin_revoke_cmd->add_option("SESSION_ID", admin_revoke.session_id, "the session to end");
  auto* admin_revoke_user =
      admin_revoke_cmd->add_option("--user", admin_revoke.user_id, "end every session of this user")
          ->check(CLI::PositiveNumber);
  admin_revoke_id->excludes(admin_revoke_user);
  admin_revoke_cmd->add_flag("-y,--yes", admin_revoke.yes, "do not ask for confirmation");

  EventsOptions events_options;
  auto* events_cmd = admin_cmd->add_subcommand(
      "events", "the audit trail, oldest first (with --json: the server's list, newest first)");
  events_cmd->add_option("--user", events_options.user_id, "only this user's events")
      ->check(CLI::PositiveNumber);
  events_cmd->add_option("--session", events_options.session_id, "only this session's events");
  events_cmd->add_option("--type", events_options.type, "only events of this type");
  events_cmd->add_option("--since", events_options.since,
                         "only events since this RFC 3339 time, or this long ago (e.g. 1h)");
  events_cmd->add_option("--limit", events_options.limit, "at most this many (1-1000; default 100)")
      ->check(CLI::Range(1, 1000));
  events_cmd->add_flag("-f,--follow", events_options.follow,
                       "keep printing new events as they happen (JSON lines with --json)");
  events_cmd->add_option("--interval", events_options.interval,
                         "with --follow, how often to ask (default 2s)");

  auto* stats_cmd =
      admin_cmd->add_subcommand("stats", "live sessions by role and device, sign-ins, failures");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : static_cast<int>(Exit::usage);
  }
  if (!server.empty()) globals.server = server;
  Context ctx(globals, std::cout, std::cerr);
  if (globals.server) {
    if (auto url = ServerUrl::parse(*globals.server); !url) return report(ctx, url.error());
  }

  Outcome<void> result;
  try {
    if (login_cmd->parsed()) {
      if (login_options.email.empty() && login_options.mobile.empty()) {
        result = Failure::usage("login needs --email EMAIL or --mobile NUMBER");
      } else {
        result = login(ctx, login_options);
      }
    } else if (whoami_cmd->parsed()) {
      result = whoami(ctx);
    } else if (sessions_cmd->parsed()) {
      result = sessions(ctx);
    } else if (revoke_cmd->parsed()) {
      result = revoke(ctx, revoke_options);
    } else if (logout_cmd->parsed()) {
      result = logout(ctx);
    } else if (passwd_cmd->parsed()) {
      result = passwd(ctx);
    } else if (create_cmd->parsed()) {
      result = admin_users_create(ctx, admin_options, create_fields);
    } else if (show_cmd->parsed()) {
      result = admin_users_show(ctx, admin_options, show_id);
    } else if (update_cmd->parsed()) {
      result = admin_users_update(ctx, admin_options, update_id, update_fields);
    } else if (list_cmd->parsed()) {
      result = admin_sessions_list(ctx, admin_options, list_user);
    } else if (admin_revoke_cmd->parsed()) {
      result = admin_sessions_revoke(ctx, admin_options, admin_revoke);
    } else if (events_cmd->parsed()) {
      result = admin_events(ctx, admin_options, events_options);
    } else if (stats_cmd->parsed()) {
      result = admin_stats(ctx, admin_options);
    }
  } catch (const std::exception& e) {
    // A bug, never an expected failure: say so rather than abort.
    result = Failure::refused(std::string("internal error: ") + e.what());
  }
  if (result) return 0;
  return report(ctx, result.error());
}

}  // namespace sessiond::cli
