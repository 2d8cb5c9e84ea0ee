#include "server/config_loader.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/temp_dir.hpp"

namespace sessiond::server {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using testing::HasSubstr;
using testing::StartsWith;

using Env = std::map<std::string, std::string>;

using test_support::TempDir;

class ConfigLoader : public testing::Test {
 protected:
  Result<Config> load_text(const std::string& toml, const Env& env = {},
                           const ConfigFlags& flags = {}) {
    return load_config(dir_.write("sessiond.toml", toml), env, flags);
  }
  Result<Config> load_env(const Env& env) { return load_config(std::nullopt, env, {}); }

  // The error detail, or a marker that makes a StartsWith expectation fail readably.
  static std::string error_of(const Result<Config>& result) {
    if (result) return "<loaded without error>";
    EXPECT_EQ(result.error().code, Errc::invalid_request);
    return result.error().detail;
  }

  TempDir dir_;
};

void expect_same_roles(const RoleTable& a, const RoleTable& b) {
  EXPECT_EQ(a.default_role(), b.default_role());
  ASSERT_EQ(a.all().size(), b.all().size());
  for (const auto& [name, policy] : a.all()) {
    const RolePolicy* other = b.find(name);
    ASSERT_NE(other, nullptr) << name;
    EXPECT_EQ(policy.idle_timeout, other->idle_timeout) << name;
    EXPECT_EQ(policy.absolute_timeout, other->absolute_timeout) << name;
    EXPECT_EQ(policy.max_sessions, other->max_sessions) << name;
    EXPECT_EQ(policy.on_limit, other->on_limit) << name;
  }
}

void expect_same_limit(const RateLimit& a, const RateLimit& b) {
  EXPECT_EQ(a.count, b.count);
  EXPECT_EQ(a.window, b.window);
}

}  // namespace

// Compares every field; shared with the documentation test.
void expect_same_config(const Config& a, const Config& b) {
  EXPECT_EQ(a.data_dir, b.data_dir);
  EXPECT_EQ(a.server.listen, b.server.listen);
  EXPECT_EQ(a.server.threads, b.server.threads);
  EXPECT_EQ(a.server.trusted_proxies, b.server.trusted_proxies);
  EXPECT_EQ(a.server.max_body, b.server.max_body);
  EXPECT_EQ(a.server.secure_cookies, b.server.secure_cookies);
  EXPECT_EQ(a.server.idle_timeout, b.server.idle_timeout);
  EXPECT_EQ(a.server.request_timeout, b.server.request_timeout);
  EXPECT_EQ(a.store_url, b.store_url);
  EXPECT_EQ(a.database_url, b.database_url);
  EXPECT_EQ(a.tokens.issuer, b.tokens.issuer);
  EXPECT_EQ(a.tokens.audience, b.tokens.audience);
  EXPECT_EQ(a.tokens.algorithm, b.tokens.algorithm);
  EXPECT_EQ(a.tokens.access_ttl, b.tokens.access_ttl);
  EXPECT_EQ(a.tokens.refresh_ttl, b.tokens.refresh_ttl);
  EXPECT_EQ(a.tokens.refresh_grace, b.tokens.refresh_grace);
  EXPECT_EQ(a.tokens.signing_key_file, b.tokens.signing_key_file);
  expect_same_roles(a.roles, b.roles);
  EXPECT_EQ(a.otp.length, b.otp.length);
  EXPECT_EQ(a.otp.ttl, b.otp.ttl);
  EXPECT_EQ(a.otp.max_attempts, b.otp.max_attempts);
  EXPECT_EQ(a.otp.sender, b.otp.sender);
  EXPECT_EQ(a.otp.auto_register, b.otp.auto_register);
  EXPECT_EQ(a.password_min_length, b.password_min_length);
  expect_same_limit(a.rate_limits.otp_send_per_number, b.rate_limits.otp_send_per_number);
  expect_same_limit(a.rate_limits.otp_send_per_ip, b.rate_limits.otp_send_per_ip);
  expect_same_limit(a.rate_limits.login_per_account, b.rate_limits.login_per_account);
  expect_same_limit(a.rate_limits.login_per_ip, b.rate_limits.login_per_ip);
  expect_same_limit(a.rate_limits.refresh_per_session, b.rate_limits.refresh_per_session);
  EXPECT_EQ(a.admin.api_key_file, b.admin.api_key_file);
  EXPECT_EQ(a.admin.roles, b.admin.roles);
  EXPECT_EQ(a.webhooks.url, b.webhooks.url);
  EXPECT_EQ(a.webhooks.secret_file, b.webhooks.secret_file);
  EXPECT_EQ(a.webhooks.events, b.webhooks.events);
  EXPECT_EQ(a.jobs.cleanup_interval, b.jobs.cleanup_interval);
  EXPECT_EQ(a.jobs.activity_flush_interval, b.jobs.activity_flush_interval);
  EXPECT_EQ(a.log_level, b.log_level);
}

