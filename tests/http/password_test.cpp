// POST /api/v1/me/password (SPEC §5): checks the current password, the minimum length, and ends
// every other session.
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "http/harness.hpp"

namespace sessiond::http_test {
namespace {

namespace json = boost::json;

constexpr std::string_view kEmail = "wendy@example.com";
constexpr std::string_view kOld = "correct horse battery";
constexpr std::string_view kNew = "a brand new passphrase";

class PasswordChangeTest : public ::testing::Test {
 protected:
  explicit PasswordChangeTest(Store store) : server_(store) {}
  void SetUp() override {
    ASSERT_GT(create_user(server_, {.email = std::string(kEmail), .password = std::string(kOld)}),
              0);
    current_ = login(client_, kEmail, kOld);
    other_ = login(client_, kEmail, kOld);
  }

  HttpResponse change(std::string_view current, std::string_view next) {
    return client_.request(
        "POST", "/api/v1/me/password", bearer_json(current_.access_token),
        json::serialize(json::object{{"current_password", current}, {"new_password", next}}));
  }

  SessiondProcess server_;
  HttpClient client_ = server_.client();
  Tokens current_;
  Tokens other_;
};

// A refused change ends nothing. What refuses it (the password checks) is the same on every store.
class PasswordChangeRefused : public PasswordChangeTest {
 protected:
  PasswordChangeRefused() : PasswordChangeTest(Store::memory) {}
};

// A change ends the other sessions in the store: on each store.
class PasswordChange : public PasswordChangeTest, public ::testing::WithParamInterface<Store> {
 protected:
  PasswordChange() : PasswordChangeTest(GetParam()) {}
};
INSTANTIATE_TEST_SUITE_P(Stores, PasswordChange, ::testing::ValuesIn(kEachStore), store_param_name);

TEST_F(PasswordChangeRefused, WrongCurrentPasswordAnswersInvalidCredentials) {
  EXPECT_TRUE(is_problem(change("not the old password", kNew), 401, "invalid_credentials"));
  EXPECT_EQ(verify(client_, current_.access_token).status, 200) << "a wrong password ends nothing";
  EXPECT_EQ(verify(client_, other_.access_token).status, 200);
  EXPECT_EQ(login_response(client_, kEmail, kOld).status, 200);
  EXPECT_EQ(login_response(client_, kEmail, kNew).status, 401);
}

TEST_F(PasswordChangeRefused, TooShortNewPasswordAnswers400) {
  EXPECT_TRUE(is_problem(change(kOld, "short"), 400, "invalid_request"));
  EXPECT_TRUE(is_problem(change(kOld, "ninechars"), 400, "invalid_request"));  // min_length 10
  EXPECT_TRUE(
      is_problem(client_.request("POST", "/api/v1/me/password", bearer_json(current_.access_token),
                                 R"({"current_password":"correct horse battery"})"),
                 400, "invalid_request"));
  EXPECT_EQ(verify(client_, other_.access_token).status, 200);
  EXPECT_EQ(login_response(client_, kEmail, kOld).status, 200);
}

TEST_P(PasswordChange, SuccessEndsOtherSessionsAndKeepsTheCurrent) {
  auto r = change(kOld, kNew);
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(verify(client_, current_.access_token).status, 200);
  EXPECT_TRUE(
      is_problem(verify(client_, other_.access_token), 401, "session_revoked", "password_changed"));
  EXPECT_TRUE(is_problem(post_json(client_, "/api/v1/auth/refresh",
                                   json::object{{"refresh_token", other_.refresh_token}}),
                         401, "session_revoked", "password_changed"));
  EXPECT_EQ(login_response(client_, kEmail, kNew).status, 200);
  auto events = events_until(client_, server_, "session_id=" + other_.session_id,
                             [](const json::array& list) {
                               return !list.empty() && list[0].at("type") == "session_revoked" &&
                                      list[0].at("detail").at("reason") == "password_changed";
                             });
  EXPECT_NE(events.body.find("password_changed"), std::string::npos) << events.body;
  EXPECT_TRUE(is_problem(login_response(client_, kEmail, kOld), 401, "invalid_credentials"));
}

TEST_F(PasswordChangeRefused, NeedsAnAuthenticatedSession) {
  auto r = client_.request(
      "POST", "/api/v1/me/password", json_content(),
      json::serialize(json::object{{"current_password", kOld}, {"new_password", kNew}}));
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(login_response(client_, kEmail, kOld).status, 200);
}

}  // namespace
}  // namespace sessiond::http_test
