// OTP sign-in (SPEC §5 /api/v1/auth/otp/send and /verify) with the file: sender, on each store:
// codes work once, within otp.ttl, are burned after max_attempts wrong tries, numbers are
// normalised, unknown numbers answer like known ones, and users are registered with roles.default.
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <fstream>
#include <sstream>

#include "http/harness.hpp"
#include "http/webhook_receiver.hpp"
#include "support/temp_dir.hpp"

namespace sessiond::http_test {
namespace {

namespace json = boost::json;

// The messages the file: sender wrote.
std::vector<json::object> sent_messages(const std::string& path) { return json_lines(path); }

class OtpTest : public ::testing::TestWithParam<Store> {
 protected:
  // `extra`: more configuration after the [otp] table's sender line (other [otp] keys first).
  void start(const std::string& otp_keys = {}, const std::string& extra = {}) {
    outbox_ = dir_.path() / "sms.jsonl";
    server_ = std::make_unique<SessiondProcess>(
        GetParam(), "[otp]\nsender = \"file:" + outbox_.string() + "\"\n" + otp_keys + extra);
    client_ = std::make_unique<HttpClient>(server_->client());
  }

  HttpResponse send(std::string_view number, Headers extra = {}) {
    return post_json(*client_, "/api/v1/auth/otp/send", json::object{{"mobile_number", number}},
                     std::move(extra));
  }
  HttpResponse check(std::string_view number, std::string_view code, Headers extra = {}) {
    return post_json(*client_, "/api/v1/auth/otp/verify",
                     json::object{{"mobile_number", number}, {"otp", code}}, std::move(extra));
  }
  // The code of the latest message to `number` (E.164); a test failure when there is none.
  std::string last_code(std::string_view number) {
    std::string code;
    for (const auto& m : sent_messages(outbox_.string())) {
      if (m.at("to").as_string() == number) code = std::string(m.at("code").as_string());
    }
    if (code.empty()) ADD_FAILURE() << "no code was sent to " << number;
    return code;
  }
  std::size_t messages_to(std::string_view number) {
    std::size_t n = 0;
    for (const auto& m : sent_messages(outbox_.string())) n += m.at("to").as_string() == number;
    return n;
  }
  // A code of the right length that is not `code`.
  static std::string other_code(const std::string& code) {
    std::string other = code;
    other[0] = code[0] == '9' ? '0' : static_cast<char>(code[0] + 1);
    return other;
  }

  test_support::TempDir dir_;
  std::filesystem::path outbox_;
  std::unique_ptr<SessiondProcess> server_;
  std::unique_ptr<HttpClient> client_;
};
INSTANTIATE_TEST_SUITE_P(Stores, OtpTest, ::testing::ValuesIn(kEachStore), store_param_name);

TEST_P(OtpTest, CodeSignsInOnceAndRegistersTheNumberWithTheDefaultRole) {
  start();
  auto sent = send("+15550100200");
  ASSERT_EQ(sent.status, 202) << sent.body;
  EXPECT_EQ(sent.json().at("expires_in").as_int64(), 300);
  auto messages = sent_messages(outbox_.string());
  ASSERT_EQ(messages.size(), 1u);
  const std::string code = std::string(messages[0].at("code").as_string());
  EXPECT_EQ(code.size(), 6u);
  EXPECT_NE(std::string(messages[0].at("text").as_string()).find(code), std::string::npos);
  EXPECT_EQ(sent.body.find(code), std::string::npos) << "the code is never in the answer";

  auto r = check("+15550100200", code);
  ASSERT_EQ(r.status, 200) << r.body;
  auto body = r.json();
  EXPECT_EQ(str(body.at("user"), "mobile_number"), "+15550100200");
  EXPECT_EQ(str(body.at("user"), "role"), "GUEST");
  EXPECT_EQ(verify(*client_, str(body, "access_token")).status, 200);
  auto me = client_->request("GET", "/api/v1/me", bearer(str(body, "access_token")));
  EXPECT_EQ(str(me.json().at("session"), "auth_method"), "otp") << me.body;

  EXPECT_TRUE(is_problem(check("+15550100200", code), 401, "invalid_otp")) << "single use";
  EXPECT_EQ(server_->log().find(code), std::string::npos) << "the code is not logged";

  // The second sign-in finds the registered user.
  ASSERT_EQ(send("+15550100200").status, 202);
  auto again = check("+15550100200", last_code("+15550100200"));
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.json().at("user").at("id"), body.at("user").at("id"));
}

TEST_P(OtpTest, CodeIsBurnedAfterMaxAttemptsWrongTries) {
  start("max_attempts = 3\n");
  ASSERT_EQ(send("+15550100201").status, 202);
  const std::string code = last_code("+15550100201");
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(is_problem(check("+15550100201", other_code(code)), 401, "invalid_otp"));
  }
  // Two wrong tries leave one: the right code still works.
  auto ok = check("+15550100201", code);
  EXPECT_EQ(ok.status, 200) << ok.body;

