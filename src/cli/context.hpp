// What every command gets: the global options, the session file, the server to talk to, and
// where output goes.
#pragma once

#include <boost/json/value.hpp>
#include <iosfwd>
#include <optional>
#include <string>

#include "cli/api.hpp"
#include "cli/failure.hpp"
#include "cli/server_url.hpp"
#include "cli/token_file.hpp"

namespace sessiond::cli {

// The options that every command accepts.
struct Globals {
  std::optional<std::string> server;  // --server, or SESSIONCTL_SERVER
  bool json = false;                  // --json
  double timeout_seconds = 10;        // --timeout
  std::string ca_file;                // --cacert
};

class Context {
 public:
  Context(Globals globals, std::ostream& out, std::ostream& err);

  const Globals& globals() const { return globals_; }
  bool json() const { return globals_.json; }
  std::ostream& out() { return out_; }
  std::ostream& err() { return err_; }

  // The session file (located once). Failure (usage): see TokenFile::locate.
  Outcome<TokenFile> token_file();

  // The server to call: --server (or SESSIONCTL_SERVER), else the saved session's, else
  // kDefaultServer. Failure (usage): a bad URL.
  Outcome<ServerUrl> server(const SavedSession* saved);

  Api api(const ServerUrl& server) const;

  // Writes `value` as one line of JSON on standard output.
  void print_json(const boost::json::value& value);

 private:
  Globals globals_;
  std::ostream& out_;
  std::ostream& err_;
  std::optional<TokenFile> token_file_;
};

}  // namespace sessiond::cli
