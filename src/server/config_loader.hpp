// Loads sessiond's configuration (SPEC §2): built-in defaults, then a TOML file, then SESSIOND_*
// environment variables, then command-line flags (each source beats the ones before it), and
// validates the result. docs/configuration.md lists every key.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "core/config.hpp"
#include "core/error.hpp"

namespace sessiond::server {

// The configuration flags of `sessiond`; nullopt = the flag was not given.
struct ConfigFlags {
  std::optional<std::string> listen;        // --listen HOST:PORT     -> server.listen
  std::optional<std::string> store_url;     // --store URL            -> store.url
  std::optional<std::string> database_url;  // --database URL         -> database.url
  std::optional<std::string> data_dir;      // --data-dir DIR         -> data_dir
};

// Builds and validates the configuration. `file_path` is the TOML file (nullopt = none: defaults,
// environment and flags only); `env` holds only the SESSIOND_* variables (see
// sessiond_environment); SESSIOND_ADMIN_KEY and SESSIOND_CONFIG are ignored here.
//
// Errors: Errc::invalid_request, with a detail that starts with what is wrong, so the caller can
// print it as is and exit 2:
//   "tokens.access_ttl: expected a duration such as ..." (a file key, with file and line at the
//   end), "SESSIOND_TOKENS_ACCESS_TTL: expected a duration such as ..." (an environment variable),
//   "--listen: expected HOST:PORT ..." (a flag),
//   "config: cannot read FILE: reason" / "config: FILE:LINE:COLUMN: ..." (the file itself).
// Reads only `file_path`; safe to call from several threads at once.
Result<Config> load_config(const std::optional<std::string>& file_path,
                           const std::map<std::string, std::string>& env, const ConfigFlags& flags);

// The SESSIOND_* entries of a NAME=VALUE environment block such as main's envp (null allowed).
std::map<std::string, std::string> sessiond_environment(char** envp);

// The defaults that depend on data_dir, applied after loading.
// database.url: "" -> "sqlite://<data_dir>/sessiond.db".
std::string effective_database_url(const Config& config);
// tokens.signing_key_file: "" -> "<data_dir>/signing.key".
std::string effective_signing_key_file(const Config& config);
// admin.api_key_file: "" -> "<data_dir>/admin.key".
std::string effective_admin_key_file(const Config& config);

}  // namespace sessiond::server
