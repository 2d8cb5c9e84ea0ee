#include "http/api.hpp"

#include <spdlog/spdlog.h>

#include <boost/json/serialize.hpp>
#include <charconv>
#include <chrono>

#include "http/json_io.hpp"
#include "http/problem.hpp"

namespace sessiond::http {

namespace json = boost::json;
using boost::asio::awaitable;
using service::ClientInfo;
using service::Principal;

namespace {

constexpr std::string_view kAccessCookie = "sessiond_at";
constexpr std::string_view kRefreshCookie = "sessiond_rt";
constexpr std::string_view kCsrfCookie = "sessiond_csrf";

std::string_view cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    auto semi = header.find(';');
    std::string_view item = header.substr(0, semi);
    header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    auto eq = item.find('=');
    if (eq != std::string_view::npos && item.substr(0, eq) == name) return item.substr(eq + 1);
  }
  return {};
}

std::string_view bearer_token(std::string_view authorization) {
  if (authorization.size() > 7 &&
      (authorization.starts_with("Bearer ") || authorization.starts_with("bearer "))) {
    auto token = authorization.substr(7);
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    return token;
  }
  return {};
}

ClientInfo client_of(const Request& r) { return ClientInfo{r.client_ip, r.user_agent}; }

bool is_unsafe(Method m) {
  return m == Method::post || m == Method::patch || m == Method::del || m == Method::put;
}

std::optional<UserId> parse_user_id(std::string_view text) {
  UserId id = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc{} || p != text.data() + text.size() || id <= 0) return std::nullopt;
  return id;
}