namespace {

// ---- defaults -----------------------------------------------------------------------------------

TEST_F(ConfigLoader, NoFileNoEnvironmentNoFlagsGivesTheDefaults) {
  auto config = load_config(std::nullopt, {}, {});
  ASSERT_TRUE(config) << config.error().detail;
  expect_same_config(*config, Config{});
  EXPECT_EQ(config->server.listen, "127.0.0.1:8080");
  EXPECT_EQ(config->tokens.access_ttl, hours{1});
  EXPECT_EQ(config->roles.default_role(), "GUEST");
  EXPECT_EQ(config->roles.all().size(), 4U);
}

TEST_F(ConfigLoader, EmptyFileGivesTheDefaults) {
  auto config = load_text("");
  ASSERT_TRUE(config) << config.error().detail;
  expect_same_config(*config, Config{});
}

TEST_F(ConfigLoader, EffectivePathsFollowDataDir) {
  Config config;
  config.data_dir = "/var/lib/sessiond";
  EXPECT_EQ(effective_database_url(config), "sqlite:///var/lib/sessiond/sessiond.db");
  EXPECT_EQ(effective_signing_key_file(config), "/var/lib/sessiond/signing.key");
  EXPECT_EQ(effective_admin_key_file(config), "/var/lib/sessiond/admin.key");

  config.data_dir = "data/";
  EXPECT_EQ(effective_database_url(config), "sqlite://data/sessiond.db");

  config.database_url = "postgresql://u:p@db:5432/sessiond";
  config.tokens.signing_key_file = "/etc/sessiond/signing.key";
  config.admin.api_key_file = "/etc/sessiond/admin.key";
  EXPECT_EQ(effective_database_url(config), "postgresql://u:p@db:5432/sessiond");
  EXPECT_EQ(effective_signing_key_file(config), "/etc/sessiond/signing.key");
  EXPECT_EQ(effective_admin_key_file(config), "/etc/sessiond/admin.key");
}

TEST_F(ConfigLoader, DataDirFlagMovesTheDerivedPaths) {
  ConfigFlags flags;
  flags.data_dir = "/srv/sd";
  auto config = load_config(std::nullopt, {}, flags);
  ASSERT_TRUE(config) << config.error().detail;
  EXPECT_EQ(effective_database_url(*config), "sqlite:///srv/sd/sessiond.db");
  EXPECT_EQ(effective_signing_key_file(*config), "/srv/sd/signing.key");
}

TEST(SessiondEnvironment, PicksOnlyTheSessiondVariables) {
  std::string a = "SESSIOND_STORE_URL=redis://h:6379";
  std::string b = "HOME=/root";
  std::string c = "SESSIOND_EMPTY=";
  std::string d = "SESSIONDX=1";
  std::string e = "SESSIOND_STORE_URL=second";
  std::string f = "SESSIOND_VALUE=a=b";
  std::vector<char*> envp{a.data(), b.data(), c.data(), d.data(), e.data(), f.data(), nullptr};
  auto env = sessiond_environment(envp.data());
  EXPECT_EQ(env, (Env{{"SESSIOND_STORE_URL", "redis://h:6379"},
                      {"SESSIOND_EMPTY", ""},
                      {"SESSIOND_VALUE", "a=b"}}));
  EXPECT_TRUE(sessiond_environment(nullptr).empty());
}

// ---- every key, from the file and from the environment -----------------------------------------

TEST_F(ConfigLoader, FileSetsEveryKey) {
  auto config = load_text(R"(
data_dir = "/tmp/sd"
[server]
listen = "[::1]:9090"
threads = 3
trusted_proxies = ["10.0.0.0/8", "::1"]
max_body = "1MiB"
secure_cookies = false
idle_timeout = "45s"
request_timeout = "5s"
[store]
url = "redis://localhost:6379/2"
[database]
url = "postgres://u:p@localhost/sd"
[tokens]
issuer = "iss"
audience = "aud"
algorithm = "EdDSA"
access_ttl = "15m"
refresh_ttl = "7d"
refresh_grace = "5s"
signing_key_file = "/k/sign"
[otp]
length = 8
ttl = "2m"
max_attempts = 3
sender = "webhook:https://sms.example.com/send"
auto_register = false
[password]
min_length = 12
[rate_limits]
otp_send_per_number = "1/1m"
otp_send_per_ip = "2/2m"
login_per_account = "3/3m"
login_per_ip = "4/4m"
refresh_per_session = "5/5s"
[admin]
api_key_file = "/k/admin"
roles = ["SYSTEM_ADMIN", "VENDOR_ADMIN"]
[webhooks]
url = "https://hooks.example.com/x"
secret_file = "/k/hook"
events = ["session.revoked"]
[jobs]
cleanup_interval = "2m"
activity_flush_interval = "10s"
[log]
level = "warn"
)");
  ASSERT_TRUE(config) << config.error().detail;
  const Config& c = *config;
  EXPECT_EQ(c.data_dir, "/tmp/sd");
  EXPECT_EQ(c.server.listen, "[::1]:9090");
  EXPECT_EQ(c.server.threads, 3);
  EXPECT_EQ(c.server.trusted_proxies, (std::vector<std::string>{"10.0.0.0/8", "::1"}));
  EXPECT_EQ(c.server.max_body, 1024U * 1024U);
  EXPECT_FALSE(c.server.secure_cookies);
  EXPECT_EQ(c.server.idle_timeout, seconds{45});
  EXPECT_EQ(c.server.request_timeout, seconds{5});
  EXPECT_EQ(c.store_url, "redis://localhost:6379/2");
  EXPECT_EQ(c.database_url, "postgres://u:p@localhost/sd");
  EXPECT_EQ(c.tokens.issuer, "iss");
  EXPECT_EQ(c.tokens.audience, "aud");
  EXPECT_EQ(c.tokens.algorithm, "EdDSA");
  EXPECT_EQ(c.tokens.access_ttl, minutes{15});
  EXPECT_EQ(c.tokens.refresh_ttl, hours{24 * 7});
  EXPECT_EQ(c.tokens.refresh_grace, seconds{5});
  EXPECT_EQ(c.tokens.signing_key_file, "/k/sign");
  EXPECT_EQ(c.otp.length, 8);
  EXPECT_EQ(c.otp.ttl, minutes{2});
  EXPECT_EQ(c.otp.max_attempts, 3);
  EXPECT_EQ(c.otp.sender, "webhook:https://sms.example.com/send");
  EXPECT_FALSE(c.otp.auto_register);
  EXPECT_EQ(c.password_min_length, 12);
  expect_same_limit(c.rate_limits.otp_send_per_number, {1, minutes{1}});
  expect_same_limit(c.rate_limits.otp_send_per_ip, {2, minutes{2}});
  expect_same_limit(c.rate_limits.login_per_account, {3, minutes{3}});
  expect_same_limit(c.rate_limits.login_per_ip, {4, minutes{4}});
  expect_same_limit(c.rate_limits.refresh_per_session, {5, seconds{5}});
  EXPECT_EQ(c.admin.api_key_file, "/k/admin");
  EXPECT_EQ(c.admin.roles, (std::vector<std::string>{"SYSTEM_ADMIN", "VENDOR_ADMIN"}));
  EXPECT_EQ(c.webhooks.url, "https://hooks.example.com/x");
  EXPECT_EQ(c.webhooks.secret_file, "/k/hook");
  EXPECT_EQ(c.webhooks.events, (std::vector<std::string>{"session.revoked"}));
  EXPECT_EQ(c.jobs.cleanup_interval, minutes{2});
  EXPECT_EQ(c.jobs.activity_flush_interval, seconds{10});
  EXPECT_EQ(c.log_level, "warn");
}

TEST_F(ConfigLoader, EnvironmentSetsEveryKey) {
  auto config = load_env({
      {"SESSIOND_DATA_DIR", "/tmp/sd"},
      {"SESSIOND_SERVER_LISTEN", "0.0.0.0:0"},
      {"SESSIOND_SERVER_THREADS", "2"},
      {"SESSIOND_SERVER_TRUSTED_PROXIES", " 10.0.0.0/8 , fd00::/8,"},
      {"SESSIOND_SERVER_MAX_BODY", "2048"},
      {"SESSIOND_SERVER_SECURE_COOKIES", "0"},
      {"SESSIOND_SERVER_IDLE_TIMEOUT", "1m"},
      {"SESSIOND_SERVER_REQUEST_TIMEOUT", "500ms"},
      {"SESSIOND_STORE_URL", "redis://r:6379"},
      {"SESSIOND_DATABASE_URL", "sqlite:///tmp/x.db"},
      {"SESSIOND_TOKENS_ISSUER", "i"},
      {"SESSIOND_TOKENS_AUDIENCE", "a"},
      {"SESSIOND_TOKENS_ALGORITHM", "ES256"},
      {"SESSIOND_TOKENS_ACCESS_TTL", "10m"},
      {"SESSIOND_TOKENS_REFRESH_TTL", "1d"},
      {"SESSIOND_TOKENS_REFRESH_GRACE", "3s"},
      {"SESSIOND_TOKENS_SIGNING_KEY_FILE", "/k/s"},
      {"SESSIOND_ROLES_DEFAULT", "VENDOR_ADMIN"},
      {"SESSIOND_OTP_LENGTH", "4"},
      {"SESSIOND_OTP_TTL", "1m"},
      {"SESSIOND_OTP_MAX_ATTEMPTS", "9"},
      {"SESSIOND_OTP_SENDER", "file:/tmp/outbox.jsonl"},
      {"SESSIOND_OTP_AUTO_REGISTER", "false"},
      {"SESSIOND_PASSWORD_MIN_LENGTH", "8"},
      {"SESSIOND_RATE_LIMITS_OTP_SEND_PER_NUMBER", "6/1h"},
      {"SESSIOND_RATE_LIMITS_OTP_SEND_PER_IP", "7/1h"},
      {"SESSIOND_RATE_LIMITS_LOGIN_PER_ACCOUNT", "8/1h"},
      {"SESSIOND_RATE_LIMITS_LOGIN_PER_IP", "9/1h"},
      {"SESSIOND_RATE_LIMITS_REFRESH_PER_SESSION", "10/1h"},
      {"SESSIOND_ADMIN_API_KEY_FILE", "/k/a"},
      {"SESSIOND_ADMIN_ROLES", "SYSTEM_ADMIN,GUEST"},
      {"SESSIOND_WEBHOOKS_URL", "http://hooks.local/x"},
      {"SESSIOND_WEBHOOKS_SECRET_FILE", "/k/w"},
      {"SESSIOND_WEBHOOKS_EVENTS", "session.created,session.refresh_reuse"},
      {"SESSIOND_JOBS_CLEANUP_INTERVAL", "5m"},
      {"SESSIOND_JOBS_ACTIVITY_FLUSH_INTERVAL", "1s"},
      {"SESSIOND_LOG_LEVEL", "trace"},
  });
  ASSERT_TRUE(config) << config.error().detail;
  const Config& c = *config;
  EXPECT_EQ(c.data_dir, "/tmp/sd");
  EXPECT_EQ(c.server.listen, "0.0.0.0:0");
  EXPECT_EQ(c.server.threads, 2);
  EXPECT_EQ(c.server.trusted_proxies, (std::vector<std::string>{"10.0.0.0/8", "fd00::/8"}));
  EXPECT_EQ(c.server.max_body, 2048U);
  EXPECT_FALSE(c.server.secure_cookies);
  EXPECT_EQ(c.server.idle_timeout, minutes{1});
  EXPECT_EQ(c.server.request_timeout, milliseconds{500});
  EXPECT_EQ(c.store_url, "redis://r:6379");
  EXPECT_EQ(c.database_url, "sqlite:///tmp/x.db");
  EXPECT_EQ(c.tokens.issuer, "i");
  EXPECT_EQ(c.tokens.audience, "a");
  EXPECT_EQ(c.tokens.algorithm, "ES256");
  EXPECT_EQ(c.tokens.access_ttl, minutes{10});
  EXPECT_EQ(c.tokens.refresh_ttl, hours{24});
  EXPECT_EQ(c.tokens.refresh_grace, seconds{3});
  EXPECT_EQ(c.tokens.signing_key_file, "/k/s");
  EXPECT_EQ(c.roles.default_role(), "VENDOR_ADMIN");
  EXPECT_EQ(c.otp.length, 4);
  EXPECT_EQ(c.otp.ttl, minutes{1});
  EXPECT_EQ(c.otp.max_attempts, 9);
  EXPECT_EQ(c.otp.sender, "file:/tmp/outbox.jsonl");
  EXPECT_FALSE(c.otp.auto_register);
  EXPECT_EQ(c.password_min_length, 8);
  expect_same_limit(c.rate_limits.otp_send_per_number, {6, hours{1}});
  expect_same_limit(c.rate_limits.otp_send_per_ip, {7, hours{1}});
  expect_same_limit(c.rate_limits.login_per_account, {8, hours{1}});
  expect_same_limit(c.rate_limits.login_per_ip, {9, hours{1}});
  expect_same_limit(c.rate_limits.refresh_per_session, {10, hours{1}});
  EXPECT_EQ(c.admin.api_key_file, "/k/a");
  EXPECT_EQ(c.admin.roles, (std::vector<std::string>{"SYSTEM_ADMIN", "GUEST"}));
  EXPECT_EQ(c.webhooks.url, "http://hooks.local/x");
  EXPECT_EQ(c.webhooks.secret_file, "/k/w");
  EXPECT_EQ(c.webhooks.events,
            (std::vector<std::string>{"session.created", "session.refresh_reuse"}));
  EXPECT_EQ(c.jobs.cleanup_interval, minutes{5});
  EXPECT_EQ(c.jobs.activity_flush_interval, seconds{1});
  EXPECT_EQ(c.log_level, "trace");
}

TEST_F(ConfigLoader, EnvironmentBooleansAcceptTrueFalseOneZero) {
  for (const auto& [text, expected] :
       std::map<std::string, bool>{{"true", true}, {"1", true}, {"false", false}, {"0", false}}) {
    auto config = load_env({{"SESSIOND_SERVER_SECURE_COOKIES", text}});
    ASSERT_TRUE(config) << text;
    EXPECT_EQ(config->server.secure_cookies, expected) << text;
  }
  EXPECT_THAT(error_of(load_env({{"SESSIOND_OTP_AUTO_REGISTER", "yes"}})),
              StartsWith("SESSIOND_OTP_AUTO_REGISTER: expected true, false, 1 or 0"));
}

TEST_F(ConfigLoader, EnvironmentEmptyArrayClearsTheList) {
  auto config = load_env({{"SESSIOND_SERVER_TRUSTED_PROXIES", ""}});
  ASSERT_TRUE(config) << config.error().detail;
  EXPECT_TRUE(config->server.trusted_proxies.empty());
}

TEST_F(ConfigLoader, EnvironmentIntegersAreDecimal) {
  EXPECT_THAT(error_of(load_env({{"SESSIOND_SERVER_THREADS", "4x"}})),
              StartsWith("SESSIOND_SERVER_THREADS: expected an integer in decimal"));
  EXPECT_THAT(error_of(load_env({{"SESSIOND_SERVER_THREADS", "0x10"}})),
              StartsWith("SESSIOND_SERVER_THREADS: expected an integer"));
  EXPECT_THAT(error_of(load_env({{"SESSIOND_SERVER_THREADS", ""}})),
              StartsWith("SESSIOND_SERVER_THREADS: expected an integer"));
}

TEST_F(ConfigLoader, AdminKeyConfigAndTestVariablesAreIgnored) {
  auto config = load_env({{"SESSIOND_ADMIN_KEY", "secret"},
                          {"SESSIOND_CONFIG", "/etc/x.toml"},
                          {"SESSIOND_TEST_REDIS_URL", "redis://127.0.0.1:1"}});
  ASSERT_TRUE(config) << config.error().detail;
  expect_same_config(*config, Config{});
}

// ---- precedence: flag > environment > file > default --------------------------------------------

struct FlagCase {
  const char* file_key;
  const char* section;
  const char* env;
  std::optional<std::string> ConfigFlags::*flag;
  std::string (*read)(const Config&);
  std::string from_file;
  std::string from_env;
  std::string from_flag;
};

TEST_F(ConfigLoader, FlagBeatsEnvironmentBeatsFileBeatsDefault) {
  const std::vector<FlagCase> cases{
      {"listen", "[server]", "SESSIOND_SERVER_LISTEN", &ConfigFlags::listen,
       [](const Config& c) { return c.server.listen; }, "127.0.0.1:1", "127.0.0.1:2",
       "127.0.0.1:3"},
      {"url", "[store]", "SESSIOND_STORE_URL", &ConfigFlags::store_url,
       [](const Config& c) { return c.store_url; }, "redis://file:1", "redis://env:2",
       "redis://flag:3"},
      {"url", "[database]", "SESSIOND_DATABASE_URL", &ConfigFlags::database_url,
       [](const Config& c) { return c.database_url; }, "sqlite://file.db", "sqlite://env.db",
       "sqlite://flag.db"},
      {"data_dir", "", "SESSIOND_DATA_DIR", &ConfigFlags::data_dir,
       [](const Config& c) { return c.data_dir; }, "/file", "/env", "/flag"},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(k.env);
    const std::string toml =
        std::string(k.section) + "\n" + k.file_key + " = \"" + k.from_file + "\"\n";
    const Env env{{k.env, k.from_env}};
    ConfigFlags flags;
    flags.*k.flag = k.from_flag;

    auto all = load_text(toml, env, flags);
    ASSERT_TRUE(all) << all.error().detail;
    EXPECT_EQ(k.read(*all), k.from_flag);

    auto no_flag = load_text(toml, env);
    ASSERT_TRUE(no_flag) << no_flag.error().detail;
    EXPECT_EQ(k.read(*no_flag), k.from_env);

    auto file_only = load_text(toml);
    ASSERT_TRUE(file_only) << file_only.error().detail;
    EXPECT_EQ(k.read(*file_only), k.from_file);

    auto flag_only = load_config(std::nullopt, {}, flags);
    ASSERT_TRUE(flag_only) << flag_only.error().detail;
    EXPECT_EQ(k.read(*flag_only), k.from_flag);

    auto nothing = load_config(std::nullopt, {}, {});
    ASSERT_TRUE(nothing);
    EXPECT_EQ(k.read(*nothing), k.read(Config{}));
  }
}

TEST_F(ConfigLoader, EnvironmentBeatsFileForOtherKeys) {
  auto config = load_text("[tokens]\naccess_ttl = \"2h\"\nissuer = \"file\"\n",
                          {{"SESSIOND_TOKENS_ACCESS_TTL", "5m"}});
  ASSERT_TRUE(config) << config.error().detail;
  EXPECT_EQ(config->tokens.access_ttl, minutes{5});
  EXPECT_EQ(config->tokens.issuer, "file");
}

// ---- durations ----------------------------------------------------------------------------------

TEST_F(ConfigLoader, AcceptsEveryDurationForm) {
  const std::map<std::string, Duration> forms{
      {"500ms", milliseconds{500}}, {"90s", seconds{90}},
      {"5m", minutes{5}},           {"8h", hours{8}},
      {"30d", hours{24 * 30}},      {"1s", seconds{1}},
      {"0001m", minutes{1}},        {"36500d", hours{24 * 36500}},
  };
  for (const auto& [text, expected] : forms) {
    SCOPED_TRACE(text);
    auto from_file = load_text("[jobs]\ncleanup_interval = \"" + text + "\"\n");
    ASSERT_TRUE(from_file) << from_file.error().detail;
    EXPECT_EQ(from_file->jobs.cleanup_interval, expected);
    auto from_env = load_env({{"SESSIOND_JOBS_CLEANUP_INTERVAL", text}});
    ASSERT_TRUE(from_env) << from_env.error().detail;
    EXPECT_EQ(from_env->jobs.cleanup_interval, expected);
  }
}

TEST_F(ConfigLoader, RejectsBadDurationsNamingTheKey) {
  for (const std::string text :
       {"90", "", "5x", "-5s", "1.5h", "5 m", " 5m", "5M", "m", "99999999999999999999s"}) {
    SCOPED_TRACE(text);
    EXPECT_THAT(error_of(load_text("[tokens]\nrefresh_grace = \"" + text + "\"\n")),
                StartsWith("tokens.refresh_grace: expected a duration such as \"90s\", \"5m\", "
                           "\"8h\", \"30d\""));
    EXPECT_THAT(error_of(load_env({{"SESSIOND_TOKENS_REFRESH_GRACE", text}})),
                StartsWith("SESSIOND_TOKENS_REFRESH_GRACE: expected a duration such as"));
  }
}

TEST_F(ConfigLoader, RejectsZeroDurations) {
  EXPECT_THAT(error_of(load_text("[otp]\nttl = \"0s\"\n")),
              StartsWith("otp.ttl: expected a duration greater than 0"));
  EXPECT_THAT(error_of(load_env({{"SESSIOND_ROLES_GUEST_IDLE_TIMEOUT", "0m"}})),
              StartsWith("SESSIOND_ROLES_GUEST_IDLE_TIMEOUT: expected a duration greater than 0"));
}

TEST_F(ConfigLoader, RejectsDurationsOverAHundredYears) {
  for (const std::string text : {"36501d", "876025h", "9999999999999999d"}) {
    SCOPED_TRACE(text);
    EXPECT_THAT(error_of(load_text("[tokens]\nrefresh_ttl = \"" + text + "\"\n")),
                StartsWith("tokens.refresh_ttl: expected a duration"));
  }
  EXPECT_THAT(error_of(load_text("[tokens]\nrefresh_ttl = \"36501d\"\n")),
              StartsWith("tokens.refresh_ttl: expected a duration of at most 36500d"));
}

TEST_F(ConfigLoader, DurationAsNumberIsAWrongType) {
  EXPECT_THAT(error_of(load_text("[tokens]\naccess_ttl = 3600\n")),
              StartsWith("tokens.access_ttl: expected a duration such as \"90s\", \"5m\", \"8h\", "
                         "\"30d\", got an integer"));
}

TEST_F(ConfigLoader, AccessTtlMustNotExceedRefreshTtl) {
  EXPECT_THAT(
      error_of(load_text("[tokens]\naccess_ttl = \"2d\"\nrefresh_ttl = \"1d\"\n")),
      StartsWith("tokens.access_ttl: must not be longer than tokens.refresh_ttl (2d > 1d)"));
  // Checked after every source: the environment can make a valid file invalid.
  EXPECT_THAT(error_of(load_text("[tokens]\nrefresh_ttl = \"2h\"\n",
                                 {{"SESSIOND_TOKENS_ACCESS_TTL", "3h"}})),
              StartsWith("tokens.access_ttl: must not be longer than tokens.refresh_ttl"));
  EXPECT_TRUE(load_text("[tokens]\naccess_ttl = \"1d\"\nrefresh_ttl = \"24h\"\n"));
}

// ---- sizes, rate limits, addresses --------------------------------------------------------------

TEST_F(ConfigLoader, ParsesSizes) {
  const std::map<std::string, std::uint64_t> sizes{
      {"512B", 512}, {"64KiB", 65536}, {"1MiB", 1048576}, {"4096", 4096}};
  for (const auto& [text, expected] : sizes) {
    auto config = load_text("[server]\nmax_body = \"" + text + "\"\n");
    ASSERT_TRUE(config) << text << ": " << config.error().detail;
    EXPECT_EQ(config->server.max_body, expected);
  }
}

TEST_F(ConfigLoader, RejectsBadSizesNamingTheKey) {
  for (const std::string text : {"64 KiB", "lots", "1GiB", "-1", "", "0", "99999999999999999MiB"}) {
    SCOPED_TRACE(text);
    EXPECT_THAT(error_of(load_text("[server]\nmax_body = \"" + text + "\"\n")),
                StartsWith("server.max_body: expected a size"));
  }
  EXPECT_THAT(error_of(load_env({{"SESSIOND_SERVER_MAX_BODY", "big"}})),
              StartsWith("SESSIOND_SERVER_MAX_BODY: expected a size such as \"64KiB\""));
  EXPECT_THAT(error_of(load_text("[server]\nmax_body = 65536\n")),
              StartsWith("server.max_body: expected a size such as \"64KiB\", \"1MiB\" or "
                         "\"512B\", got an integer"));
}

TEST_F(ConfigLoader, RejectsBadRateLimitsNamingTheKey) {
  for (const std::string text :
       {"3", "3/", "/10m", "0/10m", "-1/10m", "3/10", "three/10m", "3/0s", "3 / 10m", "3/10m/1"}) {
    SCOPED_TRACE(text);
    EXPECT_THAT(error_of(load_text("[rate_limits]\nlogin_per_ip = \"" + text + "\"\n")),
                StartsWith("rate_limits.login_per_ip: expected a rate limit \"N/window\""));
  }
  EXPECT_THAT(error_of(load_env({{"SESSIOND_RATE_LIMITS_REFRESH_PER_SESSION", "many"}})),
              StartsWith("SESSIOND_RATE_LIMITS_REFRESH_PER_SESSION: expected a rate limit"));
}

TEST_F(ConfigLoader, AcceptsAddressesAndCidrBlocks) {
  auto config = load_text(
      "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"127.0.0.1\", \"0.0.0.0/0\", \"::1\", "
      "\"fd00::/8\", \"2001:db8::/128\"]\n");
  ASSERT_TRUE(config) << config.error().detail;
  EXPECT_EQ(config->server.trusted_proxies.size(), 6U);
  auto empty = load_text("[server]\ntrusted_proxies = []\n");
  ASSERT_TRUE(empty) << empty.error().detail;
  EXPECT_TRUE(empty->server.trusted_proxies.empty());
}

TEST_F(ConfigLoader, RejectsBadCidrNamingTheKey) {
  for (const std::string text :
       {"10.0.0.0/33", "fd00::/129", "localhost", "10.0.0.0/", "10.0.0/8", "10.0.0.0/8/8", "/8", "",
        "10.0.0.0/-1", "10.0.0.0/ 8", "300.0.0.0/8"}) {
    SCOPED_TRACE(text);
    EXPECT_THAT(
        error_of(load_text("[server]\ntrusted_proxies = [\"127.0.0.1/32\", \"" + text + "\"]\n")),
        StartsWith("server.trusted_proxies: \"" + text +
                   "\" is not an IPv4 or IPv6 address or CIDR block"));
  }
  EXPECT_THAT(error_of(load_env({{"SESSIOND_SERVER_TRUSTED_PROXIES", "10.0.0.0/8,nope"}})),
              StartsWith("SESSIOND_SERVER_TRUSTED_PROXIES: \"nope\" is not an IPv4 or IPv6"));
}

TEST_F(ConfigLoader, AcceptsListenAddresses) {
  for (const std::string text :
       {"127.0.0.1:8080", "[::1]:8080", "0.0.0.0:0", "localhost:65535", "[::]:80", "sd-1.lan:80"}) {
    ConfigFlags flags;
    flags.listen = text;
    auto config = load_config(std::nullopt, {}, flags);
    ASSERT_TRUE(config) << text << ": " << config.error().detail;
    EXPECT_EQ(config->server.listen, text);
  }
}

TEST_F(ConfigLoader, RejectsBadListenNamingTheSource) {
  for (const std::string text :
       {"8080", ":8080", "::1:8080", "host:65536", "host:", "[::1]8080", "[nope]:80",
        "1.2.3.999:80", "host:80x", "[]:80", "host:-1", "host:123456", "a b:80", ""}) {
    SCOPED_TRACE(text);
    ConfigFlags flags;
    flags.listen = text;
    EXPECT_THAT(error_of(load_config(std::nullopt, {}, flags)),
                StartsWith("--listen: expected HOST:PORT"));
    EXPECT_THAT(error_of(load_env({{"SESSIOND_SERVER_LISTEN", text}})),
                StartsWith("SESSIOND_SERVER_LISTEN: expected HOST:PORT"));
    EXPECT_THAT(error_of(load_text("[server]\nlisten = \"" + text + "\"\n")),
                StartsWith("server.listen: expected HOST:PORT"));
  }
}

// ---- other validations --------------------------------------------------------------------------

TEST_F(ConfigLoader, RejectsValuesOutOfTheirSets) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"[store]\nurl = \"mysql://x\"", "store.url: expected a URL starting with \"memory://\""},
      {"[store]\nurl = \"\"", "store.url: expected a URL starting with"},
      {"[database]\nurl = \"mysql://x\"", "database.url: expected empty"},
      {"[database]\nurl = \"sqlite://\"", "database.url: expected empty"},
      {"[tokens]\nalgorithm = \"none\"", "tokens.algorithm: expected \"HS256\", \"ES256\" or"},
      {"[tokens]\nalgorithm = \"hs256\"", "tokens.algorithm: expected"},
      {"[tokens]\nissuer = \"\"", "tokens.issuer: must not be empty"},
      {"data_dir = \"\"", "data_dir: must not be empty"},
      {"[otp]\nsender = \"sms\"", "otp.sender: expected \"log\", \"file:PATH\" or \"webhook:URL\""},
      {"[otp]\nsender = \"file:\"", "otp.sender: expected"},
      {"[otp]\nsender = \"webhook:ftp://x\"", "otp.sender: expected"},
      {"[otp]\nsender = \"webhook:https://user:secret@sms.example.com/send\"",
       "otp.sender: expected"},
      {"[webhooks]\nurl = \"https://u:p@hooks.example.com\"",
       "webhooks.url: expected an http:// or https:// URL without user:password@"},
      {"[otp]\nlength = 3", "otp.length: expected an integer from 4 to 10"},
      {"[otp]\nlength = 11", "otp.length: expected an integer from 4 to 10"},
      {"[otp]\nmax_attempts = 0", "otp.max_attempts: expected an integer >= 1"},
      {"[password]\nmin_length = 0", "password.min_length: expected an integer >= 1"},
      {"[server]\nthreads = -1", "server.threads: expected an integer from 0 to 1024"},
      {"[server]\nthreads = 99999999999", "server.threads: expected an integer from 0 to 1024"},
      {"[webhooks]\nevents = [\"session.deleted\"]",
       "webhooks.events: \"session.deleted\" is not an event"},
      {"[webhooks]\nurl = \"hooks.example.com\"", "webhooks.url: expected an http:// or https://"},
      {"[webhooks]\nurl = \"https://hooks.example.com\"",
       "webhooks.secret_file: required when webhooks.url is set"},
      {"[admin]\nroles = [\"ROOT\"]", "admin.roles: no role named \"ROOT\""},
      {"[log]\nlevel = \"verbose\"", "log.level: expected \"trace\", \"debug\""},
  };
  for (const auto& [toml, expected] : cases) {
    SCOPED_TRACE(toml);
    EXPECT_THAT(error_of(load_text(toml + "\n")), StartsWith(expected));
  }
}

