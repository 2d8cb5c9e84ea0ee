#include "http/harness.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "core/crypto.hpp"

extern char** environ;

namespace sessiond::http_test {

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// What a sanitizer prints when it finds something in sessiond.
constexpr std::string_view kSanitizerMarks[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                                "runtime error:", "WARNING: ThreadSanitizer"};

}  // namespace

// ---- HttpResponse ----

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (iequals(n, name)) return v;
  }
  return {};
}

bool HttpResponse::has_header(std::string_view name) const {
  return std::any_of(headers.begin(), headers.end(),
                     [name](const auto& h) { return iequals(h.first, name); });
}

std::vector<std::string> HttpResponse::all(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [n, v] : headers) {
    if (iequals(n, name)) out.push_back(v);
  }
  return out;
}

json::value HttpResponse::json() const {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec) {
    ADD_FAILURE() << "not JSON (status " << status << "): " << body;
    return nullptr;
  }
  return v;
}

std::string HttpResponse::set_cookie(std::string_view cookie_name) const {
  const std::string prefix = std::string(cookie_name) + "=";
  for (auto& c : all("Set-Cookie")) {
    if (c.starts_with(prefix)) return c;
  }
  return {};
}

// ---- stores ----

std::string_view store_name(Store store) {
  switch (store) {
    case Store::memory: return "memory";
    case Store::redis: return "redis";
  }
  return "unknown";
}

std::string store_param_name(const ::testing::TestParamInfo<Store>& info) {
  return std::string(store_name(info.param));
}

// ---- SessiondProcess ----

SessiondProcess::SessiondProcess(std::string extra_toml)
    : SessiondProcess(Store::memory, std::move(extra_toml)) {}

SessiondProcess::SessiondProcess(Store store, std::string extra_toml)
    : SessiondProcess(SessiondOptions{
          .extra_toml = std::move(extra_toml), .admin_key_file = {}, .store = store}) {}

SessiondProcess::SessiondProcess(SessiondOptions options) {
  if (options.store == Store::redis) redis_ = std::make_unique<test_support::PrivateRedis>();
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/sessiond-http-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  }
  dir_ = pattern;
  config_file_ = dir_ + "/sessiond.toml";
  log_file_ = dir_ + "/sessiond.log";
  admin_key_file_ =
      options.admin_key_file.empty() ? dir_ + "/admin.key" : std::move(options.admin_key_file);
  {
    std::ofstream out(config_file_);
    out << "data_dir = \"" << dir_ << "\"\n\n" << options.extra_toml << "\n";
  }
  start();
}

SessiondProcess::~SessiondProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    auto status = wait_for_exit(15s);
    if (!status) {
      ::kill(pid_, SIGKILL);
      wait_for_exit(5s);
      ADD_FAILURE() << "sessiond did not exit within 15 s of SIGTERM";
    } else if (!status->exited || status->code != 0) {
      ADD_FAILURE() << "sessiond ended with " << (status->exited ? "status " : "signal ")
                    << (status->exited ? status->code : status->signal) << " after SIGTERM";
    }
  }
  const std::string text = log();
  for (auto mark : kSanitizerMarks) {
    if (text.find(mark) != std::string::npos) {
      ADD_FAILURE() << "sessiond's log holds a sanitizer report (" << mark << ")";
    }
  }
  if (::testing::Test::HasFailure()) {
    const std::size_t keep = 12000;
    std::cerr << "---- sessiond log (" << log_file_ << ") ----\n"
              << (text.size() > keep ? text.substr(text.size() - keep) : text)
              << "---- end of sessiond log ----\n";
  } else {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
}

std::string SessiondProcess::log() const { return read_file(log_file_); }

HttpClient SessiondProcess::client(std::chrono::milliseconds timeout) const {
  return HttpClient(port_, timeout);
}

