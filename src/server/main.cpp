// sessiond: the session service. `sessiond [options]` serves; `sessiond migrate` applies the
// database migrations and exits.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "core/crypto.hpp"
#include "server/app.hpp"
#include "server/config_loader.hpp"

extern char** environ;

namespace {

int run(int argc, char** argv) {
  using namespace sessiond;
  CLI::App app{"sessiond: session service"};
  app.set_version_flag("--version", "sessiond 0.1.0");
  std::optional<std::string> config_file;
  server::ConfigFlags flags;
  app.add_option("-c,--config", config_file, "TOML configuration file");
  app.add_option("--listen", flags.listen, "address to listen on, HOST:PORT");
  app.add_option("--store", flags.store_url, "store URL (memory:// or redis://...)");
  app.add_option("--database", flags.database_url,
                 "database URL (sqlite://PATH or postgresql://...)");
  app.add_option("--data-dir", flags.data_dir, "data directory (keys, SQLite file)");
  auto* migrate = app.add_subcommand("migrate", "apply the database migrations and exit");
  auto* serve = app.add_subcommand("serve", "serve HTTP (the default)");
  // `sessiond migrate --data-dir D` as well as `sessiond --data-dir D migrate`.
  migrate->fallthrough();
  serve->fallthrough();
  app.require_subcommand(0, 1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : server::kExitBadConfig;
  }

  auto logger = spdlog::stderr_color_mt("sessiond");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);

  init_crypto();
  if (!config_file) {
    if (const char* from_env = std::getenv("SESSIOND_CONFIG")) config_file = from_env;
  }
  auto config = server::load_config(config_file, server::sessiond_environment(environ), flags);
  if (!config) {
    std::cerr << "sessiond: configuration error: " << config.error().detail << "\n";
    return server::kExitBadConfig;
  }
  spdlog::set_level(spdlog::level::from_str(config->log_level));
  if (migrate->parsed()) return server::run_migrate(*config);
  return server::run_server(*config);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    // A bug, never expected input: say what it was instead of terminating silently.
    std::cerr << "sessiond: fatal: " << e.what() << "\n";
    return sessiond::server::kExitFailure;
  }
}