TEST_F(ConfigLoader, UrlsAreNotEchoedInErrors) {
  auto error = error_of(load_text("[store]\nurl = \"mysql://user:hunter2@db\"\n"));
  EXPECT_THAT(error, StartsWith("store.url:"));
  EXPECT_THAT(error, testing::Not(HasSubstr("hunter2")));
  error = error_of(load_env({{"SESSIOND_OTP_SENDER", "webhook:ftp://key=hunter2"}}));
  EXPECT_THAT(error, StartsWith("SESSIOND_OTP_SENDER:"));
  EXPECT_THAT(error, testing::Not(HasSubstr("hunter2")));
}

// ---- unknown keys, tables, types ----------------------------------------------------------------

TEST_F(ConfigLoader, UnknownKeysAndTablesAreNamed) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"[server]\nbogus = 1", "server.bogus: unknown key"},
      {"bogus = 1", "bogus: unknown key"},
      {"listen = \"127.0.0.1:1\"", "listen: unknown key"},
      {"[bogus]\nx = 1", "bogus: unknown table"},
      {"[server.extra]\nx = 1", "server.extra: unknown table"},
      {"[roles.GUEST]\nmax_session = 3", "roles.GUEST.max_session: unknown key"},
      {"[roles.GUEST.more]\nx = 1", "roles.GUEST.more: unknown table"},
      {"[roles]\nGUEST = 3", "roles.GUEST: unknown key"},
      {"[[server]]\nlisten = \"127.0.0.1:1\"", "server: expected a table, got an array"},
      {"server = 5", "server: expected a table, got an integer"},
      {"[tokens]\nsigning_key = \"x\"", "tokens.signing_key: unknown key"},
  };
  for (const auto& [toml, expected] : cases) {
    SCOPED_TRACE(toml);
    EXPECT_THAT(error_of(load_text(toml + "\n")), StartsWith(expected));
  }
}

