// A redis-server of the test's own for the HTTP tests on the Redis store: a free loopback port and
// a temporary directory, stopped by PID. Tests may stop it (as a crash) and start it again on the
// same port and directory without disturbing other tests. (tests/redis has the same helper for the
// client tests; http_tests does not link those files.)
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sessiond::http_test {

// A free TCP port on 127.0.0.1 (bound, read, released).
std::uint16_t free_tcp_port();

class PrivateRedis {
 public:
  // Starts redis-server ($SESSIOND_TEST_REDIS_SERVER or redis-server from PATH) with `extra_args`
  // and waits until it answers PING; throws when it cannot.
  explicit PrivateRedis(std::vector<std::string> extra_args = {});
  ~PrivateRedis();
  PrivateRedis(const PrivateRedis&) = delete;
  PrivateRedis& operator=(const PrivateRedis&) = delete;

  std::uint16_t port() const { return port_; }
  const std::string& dir() const { return dir_; }
  // redis://127.0.0.1:<port>
  std::string url() const;
  bool running() const { return pid_ > 0; }

  // Sends `signal` (SIGKILL by default: a crash, clients see their connections drop at once) and
  // waits for the process to end.
  void stop(int signal = 9);
  // Starts again on the same port and directory and waits until it answers.
  void start();

 private:
  std::vector<std::string> extra_args_;
  std::uint16_t port_ = 0;
  std::string dir_;
  pid_t pid_ = -1;
};

}  // namespace sessiond::http_test
