// Per-role policies over real HTTP (SPEC §4): max_sessions with each on_limit, idle and absolute
// timeouts.
#include <algorithm>
#include <atomic>
#include <boost/json/value.hpp>
#include <set>
#include <thread>

#include "http/harness.hpp"

namespace sessiond::http_test {
namespace {

namespace json = boost::json;

constexpr std::string_view kPassword = "correct horse battery";

// Role tables for these tests; the rate limits are raised so that many sign-ins of one account are
// not what the test measures.
std::string role_config(std::string_view role, std::string_view settings) {
  return "[rate_limits]\nlogin_per_account = \"1000/15m\"\nlogin_per_ip = \"1000/15m\"\n"
         "refresh_per_session = \"1000/1m\"\n\n[roles." +
         std::string(role) + "]\n" + std::string(settings) + "\n";
}

std::vector<std::string> admin_session_ids(const SessiondProcess& server, std::int64_t user_id) {
  auto c = server.client();
  auto r = c.request("GET", "/admin/v1/users/" + std::to_string(user_id) + "/sessions",
                     {{"Authorization", server.admin_auth()}});
  std::vector<std::string> ids;
  if (r.status != 200) {
    ADD_FAILURE() << "GET sessions of user " << user_id << ": " << r.status << " " << r.body;
    return ids;
  }
  const auto listed = r.json();
  for (const auto& s : listed.as_array()) ids.push_back(str(s, "session_id"));
  return ids;
}

bool contains(const std::vector<std::string>& ids, const std::string& id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

// The limit is one atomic step in the store, and expiry is the store's deadlines: on each store.
class Limits : public ::testing::TestWithParam<Store> {};
INSTANTIATE_TEST_SUITE_P(Stores, Limits, ::testing::ValuesIn(kEachStore), store_param_name);
class Expiry : public ::testing::TestWithParam<Store> {};
INSTANTIATE_TEST_SUITE_P(Stores, Expiry, ::testing::ValuesIn(kEachStore), store_param_name);

TEST_P(Limits, ConcurrentSignInsLeaveExactlyMaxSessionsAlive) {
  SessiondProcess server(GetParam(),
                         role_config("LIMITED", "max_sessions = 2\non_limit = \"evict_oldest\""));
  const auto user = create_user(server, {.email = "dave@example.com", .role = "LIMITED"});
  ASSERT_GT(user, 0);

  constexpr int kSignIns = 20;
  std::vector<HttpResponse> answers(kSignIns);
  {
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int i = 0; i < kSignIns; ++i) {
      threads.emplace_back([&, i] {
        auto c = server.client();
        while (!go) std::this_thread::yield();
        answers[static_cast<std::size_t>(i)] = login_response(c, "dave@example.com", kPassword);
      });
    }
    go = true;
    for (auto& t : threads) t.join();
  }
  std::vector<Tokens> signed_in;
  for (const auto& a : answers) {
    ASSERT_EQ(a.status, 200) << a.body;
    auto body = a.json();
    signed_in.push_back(
        {str(body, "access_token"), str(body, "refresh_token"), str(body, "session_id"), body});
  }
  std::set<std::string> distinct;
  for (const auto& t : signed_in) distinct.insert(t.session_id);
  EXPECT_EQ(distinct.size(), static_cast<std::size_t>(kSignIns));

  const auto alive = admin_session_ids(server, user);
  ASSERT_EQ(alive.size(), 2u);
  auto c = server.client();
  int alive_count = 0;
  for (const auto& t : signed_in) {
    auto r = verify(c, t.access_token);
    if (contains(alive, t.session_id)) {
      EXPECT_EQ(r.status, 200) << r.body;
      ++alive_count;
    } else {
      EXPECT_TRUE(is_problem(r, 401, "session_revoked", "max_sessions_exceeded"));
    }
  }
  EXPECT_EQ(alive_count, 2);
  // The user's own view agrees with the admin's.
  const auto survivor = std::find_if(signed_in.begin(), signed_in.end(), [&](const Tokens& t) {
    return contains(alive, t.session_id);
  });
  ASSERT_NE(survivor, signed_in.end());
  auto own = c.request("GET", "/api/v1/sessions", bearer(survivor->access_token));
  ASSERT_EQ(own.status, 200);
  EXPECT_EQ(own.json().as_array().size(), 2u) << own.body;

  auto evictions = events_until(
      c, server, "type=session_evicted&limit=100",
      [](const boost::json::array& a) { return a.size() >= std::size_t{kSignIns - 2}; });
  ASSERT_EQ(evictions.status, 200) << evictions.body;
  EXPECT_EQ(evictions.json().as_array().size(), static_cast<std::size_t>(kSignIns - 2));
}

TEST_P(Limits, DenyRefusesTheSignInOverTheLimit) {
  SessiondProcess server(GetParam(),
                         role_config("LIMITED", "max_sessions = 2\non_limit = \"deny\""));
  const auto user = create_user(server, {.email = "erin@example.com", .role = "LIMITED"});
  ASSERT_GT(user, 0);
  auto c = server.client();
  auto a = login(c, "erin@example.com", kPassword);
  auto b = login(c, "erin@example.com", kPassword);
  auto third = login_response(c, "erin@example.com", kPassword);
  EXPECT_TRUE(is_problem(third, 409, "session_limit"));
  EXPECT_EQ(verify(c, a.access_token).status, 200);
  EXPECT_EQ(verify(c, b.access_token).status, 200);
  EXPECT_EQ(admin_session_ids(server, user).size(), 2u);
  // Room again after a logout.
  ASSERT_EQ(c.request("POST", "/api/v1/auth/logout", bearer(a.access_token)).status, 204);
  EXPECT_EQ(login_response(c, "erin@example.com", kPassword).status, 200);
}

TEST_P(Limits, EvictOldestEndsTheFirstCreatedEvenWhenRecentlyUsed) {
  SessiondProcess server(GetParam(),
                         role_config("LIMITED", "max_sessions = 2\non_limit = \"evict_oldest\""));
  ASSERT_GT(create_user(server, {.email = "frank@example.com", .role = "LIMITED"}), 0);
  auto c = server.client();
  auto a = login(c, "frank@example.com", kPassword);
  auto b = login(c, "frank@example.com", kPassword);
  std::this_thread::sleep_for(1100ms);  // activity closer than a second may not be recorded
  ASSERT_EQ(verify(c, a.access_token).status, 200);
  auto newest = login(c, "frank@example.com", kPassword);
  EXPECT_TRUE(
      is_problem(verify(c, a.access_token), 401, "session_revoked", "max_sessions_exceeded"));
  EXPECT_EQ(verify(c, b.access_token).status, 200);
  EXPECT_EQ(verify(c, newest.access_token).status, 200);
}

TEST_P(Limits, EvictLruEndsTheLeastRecentlyUsed) {
  SessiondProcess server(GetParam(),
                         role_config("LIMITED", "max_sessions = 2\non_limit = \"evict_lru\""));
  ASSERT_GT(create_user(server, {.email = "grace@example.com", .role = "LIMITED"}), 0);
  auto c = server.client();
  auto a = login(c, "grace@example.com", kPassword);
  auto b = login(c, "grace@example.com", kPassword);
  std::this_thread::sleep_for(1100ms);  // activity closer than a second may not be recorded
  ASSERT_EQ(verify(c, a.access_token).status, 200);
  auto newest = login(c, "grace@example.com", kPassword);
  EXPECT_TRUE(
      is_problem(verify(c, b.access_token), 401, "session_revoked", "max_sessions_exceeded"));
  EXPECT_EQ(verify(c, a.access_token).status, 200);
  EXPECT_EQ(verify(c, newest.access_token).status, 200);
}

TEST_P(Expiry, IdleSessionExpiresWhileABusyOneStaysAlive) {
  SessiondProcess server(
      GetParam(), role_config("SHORT_IDLE", "idle_timeout = \"2s\"\nabsolute_timeout = \"1h\""));
  const auto user = create_user(server, {.email = "heidi@example.com", .role = "SHORT_IDLE"});
  ASSERT_GT(user, 0);
  auto c = server.client();
  auto idle = login(c, "heidi@example.com", kPassword);
  const auto start = std::chrono::steady_clock::now();
  auto busy = login(c, "heidi@example.com", kPassword);

  // Keep `busy` in use every 500 ms; watch (without touching it) for `idle` to leave the live list.
  bool busy_ok = true;
  ASSERT_TRUE(eventually(
      [&] {
        busy_ok = busy_ok && verify(c, busy.access_token).status == 200;
        return !contains(admin_session_ids(server, user), idle.session_id);
      },
      8s, 500ms));
  const auto idle_ended_after = std::chrono::steady_clock::now() - start;
  EXPECT_GE(idle_ended_after, 1900ms) << "ended before its idle timeout";
  EXPECT_TRUE(busy_ok);
  EXPECT_TRUE(is_problem(verify(c, idle.access_token), 401, "session_expired", "expired"));
  EXPECT_TRUE(is_problem(
      post_json(c, "/api/v1/auth/refresh", json::object{{"refresh_token", idle.refresh_token}}),
      401, "session_expired", "expired"));

  // The busy session outlived the idle timeout.
  while (std::chrono::steady_clock::now() - start < 2500ms) {
    ASSERT_EQ(verify(c, busy.access_token).status, 200);
    std::this_thread::sleep_for(500ms);
  }
  EXPECT_EQ(verify(c, busy.access_token).status, 200);
  EXPECT_TRUE(contains(admin_session_ids(server, user), busy.session_id));
}

TEST_P(Expiry, AbsoluteTimeoutEndsASessionDespiteActivity) {
  SessiondProcess server(
      GetParam(), role_config("SHORT_LIFE", "idle_timeout = \"1h\"\nabsolute_timeout = \"3s\""));
  const auto user = create_user(server, {.email = "ivan@example.com", .role = "SHORT_LIFE"});
  ASSERT_GT(user, 0);
  auto c = server.client();
  const auto start = std::chrono::steady_clock::now();
  auto t = login(c, "ivan@example.com", kPassword);
  // The access token never outlives the session.
  EXPECT_LE(t.body.at("expires_in").as_int64(), 3);
  auto claims = claims_of(t.access_token);
  EXPECT_LE(claims.exp - claims.iat, 3s);
  // So that the answer is the session's and not the token's, use the session with a token of the
  // same claims but a later exp, signed with the server's key; every 250 ms until it is refused.
  claims.exp = claims.iat + 1h;
  const std::string long_lived = sign_as_server(server, claims);
  ASSERT_EQ(verify(c, long_lived).status, 200);
  HttpResponse end;
  ASSERT_TRUE(eventually(
      [&] {
        end = verify(c, long_lived);
        return end.status != 200;
      },
      8s, 250ms));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(is_problem(end, 401, "session_expired", "expired"));
  EXPECT_GE(elapsed, 2900ms) << "ended before its absolute timeout";
  EXPECT_LT(elapsed, 6s);
  EXPECT_FALSE(contains(admin_session_ids(server, user), t.session_id));
  EXPECT_EQ(verify(c, t.access_token).status, 401);
}

TEST_P(Expiry, RefreshAfterTheAbsoluteTimeoutAnswersSessionExpired) {
  SessiondProcess server(
      GetParam(), role_config("SHORT_LIFE", "idle_timeout = \"1h\"\nabsolute_timeout = \"2s\""));
  const auto user = create_user(server, {.email = "ivan@example.com", .role = "SHORT_LIFE"});
  ASSERT_GT(user, 0);
  auto c = server.client();
  auto t = login(c, "ivan@example.com", kPassword);
  // Watch without touching the session until it has reached its absolute end.
  ASSERT_TRUE(eventually([&] { return !contains(admin_session_ids(server, user), t.session_id); },
                         6s, 100ms));
  EXPECT_TRUE(is_problem(
      post_json(c, "/api/v1/auth/refresh", json::object{{"refresh_token", t.refresh_token}}), 401,
      "session_expired", "expired"));
  EXPECT_TRUE(is_problem(verify(c, t.access_token), 401, "token_expired"));
}

}  // namespace
}  // namespace sessiond::http_test