TEST_F(ConfigLoader, WrongTypesAreNamed) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"[server]\nthreads = \"4\"", "server.threads: expected an integer, got a string"},
      {"[server]\nthreads = 4.0", "server.threads: expected an integer, got a floating-point"},
      {"[server]\nsecure_cookies = \"yes\"",
       "server.secure_cookies: expected true or false, got a string"},
      {"[server]\ntrusted_proxies = \"10.0.0.0/8\"",
       "server.trusted_proxies: expected an array of strings, got a string"},
      {"[server]\ntrusted_proxies = [1]",
       "server.trusted_proxies: expected an array of strings, got an integer in it"},
      {"[store]\nurl = 5", "store.url: expected a string, got an integer"},
      {"data_dir = 2024-01-01", "data_dir: expected a string, got a date"},
      {"[roles]\ndefault = [\"GUEST\"]", "roles.default: expected a string, got an array"},
      {"[roles.GUEST]\nmax_sessions = \"5\"",
       "roles.GUEST.max_sessions: expected an integer, got a string"},
      {"[admin]\nroles = \"SYSTEM_ADMIN\"", "admin.roles: expected an array of strings"},
      {"[webhooks]\nevents = {}", "webhooks.events: expected an array of strings, got a table"},
  };
  for (const auto& [toml, expected] : cases) {
    SCOPED_TRACE(toml);
    EXPECT_THAT(error_of(load_text(toml + "\n")), StartsWith(expected));
  }
}

