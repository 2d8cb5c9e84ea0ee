// Rate limits on password sign-in and refresh (SPEC §2 [rate_limits]), on each store: failed
// sign-ins count per account and per address, a success resets neither, every refusal is a 429
// with Retry-After and an audit event; an unknown email answers exactly like a wrong password.
#include <algorithm>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <thread>

#include "http/harness.hpp"

namespace sessiond::http_test {
namespace {

namespace json = boost::json;

constexpr std::string_view kPassword = "correct horse battery";

class RateLimits : public ::testing::TestWithParam<Store> {};
INSTANTIATE_TEST_SUITE_P(Stores, RateLimits, ::testing::ValuesIn(kEachStore), store_param_name);

TEST_P(RateLimits, FailedSignInsPerAccountAreLimited) {
  SessiondProcess server(GetParam(), "[rate_limits]\nlogin_per_account = \"3/15m\"\n");
  create_user(server, {.email = "ann@example.com"});
  create_user(server, {.email = "bob@example.com"});
  auto c = server.client();
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(is_problem(login_response(c, "ann@example.com", "wrong password!"), 401,
                           "invalid_credentials"));
  }
  // Even the right password waits now: the account is being guessed at.
  auto refused = login_response(c, "ANN@example.com", kPassword);
  EXPECT_TRUE(is_problem(refused, 429, "rate_limited"));
  const int retry_after = std::stoi(refused.header("Retry-After"));
  EXPECT_GT(retry_after, 800);
  EXPECT_LE(retry_after, 900);
  EXPECT_EQ(refused.json().at("retry_after").as_int64(), retry_after);
  EXPECT_EQ(login_response(c, "bob@example.com", kPassword).status, 200);

  auto events = events_until(c, server, "type=rate_limited", [](const json::array& a) {
    return !a.empty() && a[0].at("detail").at("limit") == "login_per_account";
  });
  EXPECT_EQ(events.status, 200) << events.body;
  auto metrics = c.request("GET", "/metrics");
  EXPECT_NE(metrics.body.find("sessiond_rate_limited_total 1\n"), std::string::npos)
      << metrics.body;
}

TEST_P(RateLimits, FailedSignInsPerAddressAreLimitedAndASuccessDoesNotResetThem) {
  SessiondProcess server(GetParam(), "[rate_limits]\nlogin_per_ip = \"4/15m\"\n");
  create_user(server, {.email = "carl@example.com"});
  auto c = server.client();
  const Headers from_a{{"X-Forwarded-For", "198.51.100.20"}};
  const Headers from_b{{"X-Forwarded-For", "198.51.100.21"}};
  EXPECT_EQ(login_response(c, "nobody1@example.com", "guess one", from_a).status, 401);
  EXPECT_EQ(login_response(c, "nobody2@example.com", "guess two", from_a).status, 401);
  EXPECT_EQ(login_response(c, "carl@example.com", kPassword, from_a).status, 200);
  EXPECT_EQ(login_response(c, "nobody3@example.com", "guess three", from_a).status, 401);
  EXPECT_EQ(login_response(c, "carl@example.com", "guess four", from_a).status, 401);
  EXPECT_TRUE(
      is_problem(login_response(c, "carl@example.com", kPassword, from_a), 429, "rate_limited"));
  EXPECT_EQ(login_response(c, "carl@example.com", kPassword, from_b).status, 200);
}

// Attempts running at once count as they start: a burst cannot pass the limit together.
TEST_P(RateLimits, ABurstOfGuessesGetsNoMoreThanTheLimit) {
  SessiondProcess server(GetParam(), "[rate_limits]\nlogin_per_account = \"3/15m\"\n");
  create_user(server, {.email = "gus@example.com"});
  constexpr int kGuesses = 12;
  std::vector<int> statuses(kGuesses);
  std::vector<std::thread> threads;
  for (int i = 0; i < kGuesses; ++i) {
    threads.emplace_back([&, i] {
      auto c = server.client();
      statuses[i] = login_response(c, "gus@example.com", "guess " + std::to_string(i)).status;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 401), 3);
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 429), kGuesses - 3);
}

