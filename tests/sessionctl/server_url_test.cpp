// sessionctl's pieces that need no server: --server parsing, session ids, what a person is told
// when a session has ended, and the table and time formats.
#include "cli/server_url.hpp"

#include <gtest/gtest.h>

#include <sstream>

#include "cli/api.hpp"
#include "cli/commands.hpp"
#include "cli/output.hpp"

namespace sessiond::cli {
namespace {

TEST(ServerUrl, ParsesAndPutsInCanonicalForm) {
  auto plain = ServerUrl::parse("http://localhost:8080");
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->tls);
  EXPECT_EQ(plain->host, "localhost");
  EXPECT_EQ(plain->port, 8080);
  EXPECT_EQ(plain->to_string(), "http://localhost:8080");

  auto secure = ServerUrl::parse("HTTPS://Auth.Example.com/sessiond/");
  ASSERT_TRUE(secure);
  EXPECT_TRUE(secure->tls);
  EXPECT_EQ(secure->port, 443);
  EXPECT_EQ(secure->base_path, "/sessiond");
  EXPECT_EQ(secure->to_string(), "https://Auth.Example.com/sessiond");
  EXPECT_EQ(secure->host_header(), "Auth.Example.com");
  EXPECT_FALSE(secure->host_is_address());
}

TEST(ServerUrl, KeepsIpv6InBracketsOnlyWhereHttpWantsThem) {
  auto v6 = ServerUrl::parse("http://[::1]:9000");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_TRUE(v6->host_is_address());
  EXPECT_EQ(v6->host_header(), "[::1]:9000");
  EXPECT_EQ(v6->to_string(), "http://[::1]:9000");
}

TEST(ServerUrl, DefaultPortIsLeftOutSoEqualServersCompareEqual) {
  EXPECT_EQ(ServerUrl::parse("http://127.0.0.1:80/")->to_string(),
            ServerUrl::parse("http://127.0.0.1")->to_string());
}

TEST(ServerUrl, RefusesWhatIsNotAServerAddressSayingWhy) {
  const std::pair<const char*, const char*> cases[] = {
      {"localhost:8080", "scheme"},
      {"ftp://example.com", "scheme"},
      {"http://user:pw@example.com", "user"},
      {"http://example.com/?a=1", "query"},
      {"http://example.com:0", "port"},
      {"http://example.com:99999", "port"},
      {"not a url", "not a URL"},
      {"http://", "host"},
  };
  for (const auto& [text, why] : cases) {
    auto parsed = ServerUrl::parse(text);
    ASSERT_FALSE(parsed) << text;
    EXPECT_EQ(parsed.error().exit, Exit::usage) << text;
    EXPECT_NE(parsed.error().message.find(why), std::string::npos)
        << text << ": " << parsed.error().message;
  }
}

TEST(SessionId, IsAUuid) {
  EXPECT_TRUE(is_session_id("3e784837-e11b-4aed-852e-bc8624fd694d"));
  EXPECT_TRUE(is_session_id("3E784837-E11B-4AED-852E-BC8624FD694D"));
  EXPECT_FALSE(is_session_id("3e784837"));
  EXPECT_FALSE(is_session_id("../../admin/v1/users/1/sessions/0000"));
  EXPECT_FALSE(is_session_id("3e784837-e11b-4aed-852e-bc8624fd694g"));
  EXPECT_FALSE(is_session_id("3e784837xe11b-4aed-852e-bc8624fd694d"));
}

TEST(WhySessionEnded, NamesEveryReasonOfTheSpec) {
  const char* reasons[] = {"logout",
                           "revoked_by_user",
                           "revoked_others",
                           "revoked_by_admin",
                           "max_sessions_exceeded",
                           "expired",
                           "refresh_token_reuse",
                           "password_changed",
                           "user_disabled",
                           "role_changed"};
  for (const char* reason : reasons) {
    const std::string why = why_session_ended("session_revoked", reason);
    EXPECT_NE(why.find(std::string("(") + reason + ")"), std::string::npos) << why;
    EXPECT_NE(why, std::string("the server ended it (") + reason + ")")
        << "no words for " << reason;
  }
  EXPECT_EQ(why_session_ended("session_revoked", "revoked_by_admin"),
            "an administrator ended it (revoked_by_admin)");
  EXPECT_EQ(why_session_ended("session_expired", ""), "it expired (session_expired)");
  EXPECT_EQ(why_session_ended("session_revoked", ""), "the server ended it (session_revoked)");
}

TEST(IsSessionEnded, OnlyForTheCodesOfAnEndedSession) {
  Failure f;
  f.status = 401;
  f.code = "session_revoked";
  EXPECT_TRUE(is_session_ended(f));
  f.code = "session_expired";
  EXPECT_TRUE(is_session_ended(f));
  f.code = "invalid_credentials";  // a wrong current password in passwd
  EXPECT_FALSE(is_session_ended(f));
}

TEST(Table, AlignsColumnsCountingCharactersNotBytes) {
  Table table({"DEVICE", "IP"});
  table.add({"iPhone \u00B7 Safari", "10.0.0.1"});
  table.add({"CLI", "127.0.0.1"});
  std::ostringstream out;
  table.print(out);
  EXPECT_EQ(out.str(),
            "DEVICE           IP\n"
            "iPhone \u00B7 Safari  10.0.0.1\n"
            "CLI              127.0.0.1\n");
}

TEST(RelativeTime, SaysHowLongAgoInWholeUnits) {
  const TimePoint now{std::chrono::seconds{1'800'000'000}};
  using std::chrono::hours;
  using std::chrono::minutes;
  using std::chrono::seconds;
  EXPECT_EQ(relative_time(now - seconds{20}, now), "just now");
  EXPECT_EQ(relative_time(now - minutes{5}, now), "5 min ago");
  EXPECT_EQ(relative_time(now - hours{3}, now), "3 h ago");
  EXPECT_EQ(relative_time(now - hours{24 * 3}, now), "3 days ago");
  EXPECT_EQ(relative_time(now + hours{23}, now), "in 23 h");
}

}  // namespace
}  // namespace sessiond::cli
