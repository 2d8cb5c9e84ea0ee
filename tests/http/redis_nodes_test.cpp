// sessiond on the Redis store over real HTTP (issue 3): the same behaviour as the embedded store,
// many nodes on one Redis (SPEC §3, §4), and failing closed while Redis is down (SPEC §8).
//
// Every test has its own redis-server (PrivateRedis: a free loopback port and a temporary
// directory, stopped by PID) so that it may stop and restart it, and its own sessiond nodes. Node B
// shares node A's signing key and admin key files (SPEC §3: nodes on one store share them); each
// node keeps its own data directory and SQLite database.
//
// Users live in each node's SQLite while the session store is shared, so every test creates the
// same user on every node (same email and password, through that node's admin API). Each database
// is fresh, so the user gets the same id (1) on both, which is the id the shared store keys the
// user's sessions by.
#include <algorithm>
#include <atomic>
#include <boost/json/value.hpp>
#include <memory>
#include <set>
#include <thread>

#include "http/harness.hpp"
#include "support/private_redis.hpp"

namespace sessiond::http_test {
namespace {

namespace json = boost::json;
using test_support::PrivateRedis;

constexpr std::string_view kEmail = "erin@example.com";
constexpr std::string_view kPassword = "correct horse battery";

// The configuration of one node on `redis`. `keys_from`: the node whose signing and admin key files
// this one uses (nullptr for the first node). `roles`: extra TOML (role tables) appended.
std::string node_toml(const PrivateRedis& redis, const SessiondProcess* keys_from,
                      std::string_view roles = {}) {
  std::string toml = "[store]\nurl = \"" + redis.url() + "\"\n\n[tokens]\nrefresh_grace = \"2s\"\n";
  if (keys_from != nullptr) {
    toml += "signing_key_file = \"" + keys_from->dir() +
            "/signing.key\"\n\n[admin]\napi_key_file = \"" + keys_from->dir() + "/admin.key\"\n";
  }
  // Many sign-ins of one account are not what these tests measure.
  toml +=
      "\n[rate_limits]\nlogin_per_account = \"1000/15m\"\nlogin_per_ip = \"1000/15m\"\n"
      "refresh_per_session = \"1000/1m\"\n\n";
  toml += roles;
  return toml;
}

class RedisNodes : public ::testing::Test {
 protected:
  // Starts Redis (with `redis_args`), node A, then node B on A's keys, and creates the user on
  // both.
  void start(std::string_view roles = {}, const std::string& role = "GUEST",
             std::vector<std::string> redis_args = {}) {
    redis_ = std::make_unique<PrivateRedis>(std::move(redis_args));
    a_ = std::make_unique<SessiondProcess>(node_toml(*redis_, nullptr, roles));
    b_ = std::make_unique<SessiondProcess>(SessiondOptions{
        .extra_toml = node_toml(*redis_, a_.get(), roles),
        .admin_key_file = a_->dir() + "/admin.key",
    });
    for (const auto* node : {a_.get(), b_.get()}) {
      user_id_ = create_user(
          *node, {.email = std::string(kEmail), .password = std::string(kPassword), .role = role});
      ASSERT_EQ(user_id_, 1) << "each node's database is fresh: the user is 1 on both";
    }
  }

  HttpResponse refresh(HttpClient& c, std::string_view refresh_token) {
    return post_json(c, "/api/v1/auth/refresh", json::object{{"refresh_token", refresh_token}});
  }

