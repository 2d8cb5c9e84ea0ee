#include "server/config_loader.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <toml++/toml.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace sessiond::server {
namespace {

using Check = Result<void>;

constexpr std::string_view kEnvPrefix = "SESSIOND_";
constexpr std::string_view kRolesEnvPrefix = "SESSIOND_ROLES_";
constexpr std::int64_t kIntMax = std::numeric_limits<int>::max();
constexpr std::string_view kDurationHelp = "a duration such as \"90s\", \"5m\", \"8h\", \"30d\"";
constexpr std::string_view kSizeHelp = "a size such as \"64KiB\", \"1MiB\" or \"512B\"";
constexpr Duration kMaxDuration = std::chrono::hours{24 * 36500};
constexpr std::string_view kRateHelp = "a rate limit \"N/window\" such as \"3/10m\"";

Error fail(std::string detail) { return Error(Errc::invalid_request, std::move(detail)); }

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& ch : out) {
    if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
  }
  return out;
}

bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }

// Parses all of `text` as a decimal integer.
std::optional<std::int64_t> parse_decimal(std::string_view text) {
  std::int64_t n = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc{} || ptr != text.data() + text.size() || text.empty()) return std::nullopt;
  return n;
}

std::string format_duration(Duration d) {
  const std::int64_t ms = d.count();
  struct Unit {
    std::int64_t ms;
    const char* suffix;
  };
  static constexpr std::array<Unit, 4> kUnits{
      {{86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1'000, "s"}}};
  for (const auto& unit : kUnits) {
    if (ms != 0 && ms % unit.ms == 0) return std::to_string(ms / unit.ms) + unit.suffix;
  }
  return std::to_string(ms) + "ms";
}

// ---- one value from one source ----------------------------------------------------------------

// A value as one source gave it, read as the type a key needs. TOML values keep their own types;
// environment and flag values are text, converted here. Errors hold only the message: the caller
// puts the key, variable or flag name in front.
class RawValue {
 public:
  virtual ~RawValue() = default;
  // `expected` describes the wanted value for the message when the value is not text at all.
  virtual Result<std::string> text(std::string_view expected) const = 0;
  virtual Result<std::int64_t> integer() const = 0;
  virtual Result<bool> boolean() const = 0;
  virtual Result<std::vector<std::string>> strings() const = 0;
};

std::string type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
  }
  return "nothing";
}

class TomlValue final : public RawValue {
 public:
  explicit TomlValue(const toml::node& node) : node_(node) {}

  Result<std::string> text(std::string_view expected) const override {
    if (const auto* s = node_.as_string()) return s->get();
    return mismatch(expected);
  }
  Result<std::int64_t> integer() const override {
    if (const auto* i = node_.as_integer()) return i->get();
    return mismatch("an integer");
  }
  Result<bool> boolean() const override {
    if (const auto* b = node_.as_boolean()) return b->get();
    return mismatch("true or false");
  }
  Result<std::vector<std::string>> strings() const override {
    const auto* array = node_.as_array();
    if (array == nullptr) return mismatch("an array of strings");
    std::vector<std::string> out;
    for (const auto& item : *array) {
      const auto* s = item.as_string();
      if (s == nullptr)
        return fail("expected an array of strings, got " + type_name(item) + " in it");
      out.push_back(s->get());
    }
    return out;
  }

 private:
  Error mismatch(std::string_view expected) const {
    return fail("expected " + std::string(expected) + ", got " + type_name(node_));
  }

  const toml::node& node_;
};

class TextValue final : public RawValue {
 public:
  explicit TextValue(std::string_view text) : text_(text) {}

  Result<std::string> text(std::string_view /*expected*/) const override {
    return std::string(text_);
  }
  Result<std::int64_t> integer() const override {
    if (auto n = parse_decimal(text_)) return *n;
    return fail("expected an integer in decimal");
  }
  Result<bool> boolean() const override {
    if (text_ == "true" || text_ == "1") return true;
    if (text_ == "false" || text_ == "0") return false;
    return fail("expected true, false, 1 or 0");
  }
  // Comma-separated; spaces around items and empty items are dropped.
  Result<std::vector<std::string>> strings() const override {
    std::vector<std::string> out;
    std::string_view rest = text_;
    while (!rest.empty()) {
      auto comma = rest.find(',');
      std::string_view item = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
      if (!item.empty()) out.emplace_back(item);
    }
    return out;
  }

 private:
  std::string_view text_;
};

// ---- value checks: each returns only the message ------------------------------------------------

using Validator = Check (*)(std::string_view);

Check non_empty(std::string_view s) {
  if (s.empty()) return fail("must not be empty");
  return {};
}

bool is_ipv4(const std::string& s) {
  in_addr addr{};
  return ::inet_pton(AF_INET, s.c_str(), &addr) == 1;
}

bool is_ipv6(const std::string& s) {
  in6_addr addr{};
  return ::inet_pton(AF_INET6, s.c_str(), &addr) == 1;
}

Check check_listen(std::string_view s) {
  const Error bad = fail("expected HOST:PORT, e.g. \"127.0.0.1:8080\" or \"[::1]:8080\"");
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return bad;
  std::string_view host = s.substr(0, colon);
  std::string_view port = s.substr(colon + 1);
  if (port.empty() || port.size() > 5) return bad;
  for (char ch : port) {
    if (!is_digit(ch)) return bad;
  }
  if (auto n = parse_decimal(port); !n || *n > 65535) {
    return fail("expected HOST:PORT with a port from 0 to 65535");
  }
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return bad;
    if (!is_ipv6(std::string(host.substr(1, host.size() - 2)))) {
      return fail("expected HOST:PORT; \"" + std::string(host) + "\" is not an IPv6 address");
    }
    return {};
  }
  bool numeric = true;
  for (char ch : host) {
    const bool name_char = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || is_digit(ch) ||
                           ch == '-' || ch == '.' || ch == '_';
    if (!name_char) return bad;  // also catches an IPv6 address without brackets
    if (!is_digit(ch) && ch != '.') numeric = false;
  }
  if (numeric && !is_ipv4(std::string(host))) {
    return fail("expected HOST:PORT; \"" + std::string(host) + "\" is not an IPv4 address");
  }
  return {};
}

