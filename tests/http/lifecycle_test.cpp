// Process life (SPEC §8): SIGKILL and restart lose nothing acknowledged; SIGTERM finishes the
// requests in flight and exits 0.
#include <boost/json/value.hpp>
#include <csignal>

#include "http/harness.hpp"

namespace sessiond::http_test {
namespace {

namespace json = boost::json;

constexpr std::string_view kPassword = "correct horse battery";

bool has_event(const json::value& events, std::string_view type, std::string_view session_id) {
  for (const auto& e : events.as_array()) {
    if (str(e, "type") == type && str(e, "session_id") == session_id) return true;
  }
  return false;
}

// On each store: the memory store is rebuilt from SQLite at start; on Redis the live state stays
// in Redis (which runs on), and SQLite keeps the users and events.
class Durability : public ::testing::TestWithParam<Store> {};
INSTANTIATE_TEST_SUITE_P(Stores, Durability, ::testing::ValuesIn(kEachStore), store_param_name);

TEST_P(Durability, SessionsRevocationsAndEventsSurviveSigkill) {
  SessiondProcess server(GetParam());
  const auto user = create_user(server, {.email = "amy@example.com"});
  ASSERT_GT(user, 0);
  Tokens kept, revoked, rotated;
  std::string rotated_refresh;
  {
    auto c = server.client();
    kept = login(c, "amy@example.com", kPassword);
    revoked = login(c, "amy@example.com", kPassword);
    rotated = login(c, "amy@example.com", kPassword);
    auto r =
        c.request("DELETE", "/api/v1/sessions/" + revoked.session_id, bearer(kept.access_token));
    ASSERT_EQ(r.status, 204) << r.body;
    auto refreshed = post_json(c, "/api/v1/auth/refresh",
                               json::object{{"refresh_token", rotated.refresh_token}});
    ASSERT_EQ(refreshed.status, 200) << refreshed.body;
    rotated_refresh = str(refreshed.json(), "refresh_token");
  }

  server.kill(SIGKILL);
  auto status = server.wait_for_exit(10s);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->signal, SIGKILL);
  const std::size_t logged_before_restart = server.log().size();
  server.restart();
  EXPECT_NE(server.port(), 0);
  const std::string restart_log = server.log().substr(logged_before_restart);
  if (GetParam() == Store::memory) {
    // Rebuilt from SQLite: the two live sessions, and the revoked one (for its reason).
    EXPECT_NE(restart_log.find("restored 2 live session(s) and 1 recently ended"),
              std::string::npos)
        << restart_log;
  } else {
    // Nothing to rebuild: the sessions below are the ones Redis kept.
    EXPECT_EQ(restart_log.find("restored"), std::string::npos) << restart_log;
  }

  auto c = server.client();
  EXPECT_EQ(verify(c, kept.access_token).status, 200) << "a live session survives";
  EXPECT_EQ(verify(c, rotated.access_token).status, 200);
  EXPECT_TRUE(
      is_problem(verify(c, revoked.access_token), 401, "session_revoked", "revoked_by_user"));
  // The rotation survived: the successor refresh token is the current one.
  auto refreshed =
      post_json(c, "/api/v1/auth/refresh", json::object{{"refresh_token", rotated_refresh}});
  EXPECT_EQ(refreshed.status, 200) << refreshed.body;

  auto list = c.request("GET", "/api/v1/sessions", bearer(kept.access_token));
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.json().as_array().size(), 2u) << list.body;

  // Six events: the outbox of the Redis store hands them over after the change, and this one was
  // restarted in between.
  auto events = events_until(c, server, "user_id=" + std::to_string(user),
                             [](const boost::json::array& a) { return a.size() >= 6; });
  ASSERT_EQ(events.status, 200) << events.body;
  auto e = events.json();
  EXPECT_TRUE(has_event(e, "login_succeeded", kept.session_id)) << events.body;
  EXPECT_TRUE(has_event(e, "login_succeeded", revoked.session_id)) << events.body;
  EXPECT_TRUE(has_event(e, "login_succeeded", rotated.session_id)) << events.body;
  EXPECT_TRUE(has_event(e, "session_revoked", revoked.session_id)) << events.body;
  EXPECT_TRUE(has_event(e, "session_refreshed", rotated.session_id)) << events.body;
  EXPECT_EQ(login_response(c, "amy@example.com", kPassword).status, 200) << "the user survives";
}