  // Declared first, so destroyed last: the nodes stop (SIGTERM, exit 0) while Redis still runs.
  std::unique_ptr<PrivateRedis> redis_;
  std::unique_ptr<SessiondProcess> a_;
  std::unique_ptr<SessiondProcess> b_;
  std::int64_t user_id_ = 0;
};

Tokens tokens_of(const HttpResponse& r) {
  Tokens t;
  t.body = parse_json(r.body);
  t.access_token = str(t.body, "access_token");
  t.refresh_token = str(t.body, "refresh_token");
  t.session_id = str(t.body, "session_id");
  return t;
}

TEST_F(RedisNodes, RevocationOnOneNodeIsSeenByTheOtherAtOnce) {
  ASSERT_NO_FATAL_FAILURE(start());
  auto ca = a_->client();
  auto cb = b_->client();

  // Logout on A: B refuses the access token on the very next request.
  auto t = login(ca, kEmail, kPassword);
  ASSERT_EQ(verify(cb, t.access_token).status, 200);
  ASSERT_EQ(ca.request("POST", "/api/v1/auth/logout", bearer(t.access_token)).status, 204);
  EXPECT_TRUE(is_problem(verify(cb, t.access_token), 401, "session_revoked", "logout"));
  EXPECT_TRUE(is_problem(refresh(cb, t.refresh_token), 401, "session_revoked", "logout"));

  // DELETE of one session on A (signed in on B): B sees revoked_by_user at once.
  auto keep = login(cb, kEmail, kPassword);
  auto gone = login(cb, kEmail, kPassword);
  ASSERT_EQ(verify(cb, gone.access_token).status, 200);
  auto r = ca.request("DELETE", "/api/v1/sessions/" + gone.session_id, bearer(keep.access_token));
  ASSERT_EQ(r.status, 204) << r.body;
  EXPECT_TRUE(is_problem(verify(cb, gone.access_token), 401, "session_revoked", "revoked_by_user"));
  EXPECT_EQ(verify(cb, keep.access_token).status, 200);

  // Admin revocation on B: A sees revoked_by_admin at once.
  r = cb.request("DELETE", "/admin/v1/sessions/" + keep.session_id,
                 {{"Authorization", b_->admin_auth()}});
  ASSERT_EQ(r.status, 204) << r.body;
  EXPECT_TRUE(
      is_problem(verify(ca, keep.access_token), 401, "session_revoked", "revoked_by_admin"));
}

TEST_F(RedisNodes, ConcurrentSignInsAcrossTwoNodesRespectTheLimit) {
  ASSERT_NO_FATAL_FAILURE(
      start("[roles.LIMITED]\nmax_sessions = 2\non_limit = \"evict_oldest\"\n", "LIMITED"));

  constexpr int kSignIns = 40;
  std::vector<HttpResponse> answers(kSignIns);
  {
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int i = 0; i < kSignIns; ++i) {
      threads.emplace_back([&, i] {
        auto c = (i % 2 == 0 ? a_ : b_)->client(30s);
        ASSERT_TRUE(c.connect());
        while (!go) std::this_thread::yield();
        answers[static_cast<std::size_t>(i)] = login_response(c, kEmail, kPassword);
      });
    }
    go = true;
    for (auto& t : threads) t.join();
  }
  std::vector<Tokens> signed_in;
  for (const auto& a : answers) {
    ASSERT_EQ(a.status, 200) << a.body;
    signed_in.push_back(tokens_of(a));
  }
  std::set<std::string> distinct;
  for (const auto& t : signed_in) distinct.insert(t.session_id);
  EXPECT_EQ(distinct.size(), static_cast<std::size_t>(kSignIns));

  // Every token asked on both nodes: exactly two live, the rest evicted, and both nodes agree.
  auto ca = a_->client();
  auto cb = b_->client();
  std::vector<Tokens> alive;
  for (const auto& t : signed_in) {
    auto on_a = verify(ca, t.access_token);
    auto on_b = verify(cb, t.access_token);
    EXPECT_EQ(on_a.status, on_b.status) << on_a.body << " vs " << on_b.body;
    if (on_a.status == 200) {
      alive.push_back(t);
    } else {
      EXPECT_TRUE(is_problem(on_a, 401, "session_revoked", "max_sessions_exceeded"));
      EXPECT_TRUE(is_problem(on_b, 401, "session_revoked", "max_sessions_exceeded"));
    }
  }
  ASSERT_EQ(alive.size(), 2u);

