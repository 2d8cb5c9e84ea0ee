// HTTP-level limits and hygiene (SPEC §5, §8): body and header limits, 404/405, malformed requests,
// idle connections, problem bodies, X-Forwarded-For, and the operations endpoints.
#include <boost/json/value.hpp>

#include "http/harness.hpp"

namespace sessiond::http_test {
namespace {

namespace json = boost::json;

constexpr std::string_view kPassword = "correct horse battery";

TEST(Protocol, BodyOverMaxBodyAnswers413) {
  SessiondProcess server("[server]\nmax_body = \"1KiB\"\n");
  ASSERT_GT(create_user(server, {.email = "xena@example.com"}), 0);
  auto c = server.client();
  // Just under the limit works.
  std::string fits = R"({"email":"xena@example.com","password":"correct horse battery"})";
  fits.insert(fits.size() - 1, std::string(1024 - fits.size(), ' '));
  ASSERT_EQ(fits.size(), 1024u);
  EXPECT_EQ(c.request("POST", "/api/v1/auth/login", json_content(), fits).status, 200);

  std::string over = fits;
  over.insert(over.size() - 1, " ");
  auto r = server.client().request("POST", "/api/v1/auth/login", json_content(), over);
  EXPECT_TRUE(is_problem(r, 413, "payload_too_large"));
  auto big = server.client().request("POST", "/api/v1/auth/login", json_content(),
                                     std::string(64 * 1024, 'x'));
  EXPECT_TRUE(is_problem(big, 413, "payload_too_large"));

  // A chunked body is held to the same limit.
  std::string chunked =
      "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) chunked += "200\r\n" + std::string(512, ' ') + "\r\n";
  chunked += "0\r\n\r\n";
  auto chunked_answer = server.client().send_raw(chunked);
  ASSERT_TRUE(chunked_answer.has_value()) << "closed without an answer";
  EXPECT_TRUE(is_problem(*chunked_answer, 413, "payload_too_large"));
  EXPECT_EQ(server.client().request("GET", "/healthz").status, 200);
}

TEST(Protocol, HeadersOver16KiBAnswer431) {
  SessiondProcess server;
  auto c = server.client();
  // 12 KiB of headers are fine.
  EXPECT_EQ(c.request("GET", "/healthz", {{"X-Filler", std::string(12 * 1024, 'a')}}).status, 200);
  auto r = server.client().request("GET", "/healthz", {{"X-Filler", std::string(17 * 1024, 'a')}});
  EXPECT_EQ(r.status, 431) << r.body;
  EXPECT_TRUE(r.header("Content-Type").starts_with("application/problem+json"));
  EXPECT_EQ(r.json().at("status").as_int64(), 431);
  // Many small headers count too.
  Headers many;
  for (int i = 0; i < 400; ++i)
    many.emplace_back("X-Header-" + std::to_string(i), std::string(60, 'b'));
  EXPECT_EQ(server.client().request("GET", "/healthz", many).status, 431);
  EXPECT_EQ(server.client().request("GET", "/healthz").status, 200);
}

TEST(Protocol, UnknownRouteAnswers404Problem) {
  SessiondProcess server;
  auto c = server.client();
  for (auto target : {"/nope", "/api/v1", "/api/v1/sessions/a/b", "/admin/v1/users/1/x",
                      "/api/v2/me", "/%zz%00", "/api/v1/../../etc/passwd"}) {
    EXPECT_TRUE(is_problem(c.request("GET", target), 404, "not_found")) << target;
  }
}

TEST(Protocol, WrongMethodAnswers405WithAllow) {
  SessiondProcess server;
  auto c = server.client();
  auto r = c.request("GET", "/api/v1/auth/login");
  EXPECT_TRUE(is_problem(r, 405, "method_not_allowed"));
  EXPECT_EQ(r.header("Allow"), "POST");
  auto sessions = c.request("PUT", "/api/v1/sessions");
  EXPECT_TRUE(is_problem(sessions, 405, "method_not_allowed"));
  EXPECT_NE(sessions.header("Allow").find("GET"), std::string::npos) << sessions.header("Allow");
  EXPECT_NE(sessions.header("Allow").find("DELETE"), std::string::npos) << sessions.header("Allow");
  EXPECT_EQ(c.request("BREW", "/healthz").status, 405);
  EXPECT_EQ(c.request("POST", "/healthz").header("Allow"), "GET");
}

TEST(Protocol, ProblemBodiesHaveTheDocumentedFields) {
  SessiondProcess server;
  auto c = server.client();
  auto r = c.request("GET", "/api/v1/me");
  ASSERT_TRUE(is_problem(r, 401, "token_invalid"));
  auto body = r.json();
  EXPECT_FALSE(str(body, "type").empty());
  EXPECT_FALSE(str(body, "title").empty());
  EXPECT_FALSE(str(body, "detail").empty());
  EXPECT_EQ(body.at("status").as_int64(), 401);
  // Details never echo what the client sent.
  auto echoed = c.request("GET", "/api/v1/me", bearer("secret-looking-token-value"));
  EXPECT_EQ(echoed.body.find("secret-looking-token-value"), std::string::npos) << echoed.body;
}

TEST(Protocol, MalformedRequestsNeverCrashTheServer) {
  SessiondProcess server;
  ASSERT_GT(create_user(server, {.email = "yuri@example.com"}), 0);
  const std::vector<std::string> requests = {
      "GARBAGE\r\n\r\n",
      "\r\n\r\n",
      std::string("\x00\x01\x02\x03\xff\r\n\r\n", 8),
      "GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
      "GET /healthz\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
      "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: "
      "99999999999999999999999\r\n\r\n",
      "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: "
      "6\r\n\r\nhello!",
      "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
      "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
      "chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nBad Header Without Colon\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: x\r\n folded: header\r\n\r\n",
      "GET /healthz HTTP/1.1\nHost: x\n\n",
      "GET  /healthz  HTTP/1.1\r\nHost: x\r\n\r\n",
      std::string(8000, 'A') + " /healthz HTTP/1.1\r\n\r\n",
      "GET /" + std::string(20000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET http://example.com/healthz HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /api/v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + std::string(10000, '.') +
          "\r\n\r\n",
      "GET /api/v1/me HTTP/1.1\r\nHost: x\r\nCookie: ;;;=;sessiond_at=;sessiond_at\r\n\r\n",
      "GET /admin/v1/events?limit=%ff%fe&&&==& HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
      "x\r\n\r\n",
      "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: "
      "2\r\n\r\n{}",
  };
  for (const auto& raw : requests) {
    auto c = server.client(5s);
    auto answer = c.send_raw(raw);
    if (answer) {
      EXPECT_LT(answer->status, 500)
          << "request: " << raw.substr(0, 60) << "\nanswer: " << answer->body;
      EXPECT_GE(answer->status, 200);
    }
    ASSERT_TRUE(accepts_connections(server.port())) << "after: " << raw.substr(0, 60);
  }
  // Bodies that are valid HTTP but hostile JSON, on every JSON route.
  const std::vector<std::string> bodies = {std::string(60000, '['),
                                           std::string(60000, '{'),
                                           "{\"a\":" + std::string(5000, '[') + "}",
                                           "\"\\ud800\"",
                                           R"({"email":"\u0000@x","password":"\u0000"})",
                                           "1e999999",
                                           "{\"email\":1e400}"};
  auto c = server.client();
  for (auto target : {"/api/v1/auth/login", "/api/v1/auth/refresh", "/admin/v1/users"}) {
    for (const auto& body : bodies) {
      auto r = c.request(
          "POST", target,
          {{"Content-Type", "application/json"}, {"Authorization", server.admin_auth()}}, body);
      EXPECT_GE(r.status, 400) << target << " " << body.substr(0, 30);
      EXPECT_LT(r.status, 500) << target << " " << body.substr(0, 30) << ": " << r.body;
    }
  }
  EXPECT_EQ(server.client().request("GET", "/healthz").status, 200);
  EXPECT_FALSE(server.wait_for_exit(0ms).has_value()) << "sessiond exited";
}

TEST(Protocol, KeepAliveConnectionServesManyRequests) {
  SessiondProcess server;
  auto c = server.client();
  ASSERT_EQ(c.request("GET", "/healthz").status, 200);
  const auto port = c.local_port();
  for (int i = 0; i < 20; ++i) ASSERT_EQ(c.request("GET", "/healthz").status, 200);
  EXPECT_EQ(c.local_port(), port) << "the connection was not kept alive";
  // HTTP/1.0 and Connection: close end it.
  auto closing = c.request("GET", "/healthz", {{"Connection", "close"}});
  EXPECT_EQ(closing.status, 200);
  EXPECT_FALSE(c.connected());
}

TEST(Protocol, IdleKeepAliveConnectionIsClosedByTheServer) {
  SessiondProcess server("[server]\nidle_timeout = \"1s\"\n");
  auto c = server.client();
  ASSERT_EQ(c.request("GET", "/healthz").status, 200);
  ASSERT_TRUE(c.connected());
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.closed_by_server_within(5s));
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, 800ms) << "closed before the idle timeout";
  EXPECT_LT(elapsed, 3s);

