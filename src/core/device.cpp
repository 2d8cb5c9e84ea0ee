#include "core/device.hpp"

namespace sessiond {

namespace {

bool is_token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

// True when `token` occurs at the start of a word: "Chrome/" must not match "XChrome/".
bool has(std::string_view ua, std::string_view token) {
  for (auto pos = ua.find(token); pos != std::string_view::npos; pos = ua.find(token, pos + 1)) {
    if (pos == 0 || !is_token_char(ua[pos - 1])) return true;
  }
  return false;
}

std::string_view platform_of(std::string_view ua) {
  // Order matters: iOS agents say "like Mac OS X", Android and ChromeOS agents say "Linux".
  if (has(ua, "iPhone") || has(ua, "iPod")) return "iPhone";
  if (has(ua, "iPad")) return "iPad";
  if (has(ua, "Android")) return "Android";
  if (has(ua, "CrOS")) return "ChromeOS";
  if (has(ua, "Windows")) return "Windows";
  if (has(ua, "Macintosh") || has(ua, "Mac OS X")) return "Mac";
  if (has(ua, "Linux") || has(ua, "Ubuntu") || has(ua, "Fedora")) return "Linux";
  return "Other";
}

std::string_view browser_of(std::string_view ua) {
  // Order matters: Edge, Opera and Samsung Internet also say "Chrome/", and everything says
  // "Safari/".
  if (has(ua, "Edg/") || has(ua, "EdgA/") || has(ua, "EdgiOS/") || has(ua, "Edge/")) return "Edge";
  if (has(ua, "OPR/") || has(ua, "OPiOS/")) return "Opera";
  if (has(ua, "SamsungBrowser/")) return "Samsung Internet";
  if (has(ua, "Firefox/") || has(ua, "FxiOS/")) return "Firefox";
  if (has(ua, "Chrome/") || has(ua, "CriOS/")) return "Chrome";
  if (has(ua, "Safari/") && has(ua, "Version/")) return "Safari";
  return {};
}

}  // namespace

std::string detect_device(std::string_view user_agent) {
  if (user_agent.starts_with("sessionctl/")) return "CLI";
  const std::string_view platform = platform_of(user_agent);
  const std::string_view browser = browser_of(user_agent);
  std::string out(platform);
  if (!browser.empty()) {
    out += " \u00B7 ";
    out += browser;
  }
  return out;
}

}  // namespace sessiond