TEST_F(ConfigLoader, FileErrorsSayWhereInTheFile) {
  auto error = error_of(load_text("[server]\nlisten = \"127.0.0.1:1\"\n\n[tokens]\nbogus = 1\n"));
  EXPECT_THAT(error, StartsWith("tokens.bogus: unknown key"));
  EXPECT_THAT(error, HasSubstr("sessiond.toml, line 5)"));
}

TEST_F(ConfigLoader, MissingFileIsAnError) {
  const std::string path = (dir_.path() / "absent.toml").string();
  EXPECT_EQ(error_of(load_config(path, {}, {})),
            "config: cannot read " + path + ": No such file or directory");
  EXPECT_THAT(error_of(load_config(dir_.path().string(), {}, {})),
              StartsWith("config: cannot read " + dir_.path().string() + ": "));
}

TEST_F(ConfigLoader, SyntaxErrorNamesFileLineAndColumn) {
  const std::string path = dir_.write("broken.toml", "[server]\nthreads = 4\nlisten = \n");
  EXPECT_THAT(error_of(load_config(path, {}, {})), StartsWith("config: " + path + ":3:"));
  const std::string dup = dir_.write("dup.toml", "[server]\nthreads = 4\nthreads = 5\n");
  EXPECT_THAT(error_of(load_config(dup, {}, {})), StartsWith("config: " + dup + ":3:"));
}

