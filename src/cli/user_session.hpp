// The signed-in user's session, restored from the session file: calls with its access token,
// refreshes the tokens when needed (each refresh rotates both; the file is replaced at once), and
// turns "this session has ended" into a clear Failure after removing the stale file.
#pragma once

#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "cli/api.hpp"
#include "cli/context.hpp"
#include "cli/token_file.hpp"

namespace sessiond::cli {

class UserSession {
 public:
  // The saved session and a client for the server that issued it. Failure: refused when there
  // is no saved session (the message says how to sign in); usage when the file is not private
  // (see TokenFile::load) or --server names another server than the session's.
  static Outcome<UserSession> restore(Context& ctx);

  // A client for `saved` on its own server, whatever --server says (to end a session that a new
  // sign-in replaces). Failure (usage): the saved server is not a valid URL.
  static Outcome<UserSession> adopt(Context& ctx, TokenFile file, SavedSession saved);

  // Api::call with the session's access token. Refreshes first when the access token has expired
  // by this machine's clock, and once more when the server answers token_expired or
  // token_invalid. When the session has ended (session_revoked, session_expired, or a refresh
  // refused), removes the session file and fails (refused) with why_session_ended.
  Outcome<boost::json::value> call(std::string_view method, std::string_view target,
                                   const std::optional<boost::json::value>& body = std::nullopt);

  const SavedSession& saved() const { return saved_; }
  const ServerUrl& server() const { return api_.server(); }

  // Removes the session file (the session was signed out).
  void forget() const;

  // The failure for a session that has ended: removes the file; the message says why and how to
  // sign in again. Keeps the server's status, code and reason.
  Failure ended(const Failure& from_server) const;

 private:
  UserSession(TokenFile file, SavedSession saved, Api api)
      : file_(std::move(file)), saved_(std::move(saved)), api_(std::move(api)) {}
  Outcome<void> refresh();

  TokenFile file_;
  SavedSession saved_;
  Api api_;
};

// The session described by a token response (SPEC §5) from `server`. Failure (unreachable) when
// the answer is not a token response.
Outcome<SavedSession> session_from_tokens(const ServerUrl& server,
                                          const boost::json::value& answer);

// How to sign in again as the user of `saved`: "sessionctl login --email ada@example.com", with
// --server when the session's server is not the default one.
std::string login_hint(const SavedSession& saved);

}  // namespace sessiond::cli