Check check_cidr(std::string_view s) {
  const Error bad = fail("\"" + std::string(s) +
                         "\" is not an IPv4 or IPv6 address or CIDR block (e.g. \"10.0.0.0/8\")");
  auto slash = s.find('/');
  std::string address(s.substr(0, slash));
  int max_bits = 0;
  if (is_ipv4(address)) {
    max_bits = 32;
  } else if (is_ipv6(address)) {
    max_bits = 128;
  } else {
    return bad;
  }
  if (slash == std::string_view::npos) return {};
  std::string_view bits = s.substr(slash + 1);
  if (bits.empty() || bits.size() > 3) return bad;
  for (char ch : bits) {
    if (!is_digit(ch)) return bad;
  }
  if (auto n = parse_decimal(bits); !n || *n > max_bits) return bad;
  return {};
}

Check check_store_url(std::string_view s) {
  if (s.starts_with("memory://") || s.starts_with("redis://")) return {};
  return fail("expected a URL starting with \"memory://\" or \"redis://\"");
}

Check check_database_url(std::string_view s) {
  if (s.empty() || (s.starts_with("sqlite://") && s.size() > 9) || s.starts_with("postgresql://") ||
      s.starts_with("postgres://")) {
    return {};
  }
  return fail(
      "expected empty (SQLite in data_dir), \"sqlite://PATH\", \"postgresql://...\" or "
      "\"postgres://...\"");
}

