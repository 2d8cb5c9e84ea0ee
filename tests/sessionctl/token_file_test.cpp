// The session file: where it lives, its modes, atomic replacement, and the files it refuses.
#include "cli/token_file.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "support/temp_dir.hpp"

namespace sessiond::cli {
namespace {

namespace fs = std::filesystem;
using test_support::TempDir;

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

SavedSession sample() {
  SavedSession s;
  s.server = "http://127.0.0.1:8080";
  s.session_id = "3e784837-e11b-4aed-852e-bc8624fd694d";
  s.access_token = "eyJ.access.token";
  s.access_expires_at = TimePoint{std::chrono::seconds{1'800'000'000}};
  s.refresh_token = "rt_refresh";
  s.user = boost::json::object{{"id", 1}, {"email", "ada@example.com"}};
  return s;
}

// Sets an environment variable for the scope of a test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(TokenFile, LivesUnderXdgConfigHomeElseHomeConfig) {
  {
    ScopedEnv xdg("XDG_CONFIG_HOME", "/srv/config");
    EXPECT_EQ(TokenFile::locate()->path(), "/srv/config/sessionctl/session.json");
  }
  {
    ScopedEnv xdg("XDG_CONFIG_HOME", "relative/is/ignored");
    ScopedEnv home("HOME", "/home/ada");
    EXPECT_EQ(TokenFile::locate()->path(), "/home/ada/.config/sessionctl/session.json");
  }
  {
    ScopedEnv xdg("XDG_CONFIG_HOME", nullptr);
    ScopedEnv home("HOME", nullptr);
    auto none = TokenFile::locate();
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().exit, Exit::usage);
  }
}

TEST(TokenFile, NoFileIsNoSession) {
  TempDir dir;
  TokenFile file(dir.path() / "sessionctl/session.json");
  auto loaded = file.load();
  ASSERT_TRUE(loaded);
  EXPECT_FALSE(loaded->has_value());
  EXPECT_FALSE(file.remove());
}

TEST(TokenFile, SavesPrivatelyAndLoadsWhatItSaved) {
  TempDir dir;
  TokenFile file(dir.path() / "config/sessionctl/session.json");
  ASSERT_TRUE(file.save(sample()));
  EXPECT_EQ(mode_of(file.path()), 0600u);
  EXPECT_EQ(mode_of(file.path().parent_path()), 0700u);

  auto loaded = file.load();
  ASSERT_TRUE(loaded);
  ASSERT_TRUE(loaded->has_value());
  const SavedSession& s = **loaded;
  EXPECT_EQ(s.server, "http://127.0.0.1:8080");
  EXPECT_EQ(s.session_id, "3e784837-e11b-4aed-852e-bc8624fd694d");
  EXPECT_EQ(s.access_token, "eyJ.access.token");
  EXPECT_EQ(s.refresh_token, "rt_refresh");
  EXPECT_EQ(s.access_expires_at, sample().access_expires_at);
  EXPECT_EQ(s.user.at("email").as_string(), "ada@example.com");
  EXPECT_TRUE(file.remove());
  EXPECT_FALSE(fs::exists(file.path()));
}

TEST(TokenFile, ReplacesTheFileAtomicallyLeavingNoTemporaryFile) {
  TempDir dir;
  TokenFile file(dir.path() / "sessionctl/session.json");
  ASSERT_TRUE(file.save(sample()));
  struct stat before {};
  ASSERT_EQ(::stat(file.path().c_str(), &before), 0);
  SavedSession next = sample();
  next.refresh_token = "rt_rotated";
  ASSERT_TRUE(file.save(next));
  // A new file renamed over the old one (a reader never sees half of it), not a rewrite in place.
  struct stat after {};
  ASSERT_EQ(::stat(file.path().c_str(), &after), 0);
  EXPECT_NE(after.st_ino, before.st_ino);
  EXPECT_EQ(after.st_mode & 07777, 0600u);
  EXPECT_EQ((*file.load())->refresh_token, "rt_rotated");
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(file.path().parent_path())) {
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST(TokenFile, RefusesAFileOthersMayReadSayingHowToFixIt) {
  TempDir dir;
  TokenFile file(dir.path() / "sessionctl/session.json");
  ASSERT_TRUE(file.save(sample()));
  ASSERT_EQ(::chmod(file.path().c_str(), 0644), 0);
  auto loaded = file.load();
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().exit, Exit::usage);
  EXPECT_NE(loaded.error().message.find("mode 0644"), std::string::npos);
  EXPECT_NE(loaded.error().message.find("chmod 600 " + file.path().string()), std::string::npos);
  ASSERT_EQ(::chmod(file.path().c_str(), 0600), 0);
  EXPECT_TRUE(file.load());
}

TEST(TokenFile, RefusesAFolderOthersMayWriteTo) {
  TempDir dir;
  TokenFile file(dir.path() / "sessionctl/session.json");
  ASSERT_TRUE(file.save(sample()));
  ASSERT_EQ(::chmod(file.path().parent_path().c_str(), 0777), 0);
  auto loaded = file.load();
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message.find("chmod 700"), std::string::npos);
  EXPECT_FALSE(file.save(sample()));
}

TEST(TokenFile, RefusesASymlink) {
  TempDir dir;
  TokenFile real(dir.path() / "elsewhere/session.json");
  ASSERT_TRUE(real.save(sample()));
  fs::create_directories(dir.path() / "sessionctl");
  ::chmod((dir.path() / "sessionctl").c_str(), 0700);
  fs::create_symlink(real.path(), dir.path() / "sessionctl/session.json");
  auto loaded = TokenFile(dir.path() / "sessionctl/session.json").load();
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message.find("symbolic link"), std::string::npos);
}

TEST(TokenFile, RefusesAFileThatIsNotASession) {
  TempDir dir;
  TokenFile file(dir.path() / "sessionctl/session.json");
  ASSERT_TRUE(file.save(sample()));
  { std::ofstream(file.path()) << "{\"server\": 1}"; }
  auto loaded = file.load();
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().exit, Exit::usage);
  EXPECT_NE(loaded.error().message.find("not a sessionctl session file"), std::string::npos);
}

}  // namespace
}  // namespace sessiond::cli
