// The admin API (SPEC §5 "Admin"): who may call it, users, sessions, events and stats.
#include <algorithm>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "http/harness.hpp"

namespace sessiond::http_test {
namespace {

namespace json = boost::json;

constexpr std::string_view kPassword = "correct horse battery";

class AdminTest : public ::testing::Test {
 protected:
  explicit AdminTest(Store store, std::string extra_toml = {})
      : server_(store, std::move(extra_toml)) {}

  Headers admin() const { return {{"Authorization", server_.admin_auth()}}; }
  Headers admin_json() const {
    return {{"Authorization", server_.admin_auth()}, {"Content-Type", "application/json"}};
  }
  HttpResponse admin_post(std::string_view target, const json::value& body) {
    return client_.request("POST", target, admin_json(), json::serialize(body));
  }
  HttpResponse admin_patch(std::int64_t user, const json::value& body) {
    return client_.request("PATCH", "/admin/v1/users/" + std::to_string(user), admin_json(),
                           json::serialize(body));
  }
  std::string user_path(std::int64_t id) const { return "/admin/v1/users/" + std::to_string(id); }

  SessiondProcess server_;
  HttpClient client_ = server_.client();
};

// Who may call the admin API, users and events: the database's, the same on every store.
class Admin : public AdminTest {
 protected:
  explicit Admin(std::string extra_toml = {}) : AdminTest(Store::memory, std::move(extra_toml)) {}
};

// Sessions created, listed, ended and counted by the admin: on each store.
class AdminSessions : public AdminTest, public ::testing::WithParamInterface<Store> {
 protected:
  AdminSessions() : AdminTest(GetParam()) {}
};
INSTANTIATE_TEST_SUITE_P(Stores, AdminSessions, ::testing::ValuesIn(kEachStore), store_param_name);

TEST_F(Admin, RequiresTheAdminKey) {
  const std::vector<std::pair<std::string, std::string>> calls = {
      {"GET", "/admin/v1/stats"},   {"GET", "/admin/v1/events"},
      {"GET", "/admin/v1/users/1"}, {"GET", "/admin/v1/users/1/sessions"},
      {"POST", "/admin/v1/users"},  {"DELETE", "/admin/v1/users/1/sessions"}};
  std::string wrong_key = server_.admin_key();
  wrong_key[0] = wrong_key[0] == 'A' ? 'B' : 'A';
  for (const auto& [method, target] : calls) {
    EXPECT_EQ(client_.request(method, target).status, 401) << method << " " << target;
    auto wrong = client_.request(method, target, {{"Authorization", "Bearer " + wrong_key}});
    EXPECT_EQ(wrong.status, 401) << method << " " << target;
    EXPECT_TRUE(wrong.header("Content-Type").starts_with("application/problem+json"));
    EXPECT_EQ(
        client_.request(method, target, {{"Authorization", "Bearer " + server_.admin_key() + "x"}})
            .status,
        401);
  }
  EXPECT_TRUE(is_problem(client_.request("GET", "/admin/v1/stats"), 401, "token_invalid"));
  EXPECT_EQ(client_.request("GET", "/admin/v1/stats", admin()).status, 200);
}

TEST_F(Admin, SessionOfANonAdminRoleIsForbidden) {
  ASSERT_GT(create_user(server_, {.email = "guest@example.com"}), 0);
  auto t = login(client_, "guest@example.com", kPassword);
  EXPECT_TRUE(is_problem(client_.request("GET", "/admin/v1/stats", bearer(t.access_token)), 403,
                         "forbidden"));
  EXPECT_TRUE(is_problem(client_.request("POST", "/admin/v1/users", bearer_json(t.access_token),
                                         R"({"email":"x@example.com","role":"SYSTEM_ADMIN"})"),
                         403, "forbidden"));
}

TEST_F(Admin, SystemAdminSessionMayCallAdminRoutes) {
  ASSERT_GT(create_user(server_, {.email = "root@example.com", .role = "SYSTEM_ADMIN"}), 0);
  auto t = login(client_, "root@example.com", kPassword);
  EXPECT_EQ(client_.request("GET", "/admin/v1/stats", bearer(t.access_token)).status, 200);
  auto created =
      client_.request("POST", "/admin/v1/users", bearer_json(t.access_token),
                      R"({"email":"new@example.com","role":"GUEST","password":"long enough pw"})");
  EXPECT_EQ(created.status, 201) << created.body;
}

class AdminUsers : public Admin {
 protected:
  AdminUsers() : Admin("[password]\nmin_length = 12\n") {}
};

TEST_F(AdminUsers, CreateRejectsTakenEmailAndMobileNumber) {
  auto first = admin_post("/admin/v1/users", json::object{{"email", "kim@example.com"},
                                                          {"mobile_number", "+14155550100"},
                                                          {"password", "a long password"},
                                                          {"role", "GUEST"}});
  ASSERT_EQ(first.status, 201) << first.body;
  EXPECT_EQ(str(first.json(), "mobile_number"), "+14155550100");

  auto same_email =
      admin_post("/admin/v1/users", json::object{{"email", "Kim@Example.com"}, {"role", "GUEST"}});
  EXPECT_EQ(same_email.status, 409) << same_email.body;
  EXPECT_TRUE(same_email.header("Content-Type").starts_with("application/problem+json"));
  EXPECT_EQ(same_email.json().at("status").as_int64(), 409);

  auto same_mobile = admin_post("/admin/v1/users", json::object{{"email", "other@example.com"},
                                                                {"mobile_number", "14155550100"},
                                                                {"role", "GUEST"}});
  EXPECT_EQ(same_mobile.status, 409) << same_mobile.body;
  // The refused user was not half-created.
  EXPECT_EQ(
      admin_post("/admin/v1/users", json::object{{"email", "other@example.com"}, {"role", "GUEST"}})
          .status,
      201);
}

TEST_F(AdminUsers, CreateRejectsBadInput) {
  const std::vector<std::string> bodies = {
      R"({"email":"a@example.com","role":"NO_SUCH_ROLE"})",
      R"({"email":"a@example.com"})",
      R"({"email":"a@example.com","role":"GUEST","password":"elevenchars"})",
      R"({"role":"GUEST"})",
      R"({"email":"not-an-email","role":"GUEST"})",
      R"({"mobile_number":"12ab","role":"GUEST"})",
      R"({"email":"a@example.com","role":"GUEST","attributes":[1,2]})",
      R"({"email":"a@example.com","role":"GUEST","unknown_field":1})",
      R"({"email":"a@example.com","role":7})",
      "[]",
      "{",
  };
  for (const auto& body : bodies) {
    EXPECT_TRUE(is_problem(client_.request("POST", "/admin/v1/users", admin_json(), body), 400,
                           "invalid_request"))
        << body;
  }
  // password.min_length = 12 exactly.
  EXPECT_EQ(admin_post("/admin/v1/users", json::object{{"email", "a@example.com"},
                                                       {"role", "GUEST"},
                                                       {"password", "twelve chars"}})
                .status,
            201);
}

TEST_F(AdminUsers, GetAndPatchUser) {
  const auto id =
      create_user(server_, {.email = "liam@example.com", .password = "a long password"});
  ASSERT_GT(id, 0);
  auto got = client_.request("GET", user_path(id), admin());
  ASSERT_EQ(got.status, 200) << got.body;
  auto user = got.json();
  EXPECT_EQ(user.at("id").as_int64(), id);
  EXPECT_EQ(str(user, "email"), "liam@example.com");
  EXPECT_EQ(str(user, "role"), "GUEST");
  EXPECT_EQ(user.at("disabled"), false);
  EXPECT_EQ(got.body.find("argon2"), std::string::npos);

  EXPECT_TRUE(is_problem(client_.request("GET", user_path(id + 100), admin()), 404, "not_found"));
  EXPECT_TRUE(is_problem(client_.request("GET", "/admin/v1/users/abc", admin()), 404, "not_found"));
  EXPECT_TRUE(
      is_problem(admin_patch(id + 100, json::object{{"disabled", true}}), 404, "not_found"));
  EXPECT_TRUE(
      is_problem(admin_patch(id, json::object{{"role", "NO_SUCH_ROLE"}}), 400, "invalid_request"));
  EXPECT_TRUE(
      is_problem(admin_patch(id, json::object{{"password", "short"}}), 400, "invalid_request"));
  EXPECT_TRUE(
      is_problem(admin_patch(id, json::object{{"disabled", "yes"}}), 400, "invalid_request"));

  auto patched = admin_patch(id, json::object{{"attributes", json::object{{"hotel_id", 9}}},
                                              {"password", "a new long password"}});
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(patched.json().at("attributes"), (json::object{{"hotel_id", 9}}));
  EXPECT_EQ(login_response(client_, "liam@example.com", "a new long password").status, 200);
  EXPECT_EQ(login_response(client_, "liam@example.com", "a long password").status, 401);
}

TEST_P(AdminSessions, DisablingAUserEndsAllItsSessions) {
  const auto id = create_user(server_, {.email = "mia@example.com", .password = "a long password"});
  auto a = login(client_, "mia@example.com", "a long password");
  auto b = login(client_, "mia@example.com", "a long password");
  auto r = admin_patch(id, json::object{{"disabled", true}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("disabled"), true);
  for (const auto* t : {&a, &b}) {
    EXPECT_TRUE(
        is_problem(verify(client_, t->access_token), 401, "session_revoked", "user_disabled"));
    EXPECT_TRUE(is_problem(post_json(client_, "/api/v1/auth/refresh",
                                     json::object{{"refresh_token", t->refresh_token}}),
                           401, "session_revoked", "user_disabled"));
  }
  EXPECT_TRUE(is_problem(login_response(client_, "mia@example.com", "a long password"), 401,
                         "invalid_credentials"));
  // Nor can the admin open a session for a disabled user.
  EXPECT_GE(admin_post("/admin/v1/sessions", json::object{{"user_id", id}}).status, 400);
  // The audit trail has the disable and each session's end with its reason (on Redis through
  // the outbox).
  const std::string query = "user_id=" + std::to_string(id);
  auto events = events_until(client_, server_, query, [](const json::array& list) {
    int ended = 0, disabled = 0;
    for (const auto& e : list) {
      ended += e.at("type") == "session_revoked" && e.at("detail").at("reason") == "user_disabled";
      disabled += e.at("type") == "user_disabled";
    }
    return ended == 2 && disabled == 1;
  });
  EXPECT_EQ(events.status, 200);
  EXPECT_NE(events.body.find("\"user_disabled\""), std::string::npos) << events.body;
}

TEST_P(AdminSessions, ChangingTheRoleEndsAllItsSessions) {
  const auto id =
      create_user(server_, {.email = "noah@example.com", .password = "a long password"});
  auto a = login(client_, "noah@example.com", "a long password");
  auto r = admin_patch(id, json::object{{"role", "VENDOR_ADMIN"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(str(r.json(), "role"), "VENDOR_ADMIN");
  EXPECT_TRUE(is_problem(verify(client_, a.access_token), 401, "session_revoked", "role_changed"));
  auto events =
      events_until(client_, server_, "user_id=" + std::to_string(id), [](const json::array& list) {
        bool ended = false, changed = false;
        for (const auto& e : list) {
          ended |=
              e.at("type") == "session_revoked" && e.at("detail").at("reason") == "role_changed";
          changed |= e.at("type") == "role_changed" && e.at("detail").at("to") == "VENDOR_ADMIN";
        }
        return ended && changed;
      });
  EXPECT_NE(events.body.find("role_changed"), std::string::npos) << events.body;
  auto again = login(client_, "noah@example.com", "a long password");
  auto v = verify(client_, again.access_token);
  EXPECT_EQ(v.header("X-User-Role"), "VENDOR_ADMIN");
  // Setting the same role again changes nothing.
  ASSERT_EQ(admin_patch(id, json::object{{"role", "VENDOR_ADMIN"}}).status, 200);
  EXPECT_EQ(verify(client_, again.access_token).status, 200);
}

TEST_P(AdminSessions, CreateSessionForAUser) {
  const auto id = create_user(server_, {.email = "olga@example.com"});
  ASSERT_GT(id, 0);
  auto r =
      admin_post("/admin/v1/sessions", json::object{{"user_id", id},
                                                    {"attributes", json::object{{"hotel_id", 7}}},
                                                    {"device_info", "Kiosk"},
                                                    {"ip_address", "198.51.100.23"},
                                                    {"user_agent", "backend/1.0"}});
  ASSERT_EQ(r.status, 201) << r.body;
  auto body = r.json();
  EXPECT_EQ(str(body, "token_type"), "bearer");
  EXPECT_TRUE(str(body, "refresh_token").starts_with("rt_"));
  EXPECT_EQ(body.at("user").at("id").as_int64(), id);
  auto me = client_.request("GET", "/api/v1/me", bearer(str(body, "access_token")));
  ASSERT_EQ(me.status, 200) << me.body;
  const auto me_body = me.json();
  const auto& session = me_body.at("session");
  EXPECT_EQ(str(session, "session_id"), str(body, "session_id"));
  EXPECT_EQ(str(session, "auth_method"), "admin");
  EXPECT_EQ(str(session, "device_info"), "Kiosk");
  EXPECT_EQ(str(session, "ip_address"), "198.51.100.23");
  EXPECT_EQ(str(session, "user_agent"), "backend/1.0");
  EXPECT_EQ(session.at("attributes"), (json::object{{"hotel_id", 7}}));

  EXPECT_TRUE(is_problem(admin_post("/admin/v1/sessions", json::object{{"user_id", id + 100}}), 404,
                         "not_found"));
  EXPECT_TRUE(is_problem(admin_post("/admin/v1/sessions", json::object{{"user_id", "abc"}}), 400,
                         "invalid_request"));
  EXPECT_TRUE(is_problem(admin_post("/admin/v1/sessions", json::object{}), 400, "invalid_request"));
}

TEST_P(AdminSessions, ListAndEndAUsersSessions) {
  const auto id = create_user(server_, {.email = "pat@example.com"});
  const auto bystander = create_user(server_, {.email = "quinn@example.com"});
  auto a = login(client_, "pat@example.com", kPassword);
  auto b = login(client_, "pat@example.com", kPassword);
  auto q = login(client_, "quinn@example.com", kPassword);

  auto list = client_.request("GET", user_path(id) + "/sessions", admin());
  ASSERT_EQ(list.status, 200) << list.body;
  ASSERT_EQ(list.json().as_array().size(), 2u);
  const auto listed = list.json();
  for (const auto& s : listed.as_array()) {
    EXPECT_TRUE(str(s, "session_id") == a.session_id || str(s, "session_id") == b.session_id);
    EXPECT_EQ(s.at("user_id").as_int64(), id);
  }

  auto ended = client_.request("DELETE", user_path(id) + "/sessions", admin());
  ASSERT_EQ(ended.status, 200) << ended.body;
  EXPECT_EQ(ended.json(), (json::object{{"revoked", 2}}));
  EXPECT_TRUE(
      is_problem(verify(client_, a.access_token), 401, "session_revoked", "revoked_by_admin"));
  EXPECT_TRUE(
      is_problem(verify(client_, b.access_token), 401, "session_revoked", "revoked_by_admin"));
  EXPECT_EQ(verify(client_, q.access_token).status, 200) << "another user's session is untouched";
  EXPECT_TRUE(
      client_.request("GET", user_path(id) + "/sessions", admin()).json().as_array().empty());
  EXPECT_EQ(
      client_.request("GET", user_path(bystander) + "/sessions", admin()).json().as_array().size(),
      1u);
}

TEST_P(AdminSessions, EndOneSessionById) {
  ASSERT_GT(create_user(server_, {.email = "rita@example.com"}), 0);
  auto a = login(client_, "rita@example.com", kPassword);
  auto b = login(client_, "rita@example.com", kPassword);
  auto r = client_.request("DELETE", "/admin/v1/sessions/" + a.session_id, admin());
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_TRUE(
      is_problem(verify(client_, a.access_token), 401, "session_revoked", "revoked_by_admin"));
  EXPECT_EQ(verify(client_, b.access_token).status, 200);
  EXPECT_TRUE(is_problem(client_.request("DELETE", "/admin/v1/sessions/" + a.session_id, admin()),
                         404, "not_found"));
  EXPECT_TRUE(is_problem(client_.request("DELETE", "/admin/v1/sessions/not-a-uuid", admin()), 404,
                         "not_found"));
}

TEST_F(Admin, EventsAreNewestFirstAndFiltered) {
  const auto sam = create_user(server_, {.email = "sam@example.com"});
  const auto tia = create_user(server_, {.email = "tia@example.com"});
  auto s = login(client_, "sam@example.com", kPassword);
  ASSERT_EQ(login_response(client_, "sam@example.com", "wrong password!!").status, 401);
  login(client_, "tia@example.com", kPassword);
  ASSERT_EQ(client_.request("POST", "/api/v1/auth/logout", bearer(s.access_token)).status, 204);

  auto all = client_.request("GET", "/admin/v1/events", admin());
  ASSERT_EQ(all.status, 200) << all.body;
  const auto all_body = all.json();
  const auto& events = all_body.as_array();
  ASSERT_GE(events.size(), 6u) << all.body;  // 2 users created, 2 sign-ins, 1 failure, 1 logout
  for (std::size_t i = 1; i < events.size(); ++i) {
    EXPECT_GE(str(events[i - 1], "at"), str(events[i], "at")) << "not newest first";
    EXPECT_GT(events[i - 1].at("id").as_int64(), events[i].at("id").as_int64());
  }
  for (const auto& e : events) {
    for (auto key : {"id", "at", "type", "user_id", "session_id", "ip_address", "detail"}) {
      EXPECT_TRUE(e.as_object().contains(key)) << key << " missing in " << json::serialize(e);
    }
  }
  EXPECT_EQ(str(events[0], "type"), "logout");
  EXPECT_EQ(str(events[0], "session_id"), s.session_id);

  auto of_sam = client_.request("GET", "/admin/v1/events?user_id=" + std::to_string(sam), admin());
  ASSERT_EQ(of_sam.status, 200) << of_sam.body;
  ASSERT_FALSE(of_sam.json().as_array().empty());
  const auto sam_events = of_sam.json();
  for (const auto& e : sam_events.as_array()) EXPECT_EQ(e.at("user_id").as_int64(), sam);

  auto failures = client_.request("GET", "/admin/v1/events?type=login_failed", admin());
  ASSERT_EQ(failures.status, 200) << failures.body;
  ASSERT_EQ(failures.json().as_array().size(), 1u) << failures.body;
  EXPECT_EQ(failures.json().as_array()[0].at("user_id").as_int64(), sam);

  auto of_tia = client_.request(
      "GET", "/admin/v1/events?type=login_succeeded&user_id=" + std::to_string(tia), admin());
  ASSERT_EQ(of_tia.json().as_array().size(), 1u) << of_tia.body;

  auto of_session = client_.request("GET", "/admin/v1/events?session_id=" + s.session_id, admin());
  ASSERT_EQ(of_session.status, 200);
  const auto session_events = of_session.json();
  for (const auto& e : session_events.as_array()) EXPECT_EQ(str(e, "session_id"), s.session_id);

  auto two = client_.request("GET", "/admin/v1/events?limit=2", admin());
  ASSERT_EQ(two.json().as_array().size(), 2u);
  EXPECT_EQ(two.json().as_array()[0], events[0]);

  for (auto bad : {"limit=0", "limit=abc", "limit=-1", "limit=1000000", "user_id=abc",
                   "session_id=123", "since=yesterday", "bogus=1"}) {
    EXPECT_TRUE(is_problem(client_.request("GET", std::string("/admin/v1/events?") + bad, admin()),
                           400, "invalid_request"))
        << bad;
  }
}

TEST_P(AdminSessions, StatsCountsLiveSessionsAndSignIns) {
  ASSERT_GT(create_user(server_, {.email = "uma@example.com"}), 0);
  ASSERT_GT(create_user(server_, {.email = "vic@example.com", .role = "HOTEL_EMPLOYEE"}), 0);
  login(client_, "uma@example.com", kPassword, {{"User-Agent", "curl/8.0"}});
  login(client_, "vic@example.com", kPassword, {{"User-Agent", "curl/8.0"}});
  ASSERT_EQ(login_response(client_, "uma@example.com", "wrong password!!").status, 401);

  // With the Redis store the session rows reach the database through the outbox, a moment later.
  HttpResponse r;
  eventually(
      [&] {
        r = client_.request("GET", "/admin/v1/stats", admin());
        if (r.status != 200) return false;
        const auto body = r.json();
        const auto& by_role = body.at("live_by_role").as_object();
        return by_role.contains("GUEST") && by_role.contains("HOTEL_EMPLOYEE");
      },
      10s);
  ASSERT_EQ(r.status, 200) << r.body;
  auto stats = r.json();
  EXPECT_EQ(stats.at("live_sessions").as_int64(), 2) << r.body;
  EXPECT_EQ(stats.at("live_by_role").at("GUEST").as_int64(), 1) << r.body;
  EXPECT_EQ(stats.at("live_by_role").at("HOTEL_EMPLOYEE").as_int64(), 1) << r.body;
  EXPECT_EQ(stats.at("live_by_device").at("Other").as_int64(), 2) << r.body;
  EXPECT_EQ(stats.at("sign_ins").at("last_hour").as_int64(), 2) << r.body;
  EXPECT_EQ(stats.at("sign_ins").at("last_day").as_int64(), 2) << r.body;
  EXPECT_EQ(stats.at("failures").at("last_hour").as_int64(), 1) << r.body;
  EXPECT_EQ(stats.at("failures").at("last_day").as_int64(), 1) << r.body;
}

}  // namespace
}  // namespace sessiond::http_test