void SessiondProcess::start() {
  std::vector<std::string> args = {SESSIOND_BINARY, "--config", config_file_, "--listen",
                                   "127.0.0.1:0"};
  if (redis_) {
    args.emplace_back("--store");
    args.push_back(redis_->url());
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The configuration is the file alone: a SESSIOND_* variable of the caller would change it.
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string_view(*e).starts_with("SESSIOND_")) continue;
    envp.push_back(*e);
  }
  envp.push_back(nullptr);

  const std::size_t log_offset = fs::exists(log_file_) ? fs::file_size(log_file_) : 0;
  const int log_fd = ::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) throw std::runtime_error("cannot open " + log_file_);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    // Only async-signal-safe calls from here on.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::close_range(3, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(log_fd);
  pid_ = pid;
  port_ = 0;

  constexpr std::string_view kListening = "listening on 127.0.0.1:";
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (port_ == 0) {
    const std::string all = log();
    const std::string text = all.substr(std::min(log_offset, all.size()));
    if (auto at = text.find(kListening); at != std::string::npos) {
      int port = 0;
      for (std::size_t i = at + kListening.size(); i < text.size() && std::isdigit(text[i]); ++i) {
        port = port * 10 + (text[i] - '0');
      }
      if (port > 0 && port < 65536) port_ = static_cast<std::uint16_t>(port);
      if (port_ != 0) break;
    }
    if (auto exited = wait_for_exit(0ms)) {
      ADD_FAILURE() << "sessiond exited at start (status " << exited->code << ", signal "
                    << exited->signal << "):\n"
                    << text;
      throw std::runtime_error("sessiond did not start");
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ADD_FAILURE() << "sessiond did not log \"listening on\" within 15 s:\n" << text;
      throw std::runtime_error("sessiond did not start");
    }
    std::this_thread::sleep_for(10ms);
  }
  std::ifstream key(admin_key_file_);
  if (!std::getline(key, admin_key_) || admin_key_.empty()) {
    ADD_FAILURE() << "no admin key in " << admin_key_file_;
    throw std::runtime_error("no admin key");
  }
}

void SessiondProcess::restart() {
  if (pid_ > 0) {
    ADD_FAILURE() << "restart() while sessiond is still running";
    throw std::runtime_error("restart while running");
  }
  start();
}

void SessiondProcess::kill(int signal) {
  if (pid_ > 0) ::kill(pid_, signal);
}

std::optional<ExitStatus> SessiondProcess::wait_for_exit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      ExitStatus out;
      if (WIFEXITED(status)) {
        out.exited = true;
        out.code = WEXITSTATUS(status);
      } else if (WIFSIGNALED(status)) {
        out.signal = WTERMSIG(status);
      }
      return out;
    }
    if (r < 0 && errno != EINTR) {
      pid_ = -1;
      return ExitStatus{};
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(10ms);
  }
}

bool server_has_read_everything(std::uint16_t server_port, std::uint16_t client_port) {
  // Lines: "sl local_address rem_address st tx_queue:rx_queue ...", addresses as hex "IP:PORT".
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues;
    fields >> slot >> local >> remote >> state >> queues;
    auto port_of = [](const std::string& address) {
      auto colon = address.find(':');
      return colon == std::string::npos ? -1 : std::stoi(address.substr(colon + 1), nullptr, 16);
    };
    if (port_of(local) != server_port || port_of(remote) != client_port) continue;
    auto colon = queues.find(':');
    return colon != std::string::npos && std::stoul(queues.substr(colon + 1), nullptr, 16) == 0;
  }
  return false;
}

// ---- JSON and API helpers ----

json::value parse_json(std::string_view text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec) {
    ADD_FAILURE() << "not JSON: " << text;
    return nullptr;
  }
  return v;
}

std::string to_json(const json::value& v) { return json::serialize(v); }

std::vector<json::object> json_lines(const std::string& path) {
  std::vector<json::object> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto v = parse_json(line);
    if (v.is_object()) out.push_back(std::move(v.as_object()));
  }
  return out;
}

std::string str(const json::value& v, std::string_view key) {
  if (!v.is_object()) return {};
  const auto* found = v.as_object().if_contains(key);
  if (found == nullptr || !found->is_string()) return {};
  return std::string(found->as_string());
}

Headers bearer(std::string_view token) {
  return {{"Authorization", "Bearer " + std::string(token)}};
}

Headers json_content() { return {{"Content-Type", "application/json"}}; }

Headers bearer_json(std::string_view token) {
  auto h = bearer(token);
  h.emplace_back("Content-Type", "application/json");
  return h;
}

HttpResponse post_json(HttpClient& c, std::string_view target, const json::value& body,
                       Headers headers) {
  headers.emplace_back("Content-Type", "application/json");
  return c.request("POST", target, headers, json::serialize(body));
}

