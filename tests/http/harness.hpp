// The HTTP test harness: a real sessiond process started on port 0 in a temporary data directory,
// a small blocking HTTP/1.1 client, and helpers for the calls most tests make (create a user with
// the admin key, sign in). Beast lives only in http_client.cpp; tests include this header alone.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <array>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/jwt.hpp"
#include "support/private_redis.hpp"

namespace sessiond::http_test {

using namespace std::chrono_literals;

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
  int status = 0;
  Headers headers;
  std::string body;

  // The first header of that name (case-insensitive), empty when absent.
  std::string header(std::string_view name) const;
  bool has_header(std::string_view name) const;
  // Every header of that name, in order (Set-Cookie comes several times).
  std::vector<std::string> all(std::string_view name) const;
  // The body as JSON; a test failure (and null) when it is not JSON.
  boost::json::value json() const;
  // The value of one Set-Cookie by cookie name ("sessiond_at"), with its attributes; empty if none.
  std::string set_cookie(std::string_view cookie_name) const;
};

// A blocking HTTP/1.1 client on one keep-alive connection, opened on first use and reopened after
// the server closed it. Every socket operation has a deadline. Not thread-safe: one per thread.
class HttpClient {
 public:
  explicit HttpClient(std::uint16_t port, std::chrono::milliseconds timeout = 15s);
  ~HttpClient();
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;

  // Sends one request (Content-Length set from `body`) and reads the answer. A transport failure
  // (refused, reset, timeout) is a test failure and a response with status 0.
  HttpResponse request(std::string_view method, std::string_view target,
                       const Headers& headers = {}, std::string_view body = {});

  // Writes `bytes` as they are and reads one response. nullopt when the server closed the
  // connection (or reset it) without answering.
  std::optional<HttpResponse> send_raw(std::string_view bytes);
  // The two halves of send_raw, for requests sent in pieces. write_raw: false when the server
  // closed or reset the connection.
  bool write_raw(std::string_view bytes);
  std::optional<HttpResponse> read_response();

  // Opens the connection without sending anything; false (and a test failure) when refused.
  bool connect();
  // The client's port of the open connection (0 when none).
  std::uint16_t local_port() const;

  // True when the server closes the connection within `within` without the client sending
  // anything; false when it is still open then.
  bool closed_by_server_within(std::chrono::milliseconds within);

  // True while a connection is open (the server has not been seen to close it).
  bool connected() const;
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// True when something accepts TCP connections on 127.0.0.1:port.
bool accepts_connections(std::uint16_t port);

// The server side of a connection from `client_port` to `server_port` has read every byte the
// client sent (its receive queue in /proc/net/tcp is empty).
bool server_has_read_everything(std::uint16_t server_port, std::uint16_t client_port);

struct ExitStatus {
  bool exited = false;  // exited normally: `code` is its status
  int code = -1;
  int signal = 0;  // killed by this signal
};

// The session store a test's sessiond runs on.
enum class Store {
  memory,  // the embedded default: rebuilt from SQLite when sessiond starts
  redis,   // a redis-server of the SessiondProcess's own: the state lives there across restarts
};
std::string_view store_name(Store store);
inline void PrintTo(Store store, std::ostream* os) { *os << store_name(store); }

// A value-parameterised suite whose tests run once on each store:
//   INSTANTIATE_TEST_SUITE_P(Stores, Fixture, ::testing::ValuesIn(kEachStore), store_param_name);
// names them Stores/Fixture.Test/memory and .../redis; tests/CMakeLists.txt labels the second
// "redis" (they need redis-server).
inline constexpr std::array kEachStore{Store::memory, Store::redis};
std::string store_param_name(const ::testing::TestParamInfo<Store>& info);

// Options of a SessiondProcess beyond its configuration text.
struct SessiondOptions {
  // Appended to the configuration after `data_dir`.
  std::string extra_toml;
  // The file the admin key is read from once the server has started; empty = <data dir>/admin.key.
  // Set it when `extra_toml` points [admin] api_key_file at another node's file.
  std::string admin_key_file;
  // Store::redis: the process starts a redis-server of its own (test_support::PrivateRedis: no
  // other sessiond or test shares its keys) before sessiond and stops it after; sessiond runs
  // with --store <its URL> (which beats a [store] table), restarts included.
  Store store = Store::memory;
};

// One sessiond process. The constructor creates the temporary data directory, writes the
// configuration (data_dir, then `extra_toml`) and starts the server; the destructor stops it
// (SIGTERM, then SIGKILL), fails the test when its log holds a sanitizer report, and removes the
// directory unless the test failed (then the log is printed and the directory kept).
class SessiondProcess {
 public:
  explicit SessiondProcess(std::string extra_toml = {});
  explicit SessiondProcess(Store store, std::string extra_toml = {});
  explicit SessiondProcess(SessiondOptions options);
  ~SessiondProcess();
  SessiondProcess(const SessiondProcess&) = delete;
  SessiondProcess& operator=(const SessiondProcess&) = delete;

