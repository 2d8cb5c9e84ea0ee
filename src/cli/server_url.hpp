// The server sessionctl talks to: `--server URL`, parsed and put in one canonical form (so that a
// saved session is only ever sent back to the server that issued it).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cli/failure.hpp"

namespace sessiond::cli {

// Used when neither --server, SESSIONCTL_SERVER nor a saved session names one.
inline constexpr std::string_view kDefaultServer = "http://localhost:8080";

struct ServerUrl {
  bool tls = false;        // https
  std::string host;        // a name or an address, IPv6 without brackets
  std::uint16_t port = 0;  // explicit or the scheme's default
  std::string base_path;   // "" or "/prefix" without a trailing slash: sessiond behind a path

  // "http://HOST[:PORT][/PREFIX]" or "https://...". Failure (usage) naming what is wrong: another
  // scheme, user information, a query or fragment, no host, a bad port.
  static Outcome<ServerUrl> parse(std::string_view text);

  // "https://host:port/prefix", the port left out when it is the scheme's default.
  std::string to_string() const;
  // The Host header: "host[:port]", IPv6 in brackets.
  std::string host_header() const;
  // True when `host` is an IP address (no SNI, the certificate must name the address).
  bool host_is_address() const;
};

}  // namespace sessiond::cli