  ASSERT_EQ(send("+15550100201").status, 202);
  const std::string next = last_code("+15550100201");
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(is_problem(check("+15550100201", other_code(next)), 401, "invalid_otp"));
  }
  EXPECT_TRUE(is_problem(check("+15550100201", next), 401, "invalid_otp")) << "burned";
  auto c = server_->client();
  auto events = events_until(c, *server_, "type=login_failed", [](const json::array& a) {
    return std::any_of(a.begin(), a.end(), [](const json::value& e) {
      return e.at("detail").at("reason") == "otp_burned";
    });
  });
  EXPECT_EQ(events.status, 200) << events.body;
}

TEST_P(OtpTest, CodeExpiresAfterTtl) {
  start("ttl = \"1s\"\n");
  ASSERT_EQ(send("+15550100202").status, 202);
  const std::string code = last_code("+15550100202");
  std::this_thread::sleep_for(1500ms);
  EXPECT_TRUE(is_problem(check("+15550100202", code), 401, "invalid_otp"));
}

TEST_P(OtpTest, NewCodeReplacesTheOldOne) {
  start();
  ASSERT_EQ(send("+15550100203").status, 202);
  const std::string first = last_code("+15550100203");
  ASSERT_EQ(send("+15550100203").status, 202);
  const std::string second = last_code("+15550100203");
  if (first != second) {
    EXPECT_TRUE(is_problem(check("+15550100203", first), 401, "invalid_otp"));
  }
  EXPECT_EQ(check("+15550100203", second).status, 200);
}