// Unwraps a Result in a handler: on error, returns its problem response.
#define TRY_ASSIGN(var, expr)                                 \
  auto var##_result = (expr);                                 \
  if (!var##_result) co_return problem(var##_result.error()); \
  auto var = std::move(*var##_result)

#define TRY(expr)                                             \
  do {                                                        \
    auto try_result_ = (expr);                                \
    if (!try_result_) co_return problem(try_result_.error()); \
  } while (0)

}  // namespace

Api::Api(const Config& config, service::SessionService& service, Metrics& metrics)
    : config_(config), service_(service), metrics_(metrics) {
  add_routes();
  for (const auto* pattern : router_.patterns()) series_[pattern] = metrics_.route(*pattern);
  unmatched_ = metrics_.route("unmatched");
}

awaitable<Response> Api::handle(Request& request) {
  const auto start = std::chrono::steady_clock::now();
  auto match = router_.match(request);
  Metrics::Series* series = unmatched_;
  Response response;
  if (match.handler == nullptr) {
    response = match.allowed.empty()
                   ? problem(Error(Errc::not_found, "no such route"))
                   : problem(Error(Errc::method_not_allowed, "allowed: " + match.allowed));
    if (!match.allowed.empty()) response.set_header("Allow", match.allowed);
  } else {
    series = series_.at(match.pattern);
    bool failed = false;
    try {
      response = co_await (*match.handler)(request);
    } catch (const std::exception& e) {
      spdlog::error("{} {}: {}", method_name(request.method), *match.pattern, e.what());
      failed = true;
    }
    if (failed) response = problem(Error(Errc::internal, "internal error"));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Metrics::observe(series, response.status, seconds);
  co_return response;
}

void Api::add_routes() {
  using M = Method;
  auto& svc = service_;
  const Config& cfg = config_;

  // Authenticates a session caller by bearer token or cookie (cookie writes need the CSRF header).
  auto authenticate = [&svc](Request& req) -> awaitable<Result<Principal>> {
    std::string_view token = bearer_token(req.authorization);
    if (token.empty()) {
      token = cookie_value(req.cookie, kAccessCookie);
      if (token.empty()) {
        co_return Error(Errc::token_invalid, "an access token is required");
      }
      if (is_unsafe(req.method)) {
        auto expected = cookie_value(req.cookie, kCsrfCookie);
        if (expected.empty() || !constant_time_equal(expected, req.csrf_token)) {
          co_return Error(Errc::csrf, "X-CSRF-Token must equal the sessiond_csrf cookie");
        }
      }
    }
    co_return co_await svc.authenticate(token, client_of(req));
  };

  // Admin: the admin key, or a session whose role is in admin.roles.
  auto authenticate_admin = [&svc, authenticate](Request& req) -> awaitable<Result<void>> {
    auto token = bearer_token(req.authorization);
    if (!token.empty() && svc.is_admin_key(token)) co_return Result<void>{};
    if (token.empty() && cookie_value(req.cookie, kAccessCookie).empty()) {
      co_return Error(Errc::token_invalid, "the admin key or an admin session is required");
    }
    auto who = co_await authenticate(req);
    if (!who) co_return who.error();
    if (!svc.is_admin_role(who->session.role)) {
      co_return Error(Errc::forbidden, "this session's role may not call the admin API");
    }
    co_return Result<void>{};
  };

  auto cookie_attrs = [&cfg](std::string_view path, std::int64_t max_age, bool http_only) {
    std::string a =
        "; Path=" + std::string(path) + "; Max-Age=" + std::to_string(max_age) + "; SameSite=Lax";
    if (http_only) a += "; HttpOnly";
    if (cfg.server.secure_cookies) a += "; Secure";
    return a;
  };

  auto token_response = [&cfg, &svc, cookie_attrs](const service::TokenResponse& t,
                                                   bool use_cookies) {
    json::object body;
    if (!use_cookies) {
      body["access_token"] = t.access_token;
      body["refresh_token"] = t.refresh_token;
    }
    body["token_type"] = "bearer";
    body["expires_in"] = std::chrono::duration_cast<std::chrono::seconds>(t.expires_in).count();
    body["session_id"] = t.session.id.to_string();
    body["user"] = user_json(t.user, false);
    Response r = json_response(200, body);
    r.set_header("Cache-Control", "no-store");
    if (use_cookies) {
      const auto at_age = std::chrono::duration_cast<std::chrono::seconds>(t.expires_in).count();
      const auto rt_age = std::chrono::duration_cast<std::chrono::seconds>(
                              std::min(cfg.tokens.refresh_ttl,
                                       t.session.absolute_expires_at - t.session.last_activity))
                              .count();
      r.set_header("Set-Cookie", std::string(kAccessCookie) + "=" + t.access_token +
                                     cookie_attrs("/", at_age, true));
      r.set_header("Set-Cookie", std::string(kRefreshCookie) + "=" + t.refresh_token +
                                     cookie_attrs("/api/v1/auth", rt_age, true));
      r.set_header("Set-Cookie", std::string(kCsrfCookie) + "=" + svc.new_csrf_token() +
                                     cookie_attrs("/", rt_age, false));
    }
    return r;
  };

  auto clear_cookies = [cookie_attrs](Response& r) {
    r.set_header("Set-Cookie", std::string(kAccessCookie) + "=" + cookie_attrs("/", 0, true));
    r.set_header("Set-Cookie",
                 std::string(kRefreshCookie) + "=" + cookie_attrs("/api/v1/auth", 0, true));
    r.set_header("Set-Cookie", std::string(kCsrfCookie) + "=" + cookie_attrs("/", 0, false));
  };

  // ---- operations ----
  router_.add(M::get, "/healthz", [](Request&) -> awaitable<Response> {
    co_return json_response(200, json::object{{"status", "ok"}});
  });

  router_.add(M::get, "/readyz", [this, &svc](Request&) -> awaitable<Response> {
    if (draining_) co_return problem(Error(Errc::store_unavailable, "shutting down"));
    auto ready = co_await svc.ready();
    if (!ready) co_return problem(ready.error());
    json::object body{{"status", "ready"}};
    if (auto warnings = svc.store_warnings(); !warnings.empty()) {
      json::array list;
      for (auto& w : warnings) list.emplace_back(w);
      body["warnings"] = std::move(list);
    }
    co_return json_response(200, body);
  });

  router_.add(M::get, "/metrics", [this, &svc](Request&) -> awaitable<Response> {
    auto live = co_await svc.live_sessions();
    const auto& c = svc.counters();
    std::string extra;
    auto gauge = [&extra](const char* name, const char* help, const char* type, std::uint64_t v) {
      extra += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
               name + " " + std::to_string(v) + "\n";
    };
    gauge("sessiond_live_sessions", "Live sessions in the store.", "gauge", live ? *live : 0);
    gauge("sessiond_sign_ins_total", "Successful sign-ins.", "counter", c.sign_ins.load());
    gauge("sessiond_sign_in_failures_total", "Failed sign-ins.", "counter",
          c.sign_in_failures.load());
    gauge("sessiond_evictions_total", "Sessions ended by max_sessions.", "counter",
          c.evictions.load());
    gauge("sessiond_store_errors_total", "Store calls that failed.", "counter",
          c.store_errors.load());
    gauge("sessiond_database_errors_total", "Database calls that failed.", "counter",
          c.database_errors.load());
    gauge("sessiond_rate_limited_total", "Requests refused by a rate limit.", "counter",
          c.rate_limited.load());
    gauge("sessiond_otp_sent_total", "One-time codes handed to the sender.", "counter",
          c.otp_sent.load());
    gauge("sessiond_audit_backlog", "Database writes waiting to be retried.", "gauge",
          svc.pending_writes());
    extra += svc.store_metrics();
    Response r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = metrics_.render(extra);
    co_return r;
  });

  router_.add(M::get, "/.well-known/jwks.json", [&svc](Request&) -> awaitable<Response> {
    json::array keys;
    if (auto jwk = svc.public_jwk()) keys.push_back(std::move(*jwk));
    Response r = json_response(200, json::object{{"keys", std::move(keys)}});
    r.set_header("Cache-Control", "public, max-age=300");
    co_return r;
  });

  // ---- sign-in ----
  router_.add(
      M::post, "/api/v1/auth/login", [&svc, token_response](Request& req) -> awaitable<Response> {
        TRY_ASSIGN(body, parse_body(req));
        TRY(only_keys(body, {"email", "password", "use_cookies"}));
        TRY_ASSIGN(email, opt_string(body, "email", 254));
        TRY_ASSIGN(password, opt_string(body, "password", 1024));
        TRY_ASSIGN(use_cookies, opt_bool(body, "use_cookies"));
        if (!email || !password) {
          co_return problem(Error(Errc::invalid_request, "email and password are required"));
        }
        TRY_ASSIGN(tokens, co_await svc.login_password(std::move(*email), std::move(*password),
                                                       client_of(req)));
        co_return token_response(tokens, use_cookies.value_or(false));
      });

  router_.add(M::post, "/api/v1/auth/otp/send", [&svc](Request& req) -> awaitable<Response> {
    TRY_ASSIGN(body, parse_body(req));
    TRY(only_keys(body, {"mobile_number"}));
    TRY_ASSIGN(mobile, opt_string(body, "mobile_number", 32));
    if (!mobile) co_return problem(Error(Errc::invalid_request, "mobile_number is required"));
    TRY_ASSIGN(ttl, co_await svc.otp_send(std::move(*mobile), client_of(req)));
    Response r = json_response(
        202, json::object{
                 {"expires_in", std::chrono::duration_cast<std::chrono::seconds>(ttl).count()}});
    r.set_header("Cache-Control", "no-store");
    co_return r;
  });

  router_.add(
      M::post, "/api/v1/auth/otp/verify",
      [&svc, token_response](Request& req) -> awaitable<Response> {
        TRY_ASSIGN(body, parse_body(req));
        TRY(only_keys(body, {"mobile_number", "otp", "use_cookies"}));
        TRY_ASSIGN(mobile, opt_string(body, "mobile_number", 32));
        TRY_ASSIGN(code, opt_string(body, "otp", 32));
        TRY_ASSIGN(use_cookies, opt_bool(body, "use_cookies"));
        if (!mobile || !code) {
          co_return problem(Error(Errc::invalid_request, "mobile_number and otp are required"));
        }
        TRY_ASSIGN(tokens,
                   co_await svc.otp_verify(std::move(*mobile), std::move(*code), client_of(req)));
        co_return token_response(tokens, use_cookies.value_or(false));
      });

  router_.add(M::post, "/api/v1/auth/refresh",
              [&svc, token_response](Request& req) -> awaitable<Response> {
                TRY_ASSIGN(body, parse_body(req, true));
                TRY(only_keys(body, {"refresh_token", "use_cookies"}));
                // Any string that is not a refresh token is token_invalid (401), however long: the
                // service rejects it before hashing. max_body bounds the size.
                TRY_ASSIGN(token, opt_string(body, "refresh_token", SIZE_MAX));
                TRY_ASSIGN(use_cookies, opt_bool(body, "use_cookies"));
                bool cookies = use_cookies.value_or(false);
                if (!token) {
                  auto from_cookie = cookie_value(req.cookie, kRefreshCookie);
                  if (from_cookie.empty()) {
                    co_return problem(Error(Errc::invalid_request, "refresh_token is required"));
                  }
                  auto expected = cookie_value(req.cookie, kCsrfCookie);
                  if (expected.empty() || !constant_time_equal(expected, req.csrf_token)) {
                    co_return problem(
                        Error(Errc::csrf, "X-CSRF-Token must equal the sessiond_csrf cookie"));
                  }
                  token = std::string(from_cookie);
                  cookies = true;
                }
                TRY_ASSIGN(tokens, co_await svc.refresh(std::move(*token), client_of(req)));
                co_return token_response(tokens, cookies);
              });

  router_.add(M::post, "/api/v1/auth/logout",
              [&svc, authenticate, clear_cookies](Request& req) -> awaitable<Response> {
                TRY_ASSIGN(who, co_await authenticate(req));
                TRY(co_await svc.logout(who, client_of(req)));
                Response r = no_content();
                if (!req.cookie.empty()) clear_cookies(r);
                co_return r;
              });

  router_.add(M::get, "/api/v1/auth/verify", [authenticate](Request& req) -> awaitable<Response> {
    TRY_ASSIGN(who, co_await authenticate(req));
    const Session& s = who.session;
    json::object body;
    body["session_id"] = s.id.to_string();
    body["user_id"] = s.user_id;
    body["role"] = s.role;
    body["expires_at"] = format_rfc3339(s.expires_at());
    Response r = json_response(200, body);
    r.set_header("X-Session-Id", s.id.to_string());
    r.set_header("X-User-Id", std::to_string(s.user_id));
    r.set_header("X-User-Role", s.role);
    r.set_header("Cache-Control", "no-store");
    co_return r;
  });

  // ---- the user's own sessions ----
  router_.add(M::get, "/api/v1/me", [&svc, authenticate](Request& req) -> awaitable<Response> {
    TRY_ASSIGN(who, co_await authenticate(req));
    TRY_ASSIGN(user, co_await svc.get_user(who.session.user_id));
    json::object body;
    body["user"] = user_json(user, false);
    body["session"] = session_json(who.session, true);
    co_return json_response(200, body);
  });

  router_.add(M::get, "/api/v1/sessions",
              [&svc, authenticate](Request& req) -> awaitable<Response> {
                TRY_ASSIGN(who, co_await authenticate(req));
                TRY_ASSIGN(list, co_await svc.list_sessions(who.session.user_id));
                json::array out;
                for (const auto& s : list) out.push_back(session_json(s, s.id == who.session.id));
                co_return json_response(200, out);
              });

  router_.add(M::del, "/api/v1/sessions/{session_id}",
              [&svc, authenticate](Request& req) -> awaitable<Response> {
                TRY_ASSIGN(who, co_await authenticate(req));
                auto id = SessionId::parse(req.params["session_id"]);
                if (!id) co_return problem(Error(Errc::not_found, "no such live session"));
                const EndReason reason =
                    *id == who.session.id ? EndReason::logout : EndReason::revoked_by_user;
                TRY(co_await svc.revoke_session(who.session.user_id, *id, reason, client_of(req)));
                co_return no_content();
              });

  router_.add(M::del, "/api/v1/sessions",
              [&svc, authenticate](Request& req) -> awaitable<Response> {
                TRY_ASSIGN(who, co_await authenticate(req));
                TRY_ASSIGN(n, co_await svc.revoke_all(who.session.user_id, who.session.id,
                                                      EndReason::revoked_others, client_of(req)));
                co_return json_response(200, json::object{{"revoked", n}});
              });

  router_.add(
      M::post, "/api/v1/me/password", [&svc, authenticate](Request& req) -> awaitable<Response> {
        TRY_ASSIGN(who, co_await authenticate(req));
        TRY_ASSIGN(body, parse_body(req));
        TRY(only_keys(body, {"current_password", "new_password"}));
        TRY_ASSIGN(current, opt_string(body, "current_password", 1024));
        TRY_ASSIGN(next, opt_string(body, "new_password", 1024));
        if (!current || !next) {
          co_return problem(
              Error(Errc::invalid_request, "current_password and new_password are required"));
        }
        TRY(co_await svc.change_password(who, std::move(*current), std::move(*next),
                                         client_of(req)));
        co_return no_content();
      });

  // ---- admin ----
  router_.add(M::post, "/admin/v1/users",
              [&svc, authenticate_admin](Request& req) -> awaitable<Response> {
                TRY(co_await authenticate_admin(req));
                TRY_ASSIGN(body, parse_body(req));
                TRY(only_keys(body, {"email", "mobile_number", "password", "role", "attributes"}));
                service::CreateUserRequest r;
                TRY_ASSIGN(email, opt_string(body, "email", 254));
                TRY_ASSIGN(mobile, opt_string(body, "mobile_number", 32));
                TRY_ASSIGN(password, opt_string(body, "password", 1024));
                TRY_ASSIGN(role, opt_string(body, "role", 64));
                TRY_ASSIGN(attributes, opt_object(body, "attributes"));
                if (!role) co_return problem(Error(Errc::invalid_request, "role is required"));
                r.email = std::move(email);
                r.mobile_number = std::move(mobile);
                r.password = std::move(password);
                r.role = std::move(*role);
                if (attributes) r.attributes = std::move(*attributes);
                TRY_ASSIGN(user, co_await svc.create_user(std::move(r), client_of(req)));
                co_return json_response(201, user_json(user, true));
              });

  router_.add(M::get, "/admin/v1/users/{id}",
              [&svc, authenticate_admin](Request& req) -> awaitable<Response> {
                TRY(co_await authenticate_admin(req));
                auto id = parse_user_id(req.params["id"]);
                if (!id) co_return problem(Error(Errc::not_found, "no such user"));
                TRY_ASSIGN(user, co_await svc.get_user(*id));
                co_return json_response(200, user_json(user, true));
              });

  router_.add(M::patch, "/admin/v1/users/{id}",
              [&svc, authenticate_admin](Request& req) -> awaitable<Response> {
                TRY(co_await authenticate_admin(req));
                auto id = parse_user_id(req.params["id"]);
                if (!id) co_return problem(Error(Errc::not_found, "no such user"));
                TRY_ASSIGN(body, parse_body(req));
                TRY(only_keys(body, {"role", "disabled", "password", "attributes"}));
                service::UpdateUserRequest r;
                TRY_ASSIGN(role, opt_string(body, "role", 64));
                TRY_ASSIGN(disabled, opt_bool(body, "disabled"));
                TRY_ASSIGN(password, opt_string(body, "password", 1024));
                TRY_ASSIGN(attributes, opt_object(body, "attributes"));
                r.role = std::move(role);
                r.disabled = disabled;
                r.password = std::move(password);
                r.attributes = std::move(attributes);
                TRY_ASSIGN(user, co_await svc.update_user(*id, std::move(r), client_of(req)));
                co_return json_response(200, user_json(user, true));
              });

  router_.add(
      M::post, "/admin/v1/sessions",
      [&svc, authenticate_admin, token_response](Request& req) -> awaitable<Response> {
        TRY(co_await authenticate_admin(req));
        TRY_ASSIGN(body, parse_body(req));
        TRY(only_keys(body, {"user_id", "attributes", "device_info", "ip_address", "user_agent"}));
        service::AdminSessionRequest r;
        TRY_ASSIGN(user_id, opt_int(body, "user_id"));
        TRY_ASSIGN(attributes, opt_object(body, "attributes"));
        TRY_ASSIGN(device, opt_string(body, "device_info", 128));
        TRY_ASSIGN(ip, opt_string(body, "ip_address", 45));
        TRY_ASSIGN(agent, opt_string(body, "user_agent", 512));
        if (!user_id) co_return problem(Error(Errc::invalid_request, "user_id is required"));
        r.user_id = *user_id;
        if (attributes) r.attributes = std::move(*attributes);
        r.device_info = std::move(device);
        r.ip_address = std::move(ip);
        r.user_agent = std::move(agent);
        TRY_ASSIGN(tokens, co_await svc.create_session_for(std::move(r), client_of(req)));
        Response resp = token_response(tokens, false);
        resp.status = 201;
        co_return resp;
      });

  router_.add(M::get, "/admin/v1/users/{id}/sessions",
              [&svc, authenticate_admin](Request& req) -> awaitable<Response> {
                TRY(co_await authenticate_admin(req));
                auto id = parse_user_id(req.params["id"]);
                if (!id) co_return problem(Error(Errc::not_found, "no such user"));
                TRY_ASSIGN(list, co_await svc.list_sessions(*id));
                if (list.empty()) {
                  // Only an empty answer asks the database, so listing works while it is down.
                  auto user = co_await svc.get_user(*id);
                  if (!user && user.error().code == Errc::not_found)
                    co_return problem(user.error());
                }
                json::array out;
                for (const auto& s : list) out.push_back(session_json(s, false));
                co_return json_response(200, out);
              });

  router_.add(M::del, "/admin/v1/users/{id}/sessions",
              [&svc, authenticate_admin](Request& req) -> awaitable<Response> {
                TRY(co_await authenticate_admin(req));
                auto id = parse_user_id(req.params["id"]);
                if (!id) co_return problem(Error(Errc::not_found, "no such user"));
                TRY_ASSIGN(n, co_await svc.revoke_all(*id, std::nullopt,
                                                      EndReason::revoked_by_admin, client_of(req)));
                if (n == 0) {
                  auto user = co_await svc.get_user(*id);
                  if (!user && user.error().code == Errc::not_found)
                    co_return problem(user.error());
                }
                co_return json_response(200, json::object{{"revoked", n}});
              });

  router_.add(M::del, "/admin/v1/sessions/{session_id}",
              [&svc, authenticate_admin](Request& req) -> awaitable<Response> {
                TRY(co_await authenticate_admin(req));
                auto id = SessionId::parse(req.params["session_id"]);
                if (!id) co_return problem(Error(Errc::not_found, "no such live session"));
                TRY(co_await svc.revoke_session_by_id(*id, client_of(req)));
                co_return no_content();
              });

  router_.add(
      M::get, "/admin/v1/events", [&svc, authenticate_admin](Request& req) -> awaitable<Response> {
        TRY(co_await authenticate_admin(req));
        TRY_ASSIGN(query, parse_query(req.query));
        db::EventFilter filter;
        for (const auto& [key, value] : query) {
          if (key == "user_id") {
            filter.user_id = parse_user_id(value);
            if (!filter.user_id)
              co_return problem(Error(Errc::invalid_request, "user_id must be a positive integer"));
          } else if (key == "session_id") {
            filter.session_id = SessionId::parse(value);
            if (!filter.session_id)
              co_return problem(Error(Errc::invalid_request, "session_id must be a UUID"));
          } else if (key == "type") {
            filter.type = value;
          } else if (key == "since") {
            filter.since = parse_rfc3339(value);
            if (!filter.since)
              co_return problem(Error(Errc::invalid_request, "since must be an RFC 3339 time"));
          } else if (key == "limit") {
            int limit = 0;
            auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), limit);
            if (ec != std::errc{} || p != value.data() + value.size() || limit < 1 ||
                limit > 1000) {
              co_return problem(Error(Errc::invalid_request, "limit must be between 1 and 1000"));
            }
            filter.limit = limit;
          } else {
            co_return problem(Error(Errc::invalid_request, "unknown query parameter " + key));
          }
        }
        TRY_ASSIGN(events, co_await svc.events(std::move(filter)));
        json::array out;
        for (const auto& e : events) out.push_back(event_json(e));
        co_return json_response(200, out);
      });

  router_.add(M::get, "/admin/v1/stats",
              [&svc, authenticate_admin](Request& req) -> awaitable<Response> {
                TRY(co_await authenticate_admin(req));
                TRY_ASSIGN(stats, co_await svc.stats());
                json::object by_role, by_device;
                std::int64_t live = 0;
                for (const auto& [k, v] : stats.live_by_role) {
                  by_role[k] = v;
                  live += v;
                }
                for (const auto& [k, v] : stats.live_by_device) by_device[k] = v;
                json::object body;
                body["live_sessions"] = live;
                body["live_by_role"] = std::move(by_role);
                body["live_by_device"] = std::move(by_device);
                body["sign_ins"] = json::object{{"last_hour", stats.sign_ins_last_hour},
                                                {"last_day", stats.sign_ins_last_day}};
                body["failures"] = json::object{{"last_hour", stats.failures_last_hour},
                                                {"last_day", stats.failures_last_day}};
                co_return json_response(200, body);
              });
}

}  // namespace sessiond::http