TEST_F(ConfigLoader, UnknownEnvironmentVariableIsNamed) {
  EXPECT_EQ(error_of(load_env({{"SESSIOND_STORE_ULR", "memory://"}})),
            "SESSIOND_STORE_ULR: unknown environment variable");
  EXPECT_EQ(error_of(load_env({{"SESSIOND_LISTEN", "127.0.0.1:1"}})),
            "SESSIOND_LISTEN: unknown environment variable");
  EXPECT_THAT(error_of(load_env({{"SESSIOND_ROLES_GUEST_MAX", "3"}})),
              StartsWith("SESSIOND_ROLES_GUEST_MAX: unknown environment variable"));
  EXPECT_THAT(error_of(load_env({{"SESSIOND_ROLES_MAX_SESSIONS", "3"}})),
              StartsWith("SESSIOND_ROLES_MAX_SESSIONS: unknown environment variable"));
  EXPECT_THAT(error_of(load_env({{"SESSIOND_store_url", "memory://"}})),
              StartsWith("SESSIOND_store_url: unknown environment variable"));
}

TEST_F(ConfigLoader, FlagErrorsNameTheFlag) {
  ConfigFlags store;
  store.store_url = "mongodb://x";
  EXPECT_THAT(error_of(load_config(std::nullopt, {}, store)), StartsWith("--store: expected"));
  ConfigFlags database;
  database.database_url = "mysql://x";
  EXPECT_THAT(error_of(load_config(std::nullopt, {}, database)),
              StartsWith("--database: expected"));
  ConfigFlags data_dir;
  data_dir.data_dir = "";
  EXPECT_THAT(error_of(load_config(std::nullopt, {}, data_dir)),
              StartsWith("--data-dir: must not be empty"));
}

