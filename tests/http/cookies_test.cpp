// Browser sign-in with cookies (SPEC §5): the cookie attributes, cookie authentication and the
// CSRF check on unsafe methods.
#include <algorithm>
#include <boost/json/value.hpp>
#include <cctype>

#include "http/harness.hpp"

namespace sessiond::http_test {
namespace {

namespace json = boost::json;

constexpr std::string_view kEmail = "judy@example.com";
constexpr std::string_view kPassword = "correct horse battery";

// One Set-Cookie value taken apart: "name=value; Path=/; HttpOnly".
struct SetCookie {
  std::string name;
  std::string value;
  std::vector<std::string> attributes;  // lower-cased, spaces trimmed

  bool has(std::string_view attribute) const {
    return std::find(attributes.begin(), attributes.end(), attribute) != attributes.end();
  }
};

SetCookie parse_set_cookie(std::string_view header) {
  SetCookie c;
  bool first = true;
  while (!header.empty()) {
    auto semi = header.find(';');
    std::string_view item = header.substr(0, semi);
    header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (first) {
      auto eq = item.find('=');
      c.name = std::string(item.substr(0, eq));
      c.value = eq == std::string_view::npos ? std::string() : std::string(item.substr(eq + 1));
      first = false;
      continue;
    }
    std::string lower(item);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    c.attributes.push_back(lower);
  }
  return c;
}

struct CookieJar {
  std::string access, refresh, csrf;

  // The Cookie header a browser would send to `path`.
  std::string header_for(std::string_view path) const {
    std::string h = "sessiond_at=" + access + "; sessiond_csrf=" + csrf;
    if (path.starts_with("/api/v1/auth")) h += "; sessiond_rt=" + refresh;
    return h;
  }
};

CookieJar jar_of(const HttpResponse& r) {
  return {parse_set_cookie(r.set_cookie("sessiond_at")).value,
          parse_set_cookie(r.set_cookie("sessiond_rt")).value,
          parse_set_cookie(r.set_cookie("sessiond_csrf")).value};
}

HttpResponse cookie_login(HttpClient& c) {
  return post_json(c, "/api/v1/auth/login",
                   json::object{{"email", kEmail}, {"password", kPassword}, {"use_cookies", true}});
}

class CookieTest : public ::testing::Test {
 protected:
  explicit CookieTest(Store store, std::string extra_toml = {})
      : server_(store, std::move(extra_toml)) {}
  void SetUp() override {
    ASSERT_GT(
        create_user(server_, {.email = std::string(kEmail), .password = std::string(kPassword)}),
        0);
  }

  HttpResponse get(std::string_view target, const CookieJar& jar) {
    return client_.request("GET", target, {{"Cookie", jar.header_for(target)}});
  }