std::int64_t create_user(const SessiondProcess& server, const NewUser& user) {
  auto c = server.client();
  json::object body{{"password", user.password}, {"role", user.role}};
  if (!user.email.empty()) body["email"] = user.email;
  if (user.mobile_number) body["mobile_number"] = *user.mobile_number;
  auto r = post_json(c, "/admin/v1/users", body, {{"Authorization", server.admin_auth()}});
  if (r.status != 201) {
    ADD_FAILURE() << "POST /admin/v1/users: " << r.status << " " << r.body;
    return 0;
  }
  auto v = r.json();
  if (!v.is_object() || !v.as_object().contains("id") || !v.at("id").is_int64()) {
    ADD_FAILURE() << "POST /admin/v1/users: no id in " << r.body;
    return 0;
  }
  return v.at("id").as_int64();
}

HttpResponse login_response(HttpClient& c, std::string_view email, std::string_view password,
                            Headers extra) {
  return post_json(c, "/api/v1/auth/login", json::object{{"email", email}, {"password", password}},
                   std::move(extra));
}

Tokens login(HttpClient& c, std::string_view email, std::string_view password, Headers extra) {
  auto r = login_response(c, email, password, std::move(extra));
  Tokens t;
  if (r.status != 200) {
    ADD_FAILURE() << "login " << email << ": " << r.status << " " << r.body;
    return t;
  }
  t.body = r.json();
  t.access_token = str(t.body, "access_token");
  t.refresh_token = str(t.body, "refresh_token");
  t.session_id = str(t.body, "session_id");
  return t;
}

HttpResponse verify(HttpClient& c, std::string_view access_token) {
  return c.request("GET", "/api/v1/auth/verify", bearer(access_token));
}

AccessClaims claims_of(std::string_view access_token) {
  AccessClaims c;
  const auto first = access_token.find('.');
  const auto second = access_token.find('.', first + 1);
  if (first == std::string_view::npos || second == std::string_view::npos) {
    ADD_FAILURE() << "not a JWT";
    return c;
  }
  auto payload =
      parse_json(base64url_decode(access_token.substr(first + 1, second - first - 1)).value_or(""));
  if (!payload.is_object()) return c;
  c.sub = std::stoll(str(payload, "sub"));
  c.sid = SessionId::parse(str(payload, "sid")).value_or(SessionId{});
  c.role = str(payload, "role");
  c.iat = TimePoint{std::chrono::seconds{payload.at("iat").to_number<std::int64_t>()}};
  c.exp = TimePoint{std::chrono::seconds{payload.at("exp").to_number<std::int64_t>()}};
  c.jti = str(payload, "jti");
  return c;
}

std::string signing_key(const SessiondProcess& server) {
  std::ifstream in(server.dir() + "/signing.key");
  std::string line;
  std::getline(in, line);
  return line;
}

std::string sign_as_server(const SessiondProcess& server, const AccessClaims& claims) {
  init_crypto();
  auto codec = JwtCodec::hs256(signing_key(server), "sessiond", "sessiond");
  if (!codec) {
    ADD_FAILURE() << "cannot use the server's signing key: " << codec.error().detail;
    return {};
  }
  return codec->sign(claims);
}

::testing::AssertionResult is_problem(const HttpResponse& r, int status, std::string_view code,
                                      std::optional<std::string_view> reason) {
  auto fail = [&r]() {
    return ::testing::AssertionFailure() << "\n  answer: " << r.status << " "
                                         << r.header("Content-Type") << " " << r.body << "\n  ";
  };
  if (r.status != status) return fail() << "expected status " << status;
  if (!r.header("Content-Type").starts_with("application/problem+json")) {
    return fail() << "expected Content-Type application/problem+json";
  }
  boost::system::error_code ec;
  auto v = json::parse(r.body, ec);
  if (ec || !v.is_object()) return fail() << "expected a JSON object body";
  const auto& o = v.as_object();
  for (auto key : {"type", "title", "detail", "code"}) {
    if (!o.contains(key) || !o.at(key).is_string())
      return fail() << "expected string \"" << key << "\"";
  }
  if (!o.contains("status") || !o.at("status").is_int64() || o.at("status").as_int64() != status) {
    return fail() << "expected \"status\": " << status;
  }
  if (o.at("code").as_string() != code) return fail() << "expected code " << code;
  if (reason) {
    if (!o.contains("reason") || !o.at("reason").is_string() ||
        o.at("reason").as_string() != *reason) {
      return fail() << "expected reason " << *reason;
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace sessiond::http_test
