#include "cli/server_url.hpp"

#include <boost/url/ipv4_address.hpp>
#include <boost/url/ipv6_address.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <charconv>

namespace sessiond::cli {

namespace urls = boost::urls;

namespace {

Failure bad_url(std::string_view text, std::string_view why) {
  return Failure::usage("--server " + std::string(text) + ": " + std::string(why) +
                        " (expected http://HOST[:PORT] or https://HOST[:PORT], e.g. " +
                        std::string(kDefaultServer) + ")");
}

}  // namespace

Outcome<ServerUrl> ServerUrl::parse(std::string_view text) {
  auto parsed = urls::parse_absolute_uri(text);
  if (!parsed) return bad_url(text, "not a URL");
  const urls::url_view& u = *parsed;
  ServerUrl out;
  if (u.scheme_id() == urls::scheme::https) {
    out.tls = true;
  } else if (u.scheme_id() != urls::scheme::http) {
    return bad_url(text, "the scheme must be http or https");
  }
  if (!u.has_authority() || u.encoded_host().empty()) return bad_url(text, "no host");
  if (u.has_userinfo()) return bad_url(text, "user information is not allowed");
  if (u.has_query() || u.has_fragment()) return bad_url(text, "a query or fragment is not allowed");
  switch (u.host_type()) {
    case urls::host_type::ipv4: out.host = u.host_ipv4_address().to_string(); break;
    case urls::host_type::ipv6: out.host = u.host_ipv6_address().to_string(); break;
    case urls::host_type::name: out.host = u.host_name(); break;
    default: return bad_url(text, "unsupported host");
  }
  out.port = out.tls ? 443 : 80;
  if (u.has_port()) {
    const auto port = u.port();
    unsigned value = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc{} || p != port.data() + port.size() || value == 0 ||
        value > 65535) {
      return bad_url(text, "bad port");
    }
    out.port = static_cast<std::uint16_t>(value);
  }
  std::string path(u.encoded_path());
  while (!path.empty() && path.back() == '/') path.pop_back();
  out.base_path = std::move(path);
  return out;
}

std::string ServerUrl::to_string() const {
  std::string out = tls ? "https://" : "http://";
  out += host_header();
  out += base_path;
  return out;
}

std::string ServerUrl::host_header() const {
  std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != (tls ? 443 : 80)) out += ":" + std::to_string(port);
  return out;
}

bool ServerUrl::host_is_address() const {
  auto v4 = urls::parse_ipv4_address(host);
  auto v6 = urls::parse_ipv6_address(host);
  return v4.has_value() || v6.has_value();
}

}  // namespace sessiond::cli
