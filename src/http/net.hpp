// Client addresses: which peers are trusted proxies, and the client's address behind them.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace sessiond::http {

class TrustedProxies {
 public:
  // Entries are CIDRs ("10.0.0.0/8", "::1/128") or plain addresses. Error: invalid_request.
  static Result<TrustedProxies> parse(const std::vector<std::string>& entries);

  bool contains(std::string_view address) const;

  // The peer, or, when the peer is trusted, the right-most address of X-Forwarded-For that is
  // not trusted (the left-most when all are).
  std::string client_ip(std::string_view peer, std::string_view forwarded_for) const;

 private:
  struct Net {
    std::array<std::uint8_t, 16> bytes{};
    int prefix = 0;
    bool v6 = false;
  };
  std::vector<Net> nets_;
};

}  // namespace sessiond::http