// ---- roles --------------------------------------------------------------------------------------

TEST_F(ConfigLoader, RoleTableKeepsDefaultsForKeysItLeavesOut) {
  auto config = load_text("[roles.SYSTEM_ADMIN]\nmax_sessions = 1\non_limit = \"deny\"\n");
  ASSERT_TRUE(config) << config.error().detail;
  const RolePolicy* admin = config->roles.find("SYSTEM_ADMIN");
  ASSERT_NE(admin, nullptr);
  EXPECT_EQ(admin->max_sessions, 1);
  EXPECT_EQ(admin->on_limit, OnLimit::deny);
  EXPECT_EQ(admin->idle_timeout, hours{4});
  EXPECT_EQ(admin->absolute_timeout, hours{24 * 7});
  EXPECT_EQ(config->roles.all().size(), 4U);
  EXPECT_EQ(config->roles.find("HOTEL_EMPLOYEE")->max_sessions, 2);
}

TEST_F(ConfigLoader, NewRoleTakesBuiltInGuestDefaults) {
  auto config = load_text(
      "[roles.GUEST]\nidle_timeout = \"1h\"\nmax_sessions = 9\n"
      "[roles.AUDITOR]\non_limit = \"evict_lru\"\n"
      "[roles.EMPTY]\n");
  ASSERT_TRUE(config) << config.error().detail;
  EXPECT_EQ(config->roles.all().size(), 6U);
  const RolePolicy* auditor = config->roles.find("AUDITOR");
  ASSERT_NE(auditor, nullptr);
  EXPECT_EQ(auditor->on_limit, OnLimit::evict_lru);
  EXPECT_EQ(auditor->idle_timeout, hours{24});  // not the file's GUEST 1h
  EXPECT_EQ(auditor->absolute_timeout, hours{24 * 30});
  EXPECT_EQ(auditor->max_sessions, 5);
  const RolePolicy* empty = config->roles.find("EMPTY");
  ASSERT_NE(empty, nullptr);
  EXPECT_EQ(empty->max_sessions, 5);
}