Check check_algorithm(std::string_view s) {
  if (s == "HS256" || s == "ES256" || s == "EdDSA") return {};
  return fail("expected \"HS256\", \"ES256\" or \"EdDSA\"");
}

bool is_http_url(std::string_view s) {
  const bool http = s.starts_with("http://") && s.size() > 7;
  const bool https = s.starts_with("https://") && s.size() > 8;
  if (!http && !https) return false;
  // user:password@ in the URL is not sent by the outbound client: refused here, not at each call.
  std::string_view authority = s.substr(s.find("://") + 3);
  authority = authority.substr(0, authority.find_first_of("/?#"));
  return authority.find('@') == std::string_view::npos;
}

// The value may carry a key in its URL: it is never echoed.
Check check_sender(std::string_view s) {
  if (s == "log" || (s.starts_with("file:") && s.size() > 5) ||
      (s.starts_with("webhook:") && is_http_url(s.substr(8)))) {
    return {};
  }
  return fail(
      "expected \"log\", \"file:PATH\" or \"webhook:URL\" (an http:// or https:// URL without "
      "user:password@)");
}

Check check_webhook_url(std::string_view s) {
  if (s.empty() || is_http_url(s)) return {};
  return fail("expected an http:// or https:// URL without user:password@, or empty");
}

Check check_event(std::string_view s) {
  if (s == "session.created" || s == "session.new_device" || s == "session.revoked" ||
      s == "session.refresh_reuse") {
    return {};
  }
  return fail("\"" + std::string(s) +
              "\" is not an event; expected session.created, session.new_device, "
              "session.revoked or session.refresh_reuse");
}

Check check_log_level(std::string_view s) {
  if (s == "trace" || s == "debug" || s == "info" || s == "warn" || s == "error") return {};
  return fail("expected \"trace\", \"debug\", \"info\", \"warn\" or \"error\"");
}

// Role names reach tokens, headers and environment variable names: keep them plain.
Check check_role_name(std::string_view s) {
  if (s.empty()) return fail("a role name must not be empty");
  for (char ch : s) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || is_digit(ch) ||
                    ch == '_' || ch == '-';
    if (!ok) {
      return fail("\"" + std::string(s) + "\" is not a role name (letters, digits, '_' and '-')");
    }
  }
  return {};
}

Result<Duration> positive_duration(std::string_view text) {
  auto d = parse_duration(text);
  if (!d) return fail("expected " + std::string(kDurationHelp));
  if (d->count() <= 0) return fail("expected a duration greater than 0");
  // Deadlines are computed as now + duration: keep that far from overflowing.
  if (*d > kMaxDuration) return fail("expected a duration of at most 36500d (100 years)");
  return *d;
}

Result<std::uint64_t> positive_size(std::string_view text) {
  auto n = parse_size(text);
  if (!n) return fail("expected " + std::string(kSizeHelp));
  if (*n == 0) return fail("expected a size greater than 0");
  return *n;
}

Result<RateLimit> parse_rate_limit(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return fail("expected " + std::string(kRateHelp));
  auto count = parse_decimal(text.substr(0, slash));
  if (!count || *count < 1 || *count > kIntMax) {
    return fail("expected " + std::string(kRateHelp) + " with N >= 1");
  }
  auto window = positive_duration(text.substr(slash + 1));
  if (!window) return fail("expected " + std::string(kRateHelp) + " with a window > 0");
  return RateLimit{static_cast<int>(*count), *window};
}

// ---- setters: read one value into one field --------------------------------------------------

Check set_string(std::string& out, const RawValue& v, Validator validate = nullptr) {
  auto text = v.text("a string");
  if (!text) return text.error();
  if (validate != nullptr) {
    if (auto ok = validate(*text); !ok) return ok;
  }
  out = std::move(*text);
  return {};
}