TEST_P(Durability, EndedSessionsRefreshTokenKeepsItsReasonAfterRestart) {
  SessiondProcess server(GetParam());
  ASSERT_GT(create_user(server, {.email = "amy@example.com"}), 0);
  Tokens kept, revoked;
  {
    auto c = server.client();
    kept = login(c, "amy@example.com", kPassword);
    revoked = login(c, "amy@example.com", kPassword);
    ASSERT_EQ(
        c.request("DELETE", "/api/v1/sessions/" + revoked.session_id, bearer(kept.access_token))
            .status,
        204);
    ASSERT_TRUE(is_problem(post_json(c, "/api/v1/auth/refresh",
                                     json::object{{"refresh_token", revoked.refresh_token}}),
                           401, "session_revoked", "revoked_by_user"));
  }
  server.kill(SIGKILL);
  ASSERT_TRUE(server.wait_for_exit(10s).has_value());
  server.restart();
  auto c = server.client();
  // SPEC §4: for at least access_ttl after a session ends, presenting it answers its reason.
  EXPECT_TRUE(is_problem(
      post_json(c, "/api/v1/auth/refresh", json::object{{"refresh_token", revoked.refresh_token}}),
      401, "session_revoked", "revoked_by_user"));
}

// A drain on each store: the sign-in answered during it is durable, whichever store holds it.
class Drain : public ::testing::TestWithParam<Store> {};
INSTANTIATE_TEST_SUITE_P(Stores, Drain, ::testing::ValuesIn(kEachStore), store_param_name);

TEST_P(Drain, SigtermFinishesTheRequestInFlightAndExitsZero) {
  SessiondProcess server(GetParam());
  ASSERT_GT(create_user(server, {.email = "ben@example.com"}), 0);
  auto c = server.client();
  ASSERT_EQ(c.request("GET", "/healthz").status, 200);  // the connection is accepted and served

  // A sign-in whose headers have arrived but whose body is still on its way when SIGTERM comes.
  const std::string body = R"({"email":"ben@example.com","password":"correct horse battery"})";
  const std::string head =
      "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n";
  ASSERT_TRUE(c.write_raw(head + body.substr(0, 10)));
  ASSERT_TRUE(eventually([&] { return server_has_read_everything(server.port(), c.local_port()); },
                         5s, 5ms));

  const auto sigterm_at = std::chrono::steady_clock::now();
  server.kill(SIGTERM);
  ASSERT_TRUE(eventually([&] { return server.log().find("received SIGTERM") != std::string::npos; },
                         5s, 5ms));
  EXPECT_TRUE(eventually([&] { return !accepts_connections(server.port()); }, 5s, 10ms))
      << "still accepting connections while draining";

  ASSERT_TRUE(c.write_raw(body.substr(10)));
  auto answer = c.read_response();
  ASSERT_TRUE(answer.has_value()) << "the request in flight was dropped";
  EXPECT_EQ(answer->status, 200) << answer->body;
  EXPECT_FALSE(str(parse_json(answer->body), "access_token").empty());
  EXPECT_EQ(answer->header("Connection"), "close");

  auto status = server.wait_for_exit(10s);
  ASSERT_TRUE(status.has_value()) << "still running 10 s after SIGTERM";
  EXPECT_LT(std::chrono::steady_clock::now() - sigterm_at, 10s);
  EXPECT_TRUE(status->exited);
  EXPECT_EQ(status->code, 0);

  // The session acknowledged during the drain is durable.
  server.restart();
  auto after = server.client();
  EXPECT_EQ(verify(after, str(parse_json(answer->body), "access_token")).status, 200);
}

TEST(Shutdown, SigtermWithIdleConnectionsExitsPromptly) {
  SessiondProcess server;
  auto idle = server.client();
  ASSERT_EQ(idle.request("GET", "/healthz").status, 200);
  auto silent = server.client();
  ASSERT_TRUE(silent.connect());
  const auto start = std::chrono::steady_clock::now();
  server.kill(SIGTERM);
  auto status = server.wait_for_exit(10s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->exited);
  EXPECT_EQ(status->code, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s) << "idle connections held up the exit";
}

}  // namespace
}  // namespace sessiond::http_test
