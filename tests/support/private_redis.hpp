// A redis-server of the test's own: a free loopback port and a temporary directory, stopped by PID.
// For tests that need a server no other test touches: to kill and restart it, reconfigure it, or
// give one sessiond a store of its own. Shared by the Redis client tests and the HTTP tests
// (scripts/private-redis.sh is the same for shell scripts).
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sessiond::test_support {

// A free TCP port on 127.0.0.1 (bound, read, released). Throws when there is none.
std::uint16_t free_port();

class PrivateRedis {
 public:
  // Starts redis-server ($SESSIOND_TEST_REDIS_SERVER, else redis-server from PATH) on `port` (a
  // free one when 0) without persistence, then `extra_args` (which may turn persistence on), and
  // waits until it answers; throws when it cannot. The server dies with the test process even
  // when the destructor does not run.
  explicit PrivateRedis(std::vector<std::string> extra_args = {}, std::uint16_t port = 0);
  // SIGKILL (it holds nothing worth saving), then removes the directory.
  ~PrivateRedis();
  PrivateRedis(const PrivateRedis&) = delete;
  PrivateRedis& operator=(const PrivateRedis&) = delete;

  std::uint16_t port() const { return port_; }
  // Its working directory (AOF, RDB) and log file (redis.log).
  const std::string& dir() const { return dir_; }
  // redis://127.0.0.1:<port>
  std::string url() const;
  bool running() const { return pid_ > 0; }

  // Sends `signal` (SIGKILL by default: a crash, clients see their connections drop at once) and
  // waits for the process to end.
  void kill(int signal = SIGKILL);
  // Starts again on the same port and directory and waits until it answers.
  void start();

 private:
  std::vector<std::string> extra_args_;
  std::uint16_t port_ = 0;
  std::string dir_;
  pid_t pid_ = -1;
};

}  // namespace sessiond::test_support