Check set_int(int& out, const RawValue& v, std::int64_t min, std::int64_t max) {
  auto n = v.integer();
  if (!n) return n.error();
  if (*n < min || *n > max) {
    if (max == kIntMax) return fail("expected an integer >= " + std::to_string(min));
    return fail("expected an integer from " + std::to_string(min) + " to " + std::to_string(max));
  }
  out = static_cast<int>(*n);
  return {};
}

Check set_bool(bool& out, const RawValue& v) {
  auto b = v.boolean();
  if (!b) return b.error();
  out = *b;
  return {};
}

Check set_duration(Duration& out, const RawValue& v) {
  auto text = v.text(kDurationHelp);
  if (!text) return text.error();
  auto d = positive_duration(*text);
  if (!d) return d.error();
  out = *d;
  return {};
}

Check set_size(std::uint64_t& out, const RawValue& v) {
  auto text = v.text(kSizeHelp);
  if (!text) return text.error();
  auto n = positive_size(*text);
  if (!n) return n.error();
  out = *n;
  return {};
}

Check set_rate_limit(RateLimit& out, const RawValue& v) {
  auto text = v.text(kRateHelp);
  if (!text) return text.error();
  auto limit = parse_rate_limit(*text);
  if (!limit) return limit.error();
  out = *limit;
  return {};
}

Check set_strings(std::vector<std::string>& out, const RawValue& v, Validator validate) {
  auto items = v.strings();
  if (!items) return items.error();
  for (const auto& item : *items) {
    if (auto ok = validate(item); !ok) return ok;
  }
  out = std::move(*items);
  return {};
}

// ---- the keys ---------------------------------------------------------------------------------

struct KeySpec {
  std::string_view section;  // "" = top level
  std::string_view key;
  Check (*apply)(Config&, const RawValue&);
};

