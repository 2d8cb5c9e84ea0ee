// sessiond's configuration as data (SPEC §2). Loading it (TOML file, SESSIOND_* environment, flags)
// is server/config_loader's job; this header only holds the values and their defaults. No I/O.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/session.hpp"
#include "core/time.hpp"

namespace sessiond {

struct RateLimit {
  int count = 0;
  Duration window{0};
};

struct ServerConfig {
  std::string listen = "127.0.0.1:8080";
  int threads = 0;  // 0 = one per core
  std::vector<std::string> trusted_proxies{"127.0.0.1/32"};
  std::uint64_t max_body = 64 * 1024;
  bool secure_cookies = true;
  Duration idle_timeout{
      std::chrono::seconds{30}};  // [server] idle_timeout: idle keep-alive connections
  Duration request_timeout{std::chrono::seconds{10}};  // whole request must arrive within this
};

struct TokensConfig {
  std::string issuer = "sessiond";
  std::string audience = "sessiond";
  std::string algorithm = "HS256";
  Duration access_ttl{std::chrono::hours{1}};
  Duration refresh_ttl{std::chrono::hours{24 * 30}};
  Duration refresh_grace{std::chrono::seconds{10}};
  std::string signing_key_file;  // empty = <data_dir>/signing.key
};

struct OtpConfig {
  int length = 6;
  Duration ttl{std::chrono::minutes{5}};
  int max_attempts = 5;
  std::string sender = "log";
  bool auto_register = true;
};

struct RateLimitsConfig {
  RateLimit otp_send_per_number{3, std::chrono::minutes{10}};
  RateLimit otp_send_per_ip{30, std::chrono::hours{1}};
  RateLimit login_per_account{10, std::chrono::minutes{15}};
  RateLimit login_per_ip{100, std::chrono::minutes{15}};
  RateLimit refresh_per_session{60, std::chrono::minutes{1}};
};

struct AdminConfig {
  std::string api_key_file;  // empty = <data_dir>/admin.key
  std::vector<std::string> roles{"SYSTEM_ADMIN"};
};

struct WebhooksConfig {
  std::string url;
  std::string secret_file;
  std::vector<std::string> events{"session.created", "session.new_device", "session.revoked",
                                  "session.refresh_reuse"};
};

struct JobsConfig {
  Duration cleanup_interval{std::chrono::seconds{60}};
  Duration activity_flush_interval{std::chrono::seconds{30}};
  // Redis store: the outbox writer's lease; entries a stopped node left are taken over after it.
  Duration outbox_claim_after{std::chrono::seconds{30}};
};

struct Config {
  std::string data_dir = "./sessiond-data";
  ServerConfig server;
  std::string store_url = "memory://";
  std::string database_url;  // empty = sqlite://<data_dir>/sessiond.db
  TokensConfig tokens;
  RoleTable roles = RoleTable::defaults();
  OtpConfig otp;
  int password_min_length = 10;
  RateLimitsConfig rate_limits;
  AdminConfig admin;
  WebhooksConfig webhooks;
  JobsConfig jobs;
  std::string log_level = "info";
};

}  // namespace sessiond