  std::set<std::string> alive_ids{alive[0].session_id, alive[1].session_id};
  for (auto* c : {&ca, &cb}) {
    auto own = c->request("GET", "/api/v1/sessions", bearer(alive[0].access_token));
    ASSERT_EQ(own.status, 200) << own.body;
    std::set<std::string> listed;
    const auto body = own.json();
    for (const auto& s : body.as_array()) listed.insert(str(s, "session_id"));
    EXPECT_EQ(listed, alive_ids) << own.body;
  }
  auto admin = cb.request("GET", "/admin/v1/users/" + std::to_string(user_id_) + "/sessions",
                          {{"Authorization", b_->admin_auth()}});
  ASSERT_EQ(admin.status, 200) << admin.body;
  EXPECT_EQ(admin.json().as_array().size(), 2u) << admin.body;
}

TEST_F(RedisNodes, RefreshRaceAcrossNodesReturnsTheSamePair) {
  ASSERT_NO_FATAL_FAILURE(start());
  auto ca = a_->client();
  auto cb = b_->client();
  auto t = login(ca, kEmail, kPassword);

  // The same refresh token on A and B at once.
  HttpResponse on_a, on_b;
  {
    auto race_a = a_->client();
    auto race_b = b_->client();
    ASSERT_TRUE(race_a.connect());
    ASSERT_TRUE(race_b.connect());
    std::atomic<bool> go{false};
    std::thread ta([&] {
      while (!go) std::this_thread::yield();
      on_a = refresh(race_a, t.refresh_token);
    });
    std::thread tb([&] {
      while (!go) std::this_thread::yield();
      on_b = refresh(race_b, t.refresh_token);
    });
    go = true;
    ta.join();
    tb.join();
  }
  ASSERT_EQ(on_a.status, 200) << on_a.body;
  ASSERT_EQ(on_b.status, 200) << on_b.body;
  const auto pa = tokens_of(on_a);
  const auto pb = tokens_of(on_b);
  EXPECT_EQ(pa.access_token, pb.access_token);
  EXPECT_EQ(pa.refresh_token, pb.refresh_token);
  EXPECT_NE(pa.refresh_token, t.refresh_token);
  EXPECT_EQ(pa.session_id, t.session_id);

  // Again within refresh_grace (2 s), on either node: the same successor pair.
  for (auto* c : {&ca, &cb}) {
    auto again = refresh(*c, t.refresh_token);
    ASSERT_EQ(again.status, 200) << again.body;
    EXPECT_EQ(tokens_of(again).refresh_token, pa.refresh_token);
    EXPECT_EQ(tokens_of(again).access_token, pa.access_token);
  }
  EXPECT_EQ(verify(cb, pa.access_token).status, 200);

  // After the grace the rotated-out token is reuse: the whole session ends, seen on both nodes.
  std::this_thread::sleep_for(2200ms);  // past refresh_grace = 2s
  EXPECT_TRUE(
      is_problem(refresh(cb, t.refresh_token), 401, "session_revoked", "refresh_token_reuse"));
  EXPECT_TRUE(
      is_problem(refresh(ca, t.refresh_token), 401, "session_revoked", "refresh_token_reuse"));
  EXPECT_TRUE(
      is_problem(verify(ca, pa.access_token), 401, "session_revoked", "refresh_token_reuse"));
  EXPECT_TRUE(
      is_problem(refresh(ca, pa.refresh_token), 401, "session_revoked", "refresh_token_reuse"));
}

TEST_F(RedisNodes, StoreDownAnswers503AndRecovers) {
  // AOF with fsync on every write: the sessions survive the crash and restart below.
  ASSERT_NO_FATAL_FAILURE(start({}, "GUEST", {"--appendonly", "yes", "--appendfsync", "always"}));
  auto ca = a_->client();
  auto cb = b_->client();
  auto t = login(ca, kEmail, kPassword);
  auto other = login(cb, kEmail, kPassword);
  ASSERT_EQ(verify(cb, t.access_token).status, 200);
  ASSERT_EQ(ca.request("GET", "/readyz").status, 200);

  redis_->kill();  // SIGKILL: a crash

  for (auto* c : {&ca, &cb}) {
    EXPECT_TRUE(is_problem(verify(*c, t.access_token), 503, "store_unavailable"));
    auto r = refresh(*c, t.refresh_token);
    EXPECT_TRUE(is_problem(r, 503, "store_unavailable"));
    EXPECT_EQ(r.body.find("rt_"), std::string::npos) << "no token issued: " << r.body;
    r = login_response(*c, kEmail, kPassword);
    EXPECT_TRUE(is_problem(r, 503, "store_unavailable"));
    EXPECT_EQ(r.body.find("access_token"), std::string::npos) << "no token issued: " << r.body;
    EXPECT_TRUE(is_problem(c->request("GET", "/api/v1/sessions", bearer(t.access_token)), 503,
                           "store_unavailable"));
    EXPECT_TRUE(is_problem(c->request("GET", "/api/v1/me", bearer(t.access_token)), 503,
                           "store_unavailable"));
    EXPECT_TRUE(is_problem(
        c->request("DELETE", "/api/v1/sessions/" + other.session_id, bearer(t.access_token)), 503,
        "store_unavailable"));
    EXPECT_TRUE(is_problem(c->request("POST", "/api/v1/auth/logout", bearer(t.access_token)), 503,
                           "store_unavailable"));
    const Headers admin{{"Authorization", a_->admin_auth()}};
    r = post_json(*c, "/admin/v1/sessions", json::object{{"user_id", user_id_}}, admin);
    EXPECT_TRUE(is_problem(r, 503, "store_unavailable"));
    EXPECT_EQ(r.body.find("access_token"), std::string::npos) << "no token issued: " << r.body;
    EXPECT_TRUE(is_problem(
        c->request("DELETE", "/admin/v1/users/" + std::to_string(user_id_) + "/sessions", admin),
        503, "store_unavailable"));
    EXPECT_TRUE(is_problem(c->request("GET", "/readyz"), 503, "store_unavailable"));
    EXPECT_EQ(c->request("GET", "/healthz").status, 200);
  }

  redis_->start();  // same port and directory: the AOF brings the sessions back

  for (auto* c : {&ca, &cb}) {
    EXPECT_TRUE(eventually([&] { return c->request("GET", "/readyz").status == 200; }, 10s))
        << "the node did not recover by itself";
  }
  // Nothing changed while Redis was down: the session, the other one and the refresh token live.
  EXPECT_EQ(verify(ca, t.access_token).status, 200);
  EXPECT_EQ(verify(cb, t.access_token).status, 200);
  EXPECT_EQ(verify(ca, other.access_token).status, 200);
  auto r = refresh(cb, t.refresh_token);
  ASSERT_EQ(r.status, 200) << r.body;
  auto fresh = tokens_of(r);
  EXPECT_EQ(verify(ca, fresh.access_token).status, 200);
  EXPECT_EQ(login_response(ca, kEmail, kPassword).status, 200);
  EXPECT_EQ(ca.request("POST", "/api/v1/auth/logout", bearer(fresh.access_token)).status, 204);
  EXPECT_TRUE(is_problem(verify(cb, fresh.access_token), 401, "session_revoked", "logout"));
}

// The quickstart path (README) on the Redis store, crossing nodes at every step.
TEST_F(RedisNodes, QuickstartFlowWorksAsOnTheMemoryStore) {
  ASSERT_NO_FATAL_FAILURE(start());
  auto ca = a_->client();
  auto cb = b_->client();

  auto a = login(ca, kEmail, kPassword, {{"User-Agent", "curl/8.0"}});
  auto b = login(cb, kEmail, kPassword);
  auto r = verify(cb, a.access_token);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(str(r.json(), "session_id"), a.session_id);
  EXPECT_EQ(r.json().at("user_id").as_int64(), user_id_);
  EXPECT_EQ(r.header("X-Session-Id"), a.session_id);
  EXPECT_EQ(r.header("X-User-Role"), "GUEST");

  auto me = ca.request("GET", "/api/v1/me", bearer(a.access_token));
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(str(me.json().at("session"), "session_id"), a.session_id);
  EXPECT_EQ(str(me.json().at("session"), "user_agent"), "curl/8.0");

  auto list = cb.request("GET", "/api/v1/sessions", bearer(a.access_token));
  ASSERT_EQ(list.status, 200) << list.body;
  ASSERT_EQ(list.json().as_array().size(), 2u) << list.body;
  const auto listed = list.json();
  for (const auto& s : listed.as_array()) {
    EXPECT_EQ(s.at("current").as_bool(), str(s, "session_id") == a.session_id);
    EXPECT_EQ(str(s, "ip_address"), "127.0.0.1");
    EXPECT_EQ(str(s, "auth_method"), "password");
  }

  // Revoke one: gone on both nodes, a second revoke is 404.
  r = cb.request("DELETE", "/api/v1/sessions/" + b.session_id, bearer(a.access_token));
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_TRUE(is_problem(verify(ca, b.access_token), 401, "session_revoked", "revoked_by_user"));
  EXPECT_TRUE(is_problem(refresh(ca, b.refresh_token), 401, "session_revoked", "revoked_by_user"));
  EXPECT_TRUE(
      is_problem(ca.request("DELETE", "/api/v1/sessions/" + b.session_id, bearer(a.access_token)),
                 404, "not_found"));
  list = ca.request("GET", "/api/v1/sessions", bearer(a.access_token));
  ASSERT_EQ(list.json().as_array().size(), 1u) << list.body;

  // Refresh on A, use on B.
  r = refresh(ca, a.refresh_token);
  ASSERT_EQ(r.status, 200) << r.body;
  auto next = tokens_of(r);
  EXPECT_EQ(next.session_id, a.session_id);
  EXPECT_NE(next.refresh_token, a.refresh_token);
  EXPECT_EQ(verify(cb, next.access_token).status, 200);

  // Logout on B ends it everywhere.
  EXPECT_EQ(cb.request("POST", "/api/v1/auth/logout", bearer(next.access_token)).status, 204);
  EXPECT_TRUE(is_problem(verify(ca, next.access_token), 401, "session_revoked", "logout"));
  EXPECT_TRUE(is_problem(refresh(ca, next.refresh_token), 401, "session_revoked", "logout"));

  // Revoke others on A leaves the current one only.
  auto x = login(ca, kEmail, kPassword);
  auto y = login(cb, kEmail, kPassword);
  r = cb.request("DELETE", "/api/v1/sessions", bearer(x.access_token));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json(), (json::object{{"revoked", 1}}));
  EXPECT_TRUE(is_problem(verify(ca, y.access_token), 401, "session_revoked", "revoked_others"));
  EXPECT_EQ(verify(ca, x.access_token).status, 200);
}

}  // namespace
}  // namespace sessiond::http_test