// A wrong current password on POST /api/v1/me/password is a guess too.
TEST_P(RateLimits, WrongCurrentPasswordsAreLimited) {
  SessiondProcess server(GetParam(), "[rate_limits]\nlogin_per_account = \"2/15m\"\n");
  create_user(server, {.email = "hal@example.com"});
  auto c = server.client();
  auto tokens = login(c, "hal@example.com", kPassword);
  auto change = [&](std::string_view current) {
    return c.request("POST", "/api/v1/me/password", bearer_json(tokens.access_token),
                     json::serialize(json::object{{"current_password", current},
                                                  {"new_password", "a brand new passphrase"}}));
  };
  EXPECT_TRUE(is_problem(change("guess one!"), 401, "invalid_credentials"));
  EXPECT_TRUE(is_problem(change("guess two!"), 401, "invalid_credentials"));
  EXPECT_TRUE(is_problem(change(kPassword), 429, "rate_limited"));
}

TEST_P(RateLimits, SuccessfulSignInsAreNotCounted) {
  SessiondProcess server(
      GetParam(), "[rate_limits]\nlogin_per_account = \"2/15m\"\nlogin_per_ip = \"2/15m\"\n");
  create_user(server, {.email = "dora@example.com"});
  auto c = server.client();
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(login_response(c, "dora@example.com", kPassword).status, 200);
  }
}

TEST_P(RateLimits, UnknownEmailAnswersExactlyLikeAWrongPassword) {
  SessiondProcess server(GetParam());
  create_user(server, {.email = "erin@example.com"});
  auto c = server.client();
  auto wrong = login_response(c, "erin@example.com", "not the password");
  auto unknown = login_response(c, "nobody@example.com", "not the password");
  EXPECT_TRUE(is_problem(wrong, 401, "invalid_credentials"));
  EXPECT_EQ(unknown.status, wrong.status);
  EXPECT_EQ(unknown.body, wrong.body);
  EXPECT_EQ(unknown.header("Content-Type"), wrong.header("Content-Type"));
}

TEST_P(RateLimits, RefreshesPerSessionAreLimited) {
  SessiondProcess server(GetParam(),
                         "[tokens]\nrefresh_grace = \"1s\"\n[rate_limits]\nrefresh_per_session = "
                         "\"3/2s\"\n");
  create_user(server, {.email = "finn@example.com"});
  auto c = server.client();
  auto tokens = login(c, "finn@example.com", kPassword);
  auto other = login(c, "finn@example.com", kPassword);
  std::string refresh = tokens.refresh_token;
  for (int i = 0; i < 3; ++i) {
    auto r = post_json(c, "/api/v1/auth/refresh", json::object{{"refresh_token", refresh}});
    ASSERT_EQ(r.status, 200) << r.body;
    refresh = str(r.json(), "refresh_token");
  }
  auto refused = post_json(c, "/api/v1/auth/refresh", json::object{{"refresh_token", refresh}});
  EXPECT_TRUE(is_problem(refused, 429, "rate_limited"));
  EXPECT_GT(std::stoi(refused.header("Retry-After")), 0);
  // The refused refresh rotated nothing: once the limit has room (and the 1 s grace is long
  // over), the very same token still rotates; had it been rotated, it would now be a reuse.
  std::this_thread::sleep_for(2100ms);
  auto later = post_json(c, "/api/v1/auth/refresh", json::object{{"refresh_token", refresh}});
  EXPECT_EQ(later.status, 200) << later.body;
  // Another session of the same user has its own budget.
  EXPECT_EQ(
      post_json(c, "/api/v1/auth/refresh", json::object{{"refresh_token", other.refresh_token}})
          .status,
      200);
}

}  // namespace
}  // namespace sessiond::http_test
