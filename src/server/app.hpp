// sessiond's wiring: the one place that reads the configuration and names concrete classes.
#pragma once

#include <string>

#include "core/config.hpp"

namespace sessiond::server {

// Exit statuses.
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitBadConfig = 2;

// Runs the server until SIGTERM or SIGINT, then drains and returns kExitOk.
int run_server(const Config& config);
// Applies the database migrations and returns.
int run_migrate(const Config& config);

}  // namespace sessiond::server