  // Starts sessiond on the same data directory (a new port) after it has exited; waits for its
  // "listening on" line (a test failure after 10 s or an early exit).
  void restart();
  void kill(int signal);
  // Waits for the process to exit; nullopt when it is still running after `timeout`.
  std::optional<ExitStatus> wait_for_exit(std::chrono::milliseconds timeout);
  bool running() const { return pid_ > 0; }

  std::uint16_t port() const { return port_; }
  const std::string& dir() const { return dir_; }
  const std::string& admin_key() const { return admin_key_; }
  std::string admin_auth() const { return "Bearer " + admin_key_; }
  // Everything sessiond wrote to stderr and stdout so far (every run on this directory).
  std::string log() const;

  // A new client on this server's current port.
  HttpClient client(std::chrono::milliseconds timeout = 15s) const;

 private:
  void start();
  std::unique_ptr<test_support::PrivateRedis> redis_;  // with Store::redis
  std::string dir_;
  std::string config_file_;
  std::string log_file_;
  std::string admin_key_file_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  std::string admin_key_;
};

// ---- JSON and API helpers ----

boost::json::value parse_json(std::string_view text);
std::string to_json(const boost::json::value& v);
// The objects of a JSON-lines file (one object a line; blank lines and other values skipped);
// empty when the file does not exist.
std::vector<boost::json::object> json_lines(const std::string& path);
// A string member of an object, empty when absent or not a string.
std::string str(const boost::json::value& v, std::string_view key);

Headers bearer(std::string_view token);
Headers json_content();
// Bearer `token` plus Content-Type: application/json.
Headers bearer_json(std::string_view token);

// POST with a JSON body.
HttpResponse post_json(HttpClient& c, std::string_view target, const boost::json::value& body,
                       Headers headers = {});

struct NewUser {
  std::string email;
  std::string password = "correct horse battery";
  std::string role = "GUEST";
  std::optional<std::string> mobile_number = std::nullopt;
};

// Creates a user with the admin key; a test failure unless 201. Returns the user id.
std::int64_t create_user(const SessiondProcess& server, const NewUser& user);

struct Tokens {
  std::string access_token;
  std::string refresh_token;
  std::string session_id;
  boost::json::value body;
};

// Signs in with email and password; a test failure unless 200. Optional User-Agent and
// X-Forwarded-For.
Tokens login(HttpClient& c, std::string_view email, std::string_view password, Headers extra = {});
// The raw answer of a sign-in.
HttpResponse login_response(HttpClient& c, std::string_view email, std::string_view password,
                            Headers extra = {});

// GET /api/v1/auth/verify with the access token.
HttpResponse verify(HttpClient& c, std::string_view access_token);

// The claims of an access token, read without verifying it (for forging variants of it).
AccessClaims claims_of(std::string_view access_token);
// The server's HS256 signing key (from its data directory).
std::string signing_key(const SessiondProcess& server);
// `claims` signed with the server's own key and issuer/audience "sessiond": a token the server
// accepts as long as its session lives.
std::string sign_as_server(const SessiondProcess& server, const AccessClaims& claims);

// Asserts a problem+json answer with this status and code (and reason, when given), the
// documented fields and Content-Type. Use with EXPECT_TRUE / ASSERT_TRUE.
::testing::AssertionResult is_problem(const HttpResponse& r, int status, std::string_view code,
                                      std::optional<std::string_view> reason = std::nullopt);

// Polls `condition` every `every` until it holds or `deadline` passes; returns whether it held.
template <class Fn>
bool eventually(Fn condition, std::chrono::milliseconds deadline,
                std::chrono::milliseconds every = 50ms) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(every);
  }
}

// GET /admin/v1/events?<query> until `enough` holds for the JSON array it answers (or 10 s pass):
// with the Redis store, events reach the database through the outbox, a moment after the change.
template <class Fn>
HttpResponse events_until(HttpClient& c, const SessiondProcess& server, const std::string& query,
                          Fn enough) {
  HttpResponse last;
  eventually(
      [&] {
        last =
            c.request("GET", "/admin/v1/events?" + query, {{"Authorization", server.admin_auth()}});
        return last.status == 200 && enough(last.json().as_array());
      },
      10s);
  return last;
}

}  // namespace sessiond::http_test
