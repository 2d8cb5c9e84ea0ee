// The README's quickstart path over real HTTP: create a user, sign in, verify, list, revoke, log
// out.
#include <algorithm>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "http/harness.hpp"

namespace sessiond::http_test {
namespace {

namespace json = boost::json;

constexpr std::string_view kEmail = "alice@example.com";
constexpr std::string_view kPassword = "correct horse battery";

// The README path works the same on each store.
class Quickstart : public ::testing::TestWithParam<Store> {
 protected:
  void SetUp() override {
    user_id_ =
        create_user(server_, {.email = std::string(kEmail), .password = std::string(kPassword)});
    ASSERT_GT(user_id_, 0);
  }

  SessiondProcess server_{GetParam()};
  HttpClient client_ = server_.client();
  std::int64_t user_id_ = 0;
};
INSTANTIATE_TEST_SUITE_P(Stores, Quickstart, ::testing::ValuesIn(kEachStore), store_param_name);

TEST_P(Quickstart, CreateUserAnswers201WithTheUser) {
  auto r = post_json(client_, "/admin/v1/users",
                     json::object{{"email", "Bob@Example.com"},
                                  {"password", "another long password"},
                                  {"role", "HOTEL_EMPLOYEE"},
                                  {"attributes", json::object{{"hotel_id", 7}}}},
                     {{"Authorization", server_.admin_auth()}});
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_TRUE(r.header("Content-Type").starts_with("application/json"));
  auto user = r.json();
  EXPECT_GT(user.at("id").as_int64(), user_id_);
  EXPECT_EQ(str(user, "email"), "bob@example.com");
  EXPECT_EQ(str(user, "role"), "HOTEL_EMPLOYEE");
  EXPECT_EQ(user.at("attributes"), (json::object{{"hotel_id", 7}}));
  EXPECT_EQ(r.body.find("\"password\""), std::string::npos) << "no password in " << r.body;
  EXPECT_EQ(r.body.find("password_hash"), std::string::npos) << "no hash in " << r.body;
  EXPECT_EQ(r.body.find("argon2"), std::string::npos);
}

TEST_P(Quickstart, LoginAnswersTheTokenResponse) {
  auto r = login_response(client_, kEmail, kPassword);
  ASSERT_EQ(r.status, 200) << r.body;
  auto body = r.json();
  ASSERT_TRUE(body.is_object());
  const auto& o = body.as_object();
  for (auto key :
       {"access_token", "refresh_token", "token_type", "expires_in", "session_id", "user"}) {
    EXPECT_TRUE(o.contains(key)) << key << " missing in " << r.body;
  }
  EXPECT_EQ(str(body, "token_type"), "bearer");
  EXPECT_TRUE(str(body, "refresh_token").starts_with("rt_"));
  // rt_ + base64url of at least 32 bytes: 43 characters or more.
  EXPECT_GE(str(body, "refresh_token").size(), 3u + 43u);
  const std::string access = str(body, "access_token");
  EXPECT_EQ(std::count(access.begin(), access.end(), '.'), 2) << "a JWT has three parts";
  ASSERT_TRUE(o.at("expires_in").is_int64());
  EXPECT_GT(o.at("expires_in").as_int64(), 3500);
  EXPECT_LE(o.at("expires_in").as_int64(), 3600);
  EXPECT_EQ(str(body, "session_id").size(), 36u);
  const auto& user = o.at("user");
  EXPECT_EQ(user.at("id").as_int64(), user_id_);
  EXPECT_EQ(str(user, "email"), kEmail);
  EXPECT_TRUE(user.as_object().contains("mobile_number"));
  EXPECT_EQ(str(user, "role"), "GUEST");
  EXPECT_TRUE(user.at("attributes").is_object());
  EXPECT_EQ(r.header("Cache-Control"), "no-store");
}

TEST_P(Quickstart, VerifyAnswersTheSessionInBodyAndHeaders) {
  auto t = login(client_, kEmail, kPassword);
  auto r = verify(client_, t.access_token);
  ASSERT_EQ(r.status, 200) << r.body;
  auto body = r.json();
  EXPECT_EQ(str(body, "session_id"), t.session_id);
  EXPECT_EQ(body.at("user_id").as_int64(), user_id_);
  EXPECT_EQ(str(body, "role"), "GUEST");
  EXPECT_TRUE(str(body, "expires_at").ends_with("Z")) << r.body;
  EXPECT_EQ(r.header("X-Session-Id"), t.session_id);
  EXPECT_EQ(r.header("X-User-Id"), std::to_string(user_id_));
  EXPECT_EQ(r.header("X-User-Role"), "GUEST");
}

TEST_P(Quickstart, MeAnswersUserAndCurrentSession) {
  auto t = login(client_, kEmail, kPassword, {{"User-Agent", "curl/8.0"}});
  auto r = client_.request("GET", "/api/v1/me", bearer(t.access_token));
  ASSERT_EQ(r.status, 200) << r.body;
  auto body = r.json();
  EXPECT_EQ(body.at("user").at("id").as_int64(), user_id_);
  EXPECT_EQ(str(body.at("user"), "email"), kEmail);
  EXPECT_EQ(str(body.at("session"), "session_id"), t.session_id);
  EXPECT_EQ(body.at("session").at("current"), true);
  EXPECT_EQ(str(body.at("session"), "auth_method"), "password");
  EXPECT_EQ(str(body.at("session"), "user_agent"), "curl/8.0");
}

TEST_P(Quickstart, SessionsListsLiveSessionsMostRecentActivityFirst) {
  auto a = login(client_, kEmail, kPassword,
                 {{"User-Agent",
                   "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
                   "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"}});
  auto b = login(client_, kEmail, kPassword);
  auto c = login(client_, kEmail, kPassword);
  // The store may skip moving last_activity when it moved less than a second ago: wait that out,
  // so that using `a` makes it more recent than `c`, created after it.
  std::this_thread::sleep_for(1100ms);
  ASSERT_EQ(verify(client_, a.access_token).status, 200);

  auto r = client_.request("GET", "/api/v1/sessions", bearer(b.access_token));
  ASSERT_EQ(r.status, 200) << r.body;
  auto list = r.json();
  ASSERT_TRUE(list.is_array());
  ASSERT_EQ(list.as_array().size(), 3u) << r.body;
  std::vector<std::string> ids;
  std::string previous_activity = "9999";
  for (const auto& s : list.as_array()) {
    for (auto key : {"session_id", "device_info", "ip_address", "last_ip", "user_agent",
                     "created_at", "last_activity", "expires_at", "auth_method", "current"}) {
      EXPECT_TRUE(s.as_object().contains(key)) << key << " missing in " << json::serialize(s);
    }
    ids.push_back(str(s, "session_id"));
    EXPECT_EQ(s.at("current").as_bool(), str(s, "session_id") == b.session_id);
    EXPECT_EQ(str(s, "ip_address"), "127.0.0.1");
    EXPECT_EQ(str(s, "auth_method"), "password");
    // RFC 3339 UTC with a fixed width compares as text.
    EXPECT_LE(str(s, "last_activity"), previous_activity) << "not most recent first: " << r.body;
    previous_activity = str(s, "last_activity");
  }
  EXPECT_EQ(ids.front(), b.session_id) << "the caller was just active";
  auto pos = [&ids](const std::string& id) {
    return std::find(ids.begin(), ids.end(), id) - ids.begin();
  };
  EXPECT_LT(pos(a.session_id), pos(c.session_id)) << "a was used after c was created: " << r.body;
  EXPECT_EQ(str(list.as_array()[static_cast<std::size_t>(pos(a.session_id))], "device_info"),
            "iPhone · Safari");
}

TEST_P(Quickstart, RevokeOneSessionEndsItWithRevokedByUser) {
  auto a = login(client_, kEmail, kPassword);
  auto b = login(client_, kEmail, kPassword);
  auto r = client_.request("DELETE", "/api/v1/sessions/" + b.session_id, bearer(a.access_token));
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_TRUE(r.body.empty());
  EXPECT_TRUE(
      is_problem(verify(client_, b.access_token), 401, "session_revoked", "revoked_by_user"));
  EXPECT_TRUE(is_problem(
      post_json(client_, "/api/v1/auth/refresh", json::object{{"refresh_token", b.refresh_token}}),
      401, "session_revoked", "revoked_by_user"));
  EXPECT_EQ(verify(client_, a.access_token).status, 200);
  // Gone from the list; a second revoke answers 404.
  auto list = client_.request("GET", "/api/v1/sessions", bearer(a.access_token)).json();
  ASSERT_EQ(list.as_array().size(), 1u);
  EXPECT_EQ(str(list.as_array()[0], "session_id"), a.session_id);
  EXPECT_TRUE(is_problem(
      client_.request("DELETE", "/api/v1/sessions/" + b.session_id, bearer(a.access_token)), 404,
      "not_found"));
}

TEST_P(Quickstart, RevokeAnotherUsersSessionAnswers404) {
  ASSERT_GT(create_user(server_, {.email = "mallory@example.com"}), 0);
  auto victim = login(client_, kEmail, kPassword);
  auto mallory = login(client_, "mallory@example.com", "correct horse battery");
  EXPECT_TRUE(is_problem(client_.request("DELETE", "/api/v1/sessions/" + victim.session_id,
                                         bearer(mallory.access_token)),
                         404, "not_found"));
  EXPECT_TRUE(is_problem(
      client_.request("DELETE", "/api/v1/sessions/not-a-uuid", bearer(mallory.access_token)), 404,
      "not_found"));
  EXPECT_EQ(verify(client_, victim.access_token).status, 200);
}

TEST_P(Quickstart, RevokeOthersEndsEverySessionButTheCurrent) {
  auto a = login(client_, kEmail, kPassword);
  auto b = login(client_, kEmail, kPassword);
  auto c = login(client_, kEmail, kPassword);
  auto r = client_.request("DELETE", "/api/v1/sessions", bearer(a.access_token));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json(), (json::object{{"revoked", 2}}));
  EXPECT_EQ(verify(client_, a.access_token).status, 200);
  EXPECT_TRUE(
      is_problem(verify(client_, b.access_token), 401, "session_revoked", "revoked_others"));
  EXPECT_TRUE(
      is_problem(verify(client_, c.access_token), 401, "session_revoked", "revoked_others"));
  auto again = client_.request("DELETE", "/api/v1/sessions", bearer(a.access_token));
  EXPECT_EQ(again.json(), (json::object{{"revoked", 0}}));
}

TEST_P(Quickstart, LogoutEndsTheSession) {
  auto a = login(client_, kEmail, kPassword);
  auto b = login(client_, kEmail, kPassword);
  auto r = client_.request("POST", "/api/v1/auth/logout", bearer(a.access_token));
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_TRUE(is_problem(verify(client_, a.access_token), 401, "session_revoked", "logout"));
  EXPECT_TRUE(is_problem(client_.request("GET", "/api/v1/me", bearer(a.access_token)), 401,
                         "session_revoked", "logout"));
  EXPECT_TRUE(is_problem(
      post_json(client_, "/api/v1/auth/refresh", json::object{{"refresh_token", a.refresh_token}}),
      401, "session_revoked", "logout"));
  EXPECT_EQ(verify(client_, b.access_token).status, 200) << "only the current session ends";
}

}  // namespace
}  // namespace sessiond::http_test