// Every key of SPEC §2 but the role tables, which have names of the user's choosing.
const std::vector<KeySpec>& key_specs() {
  using C = Config;
  using V = RawValue;
  static const std::vector<KeySpec> specs{
      {"", "data_dir", [](C& c, const V& v) { return set_string(c.data_dir, v, non_empty); }},

      {"server", "listen",
       [](C& c, const V& v) { return set_string(c.server.listen, v, check_listen); }},
      {"server", "threads", [](C& c, const V& v) { return set_int(c.server.threads, v, 0, 1024); }},
      {"server", "trusted_proxies",
       [](C& c, const V& v) { return set_strings(c.server.trusted_proxies, v, check_cidr); }},
      {"server", "max_body", [](C& c, const V& v) { return set_size(c.server.max_body, v); }},
      {"server", "secure_cookies",
       [](C& c, const V& v) { return set_bool(c.server.secure_cookies, v); }},
      {"server", "idle_timeout",
       [](C& c, const V& v) { return set_duration(c.server.idle_timeout, v); }},
      {"server", "request_timeout",
       [](C& c, const V& v) { return set_duration(c.server.request_timeout, v); }},

      {"store", "url",
       [](C& c, const V& v) { return set_string(c.store_url, v, check_store_url); }},

      {"database", "url",
       [](C& c, const V& v) { return set_string(c.database_url, v, check_database_url); }},

      {"tokens", "issuer",
       [](C& c, const V& v) { return set_string(c.tokens.issuer, v, non_empty); }},
      {"tokens", "audience",
       [](C& c, const V& v) { return set_string(c.tokens.audience, v, non_empty); }},
      {"tokens", "algorithm",
       [](C& c, const V& v) { return set_string(c.tokens.algorithm, v, check_algorithm); }},
      {"tokens", "access_ttl",
       [](C& c, const V& v) { return set_duration(c.tokens.access_ttl, v); }},
      {"tokens", "refresh_ttl",
       [](C& c, const V& v) { return set_duration(c.tokens.refresh_ttl, v); }},
      {"tokens", "refresh_grace",
       [](C& c, const V& v) { return set_duration(c.tokens.refresh_grace, v); }},
      {"tokens", "signing_key_file",
       [](C& c, const V& v) { return set_string(c.tokens.signing_key_file, v); }},

      {"roles", "default",
       [](C& c, const V& v) {
         std::string name;
         if (auto ok = set_string(name, v, check_role_name); !ok) return ok;
         c.roles.set_default_role(std::move(name));
         return Check{};
       }},

      {"otp", "length", [](C& c, const V& v) { return set_int(c.otp.length, v, 4, 10); }},
      {"otp", "ttl", [](C& c, const V& v) { return set_duration(c.otp.ttl, v); }},
      {"otp", "max_attempts",
       [](C& c, const V& v) { return set_int(c.otp.max_attempts, v, 1, kIntMax); }},
      {"otp", "sender", [](C& c, const V& v) { return set_string(c.otp.sender, v, check_sender); }},
      {"otp", "auto_register", [](C& c, const V& v) { return set_bool(c.otp.auto_register, v); }},

      {"password", "min_length",
       [](C& c, const V& v) { return set_int(c.password_min_length, v, 1, kIntMax); }},

      {"rate_limits", "otp_send_per_number",
       [](C& c, const V& v) { return set_rate_limit(c.rate_limits.otp_send_per_number, v); }},
      {"rate_limits", "otp_send_per_ip",
       [](C& c, const V& v) { return set_rate_limit(c.rate_limits.otp_send_per_ip, v); }},
      {"rate_limits", "login_per_account",
       [](C& c, const V& v) { return set_rate_limit(c.rate_limits.login_per_account, v); }},
      {"rate_limits", "login_per_ip",
       [](C& c, const V& v) { return set_rate_limit(c.rate_limits.login_per_ip, v); }},
      {"rate_limits", "refresh_per_session",
       [](C& c, const V& v) { return set_rate_limit(c.rate_limits.refresh_per_session, v); }},

      {"admin", "api_key_file",
       [](C& c, const V& v) { return set_string(c.admin.api_key_file, v); }},
      {"admin", "roles",
       [](C& c, const V& v) { return set_strings(c.admin.roles, v, check_role_name); }},

      {"webhooks", "url",
       [](C& c, const V& v) { return set_string(c.webhooks.url, v, check_webhook_url); }},
      {"webhooks", "secret_file",
       [](C& c, const V& v) { return set_string(c.webhooks.secret_file, v); }},
      {"webhooks", "events",
       [](C& c, const V& v) { return set_strings(c.webhooks.events, v, check_event); }},

      {"jobs", "cleanup_interval",
       [](C& c, const V& v) { return set_duration(c.jobs.cleanup_interval, v); }},
      {"jobs", "activity_flush_interval",
       [](C& c, const V& v) { return set_duration(c.jobs.activity_flush_interval, v); }},
      {"jobs", "outbox_claim_after",
       [](C& c, const V& v) { return set_duration(c.jobs.outbox_claim_after, v); }},

      {"log", "level",
       [](C& c, const V& v) { return set_string(c.log_level, v, check_log_level); }},
  };
  return specs;
}

// The keys of a [roles.NAME] table.
struct RoleKeySpec {
  std::string_view key;
  Check (*apply)(RolePolicy&, const RawValue&);
};

const std::array<RoleKeySpec, 4>& role_key_specs() {
  using P = RolePolicy;
  using V = RawValue;
  static const std::array<RoleKeySpec, 4> specs{{
      {"idle_timeout", [](P& p, const V& v) { return set_duration(p.idle_timeout, v); }},
      {"absolute_timeout", [](P& p, const V& v) { return set_duration(p.absolute_timeout, v); }},
      {"max_sessions", [](P& p, const V& v) { return set_int(p.max_sessions, v, 1, kIntMax); }},
      {"on_limit",
       [](P& p, const V& v) {
         auto text = v.text("\"evict_oldest\", \"evict_lru\" or \"deny\"");
         if (!text) return Check{text.error()};
         auto policy = parse_on_limit(*text);
         if (!policy) return Check{fail("expected \"evict_oldest\", \"evict_lru\" or \"deny\"")};
         p.on_limit = *policy;
         return Check{};
       }},
  }};
  return specs;
}