  // A connection that never sends a byte is closed as well.
  auto silent = server.client();
  ASSERT_TRUE(silent.connect());
  EXPECT_TRUE(silent.closed_by_server_within(5s));
  EXPECT_EQ(server.client().request("GET", "/healthz").status, 200);
}

TEST(Protocol, SlowPartialRequestIsClosedAfterTheRequestTimeout) {
  SessiondProcess server("[server]\nidle_timeout = \"1s\"\nrequest_timeout = \"1s\"\n");
  auto c = server.client();
  // Headers complete, the body never: the server must not wait forever.
  ASSERT_TRUE(
      c.write_raw("POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"));
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.closed_by_server_within(5s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
}

TEST(Protocol, ForwardedForIsBelievedFromATrustedProxy) {
  SessiondProcess server;  // trusted_proxies defaults to 127.0.0.1/32
  ASSERT_GT(create_user(server, {.email = "zoe@example.com"}), 0);
  auto c = server.client();
  auto t = login(c, "zoe@example.com", kPassword, {{"X-Forwarded-For", "203.0.113.7"}});
  auto me = c.request("GET", "/api/v1/me",
                      {{"Authorization", "Bearer " + t.access_token},
                       {"X-Forwarded-For", "198.51.100.1, 203.0.113.9"}});
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(str(me.json().at("session"), "ip_address"), "203.0.113.7");
  // The right-most untrusted address of a chain is the client's.
  EXPECT_EQ(str(me.json().at("session"), "last_ip"), "203.0.113.9");
  // A broken header is not believed.
  auto broken = login(c, "zoe@example.com", kPassword, {{"X-Forwarded-For", "not-an-address"}});
  auto list = c.request("GET", "/api/v1/sessions", bearer(broken.access_token)).json();
  for (const auto& s : list.as_array()) {
    if (str(s, "session_id") == broken.session_id) {
      EXPECT_EQ(str(s, "ip_address"), "127.0.0.1");
    }
  }
}

TEST(Protocol, ForwardedForIsIgnoredWithoutTrustedProxies) {
  SessiondProcess server("[server]\ntrusted_proxies = []\n");
  ASSERT_GT(create_user(server, {.email = "zoe@example.com"}), 0);
  auto c = server.client();
  auto t = login(c, "zoe@example.com", kPassword, {{"X-Forwarded-For", "203.0.113.7"}});
  auto me = c.request(
      "GET", "/api/v1/me",
      {{"Authorization", "Bearer " + t.access_token}, {"X-Forwarded-For", "203.0.113.9"}});
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(str(me.json().at("session"), "ip_address"), "127.0.0.1");
  EXPECT_EQ(str(me.json().at("session"), "last_ip"), "127.0.0.1");
}

TEST(Operations, HealthReadinessAndMetrics) {
  SessiondProcess server;
  auto c = server.client();
  auto health = c.request("GET", "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_TRUE(health.header("Content-Type").starts_with("application/json"));
  auto ready = c.request("GET", "/readyz");
  EXPECT_EQ(ready.status, 200) << ready.body;
  ASSERT_EQ(c.request("GET", "/nope").status, 404);

  auto metrics = c.request("GET", "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_TRUE(metrics.header("Content-Type").starts_with("text/plain"))
      << metrics.header("Content-Type");
  const std::string& text = metrics.body;
  EXPECT_NE(text.find("# TYPE sessiond_http_requests_total counter"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(sessiond_http_requests_total{route="/healthz",status="200"} 1)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(sessiond_http_requests_total{route="unmatched",status="404"} 1)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE sessiond_http_request_duration_seconds histogram"),
            std::string::npos);
  EXPECT_NE(text.find("sessiond_live_sessions "), std::string::npos);
  // Every non-comment line is "name{labels} value" or "name value".
  std::size_t begin = 0;
  while (begin < text.size()) {
    auto end = text.find('\n', begin);
    ASSERT_NE(end, std::string::npos) << "the last line must end with a newline";
    std::string line = text.substr(begin, end - begin);
    begin = end + 1;
    if (line.empty() || line.starts_with("#")) continue;
    auto space = line.rfind(' ');
    ASSERT_NE(space, std::string::npos) << line;
    EXPECT_TRUE(line.starts_with("sessiond_")) << line;
    EXPECT_NO_THROW((void)std::stod(line.substr(space + 1))) << line;
  }
}

}  // namespace
}  // namespace sessiond::http_test