TEST_F(ConfigLoader, RoleEnvironmentVariableWithUnderscoresInTheName) {
  auto config = load_env({{"SESSIOND_ROLES_HOTEL_EMPLOYEE_MAX_SESSIONS", "7"},
                          {"SESSIOND_ROLES_HOTEL_EMPLOYEE_ON_LIMIT", "evict_lru"},
                          {"SESSIOND_ROLES_SYSTEM_ADMIN_ABSOLUTE_TIMEOUT", "1d"},
                          {"SESSIOND_ROLES_GUEST_IDLE_TIMEOUT", "2h"}});
  ASSERT_TRUE(config) << config.error().detail;
  const RolePolicy* hotel = config->roles.find("HOTEL_EMPLOYEE");
  ASSERT_NE(hotel, nullptr);
  EXPECT_EQ(hotel->max_sessions, 7);
  EXPECT_EQ(hotel->on_limit, OnLimit::evict_lru);
  EXPECT_EQ(hotel->idle_timeout, hours{8});
  EXPECT_EQ(config->roles.find("SYSTEM_ADMIN")->absolute_timeout, hours{24});
  EXPECT_EQ(config->roles.find("SYSTEM_ADMIN")->idle_timeout, hours{4});
  EXPECT_EQ(config->roles.find("GUEST")->idle_timeout, hours{2});
  EXPECT_EQ(config->roles.all().size(), 4U);
}

TEST_F(ConfigLoader, RoleEnvironmentVariableAddsANewRole) {
  auto config = load_env({{"SESSIOND_ROLES_NIGHT_AUDITOR_IDLE_TIMEOUT", "2h"},
                          {"SESSIOND_ROLES_DEFAULT", "NIGHT_AUDITOR"}});
  ASSERT_TRUE(config) << config.error().detail;
  const RolePolicy* auditor = config->roles.find("NIGHT_AUDITOR");
  ASSERT_NE(auditor, nullptr);
  EXPECT_EQ(auditor->idle_timeout, hours{2});
  EXPECT_EQ(auditor->absolute_timeout, hours{24 * 30});
  EXPECT_EQ(auditor->max_sessions, 5);
  EXPECT_EQ(config->roles.default_role(), "NIGHT_AUDITOR");
}

TEST_F(ConfigLoader, RoleEnvironmentOverridesOneKeyOfAFileRole) {
  auto config = load_text("[roles.MEMBER]\nidle_timeout = \"3h\"\nmax_sessions = 2\n",
                          {{"SESSIOND_ROLES_MEMBER_MAX_SESSIONS", "4"}});
  ASSERT_TRUE(config) << config.error().detail;
  const RolePolicy* member = config->roles.find("MEMBER");
  ASSERT_NE(member, nullptr);
  EXPECT_EQ(member->idle_timeout, hours{3});
  EXPECT_EQ(member->max_sessions, 4);
}

TEST_F(ConfigLoader, RoleValuesAreValidated) {
  EXPECT_THAT(error_of(load_text("[roles.GUEST]\non_limit = \"evict_newest\"\n")),
              StartsWith("roles.GUEST.on_limit: expected \"evict_oldest\", \"evict_lru\" or "
                         "\"deny\""));
  EXPECT_THAT(error_of(load_env({{"SESSIOND_ROLES_GUEST_ON_LIMIT", "drop"}})),
              StartsWith("SESSIOND_ROLES_GUEST_ON_LIMIT: expected \"evict_oldest\""));
  EXPECT_THAT(error_of(load_text("[roles.HOTEL_EMPLOYEE]\nmax_sessions = 0\n")),
              StartsWith("roles.HOTEL_EMPLOYEE.max_sessions: expected an integer >= 1"));
  EXPECT_THAT(error_of(load_env({{"SESSIOND_ROLES_HOTEL_EMPLOYEE_MAX_SESSIONS", "-2"}})),
              StartsWith("SESSIOND_ROLES_HOTEL_EMPLOYEE_MAX_SESSIONS: expected an integer >= 1"));
  EXPECT_THAT(error_of(load_text("[roles.GUEST]\nabsolute_timeout = \"30\"\n")),
              StartsWith("roles.GUEST.absolute_timeout: expected a duration"));
  EXPECT_THAT(error_of(load_text("[roles.\"has space\"]\nmax_sessions = 1\n")),
              StartsWith("roles.has space: \"has space\" is not a role name"));
}

TEST_F(ConfigLoader, DefaultRoleMustExist) {
  EXPECT_THAT(error_of(load_text("[roles]\ndefault = \"MEMBER\"\n")),
              StartsWith("roles.default: no role named \"MEMBER\" (configured: GUEST, "
                         "HOTEL_EMPLOYEE, SYSTEM_ADMIN, VENDOR_ADMIN)"));
  EXPECT_THAT(error_of(load_env({{"SESSIOND_ROLES_DEFAULT", "guest"}})),
              StartsWith("roles.default: no role named \"guest\""));
  auto config = load_text("[roles]\ndefault = \"MEMBER\"\n[roles.MEMBER]\nmax_sessions = 1\n");
  ASSERT_TRUE(config) << config.error().detail;
  EXPECT_EQ(config->roles.default_role(), "MEMBER");
}

}  // namespace
}  // namespace sessiond::server