std::string dotted_name(const KeySpec& spec) {
  if (spec.section.empty()) return std::string(spec.key);
  return std::string(spec.section) + "." + std::string(spec.key);
}

std::string env_name(const KeySpec& spec) {
  if (spec.section.empty()) return std::string(kEnvPrefix) + upper(spec.key);
  return std::string(kEnvPrefix) + upper(spec.section) + "_" + upper(spec.key);
}

const KeySpec* find_spec(std::string_view section, std::string_view key) {
  for (const auto& spec : key_specs()) {
    if (spec.section == section && spec.key == key) return &spec;
  }
  return nullptr;
}

bool is_section(std::string_view name) {
  for (const auto& spec : key_specs()) {
    if (!spec.section.empty() && spec.section == name) return true;
  }
  return false;
}

const KeySpec* find_env_spec(std::string_view name) {
  static const auto by_env = [] {
    std::map<std::string, const KeySpec*, std::less<>> m;
    for (const auto& spec : key_specs()) m.emplace(env_name(spec), &spec);
    return m;
  }();
  auto it = by_env.find(name);
  return it == by_env.end() ? nullptr : it->second;
}

// A role named in a role table starts from its defaults, or from GUEST's for a new role.
Check apply_role_key(Config& config, const std::string& role, const RoleKeySpec& spec,
                     const RawValue& v) {
  static const RolePolicy kGuest = *RoleTable::defaults().find("GUEST");
  const RolePolicy* current = config.roles.find(role);
  RolePolicy policy = current != nullptr ? *current : kGuest;
  if (auto ok = spec.apply(policy, v); !ok) return ok;
  config.roles.set(role, policy);
  return {};
}

// "NAME: message" (plus `suffix`, the place in the file).
Error named(std::string_view name, const Error& e, std::string_view suffix = {}) {
  return fail(std::string(name) + ": " + e.detail + std::string(suffix));
}

// ---- the file ---------------------------------------------------------------------------------

Result<std::string> read_file(const std::string& path) {
  struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  auto cannot_read = [&path](int err) {
    return fail("config: cannot read " + path + ": " + std::generic_category().message(err));
  };
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) return cannot_read(errno);
  std::string content;
  std::array<char, 8192> buffer{};
  std::size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), file.get())) > 0) {
    content.append(buffer.data(), n);
  }
  if (std::ferror(file.get()) != 0) return cannot_read(errno);
  return content;
}

class FileLoader {
 public:
  FileLoader(Config& config, const std::string& path) : config_(config), path_(path) {}

  Check load() {
    auto content = read_file(path_);
    if (!content) return content.error();
    toml::table root;
    try {
      root = toml::parse(*content, path_);
    } catch (const toml::parse_error& e) {
      const auto& at = e.source().begin;
      return fail("config: " + path_ + ":" + std::to_string(at.line) + ":" +
                  std::to_string(at.column) + ": " + std::string(e.description()));
    }
    for (auto&& [key, node] : root) {
      const std::string name(key.str());
      if (const KeySpec* spec = find_spec("", name)) {
        if (auto ok = apply(*spec, node); !ok) return ok;
      } else if (!is_section(name)) {
        return unknown(name, node);
      } else if (const auto* table = node.as_table()) {
        if (auto ok = load_section(name, *table); !ok) return ok;
      } else {
        return fail(name + ": expected a table, got " + type_name(node) + where(node));
      }
    }
    return {};
  }