TEST_P(OtpTest, NumbersAreNormalisedToE164) {
  start();
  ASSERT_EQ(send("+1 (555) 010-0204").status, 202);
  EXPECT_EQ(messages_to("+15550100204"), 1u);
  auto r = check("15550100204", last_code("+15550100204"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(str(r.json().at("user"), "mobile_number"), "+15550100204");
}

TEST_P(OtpTest, MalformedRequestsAnswer400) {
  start();
  EXPECT_TRUE(is_problem(send("not a number"), 400, "invalid_request"));
  EXPECT_TRUE(is_problem(send("+12"), 400, "invalid_request"));
  EXPECT_TRUE(is_problem(
      post_json(*client_, "/api/v1/auth/otp/send", json::object{{"mobile_number", 15550100}}), 400,
      "invalid_request"));
  EXPECT_TRUE(is_problem(post_json(*client_, "/api/v1/auth/otp/send", json::object{}), 400,
                         "invalid_request"));
  EXPECT_TRUE(is_problem(post_json(*client_, "/api/v1/auth/otp/verify",
                                   json::object{{"mobile_number", "+15550100205"}}),
                         400, "invalid_request"));
  EXPECT_TRUE(is_problem(client_->request("POST", "/api/v1/auth/otp/send", json_content(), "{"),
                         400, "invalid_request"));
  EXPECT_EQ(sent_messages(outbox_.string()).size(), 0u);
}

TEST_P(OtpTest, UnknownNumberAnswersLikeAKnownOneWithoutAutoRegister) {
  start("auto_register = false\n");
  create_user(*server_, {.email = "known@example.com", .mobile_number = "+15550100206"});
  auto known = send("+15550100206");
  auto unknown = send("+15550100207");
  EXPECT_EQ(known.status, 202);
  EXPECT_EQ(unknown.status, known.status);
  EXPECT_EQ(unknown.body, known.body);
  EXPECT_EQ(messages_to("+15550100206"), 1u);
  EXPECT_EQ(messages_to("+15550100207"), 0u) << "nothing to sign in to: no message";
  EXPECT_TRUE(is_problem(check("+15550100207", "123456"), 401, "invalid_otp"));
  auto r = check("+15550100206", last_code("+15550100206"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(str(r.json().at("user"), "email"), "known@example.com");
}

TEST_P(OtpTest, DisabledUserCannotSignIn) {
  start();
  auto id = create_user(*server_, {.email = "off@example.com", .mobile_number = "+15550100208"});
  auto patched = client_->request(
      "PATCH", "/admin/v1/users/" + std::to_string(id),
      {{"Authorization", server_->admin_auth()}, {"Content-Type", "application/json"}},
      R"({"disabled":true})");
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(send("+15550100208").status, 202);
  EXPECT_EQ(messages_to("+15550100208"), 0u);
  EXPECT_TRUE(is_problem(check("+15550100208", "123456"), 401, "invalid_otp"));
  EXPECT_TRUE(is_problem(login_response(*client_, "off@example.com", "correct horse battery"), 401,
                         "invalid_credentials"));
}

TEST_P(OtpTest, SendsPerNumberAreLimited) {
  start({}, "[rate_limits]\notp_send_per_number = \"3/10m\"\n");
  for (int i = 0; i < 3; ++i) ASSERT_EQ(send("+15550100209").status, 202);
  auto refused = send("+15550100209");
  EXPECT_TRUE(is_problem(refused, 429, "rate_limited"));
  const int retry_after = std::stoi(refused.header("Retry-After"));
  EXPECT_GT(retry_after, 590);
  EXPECT_LE(retry_after, 600);
  EXPECT_EQ(refused.json().at("retry_after").as_int64(), retry_after);
  EXPECT_EQ(messages_to("+15550100209"), 3u);
  EXPECT_EQ(send("+15550100210").status, 202) << "another number is not limited";
  auto c = server_->client();
  auto events = events_until(c, *server_, "type=rate_limited", [](const json::array& a) {
    return !a.empty() && a[0].at("detail").at("limit") == "otp_send_per_number";
  });
  EXPECT_EQ(events.status, 200) << events.body;
}

TEST_P(OtpTest, SendsPerAddressAreLimited) {
  start({}, "[rate_limits]\notp_send_per_ip = \"2/1h\"\n");
  const Headers from_a{{"X-Forwarded-For", "203.0.113.7"}};
  const Headers from_b{{"X-Forwarded-For", "203.0.113.8"}};
  EXPECT_EQ(send("+15550100211", from_a).status, 202);
  EXPECT_EQ(send("+15550100212", from_a).status, 202);
  EXPECT_TRUE(is_problem(send("+15550100213", from_a), 429, "rate_limited"));
  EXPECT_EQ(messages_to("+15550100213"), 0u);
  EXPECT_EQ(send("+15550100213", from_b).status, 202);
}

TEST_P(OtpTest, WrongCodesCountAsFailedSignIns) {
  start({}, "[rate_limits]\nlogin_per_account = \"3/15m\"\n");
  ASSERT_EQ(send("+15550100214").status, 202);
  const std::string code = last_code("+15550100214");
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(is_problem(check("+15550100214", other_code(code)), 401, "invalid_otp"));
  }
  EXPECT_TRUE(is_problem(check("+15550100214", code), 429, "rate_limited"));
}

// otp.sender = "webhook:URL": the message is POSTed to the gateway, tried again when it fails,
// and a gateway that keeps failing gives the client 503 (nothing is lost silently).
TEST_P(OtpTest, WebhookSenderPostsToTheGatewayAndAnswers503WhenItFails) {
  const auto port = free_port();
  Receiver gateway(dir_.path(), port, {"--fail-first", "3"});
  server_ = std::make_unique<SessiondProcess>(
      GetParam(),
      "[otp]\nsender = \"webhook:http://127.0.0.1:" + std::to_string(port) + "/sms\"\n");
  client_ = std::make_unique<HttpClient>(server_->client());
  EXPECT_TRUE(is_problem(send("+15550100216"), 503, "upstream_unavailable"));
  EXPECT_EQ(gateway.requests().size(), 3u) << "three tries";
  EXPECT_EQ(server_->log().find("the one-time code"), std::string::npos);

  ASSERT_EQ(send("+15550100216").status, 202);
  auto got = gateway.delivered();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(str(got[0], "to"), "+15550100216");
  const std::string code = str(got[0], "code");
  EXPECT_NE(str(got[0], "text").find(code), std::string::npos);
  EXPECT_EQ(server_->log().find(code), std::string::npos) << "the code is not logged";
  auto r = check("+15550100216", code);
  EXPECT_EQ(r.status, 200) << r.body;
}

// The log sender writes the code to sessiond's log (development only).
TEST(OtpLogSender, CodeAppearsInTheLog) {
  SessiondProcess server("[otp]\nsender = \"log\"\n");
  auto c = server.client();
  auto sent =
      post_json(c, "/api/v1/auth/otp/send", json::object{{"mobile_number", "+15550100215"}});
  ASSERT_EQ(sent.status, 202) << sent.body;
  const std::string log = server.log();
  const auto at = log.find("otp for +15550100215: ");
  ASSERT_NE(at, std::string::npos) << log;
  const std::string code = log.substr(at + 22, 6);
  auto r = post_json(c, "/api/v1/auth/otp/verify",
                     json::object{{"mobile_number", "+15550100215"}, {"otp", code}});
  EXPECT_EQ(r.status, 200) << r.body;
}

}  // namespace
}  // namespace sessiond::http_test
