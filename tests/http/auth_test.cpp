// Sign-in, access tokens and refresh-token rotation (SPEC §3, §5 "Sign-in").
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <fstream>

#include "core/crypto.hpp"
#include "core/jwt.hpp"
#include "http/harness.hpp"

namespace sessiond::http_test {
namespace {

namespace json = boost::json;

constexpr std::string_view kEmail = "carol@example.com";
constexpr std::string_view kPassword = "correct horse battery";

class WithUser : public ::testing::Test {
 protected:
  explicit WithUser(std::string extra_toml = {}, Store store = Store::memory)
      : server_(store, std::move(extra_toml)) {}
  void SetUp() override {
    user_id_ =
        create_user(server_, {.email = std::string(kEmail), .password = std::string(kPassword)});
    ASSERT_GT(user_id_, 0);
  }

  SessiondProcess server_;
  HttpClient client_ = server_.client();
  std::int64_t user_id_ = 0;
};

using Login = WithUser;

TEST_F(Login, WrongPasswordAndUnknownEmailAnswerTheSame) {
  auto wrong_password = login_response(client_, kEmail, "not the password at all");
  auto unknown_email = login_response(client_, "nobody@example.com", "not the password at all");
  auto not_an_email = login_response(client_, "nobody", "not the password at all");
  EXPECT_TRUE(is_problem(wrong_password, 401, "invalid_credentials"));
  for (const auto* r : {&unknown_email, &not_an_email}) {
    EXPECT_TRUE(is_problem(*r, 401, "invalid_credentials"));
    EXPECT_EQ(r->body, wrong_password.body) << "the answer must not tell whether the email exists";
    EXPECT_EQ(r->header("Content-Type"), wrong_password.header("Content-Type"));
  }
  // The right password still works: failures did not lock the account.
  EXPECT_EQ(login_response(client_, kEmail, kPassword).status, 200);
}

TEST_F(Login, EmailIsCaseInsensitive) {
  EXPECT_EQ(login_response(client_, "Carol@Example.COM", kPassword).status, 200);
}

TEST_F(Login, MalformedBodiesAnswerInvalidRequest) {
  const std::vector<std::string> bodies = {
      R"({"email":"carol@example.com"})",
      R"({"password":"correct horse battery"})",
      R"({})",
      R"({"email":42,"password":"correct horse battery"})",
      R"({"email":"carol@example.com","password":["correct horse battery"]})",
      R"({"email":"carol@example.com","password":"correct horse battery","use_cookies":"yes"})",
      R"({"email":"carol@example.com","password":"correct horse battery",)",
      R"({"email":"carol@example.com" "password":"x"})",
      R"(["carol@example.com","correct horse battery"])",
      R"("carol@example.com")",
      R"(null)",
      R"(42)",
      "not json at all",
      std::string(100000 / 2, '['),
      "{\"email\":\"carol@example.com\",\"password\":\"\xff\xfe\"}",
  };
  for (const auto& body : bodies) {
    auto r = client_.request("POST", "/api/v1/auth/login", json_content(), body);
    EXPECT_TRUE(is_problem(r, 400, "invalid_request")) << "body: " << body.substr(0, 80);
  }
  // No body at all.
  EXPECT_TRUE(is_problem(client_.request("POST", "/api/v1/auth/login", json_content()), 400,
                         "invalid_request"));
}

TEST_F(Login, DisabledUserCannotSignIn) {
  auto r = client_.request(
      "PATCH", "/admin/v1/users/" + std::to_string(user_id_),
      {{"Authorization", server_.admin_auth()}, {"Content-Type", "application/json"}},
      R"({"disabled":true})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto refused = login_response(client_, kEmail, kPassword);
  EXPECT_TRUE(is_problem(refused, 401, "invalid_credentials"));
  EXPECT_EQ(refused.body, login_response(client_, "nobody@example.com", kPassword).body);

  r = client_.request(
      "PATCH", "/admin/v1/users/" + std::to_string(user_id_),
      {{"Authorization", server_.admin_auth()}, {"Content-Type", "application/json"}},
      R"({"disabled":false})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(login_response(client_, kEmail, kPassword).status, 200);
}

// ---- access tokens ----

struct JwtParts {
  std::string header, payload, signature;
};

JwtParts split_jwt(const std::string& token) {
  auto first = token.find('.');
  auto second = token.find('.', first + 1);
  return {token.substr(0, first), token.substr(first + 1, second - first - 1),
          token.substr(second + 1)};
}

std::string decode_part(const std::string& part) { return base64url_decode(part).value_or(""); }

class AccessToken : public WithUser {
 protected:
  void SetUp() override {
    WithUser::SetUp();
    init_crypto();
    tokens_ = login(client_, kEmail, kPassword);
    ASSERT_FALSE(tokens_.access_token.empty());
    ASSERT_EQ(verify(client_, tokens_.access_token).status, 200);
  }

  AccessClaims claims_of_session() const {
    auto c = claims_of(tokens_.access_token);
    c.jti = "forged";
    return c;
  }

  ::testing::AssertionResult rejected_as(const std::string& token, std::string_view code) {
    return is_problem(verify(client_, token), 401, code);
  }

  http_test::Tokens tokens_;
};

TEST_F(AccessToken, AccessTokenCarriesTheSpecClaims) {
  auto payload = parse_json(decode_part(split_jwt(tokens_.access_token).payload));
  auto header = parse_json(decode_part(split_jwt(tokens_.access_token).header));
  EXPECT_EQ(str(header, "alg"), "HS256");
  EXPECT_EQ(str(payload, "iss"), "sessiond");
  EXPECT_EQ(str(payload, "aud"), "sessiond");
  EXPECT_EQ(str(payload, "sub"), std::to_string(user_id_));
  EXPECT_EQ(str(payload, "sid"), tokens_.session_id);
  EXPECT_EQ(str(payload, "role"), "GUEST");
  EXPECT_FALSE(str(payload, "jti").empty());
  ASSERT_TRUE(payload.at("iat").is_number() && payload.at("exp").is_number());
  EXPECT_EQ(
      payload.at("exp").to_number<std::int64_t>() - payload.at("iat").to_number<std::int64_t>(),
      3600);
}

TEST_F(AccessToken, TamperedTokensAnswerTokenInvalid) {
  auto parts = split_jwt(tokens_.access_token);
  // Another user id in the payload, the signature kept.
  auto payload = parse_json(decode_part(parts.payload));
  payload.as_object()["sub"] = std::to_string(user_id_ + 1);
  EXPECT_TRUE(
      rejected_as(parts.header + "." + base64url_encode(to_json(payload)) + "." + parts.signature,
                  "token_invalid"));
  // One character of the signature changed.
  std::string signature = parts.signature;
  signature[signature.size() / 2] = signature[signature.size() / 2] == 'A' ? 'B' : 'A';
  EXPECT_TRUE(rejected_as(parts.header + "." + parts.payload + "." + signature, "token_invalid"));
  // No signature, a truncated token, extra parts.
  EXPECT_TRUE(rejected_as(parts.header + "." + parts.payload + ".", "token_invalid"));
  EXPECT_TRUE(rejected_as(parts.header + "." + parts.payload, "token_invalid"));
  EXPECT_TRUE(rejected_as(tokens_.access_token + ".x", "token_invalid"));
  EXPECT_EQ(verify(client_, tokens_.access_token).status, 200) << "the real token still works";
}

TEST_F(AccessToken, AlgNoneIsRejected) {
  auto parts = split_jwt(tokens_.access_token);
  for (const char* alg : {"none", "None", "NONE"}) {
    const std::string header =
        base64url_encode(std::string(R"({"alg":")") + alg + R"(","typ":"JWT"})");
    EXPECT_TRUE(rejected_as(header + "." + parts.payload + ".", "token_invalid")) << alg;
    EXPECT_TRUE(rejected_as(header + "." + parts.payload + "." + parts.signature, "token_invalid"))
        << alg;
  }
  // HS384/HS512 headers on the same signature: the algorithm is pinned by configuration.
  const std::string hs512 = base64url_encode(std::string(R"({"alg":"HS512","typ":"JWT"})"));
  EXPECT_TRUE(rejected_as(hs512 + "." + parts.payload + "." + parts.signature, "token_invalid"));
}

TEST_F(AccessToken, TokenSignedWithAnotherKeyIsRejected) {
  auto other = JwtCodec::hs256(std::string(48, 'k'), "sessiond", "sessiond");
  ASSERT_TRUE(other.has_value());
  EXPECT_TRUE(rejected_as(other->sign(claims_of_session()), "token_invalid"));
}

TEST_F(AccessToken, WrongIssuerOrAudienceIsRejected) {
  const std::string key = signing_key(server_);
  ASSERT_GE(key.size(), 32u);
  auto right = JwtCodec::hs256(key, "sessiond", "sessiond");
  auto wrong_issuer = JwtCodec::hs256(key, "someone-else", "sessiond");
  auto wrong_audience = JwtCodec::hs256(key, "sessiond", "another-app");
  ASSERT_TRUE(right && wrong_issuer && wrong_audience);
  // The control: the server's key and claims make a token it accepts.
  EXPECT_EQ(verify(client_, right->sign(claims_of_session())).status, 200);
  EXPECT_TRUE(rejected_as(wrong_issuer->sign(claims_of_session()), "token_invalid"));
  EXPECT_TRUE(rejected_as(wrong_audience->sign(claims_of_session()), "token_invalid"));
  // Signed right but past its exp.
  auto expired = claims_of_session();
  expired.iat -= std::chrono::hours(2);
  expired.exp = expired.iat + std::chrono::hours(1);
  EXPECT_TRUE(rejected_as(right->sign(expired), "token_expired"));
}

TEST_F(AccessToken, GarbageAnswersTokenInvalid) {
  for (const std::string& garbage :
       std::vector<std::string>{"garbage", "a.b.c", "....", "eyJhbGciOiJIUzI1NiJ9", "rt_notajwt",
                                std::string(4000, 'A')}) {
    EXPECT_TRUE(rejected_as(garbage, "token_invalid")) << garbage.substr(0, 40);
  }
  // The admin key is not an access token.
  EXPECT_TRUE(rejected_as(server_.admin_key(), "token_invalid"));
  // A refresh token is not an access token.
  EXPECT_TRUE(rejected_as(tokens_.refresh_token, "token_invalid"));
}

TEST_F(AccessToken, MissingOrMalformedAuthorizationAnswers401) {
  for (const Headers& headers : std::vector<Headers>{{},
                                                     {{"Authorization", "Bearer"}},
                                                     {{"Authorization", "Bearer "}},
                                                     {{"Authorization", "Basic dXNlcjpwYXNz"}},
                                                     {{"Authorization", tokens_.access_token}}}) {
    for (auto target : {"/api/v1/auth/verify", "/api/v1/me", "/api/v1/sessions"}) {
      auto r = client_.request("GET", target, headers);
      EXPECT_EQ(r.status, 401) << target << " " << r.body;
      EXPECT_TRUE(r.header("Content-Type").starts_with("application/problem+json"));
      EXPECT_TRUE(r.has_header("WWW-Authenticate"));
    }
  }
}

// The access token expires on its own; the session, in the store, lives on.
class ShortAccessTtl : public WithUser, public ::testing::WithParamInterface<Store> {
 protected:
  ShortAccessTtl() : WithUser("[tokens]\naccess_ttl = \"2s\"\n", GetParam()) {}
};
INSTANTIATE_TEST_SUITE_P(Stores, ShortAccessTtl, ::testing::ValuesIn(kEachStore), store_param_name);

TEST_P(ShortAccessTtl, AccessTokenPastExpAnswersTokenExpired) {
  auto t = login(client_, kEmail, kPassword);
  EXPECT_LE(t.body.at("expires_in").as_int64(), 2);
  ASSERT_EQ(verify(client_, t.access_token).status, 200);
  // Poll until the token's exp (whole seconds) has passed: the answer must then be token_expired.
  HttpResponse last;
  ASSERT_TRUE(eventually(
      [&] {
        last = verify(client_, t.access_token);
        return last.status != 200;
      },
      5s, 200ms));
  EXPECT_TRUE(is_problem(last, 401, "token_expired"));
  // The session itself is alive: a refresh gives a working token.
  auto refreshed =
      post_json(client_, "/api/v1/auth/refresh", json::object{{"refresh_token", t.refresh_token}});
  ASSERT_EQ(refreshed.status, 200) << refreshed.body;
  EXPECT_EQ(verify(client_, str(refreshed.json(), "access_token")).status, 200);
}

// ---- refresh ----

// Rotation, the grace window and reuse detection: the store's work, so on each store.
class Refresh : public WithUser, public ::testing::WithParamInterface<Store> {
 protected:
  Refresh() : WithUser("[tokens]\nrefresh_grace = \"1s\"\n", GetParam()) {}

  HttpResponse refresh(std::string_view refresh_token) {
    return post_json(client_, "/api/v1/auth/refresh",
                     json::object{{"refresh_token", refresh_token}});
  }
};

INSTANTIATE_TEST_SUITE_P(Stores, Refresh, ::testing::ValuesIn(kEachStore), store_param_name);

TEST_P(Refresh, RotatesTheRefreshToken) {
  auto t = login(client_, kEmail, kPassword);
  auto r = refresh(t.refresh_token);
  ASSERT_EQ(r.status, 200) << r.body;
  auto body = r.json();
  EXPECT_EQ(str(body, "token_type"), "bearer");
  EXPECT_EQ(str(body, "session_id"), t.session_id);
  EXPECT_TRUE(str(body, "refresh_token").starts_with("rt_"));
  EXPECT_NE(str(body, "refresh_token"), t.refresh_token);
  EXPECT_NE(str(body, "access_token"), t.access_token);
  EXPECT_EQ(body.at("user").at("id").as_int64(), user_id_);
  // Both access tokens work: the session is the same and alive.
  EXPECT_EQ(verify(client_, str(body, "access_token")).status, 200);
  EXPECT_EQ(verify(client_, t.access_token).status, 200);
  // The new refresh token rotates again.
  auto again = refresh(str(body, "refresh_token"));
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_NE(str(again.json(), "refresh_token"), str(body, "refresh_token"));
  // Until the session is revoked.
  ASSERT_EQ(client_.request("POST", "/api/v1/auth/logout", bearer(t.access_token)).status, 204);
  EXPECT_TRUE(
      is_problem(verify(client_, str(body, "access_token")), 401, "session_revoked", "logout"));
}

TEST_P(Refresh, OldTokenWithinGraceReturnsTheSameSuccessorPair) {
  auto t = login(client_, kEmail, kPassword);
  auto first = refresh(t.refresh_token);
  auto second = refresh(t.refresh_token);
  ASSERT_EQ(first.status, 200) << first.body;
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_EQ(str(second.json(), "refresh_token"), str(first.json(), "refresh_token"));
  EXPECT_EQ(str(second.json(), "access_token"), str(first.json(), "access_token"));
  EXPECT_EQ(str(second.json(), "session_id"), t.session_id);
  // The successor is still the current token: it rotates normally.
  auto next = refresh(str(first.json(), "refresh_token"));
  ASSERT_EQ(next.status, 200) << next.body;
  EXPECT_EQ(verify(client_, str(next.json(), "access_token")).status, 200);
}

TEST_P(Refresh, ReuseAfterGraceRevokesTheWholeSession) {
  auto t = login(client_, kEmail, kPassword);
  auto first = refresh(t.refresh_token);
  ASSERT_EQ(first.status, 200) << first.body;
  auto second = refresh(str(first.json(), "refresh_token"));
  ASSERT_EQ(second.status, 200) << second.body;
  const std::string newest_access = str(second.json(), "access_token");
  const std::string newest_refresh = str(second.json(), "refresh_token");
  ASSERT_EQ(verify(client_, newest_access).status, 200);

  std::this_thread::sleep_for(1200ms);  // past refresh_grace = 1s
  EXPECT_TRUE(is_problem(refresh(t.refresh_token), 401, "session_revoked", "refresh_token_reuse"));
  EXPECT_TRUE(
      is_problem(verify(client_, newest_access), 401, "session_revoked", "refresh_token_reuse"));
  EXPECT_TRUE(
      is_problem(verify(client_, t.access_token), 401, "session_revoked", "refresh_token_reuse"));
  EXPECT_TRUE(is_problem(refresh(newest_refresh), 401, "session_revoked", "refresh_token_reuse"));

  auto events = events_until(client_, server_, "type=refresh_reuse_detected",
                             [](const boost::json::array& a) { return !a.empty(); });
  ASSERT_EQ(events.status, 200) << events.body;
  ASSERT_EQ(events.json().as_array().size(), 1u) << events.body;
  EXPECT_EQ(str(events.json().as_array()[0], "session_id"), t.session_id);
}

TEST_P(Refresh, UnknownOrMalformedRefreshTokenAnswersTokenInvalid) {
  auto t = login(client_, kEmail, kPassword);
  std::string unknown = t.refresh_token;
  unknown[5] = unknown[5] == 'A' ? 'B' : 'A';
  EXPECT_TRUE(is_problem(refresh(unknown), 401, "token_invalid"));
  EXPECT_TRUE(is_problem(refresh("rt_" + std::string(43, 'x')), 401, "token_invalid"));
  EXPECT_TRUE(is_problem(refresh("garbage"), 401, "token_invalid"));
  EXPECT_TRUE(is_problem(refresh(t.access_token), 401, "token_invalid"));
  EXPECT_TRUE(is_problem(refresh(""), 401, "token_invalid"));
  // Not a string, or no token at all.
  EXPECT_TRUE(is_problem(
      client_.request("POST", "/api/v1/auth/refresh", json_content(), R"({"refresh_token":42})"),
      400, "invalid_request"));
  EXPECT_TRUE(is_problem(client_.request("POST", "/api/v1/auth/refresh", json_content(), "{}"), 400,
                         "invalid_request"));
  // None of that harmed the session.
  EXPECT_EQ(refresh(t.refresh_token).status, 200);
}

TEST(Jwks, Hs256ServesNoKeys) {
  SessiondProcess server;
  auto r = server.client().request("GET", "/.well-known/jwks.json");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(r.json().at("keys").as_array().empty());
}

TEST(Jwks, Es256ServesThePublicKeyAndSignsWithIt) {
  SessiondProcess server("[tokens]\nalgorithm = \"ES256\"\n");
  auto c = server.client();
  auto r = c.request("GET", "/.well-known/jwks.json");
  ASSERT_EQ(r.status, 200) << r.body;
  const json::value body = r.json();
  const auto& keys = body.at("keys").as_array();
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(str(keys[0], "kty"), "EC");
  EXPECT_EQ(str(keys[0], "alg"), "ES256");
  ASSERT_GT(create_user(server, {.email = "esther@example.com"}), 0);
  Tokens t = login(c, "esther@example.com", "correct horse battery");
  // The token's header names the algorithm and the key.
  const std::string header_b64 = t.access_token.substr(0, t.access_token.find('.'));
  auto header = parse_json(*base64url_decode(header_b64));
  EXPECT_EQ(str(header, "alg"), "ES256");
  EXPECT_EQ(str(header, "kid"), str(keys[0], "kid"));
  EXPECT_EQ(verify(c, t.access_token).status, 200);
  // An HS256 token signed with the public key's text is refused (no algorithm confusion).
  auto confused = JwtCodec::hs256(json::serialize(keys[0]), "sessiond", "sessiond");
  ASSERT_TRUE(confused);
  EXPECT_TRUE(
      is_problem(verify(c, confused->sign(claims_of(t.access_token))), 401, "token_invalid"));
}

}  // namespace
}  // namespace sessiond::http_test