 private:
  Check load_section(const std::string& section, const toml::table& table) {
    for (auto&& [key, node] : table) {
      const std::string name(key.str());
      if (const KeySpec* spec = find_spec(section, name)) {
        if (auto ok = apply(*spec, node); !ok) return ok;
      } else if (section != "roles") {
        std::string key_name = section;
        key_name += ".";
        key_name += name;
        return unknown(key_name, node);
      } else if (const auto* role_table = node.as_table()) {
        if (auto ok = load_role(name, *role_table); !ok) return ok;
      } else {
        std::string message = "roles." + name;
        message += ": unknown key (a role is a table: [roles.";
        message += name;
        message += "])";
        message += where(node);
        return fail(message);
      }
    }
    return {};
  }

  Check load_role(const std::string& role, const toml::table& table) {
    if (auto ok = check_role_name(role); !ok)
      return named("roles." + role, ok.error(), where(table));
    for (auto&& [key, node] : table) {
      const std::string name = "roles." + role + "." + std::string(key.str());
      const RoleKeySpec* found = nullptr;
      for (const auto& spec : role_key_specs()) {
        if (spec.key == key.str()) found = &spec;
      }
      if (found == nullptr) return unknown(name, node);
      if (auto ok = apply_role_key(config_, role, *found, TomlValue(node)); !ok) {
        return named(name, ok.error(), where(node));
      }
    }
    // An empty [roles.NAME] still declares the role, with GUEST's defaults.
    if (config_.roles.find(role) == nullptr) {
      config_.roles.set(role, *RoleTable::defaults().find("GUEST"));
    }
    return {};
  }

  Check apply(const KeySpec& spec, const toml::node& node) {
    if (auto ok = spec.apply(config_, TomlValue(node)); !ok) {
      return named(dotted_name(spec), ok.error(), where(node));
    }
    return {};
  }

  Error unknown(const std::string& name, const toml::node& node) const {
    return fail(name + (node.is_table() ? ": unknown table" : ": unknown key") + where(node));
  }

  std::string where(const toml::node& node) const {
    const auto line = node.source().begin.line;
    if (line == 0) return " (in " + path_ + ")";
    return " (in " + path_ + ", line " + std::to_string(line) + ")";
  }

  Config& config_;
  const std::string& path_;
};

// ---- environment and flags --------------------------------------------------------------------

Check apply_environment(Config& config, const std::map<std::string, std::string>& env) {
  for (const auto& [name, value] : env) {
    // Not ours: the admin key is sessionctl's, the file path is main's, SESSIOND_TEST_* belong to
    // the test suite (make test exports them to every test, sessiond included).
    if (!name.starts_with(kEnvPrefix) || name == "SESSIOND_ADMIN_KEY" ||
        name == "SESSIOND_CONFIG" || name.starts_with("SESSIOND_TEST_")) {
      continue;
    }
    const TextValue text(value);
    if (const KeySpec* spec = find_env_spec(name)) {
      if (auto ok = spec->apply(config, text); !ok) return named(name, ok.error());
      continue;
    }
    bool applied = false;
    if (name.starts_with(kRolesEnvPrefix)) {
      // Role names may contain '_': the key is recognised by its suffix.
      std::string_view rest = std::string_view(name).substr(kRolesEnvPrefix.size());
      for (const auto& spec : role_key_specs()) {
        const std::string suffix = "_" + upper(spec.key);
        if (rest.size() <= suffix.size() || !rest.ends_with(suffix)) continue;
        const std::string role(rest.substr(0, rest.size() - suffix.size()));
        if (auto ok = check_role_name(role); !ok) return named(name, ok.error());
        if (auto ok = apply_role_key(config, role, spec, text); !ok) return named(name, ok.error());
        applied = true;
        break;
      }
      if (!applied) {
        return fail(name +
                    ": unknown environment variable (a role setting is "
                    "SESSIOND_ROLES_<ROLE>_IDLE_TIMEOUT, _ABSOLUTE_TIMEOUT, _MAX_SESSIONS or "
                    "_ON_LIMIT)");
      }
      continue;
    }
    return fail(name + ": unknown environment variable");
  }
  return {};
}

