// docs/configuration.md is read from the source tree: its examples must load as written.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "server/config_loader.hpp"
#include "support/temp_dir.hpp"

namespace sessiond::server {

// Defined in config_loader_test.cpp: compares every field of two configurations.
void expect_same_config(const Config& a, const Config& b);

namespace {

using testing::HasSubstr;
using testing::Not;

using test_support::TempDir;

// tests/config/<this file> -> docs/configuration.md
std::filesystem::path doc_path() {
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "docs" /
         "configuration.md";
}

std::vector<std::string> doc_lines() {
  std::ifstream in(doc_path());
  if (!in) throw std::runtime_error("cannot read " + doc_path().string());
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The bodies of the fenced blocks opened with "```<language>".
std::vector<std::string> code_blocks(const std::string& language) {
  std::vector<std::string> blocks;
  std::string current;
  bool inside = false;
  for (const auto& line : doc_lines()) {
    if (!inside && line == "```" + language) {
      inside = true;
      current.clear();
    } else if (inside && line == "```") {
      inside = false;
      blocks.push_back(current);
    } else if (inside) {
      current += line + "\n";
    }
  }
  return blocks;
}

// SPEC §2's example, byte for byte: the doc must keep it.
constexpr const char* kSpecExampleStart =
    "data_dir = \"./sessiond-data\"          # signing key, admin key, SQLite file; created 0700\n"
    "\n"
    "[server]\n"
    "listen = \"127.0.0.1:8080\"\n";
constexpr const char* kSpecExampleEnd =
    "[jobs]\n"
    "cleanup_interval = \"60s\"               # marks expired sessions in the database\n"
    "activity_flush_interval = \"30s\"        # how stale last_activity may be in the database\n";

TEST(ConfigurationDoc, FirstTomlBlockIsTheSpecExampleAndEqualsTheDefaults) {
  const auto blocks = code_blocks("toml");
  ASSERT_FALSE(blocks.empty());
  const std::string& example = blocks.front();
  EXPECT_EQ(example.rfind(kSpecExampleStart, 0), 0U);
  EXPECT_TRUE(example.ends_with(kSpecExampleEnd));
  for (const char* table :
       {"[server]", "[store]", "[database]", "[tokens]", "[roles]", "[roles.GUEST]",
        "[roles.HOTEL_EMPLOYEE]", "[roles.VENDOR_ADMIN]", "[roles.SYSTEM_ADMIN]", "[otp]",
        "[password]", "[rate_limits]", "[admin]", "[webhooks]", "[jobs]"}) {
    EXPECT_THAT(example, HasSubstr(std::string("\n") + table)) << table;
  }

  TempDir dir;
  auto config = load_config(dir.write("sessiond.toml", example), {}, {});
  ASSERT_TRUE(config) << config.error().detail;
  expect_same_config(*config, Config{});
}

TEST(ConfigurationDoc, EveryTomlExampleLoads) {
  TempDir dir;
  const auto blocks = code_blocks("toml");
  EXPECT_GE(blocks.size(), 5U);
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    SCOPED_TRACE(blocks[i]);
    auto config =
        load_config(dir.write("example" + std::to_string(i) + ".toml", blocks[i]), {}, {});
    EXPECT_TRUE(config) << config.error().detail;
  }
}

TEST(ConfigurationDoc, RolesExampleDoesWhatItSays) {
  TempDir dir;
  std::string roles_example;
  for (const auto& block : code_blocks("toml")) {
    if (block.find("default = \"MEMBER\"") != std::string::npos) roles_example = block;
  }
  ASSERT_FALSE(roles_example.empty());
  auto config = load_config(dir.write("roles.toml", roles_example), {}, {});
  ASSERT_TRUE(config) << config.error().detail;
  const RolePolicy* member = config->roles.find("MEMBER");
  ASSERT_NE(member, nullptr);
  EXPECT_EQ(member->idle_timeout, std::chrono::hours{24});
  EXPECT_EQ(member->absolute_timeout, std::chrono::hours{24 * 30});
  const RolePolicy* admin = config->roles.find("SYSTEM_ADMIN");
  ASSERT_NE(admin, nullptr);
  EXPECT_EQ(admin->idle_timeout, std::chrono::hours{4});
  EXPECT_EQ(admin->absolute_timeout, std::chrono::hours{24 * 7});
}

// The `export SESSIOND_...=...` lines of the shell examples, as the shell would set them.
TEST(ConfigurationDoc, EnvironmentExampleLoads) {
  std::map<std::string, std::string> env;
  for (const auto& block : code_blocks("sh")) {
    std::istringstream lines(block);
    for (std::string line; std::getline(lines, line);) {
      if (!line.starts_with("export SESSIOND_")) continue;
      const auto eq = line.find('=');
      ASSERT_NE(eq, std::string::npos) << line;
      std::string value = line.substr(eq + 1);
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      env[line.substr(7, eq - 7)] = value;
    }
  }
  ASSERT_GE(env.size(), 5U);
  auto config = load_config(std::nullopt, env, {});
  ASSERT_TRUE(config) << config.error().detail;
  EXPECT_EQ(config->roles.find("HOTEL_EMPLOYEE")->max_sessions, 3);
  EXPECT_EQ(config->server.trusted_proxies,
            (std::vector<std::string>{"10.0.0.0/8", "192.168.0.0/16"}));
}

// Rows of the "Every key" table: `key` | default | `SESSIOND_...` | what.
std::map<std::string, std::string> documented_variables() {
  std::map<std::string, std::string> by_key;
  for (const auto& line : doc_lines()) {
    if (!line.starts_with("| `")) continue;
    std::vector<std::string> cells;
    std::istringstream row(line.substr(1));
    for (std::string cell; std::getline(row, cell, '|');) cells.push_back(cell);
    if (cells.size() < 4) continue;
    auto strip = [](std::string s) {
      const auto first = s.find('`');
      const auto last = s.rfind('`');
      return first == last ? std::string{} : s.substr(first + 1, last - first - 1);
    };
    const std::string key = strip(cells[0]);
    const std::string variable = strip(cells[2]);
    if (variable.starts_with("SESSIOND_")) by_key[key] = variable;
  }
  return by_key;
}

TEST(ConfigurationDoc, DocumentsEveryKeyWithItsVariable) {
  const std::map<std::string, std::string> expected{
      {"data_dir", "SESSIOND_DATA_DIR"},
      {"server.listen", "SESSIOND_SERVER_LISTEN"},
      {"server.threads", "SESSIOND_SERVER_THREADS"},
      {"server.trusted_proxies", "SESSIOND_SERVER_TRUSTED_PROXIES"},
      {"server.max_body", "SESSIOND_SERVER_MAX_BODY"},
      {"server.secure_cookies", "SESSIOND_SERVER_SECURE_COOKIES"},
      {"server.idle_timeout", "SESSIOND_SERVER_IDLE_TIMEOUT"},
      {"server.request_timeout", "SESSIOND_SERVER_REQUEST_TIMEOUT"},
      {"store.url", "SESSIOND_STORE_URL"},
      {"database.url", "SESSIOND_DATABASE_URL"},
      {"tokens.issuer", "SESSIOND_TOKENS_ISSUER"},
      {"tokens.audience", "SESSIOND_TOKENS_AUDIENCE"},
      {"tokens.algorithm", "SESSIOND_TOKENS_ALGORITHM"},
      {"tokens.access_ttl", "SESSIOND_TOKENS_ACCESS_TTL"},
      {"tokens.refresh_ttl", "SESSIOND_TOKENS_REFRESH_TTL"},
      {"tokens.refresh_grace", "SESSIOND_TOKENS_REFRESH_GRACE"},
      {"tokens.signing_key_file", "SESSIOND_TOKENS_SIGNING_KEY_FILE"},
      {"roles.default", "SESSIOND_ROLES_DEFAULT"},
      {"roles.<ROLE>.idle_timeout", "SESSIOND_ROLES_<ROLE>_IDLE_TIMEOUT"},
      {"roles.<ROLE>.absolute_timeout", "SESSIOND_ROLES_<ROLE>_ABSOLUTE_TIMEOUT"},
      {"roles.<ROLE>.max_sessions", "SESSIOND_ROLES_<ROLE>_MAX_SESSIONS"},
      {"roles.<ROLE>.on_limit", "SESSIOND_ROLES_<ROLE>_ON_LIMIT"},
      {"otp.length", "SESSIOND_OTP_LENGTH"},
      {"otp.ttl", "SESSIOND_OTP_TTL"},
      {"otp.max_attempts", "SESSIOND_OTP_MAX_ATTEMPTS"},
      {"otp.sender", "SESSIOND_OTP_SENDER"},
      {"otp.auto_register", "SESSIOND_OTP_AUTO_REGISTER"},
      {"password.min_length", "SESSIOND_PASSWORD_MIN_LENGTH"},
      {"rate_limits.otp_send_per_number", "SESSIOND_RATE_LIMITS_OTP_SEND_PER_NUMBER"},
      {"rate_limits.otp_send_per_ip", "SESSIOND_RATE_LIMITS_OTP_SEND_PER_IP"},
      {"rate_limits.login_per_account", "SESSIOND_RATE_LIMITS_LOGIN_PER_ACCOUNT"},
      {"rate_limits.login_per_ip", "SESSIOND_RATE_LIMITS_LOGIN_PER_IP"},
      {"rate_limits.refresh_per_session", "SESSIOND_RATE_LIMITS_REFRESH_PER_SESSION"},
      {"admin.api_key_file", "SESSIOND_ADMIN_API_KEY_FILE"},
      {"admin.roles", "SESSIOND_ADMIN_ROLES"},
      {"webhooks.url", "SESSIOND_WEBHOOKS_URL"},
      {"webhooks.secret_file", "SESSIOND_WEBHOOKS_SECRET_FILE"},
      {"webhooks.events", "SESSIOND_WEBHOOKS_EVENTS"},
      {"jobs.cleanup_interval", "SESSIOND_JOBS_CLEANUP_INTERVAL"},
      {"jobs.activity_flush_interval", "SESSIOND_JOBS_ACTIVITY_FLUSH_INTERVAL"},
      {"jobs.outbox_claim_after", "SESSIOND_JOBS_OUTBOX_CLAIM_AFTER"},
      {"log.level", "SESSIOND_LOG_LEVEL"},
  };
  EXPECT_EQ(documented_variables(), expected);
}

// Each documented variable is one the loader knows (with a role name filled in).
TEST(ConfigurationDoc, EveryDocumentedVariableIsKnown) {
  for (const auto& [key, documented] : documented_variables()) {
    std::string variable = documented;
    if (const auto role = variable.find("<ROLE>"); role != std::string::npos) {
      variable.replace(role, 6, "HOTEL_EMPLOYEE");
    }
    auto result = load_config(std::nullopt, {{variable, "not a valid value"}}, {});
    if (!result) {
      EXPECT_THAT(result.error().detail, Not(HasSubstr("unknown environment variable")))
          << variable;
    }
  }
}

}  // namespace
}  // namespace sessiond::server