  SessiondProcess server_;
  HttpClient client_ = server_.client();
};

// What the cookies look like: the HTTP layer's, the same on every store.
class CookieAttributes : public CookieTest {
 protected:
  explicit CookieAttributes(std::string extra_toml = {})
      : CookieTest(Store::memory, std::move(extra_toml)) {}
};

// Sessions used, ended and rotated by cookie: on each store.
class Cookies : public CookieTest, public ::testing::WithParamInterface<Store> {
 protected:
  Cookies() : CookieTest(GetParam()) {}
};
INSTANTIATE_TEST_SUITE_P(Stores, Cookies, ::testing::ValuesIn(kEachStore), store_param_name);

TEST_F(CookieAttributes, SignInSetsSecureHttpOnlyCookiesAndNoTokensInTheBody) {
  auto r = cookie_login(client_);
  ASSERT_EQ(r.status, 200) << r.body;
  auto body = r.json();
  EXPECT_FALSE(body.as_object().contains("access_token")) << r.body;
  EXPECT_FALSE(body.as_object().contains("refresh_token")) << r.body;
  EXPECT_EQ(str(body, "token_type"), "bearer");
  EXPECT_EQ(str(body, "session_id").size(), 36u);
  EXPECT_EQ(str(body.at("user"), "email"), kEmail);

  auto at = parse_set_cookie(r.set_cookie("sessiond_at"));
  auto rt = parse_set_cookie(r.set_cookie("sessiond_rt"));
  auto csrf = parse_set_cookie(r.set_cookie("sessiond_csrf"));
  ASSERT_FALSE(at.value.empty()) << "no sessiond_at cookie";
  ASSERT_FALSE(rt.value.empty()) << "no sessiond_rt cookie";
  ASSERT_FALSE(csrf.value.empty()) << "no sessiond_csrf cookie";
  EXPECT_EQ(std::count(at.value.begin(), at.value.end(), '.'), 2) << "a JWT";
  EXPECT_TRUE(rt.value.starts_with("rt_"));
  EXPECT_GE(csrf.value.size(), 16u);

  EXPECT_TRUE(at.has("path=/"));
  EXPECT_TRUE(at.has("httponly"));
  EXPECT_TRUE(rt.has("path=/api/v1/auth"));
  EXPECT_TRUE(rt.has("httponly"));
  EXPECT_TRUE(csrf.has("path=/"));
  EXPECT_FALSE(csrf.has("httponly")) << "the page reads the CSRF cookie";
  for (const auto* c : {&at, &rt, &csrf}) {
    EXPECT_TRUE(c->has("samesite=lax")) << c->name;
    EXPECT_TRUE(c->has("secure")) << c->name;
  }
}

class InsecureCookies : public CookieAttributes {
 protected:
  InsecureCookies() : CookieAttributes("[server]\nsecure_cookies = false\n") {}
};

TEST_F(InsecureCookies, NoSecureAttributeWhenSecureCookiesIsFalse) {
  auto r = cookie_login(client_);
  ASSERT_EQ(r.status, 200) << r.body;
  for (auto name : {"sessiond_at", "sessiond_rt", "sessiond_csrf"}) {
    auto c = parse_set_cookie(r.set_cookie(name));
    ASSERT_FALSE(c.value.empty()) << name;
    EXPECT_FALSE(c.has("secure")) << name;
    EXPECT_TRUE(c.has("samesite=lax")) << name;
  }
}

TEST_P(Cookies, CookieAuthenticatesSafeRequests) {
  auto jar = jar_of(cookie_login(client_));
  auto verified = get("/api/v1/auth/verify", jar);
  ASSERT_EQ(verified.status, 200) << verified.body;
  EXPECT_FALSE(verified.header("X-Session-Id").empty());
  auto me = get("/api/v1/me", jar);
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(str(me.json().at("user"), "email"), kEmail);
  EXPECT_EQ(get("/api/v1/sessions", jar).status, 200);
  // A GET needs no CSRF header, but a forged access cookie is still refused.
  CookieJar forged = jar;
  forged.access = "forged";
  EXPECT_TRUE(is_problem(get("/api/v1/me", forged), 401, "token_invalid"));
}

TEST_P(Cookies, UnsafeMethodsNeedTheCsrfHeader) {
  auto jar = jar_of(cookie_login(client_));
  auto other = login(client_, kEmail, kPassword);
  const std::string target = "/api/v1/sessions/" + other.session_id;

  auto without = client_.request("DELETE", target, {{"Cookie", jar.header_for(target)}});
  EXPECT_TRUE(is_problem(without, 403, "csrf"));
  auto wrong = client_.request(
      "DELETE", target, {{"Cookie", jar.header_for(target)}, {"X-CSRF-Token", "not-the-cookie"}});
  EXPECT_TRUE(is_problem(wrong, 403, "csrf"));
  auto logout = client_.request("POST", "/api/v1/auth/logout", {{"Cookie", jar.header_for("/")}});
  EXPECT_TRUE(is_problem(logout, 403, "csrf"));
  EXPECT_EQ(verify(client_, other.access_token).status, 200)
      << "nothing happened without the header";

  auto with = client_.request("DELETE", target,
                              {{"Cookie", jar.header_for(target)}, {"X-CSRF-Token", jar.csrf}});
  EXPECT_EQ(with.status, 204) << with.body;
  EXPECT_TRUE(
      is_problem(verify(client_, other.access_token), 401, "session_revoked", "revoked_by_user"));

  // Logging out by cookie ends the session and clears the cookies.
  auto out = client_.request("POST", "/api/v1/auth/logout",
                             {{"Cookie", jar.header_for("/")}, {"X-CSRF-Token", jar.csrf}});
  EXPECT_EQ(out.status, 204) << out.body;
  EXPECT_TRUE(parse_set_cookie(out.set_cookie("sessiond_at")).has("max-age=0"));
  EXPECT_TRUE(is_problem(get("/api/v1/me", jar), 401, "session_revoked", "logout"));
}

TEST_P(Cookies, RefreshByCookieRotatesTheCookies) {
  auto jar = jar_of(cookie_login(client_));
  const std::string target = "/api/v1/auth/refresh";
  auto r = client_.request("POST", target,
                           {{"Cookie", jar.header_for(target)}, {"X-CSRF-Token", jar.csrf}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_FALSE(r.json().as_object().contains("refresh_token")) << r.body;
  EXPECT_FALSE(r.json().as_object().contains("access_token")) << r.body;
  auto next = jar_of(r);
  ASSERT_FALSE(next.refresh.empty());
  ASSERT_FALSE(next.access.empty());
  EXPECT_NE(next.refresh, jar.refresh);
  EXPECT_NE(next.access, jar.access);
  EXPECT_EQ(get("/api/v1/me", next).status, 200);
  // The new refresh cookie works in turn.
  auto again = client_.request("POST", target,
                               {{"Cookie", next.header_for(target)}, {"X-CSRF-Token", next.csrf}});
  EXPECT_EQ(again.status, 200) << again.body;
}

}  // namespace
}  // namespace sessiond::http_test