Check apply_flags(Config& config, const ConfigFlags& flags) {
  struct Flag {
    std::string_view name;
    std::string_view section;
    std::string_view key;
    const std::optional<std::string>& value;
  };
  const std::array<Flag, 4> all{{
      {"--listen", "server", "listen", flags.listen},
      {"--store", "store", "url", flags.store_url},
      {"--database", "database", "url", flags.database_url},
      {"--data-dir", "", "data_dir", flags.data_dir},
  }};
  for (const auto& flag : all) {
    if (!flag.value) continue;
    const KeySpec* spec = find_spec(flag.section, flag.key);
    if (auto ok = spec->apply(config, TextValue(*flag.value)); !ok) {
      return named(flag.name, ok.error());
    }
  }
  return {};
}

// Checks that involve more than one key, once every source has been applied.
Check validate(const Config& config) {
  if (config.tokens.access_ttl > config.tokens.refresh_ttl) {
    return fail("tokens.access_ttl: must not be longer than tokens.refresh_ttl (" +
                format_duration(config.tokens.access_ttl) + " > " +
                format_duration(config.tokens.refresh_ttl) + ")");
  }
  auto role_list = [&config] {
    std::string list;
    for (const auto& [name, policy] : config.roles.all()) {
      list += list.empty() ? name : ", " + name;
    }
    return list;
  };
  if (config.roles.find(config.roles.default_role()) == nullptr) {
    return fail("roles.default: no role named \"" + config.roles.default_role() +
                "\" (configured: " + role_list() + ")");
  }
  for (const auto& role : config.admin.roles) {
    if (config.roles.find(role) == nullptr) {
      return fail("admin.roles: no role named \"" + role + "\" (configured: " + role_list() + ")");
    }
  }
  if (!config.webhooks.url.empty() && config.webhooks.secret_file.empty()) {
    return fail("webhooks.secret_file: required when webhooks.url is set (events are signed)");
  }
  return {};
}

std::string in_data_dir(const Config& config, std::string_view file) {
  const std::string& dir = config.data_dir;
  if (dir.empty() || dir.back() == '/') return dir + std::string(file);
  return dir + "/" + std::string(file);
}

}  // namespace

Result<Config> load_config(const std::optional<std::string>& file_path,
                           const std::map<std::string, std::string>& env,
                           const ConfigFlags& flags) {
  Config config;
  if (file_path) {
    if (auto ok = FileLoader(config, *file_path).load(); !ok) return ok.error();
  }
  if (auto ok = apply_environment(config, env); !ok) return ok.error();
  if (auto ok = apply_flags(config, flags); !ok) return ok.error();
  if (auto ok = validate(config); !ok) return ok.error();
  return config;
}

std::map<std::string, std::string> sessiond_environment(char** envp) {
  std::map<std::string, std::string> out;
  if (envp == nullptr) return out;
  for (char** entry = envp; *entry != nullptr; ++entry) {
    std::string_view line(*entry);
    auto eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view name = line.substr(0, eq);
    if (!name.starts_with(kEnvPrefix)) continue;
    out.emplace(name, line.substr(eq + 1));  // the first one wins, as with getenv
  }
  return out;
}

std::string effective_database_url(const Config& config) {
  if (!config.database_url.empty()) return config.database_url;
  return "sqlite://" + in_data_dir(config, "sessiond.db");
}

std::string effective_signing_key_file(const Config& config) {
  if (!config.tokens.signing_key_file.empty()) return config.tokens.signing_key_file;
  return in_data_dir(config, "signing.key");
}

std::string effective_admin_key_file(const Config& config) {
  if (!config.admin.api_key_file.empty()) return config.admin.api_key_file;
  return in_data_dir(config, "admin.key");
}

}  // namespace sessiond::server
