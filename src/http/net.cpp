#include "http/net.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

namespace sessiond::http {

namespace {

struct Address {
  std::array<std::uint8_t, 16> bytes{};
  bool v6 = false;
};

bool parse_address(std::string_view text, Address& out) {
  std::string s(text);
  if (s.size() > 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  if (inet_pton(AF_INET, s.c_str(), out.bytes.data()) == 1) {
    out.v6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, s.c_str(), out.bytes.data()) == 1) {
    out.v6 = true;
    // An IPv4-mapped IPv6 address is treated as the IPv4 address.
    static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::equal(kMapped, kMapped + 12, out.bytes.begin())) {
      std::copy(out.bytes.begin() + 12, out.bytes.end(), out.bytes.begin());
      out.v6 = false;
    }
    return true;
  }
  return false;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

Result<TrustedProxies> TrustedProxies::parse(const std::vector<std::string>& entries) {
  TrustedProxies t;
  for (const auto& entry : entries) {
    std::string_view text = entry;
    Net net;
    auto slash = text.find('/');
    Address a;
    if (!parse_address(text.substr(0, slash), a)) {
      return Error(Errc::invalid_request, "not an address or CIDR: " + entry);
    }
    net.bytes = a.bytes;
    net.v6 = a.v6;
    const int max = a.v6 ? 128 : 32;
    net.prefix = max;
    if (slash != std::string_view::npos) {
      auto bits = text.substr(slash + 1);
      auto [p, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), net.prefix);
      if (ec != std::errc{} || p != bits.data() + bits.size() || net.prefix < 0 ||
          net.prefix > max) {
        return Error(Errc::invalid_request, "bad prefix length in " + entry);
      }
    }
    t.nets_.push_back(net);
  }
  return t;
}

bool TrustedProxies::contains(std::string_view address) const {
  Address a;
  if (!parse_address(trim(address), a)) return false;
  for (const auto& n : nets_) {
    if (n.v6 != a.v6) continue;
    int bits = n.prefix;
    bool match = true;
    for (std::size_t i = 0; bits > 0 && match; ++i, bits -= 8) {
      const std::uint8_t mask = bits >= 8 ? 0xff : static_cast<std::uint8_t>(0xff << (8 - bits));
      match = (a.bytes[i] & mask) == (n.bytes[i] & mask);
    }
    if (match) return true;
  }
  return false;
}

std::string TrustedProxies::client_ip(std::string_view peer, std::string_view forwarded_for) const {
  if (forwarded_for.empty() || !contains(peer)) return std::string(peer);
  std::string_view rest = forwarded_for;
  std::string_view leftmost;
  while (!rest.empty()) {
    auto comma = rest.rfind(',');
    std::string_view item = trim(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(0, comma);
    Address a;
    if (!parse_address(item, a)) return std::string(peer);  // a forged or broken header
    leftmost = item;
    if (!contains(item)) return std::string(item);
  }
  return leftmost.empty() ? std::string(peer) : std::string(leftmost);
}

}  // namespace sessiond::http
