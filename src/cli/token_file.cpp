#include "cli/token_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace sessiond::cli {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

std::string mode_text(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

std::string errno_text(int error) { return std::strerror(error); }

// Closes a file descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// The folder must not let anyone else replace the file.
Outcome<void> check_folder(const fs::path& folder) {
  struct stat st {};
  if (::stat(folder.c_str(), &st) != 0) return {};  // created 0700 on the first save
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 || st.st_uid != ::geteuid()) {
    return Failure::usage(
        folder.string() + " is writable by other users (mode " + mode_text(st.st_mode) +
        "), so they could replace your session file: run `chmod 700 " + folder.string() + "`");
  }
  return {};
}

std::optional<std::string> string_of(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return std::string(v->get_string());
}

}  // namespace

Outcome<TokenFile> TokenFile::locate() {
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  if (xdg != nullptr && xdg[0] == '/') return TokenFile(fs::path(xdg) / "sessionctl/session.json");
  const char* home = std::getenv("HOME");
  if (home != nullptr && home[0] != '\0') {
    return TokenFile(fs::path(home) / ".config/sessionctl/session.json");
  }
  return Failure::usage(
      "neither XDG_CONFIG_HOME nor HOME is set, so there is no place for the session file: set "
      "one of them");
}

Outcome<std::optional<SavedSession>> TokenFile::load() const {
  if (auto ok = check_folder(path_.parent_path()); !ok) return ok.error();
  // O_NOFOLLOW: a symlink planted in the folder must not redirect us.
  Fd fd(::open(path_.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::optional<SavedSession>{};
    const int error = errno;
    if (error == ELOOP) {
      return Failure::usage(path_.string() +
                            " is a symbolic link; sessionctl keeps its session in a regular file: "
                            "remove the link and sign in again");
    }
    return Failure::usage("cannot read " + path_.string() + ": " + errno_text(error));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Failure::usage(path_.string() + " is not a regular file: remove it and sign in again");
  }
  if (st.st_uid != ::geteuid()) {
    return Failure::usage(path_.string() + " belongs to another user: remove it and sign in again");
  }
  if ((st.st_mode & 077) != 0) {
    return Failure::usage(
        path_.string() + " holds your session tokens but other users may read it (mode " +
        mode_text(st.st_mode) + ", expected 0600). Run `chmod 600 " + path_.string() +
        "` if no one could have copied it; otherwise run `rm " + path_.string() +
        "`, sign in again, and end the old session from `sessionctl sessions`.");
  }
  std::string text;
  char chunk[4096];
  for (;;) {
    const ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Failure::usage("cannot read " + path_.string() + ": " + errno_text(errno));
    if (n == 0) break;
    text.append(chunk, static_cast<std::size_t>(n));
    if (text.size() > 1024 * 1024) break;
  }

  const auto not_ours = [this](std::string_view why) {
    return Failure::usage(path_.string() + " is not a sessionctl session file (" +
                          std::string(why) + "): remove it and sign in again");
  };
  boost::system::error_code ec;
  json::value value = json::parse(text, ec);
  if (ec || !value.is_object()) return not_ours("not a JSON object");
  const json::object& o = value.get_object();
  auto server = string_of(o, "server");
  auto session_id = string_of(o, "session_id");
  auto access = string_of(o, "access_token");
  auto refresh = string_of(o, "refresh_token");
  auto expires = string_of(o, "access_expires_at");
  if (!server || !session_id || !access || !refresh || !expires) {
    return not_ours("a field is missing");
  }
  auto expires_at = parse_rfc3339(*expires);
  if (!expires_at) return not_ours("access_expires_at is not an RFC 3339 time");
  SavedSession s;
  s.server = std::move(*server);
  s.session_id = std::move(*session_id);
  s.access_token = std::move(*access);
  s.refresh_token = std::move(*refresh);
  s.access_expires_at = *expires_at;
  if (const auto* user = o.if_contains("user"); user != nullptr && user->is_object()) {
    s.user = user->get_object();
  }
  return std::optional<SavedSession>(std::move(s));
}

Outcome<void> TokenFile::save(const SavedSession& session) const {
  const fs::path folder = path_.parent_path();
  std::error_code fs_ec;
  if (!fs::exists(folder, fs_ec)) {
    // Parents (~/.config) get the usual mode; the sessionctl folder itself is 0700.
    fs::create_directories(folder.parent_path(), fs_ec);
    if (::mkdir(folder.c_str(), 0700) != 0 && errno != EEXIST) {
      return Failure::usage("cannot create " + folder.string() + ": " + errno_text(errno) +
                            " (set XDG_CONFIG_HOME to a folder you can write)");
    }
  }
  if (auto ok = check_folder(folder); !ok) return ok.error();

  json::object o;
  o["server"] = session.server;
  o["session_id"] = session.session_id;
  o["user"] = session.user;
  o["access_token"] = session.access_token;
  o["access_expires_at"] = format_rfc3339(session.access_expires_at);
  o["refresh_token"] = session.refresh_token;
  const std::string text = json::serialize(o) + "\n";

  std::string temp = (folder / ".session.json.XXXXXX").string();
  Fd fd(::mkstemp(temp.data()));  // mode 0600
  if (fd.get() < 0) {
    return Failure::usage("cannot write in " + folder.string() + ": " + errno_text(errno));
  }
  const auto fail = [&temp](std::string message) {
    ::unlink(temp.c_str());
    return Failure::usage(std::move(message));
  };
  std::size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd.get(), text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("cannot write " + temp + ": " + errno_text(errno));
    written += static_cast<std::size_t>(n);
  }
  if (::fchmod(fd.get(), 0600) != 0 || ::fsync(fd.get()) != 0) {
    return fail("cannot write " + temp + ": " + errno_text(errno));
  }
  if (::close(fd.release()) != 0) return fail("cannot write " + temp + ": " + errno_text(errno));
  if (::rename(temp.c_str(), path_.c_str()) != 0) {
    return fail("cannot replace " + path_.string() + ": " + errno_text(errno));
  }
  // The rename is durable once the folder is synced.
  Fd dir(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() >= 0) ::fsync(dir.get());
  return {};
}

bool TokenFile::remove() const { return ::unlink(path_.c_str()) == 0; }

}  // namespace sessiond::cli
