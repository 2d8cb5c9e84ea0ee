#include "support/private_redis.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

namespace sessiond::test_support {
namespace {

class Descriptor {
 public:
  explicit Descriptor(int fd) : fd_(fd) {}
  ~Descriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

std::string server_binary() {
  if (const char* configured = std::getenv("SESSIOND_TEST_REDIS_SERVER")) return configured;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = dir + "/redis-server";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  throw std::runtime_error("redis-server not found on PATH (scripts/install-deps.sh installs it)");
}

// What the server on the port says about itself: the process_id of INFO server; 0 when it answers
// with an error (it wants a password first, so it cannot tell); nullopt when nothing answers.
std::optional<pid_t> answering_pid(std::uint16_t port) {
  const Descriptor fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return std::nullopt;
  timeval timeout{1, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  const auto address = loopback(port);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    return std::nullopt;
  }
  constexpr std::string_view kInfo = "INFO server\r\n";
  if (::send(fd.get(), kInfo.data(), kInfo.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(kInfo.size())) {
    return std::nullopt;
  }
  // A bulk string "$<length>\r\n<text>\r\n", or an error "-NOAUTH ...\r\n".
  std::string reply;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::recv(fd.get(), buffer, sizeof buffer, 0);
    if (n <= 0) return std::nullopt;
    reply.append(buffer, static_cast<std::size_t>(n));
    if (reply.front() == '-') return 0;
    const auto header_end = reply.find("\r\n");
    if (reply.front() != '$' || header_end == std::string::npos) continue;
    const std::size_t length = std::stoul(reply.substr(1, header_end - 1));
    if (reply.size() >= header_end + 2 + length) break;
  }
  constexpr std::string_view kField = "\nprocess_id:";
  const auto at = reply.find(kField);
  if (at == std::string::npos) return std::nullopt;
  return static_cast<pid_t>(std::stol(reply.substr(at + kField.size())));
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::uint16_t free_port() {
  const Descriptor fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  auto address = loopback(0);
  socklen_t length = sizeof address;
  if (fd.get() < 0 || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), length) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    throw std::runtime_error(std::string("cannot find a free port: ") + std::strerror(errno));
  }
  return ntohs(address.sin_port);
}

PrivateRedis::PrivateRedis(std::vector<std::string> extra_args, std::uint16_t port)
    : extra_args_(std::move(extra_args)), port_(port == 0 ? free_port() : port) {
  std::string pattern = (std::filesystem::temp_directory_path() / "sessiond-redis-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  }
  dir_ = pattern;
  try {
    start();
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
    throw;
  }
}

PrivateRedis::~PrivateRedis() {
  kill(SIGKILL);
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string PrivateRedis::url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

void PrivateRedis::kill(int signal) {
  if (pid_ <= 0) return;
  ::kill(pid_, signal);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void PrivateRedis::start() {
  if (pid_ > 0) throw std::logic_error("redis-server already running");
  std::vector<std::string> args{server_binary(),
                                "--port",
                                std::to_string(port_),
                                "--bind",
                                "127.0.0.1",
                                "--save",
                                "",
                                "--appendonly",
                                "no",
                                "--daemonize",
                                "no",
                                "--dir",
                                dir_,
                                "--logfile",
                                dir_ + "/redis.log"};
  // Later arguments win: extra_args may turn persistence back on.
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    // Only async-signal-safe calls from here on. Dies with the test process, even when the test
    // crashes before the destructor runs; holds none of its descriptors (a pipe of ctest's would
    // otherwise stay open until the server exits).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    const int null_fd = ::open("/dev/null", O_RDWR);
    ::dup2(null_fd, 0);
    ::dup2(null_fd, 1);
    ::close_range(3, ~0U, 0);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  pid_ = pid;

  // Polls until our process answers. Another server may have taken the port since free_port()
  // released it: then ours exits (address in use), or is caught answering with another pid.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
  for (;;) {
    if (const auto answering = answering_pid(port_)) {
      if (*answering == pid_ || *answering == 0) break;
      kill(SIGKILL);
      throw std::runtime_error("port " + std::to_string(port_) +
                               " is taken by another redis-server (process " +
                               std::to_string(*answering) + ")");
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("redis-server exited at start: " + read_text(dir_ + "/redis.log"));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      kill(SIGKILL);
      throw std::runtime_error("redis-server did not answer within 10 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
}

}  // namespace sessiond::test_support
