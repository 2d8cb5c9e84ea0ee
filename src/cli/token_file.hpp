// The saved session: $XDG_CONFIG_HOME/sessionctl/session.json (default ~/.config/sessionctl/),
// mode 0600 in a 0700 folder, replaced atomically. It holds the tokens and the server that issued
// them, so they are only ever sent back there.
#pragma once

#include <boost/json/object.hpp>
#include <filesystem>
#include <optional>
#include <string>

#include "cli/failure.hpp"
#include "core/time.hpp"

namespace sessiond::cli {

struct SavedSession {
  std::string server;  // ServerUrl::to_string() of the server that issued the tokens
  std::string session_id;
  std::string access_token;
  TimePoint access_expires_at;  // by this machine's clock, from `expires_in`
  std::string refresh_token;
  boost::json::object user;  // the `user` of the last token response
};

class TokenFile {
 public:
  // $XDG_CONFIG_HOME/sessionctl/session.json when XDG_CONFIG_HOME is an absolute path, else
  // $HOME/.config/sessionctl/session.json. Failure (usage) when neither is set.
  static Outcome<TokenFile> locate();

  explicit TokenFile(std::filesystem::path path) : path_(std::move(path)) {}
  const std::filesystem::path& path() const { return path_; }

  // nullopt when there is no file. Failure (usage) when the file or its folder is open to other
  // users (file mode beyond 0600, folder writable by group or others, another owner, a symlink),
  // or the file cannot be read or is not a session file; the message says how to fix it.
  Outcome<std::optional<SavedSession>> load() const;

  // Writes a temporary file 0600 in the same folder (created 0700 when missing), syncs it and
  // renames it over the file: a reader sees the old session or the new one, never a mix.
  // Failure (usage) when the folder cannot be created or written.
  Outcome<void> save(const SavedSession& session) const;

  // Removes the file; false when there was none.
  bool remove() const;

 private:
  std::filesystem::path path_;
};

}  // namespace sessiond::cli
