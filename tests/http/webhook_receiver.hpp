// tests/support/webhook_receiver.py in a process of its own, for the tests of webhooks and of the
// webhook: OTP sender. Header-only: two test files use it.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json/object.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "http/harness.hpp"

namespace sessiond::http_test {

// A port nothing listens on (bound and released).
inline std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// tests/support/webhook_receiver.py in a process of its own: every POST it answered is a line
// of its log.
class Receiver {
 public:
  Receiver(const std::filesystem::path& dir, std::uint16_t port, std::vector<std::string> extra)
      : log_((dir / ("receiver-" + std::to_string(port) + ".jsonl")).string()),
        port_file_((dir / ("receiver-" + std::to_string(port) + ".port")).string()) {
    std::vector<std::string> args = {
        "python3",     std::string(SESSIOND_SOURCE_DIR) + "/tests/support/webhook_receiver.py",
        "--port-file", port_file_,
        "--log",       log_,
        "--port",      std::to_string(port)};
    for (auto& a : extra) args.push_back(std::move(a));
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::execvp("python3", argv.data());
      ::_exit(127);
    }
    const bool up = eventually([&] { return std::ifstream(port_file_).good(); }, 10s, 20ms);
    if (!up) ADD_FAILURE() << "the webhook receiver did not start";
  }
  ~Receiver() { stop(); }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  // Every request received so far: {"path","headers","body"} objects.
  std::vector<boost::json::object> requests() const { return json_lines(log_); }
  // The bodies of the accepted (2xx) deliveries, parsed, in arrival order.
  std::vector<boost::json::object> delivered() const {
    std::vector<boost::json::object> out;
    for (const auto& r : requests()) {
      if (r.contains("status") && r.at("status").as_int64() / 100 != 2) continue;
      auto v = parse_json(r.at("body").as_string());
      if (v.is_object()) out.push_back(v.as_object());
    }
    return out;
  }

 private:
  std::string log_;
  std::string port_file_;
  pid_t pid_ = -1;
};

}  // namespace sessiond::http_test
