#include "redis/redis_test_support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace sessiond::store::redis::testing {
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
  std::stringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = dir + "/redis-server";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  throw std::runtime_error("redis-server not found on PATH (scripts/install-deps.sh installs it)");
}

// True when something on the port answers a RESP command (any reply: +PONG or -NOAUTH).
bool answers(std::uint16_t port) {
  const Descriptor fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return false;
  timeval timeout{1, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  const auto address = loopback(port);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    return false;
  }
  constexpr std::string_view kPing = "PING\r\n";
  if (::send(fd.get(), kPing.data(), kPing.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(kPing.size())) {
    return false;
  }
  char reply = 0;
  return ::recv(fd.get(), &reply, 1, 0) == 1 && (reply == '+' || reply == '-');
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::optional<std::string> shared_server_url() {
  const char* url = std::getenv(kUrlVariable);
  if (url == nullptr || *url == '\0') return std::nullopt;
  return std::string(url);
}

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

RedisServer::RedisServer(std::vector<std::string> extra_args, std::uint16_t port)
    : extra_args_(std::move(extra_args)), port_(port == 0 ? free_port() : port) {
  std::string pattern = (std::filesystem::temp_directory_path() / "sessiond-redis-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  }
  dir_ = pattern;
  start();
}

RedisServer::~RedisServer() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

RedisUrl RedisServer::url(std::string_view user, std::string_view password, int db) const {
  RedisUrl url;
  url.host = "127.0.0.1";
  url.port = port_;
  url.user = std::string(user);
  url.password = std::string(password);
  url.db = db;
  return url;
}

void RedisServer::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void RedisServer::start() {
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
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    // Dies with the test process, even when the test crashes before its destructor runs.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  pid_ = pid;

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
  while (!answers(port_)) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("redis-server exited at start: " + read_file(dir_ + "/redis.log"));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("redis-server did not answer within 10 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
}

void run_all(boost::asio::io_context& io, std::vector<boost::asio::awaitable<void>> tasks,
             std::chrono::milliseconds limit) {
  struct Outcome {
    std::size_t remaining = 0;
    std::exception_ptr failure;
  };
  auto outcome = std::make_shared<Outcome>();
  outcome->remaining = tasks.size();
  if (tasks.empty()) return;
  io.restart();
  for (auto& task : tasks) {
    boost::asio::co_spawn(io, std::move(task), [outcome, &io](std::exception_ptr e) {
      if (e && !outcome->failure) outcome->failure = e;
      if (--outcome->remaining == 0) io.stop();
    });
  }
  io.run_for(limit);
  if (outcome->remaining != 0)
    throw std::runtime_error("the tasks did not finish in time (a hang)");
  if (outcome->failure) std::rethrow_exception(outcome->failure);
}

boost::asio::awaitable<void> pause(std::chrono::milliseconds delay) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, delay);
  co_await timer.async_wait(boost::asio::use_awaitable);
}

}  // namespace sessiond::store::redis::testing
