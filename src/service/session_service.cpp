#include "service/session_service.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cctype>
#include <iterator>

#include "core/device.hpp"
#include "core/password.hpp"
#include "service/changes.hpp"
#include "service/webhooks.hpp"

namespace sessiond::service {

namespace json = boost::json;
using boost::asio::awaitable;

namespace {

constexpr std::size_t kMaxUserAgent = 512;
constexpr std::size_t kMaxPendingBatches = 100'000;
constexpr std::size_t kOutboxBatch = 500;  // entries per database transaction

// A change made in the store whose database write failed: it is in effect and queued for retry,
// but not acknowledged as durable.
const Error kNotDurable(Errc::database_unavailable,
                        "the change is in effect but could not be saved yet; it will be retried");

// The access token's jti is derived from the refresh token issued with it, so a rotation answered
// again within the grace window yields the very same pair.
std::string derive_jti(std::string_view refresh_token) {
  std::string input = "jti:";
  input.append(refresh_token);
  auto h = sha256(input);
  return base64url_encode(std::span<const std::uint8_t>(h.data(), 12));
}

json::object parse_object(const std::string& text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object()) return {};
  return std::move(v.as_object());
}

}  // namespace

std::string valid_utf8(std::string_view text, std::size_t max) {
  std::string out;
  out.reserve(std::min(text.size(), max));
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t len = 0;
    if (c < 0x80)
      len = 1;
    else if (c >= 0xC2 && c <= 0xDF)
      len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
      len = 3;
    else if (c >= 0xF0 && c <= 0xF4)
      len = 4;
    bool ok = len > 0 && i + len <= text.size();
    for (std::size_t k = 1; ok && k < len; ++k) {
      ok = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    }
    if (ok && len == 3) {
      const auto c1 = static_cast<unsigned char>(text[i + 1]);
      ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);  // overlong, surrogates
    }
    if (ok && len == 4) {
      const auto c1 = static_cast<unsigned char>(text[i + 1]);
      ok = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);  // overlong, past U+10FFFF
    }
    if (c == 0) ok = false;  // PostgreSQL text cannot hold NUL
    if (!ok) len = 1;
    if (out.size() + (ok ? len : 1) > max) break;
    if (ok) {
      out.append(text.substr(i, len));
    } else {
      out.push_back('?');
    }
    i += len;
  }
  return out;
}

namespace {

constexpr std::array<std::string_view, 2> kSignInLimitNames{"login_per_ip", "login_per_account"};

// The subject of a per-address limit: the address, or for IPv6 its /64 (one host usually holds a
// whole /64, and could otherwise step through it).
std::string address_subject(const std::string& ip) {
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address(ip, ec);
  if (ec || !a.is_v6() || a.to_v6().is_v4_mapped()) return ip;
  auto bytes = a.to_v6().to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return boost::asio::ip::address_v6(bytes).to_string() + "/64";
}

Error ended_error(EndReason reason) {
  return Error::ended(reason == EndReason::expired ? Errc::session_expired : Errc::session_revoked,
                      reason);
}

}  // namespace

std::string normalize_email(std::string_view email) {
  while (!email.empty() && std::isspace(static_cast<unsigned char>(email.front()))) {
    email.remove_prefix(1);
  }
  while (!email.empty() && std::isspace(static_cast<unsigned char>(email.back()))) {
    email.remove_suffix(1);
  }
  if (email.size() < 3 || email.size() > 254) return {};
  auto at = email.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == email.size() ||
      email.find('@', at + 1) != std::string_view::npos) {
    return {};
  }
  std::string out;
  out.reserve(email.size());
  for (char c : email) {
    auto u = static_cast<unsigned char>(c);
    if (std::isspace(u) || std::iscntrl(u)) return {};
    out.push_back(static_cast<char>(std::tolower(u)));
  }
  return out;
}

std::string normalize_mobile(std::string_view number) {
  std::string digits;
  bool plus = false;
  for (std::size_t i = 0; i < number.size(); ++i) {
    char c = number[i];
    if (c == '+' && digits.empty() && !plus) {
      plus = true;
    } else if (c >= '0' && c <= '9') {
      digits.push_back(c);
    } else if (c == ' ' || c == '-' || c == '(' || c == ')' || c == '.') {
      continue;
    } else {
      return {};
    }
  }
  if (digits.empty() || digits.front() == '0') return {};
  if (plus ? (digits.size() < 8 || digits.size() > 15)
           : (digits.size() < 10 || digits.size() > 15)) {
    return {};
  }
  return "+" + digits;
}

SessionService::SessionService(ServiceDeps deps)
    : deps_(std::move(deps)), outbox_(deps_.store.has_outbox()) {}

template <class Fn>
auto SessionService::db_call(Fn fn) -> awaitable<std::invoke_result_t<Fn&>> {
  auto result = co_await deps_.db_workers.run(std::move(fn));
  if (!result && result.error().code == Errc::database_unavailable) ++counters_.database_errors;
  co_return result;
}

db::Event SessionService::event(std::string type, std::optional<UserId> user,
                                std::optional<SessionId> session, const std::string& ip,
                                const json::object& detail) const {
  db::Event e;
  e.uid = random_secret(deps_.random, 16);
  e.at = deps_.clock.now();
  e.type = std::move(type);
  e.user_id = user;
  e.session_id = session;
  e.ip_address = ip;
  e.detail = json::serialize(detail);
  return e;
}

void SessionService::add_store_change(db::ChangeBatch& batch, store::StoreChange change) const {
  // With an outbox the store has already enqueued the change, in the same step that made it.
  if (outbox_) return;
  add_change(batch, change, random_secret(deps_.random, 16));
}

void SessionService::add_ended(db::ChangeBatch& batch, const Session& s, EndReason reason,
                               TimePoint at, const std::string& ip) const {
  store::StoreChange change;
  change.kind = store::StoreChange::Kind::ended;
  change.session = s;
  change.reason = reason;
  change.at = at;
  change.ip = ip;
  add_store_change(batch, std::move(change));
}

awaitable<bool> SessionService::record(db::ChangeBatch batch) {
  if (batch.changes.empty() && batch.events.empty()) co_return true;
  mark_webhook_events(batch, deps_.config.webhooks);
  auto result = co_await db_call([&] { return deps_.database.apply(batch); });
  if (result) co_return true;
  spdlog::error("database write failed ({}); keeping {} change(s) and {} event(s) to retry",
                result.error().detail, batch.changes.size(), batch.events.size());
  std::lock_guard lock(pending_mutex_);
  if (pending_.size() >= kMaxPendingBatches) {
    spdlog::error("pending database writes over {}: dropping the oldest", kMaxPendingBatches);
    pending_.pop_front();
  }
  pending_.push_back(std::move(batch));
  co_return false;
}

std::size_t SessionService::pending_writes() const {
  std::lock_guard lock(pending_mutex_);
  return pending_.size();
}

std::string SessionService::mint_access_token(const Session& session, TimePoint iat,
                                              std::string jti) const {
  AccessClaims claims;
  claims.sub = session.user_id;
  claims.sid = session.id;
  claims.role = session.role;
  claims.iat = iat;
  claims.exp = std::min(iat + deps_.config.tokens.access_ttl, session.absolute_expires_at);
  claims.jti = std::move(jti);
  claims.attr = parse_object(session.attributes);
  return deps_.jwt.sign(claims);
}

TokenResponse SessionService::make_response(const Session& session, std::string refresh_token,
                                            TimePoint iat, const db::User& user) const {
  TokenResponse r;
  r.access_token = mint_access_token(session, iat, derive_jti(refresh_token));
  r.refresh_token = std::move(refresh_token);
  auto exp = std::min(iat + deps_.config.tokens.access_ttl, session.absolute_expires_at);
  r.expires_in = std::chrono::duration_cast<std::chrono::seconds>(exp - deps_.clock.now());
  if (r.expires_in.count() < 0) r.expires_in = Duration{0};
  r.session = session;
  r.user = user;
  return r;
}

Task<TokenResponse> SessionService::start_session(const db::User& user, AuthMethod method,
                                                  json::object attributes, ClientInfo client,
                                                  std::optional<std::string> device_info,
                                                  db::ChangeBatch batch) {
  const auto& roles = deps_.config.roles;
  const RolePolicy* policy = roles.find(user.role);
  if (policy == nullptr) {
    spdlog::warn("user {} has role {} which is not configured; using the default role's policy",
                 user.id, user.role);
    policy = roles.find(roles.default_role());
  }
  if (policy == nullptr) co_return Error(Errc::internal, "no policy for the user's role");

  const TimePoint now = deps_.clock.now();
  Session s = make_session(SessionId::generate(deps_.random), user.id, user.role, *policy, now);
  s.attributes = json::serialize(attributes);
  s.auth_method = method;
  s.user_agent = valid_utf8(client.user_agent, kMaxUserAgent);
  s.device_info = device_info ? *device_info : detect_device(s.user_agent);
  s.ip_address = client.ip;
  s.last_ip = client.ip;

  std::string refresh_token = new_refresh_token(deps_.random, user.id);
  store::CreateRequest request;
  request.session = s;
  request.refresh_hash = sha256(refresh_token);
  request.refresh_expires_at =
      std::min(now + deps_.config.tokens.refresh_ttl, s.absolute_expires_at);
  request.max_sessions = policy->max_sessions;
  request.on_limit = policy->on_limit;
  const auto refresh_hash = request.refresh_hash;
  const auto refresh_expires_at = request.refresh_expires_at;

  auto created = co_await deps_.store.create(std::move(request));
  if (!created) {
    if (created.error().code == Errc::store_unavailable) ++counters_.store_errors;
    co_await record(std::move(batch));
    co_return created.error();
  }
  store::StoreChange change;
  change.kind = store::StoreChange::Kind::created;
  change.session = s;
  change.refresh_hash = refresh_hash;
  change.refresh_expires_at = refresh_expires_at;
  change.at = now;
  change.ip = client.ip;
  add_store_change(batch, std::move(change));
  for (const auto& evicted : created->evicted) {
    add_ended(batch, evicted, EndReason::max_sessions_exceeded, now, client.ip);
    ++counters_.evictions;
  }
  // Acknowledged means durable: without the write the client gets no tokens (the session stays
  // in the store and its write is retried, so nothing is lost either way).
  if (!co_await record(std::move(batch))) co_return kNotDurable;
  ++counters_.sign_ins;
  co_return make_response(s, std::move(refresh_token), now, user);
}

std::string SessionService::rate_key(std::string_view name, std::string_view subject) const {
  std::string input = "rate:";
  input.append(subject);
  const auto mac = hmac_sha256(deps_.pepper, input);
  return std::string(name) + ":" + base64url_encode(std::span<const std::uint8_t>(mac.data(), 16));
}

std::string SessionService::otp_key(const std::string& mobile_number) const {
  const auto mac = hmac_sha256(deps_.pepper, "otp-key:" + mobile_number);
  return base64url_encode(std::span<const std::uint8_t>(mac.data(), 16));
}

std::string SessionService::otp_hash(const std::string& mobile_number,
                                     std::string_view code) const {
  std::string input = "otp-code:" + mobile_number + ":";
  input.append(code);
  const auto mac = hmac_sha256(deps_.pepper, input);
  return base64url_encode(std::span<const std::uint8_t>(mac.data(), mac.size()));
}

std::vector<store::RateKey> SessionService::sign_in_limits(const std::string& account,
                                                           const ClientInfo& client) const {
  const auto& limits = deps_.config.rate_limits;
  return {{rate_key(kSignInLimitNames[0], address_subject(client.ip)), limits.login_per_ip},
          {rate_key(kSignInLimitNames[1], account), limits.login_per_account}};
}

Task<void> SessionService::limit(std::vector<store::RateKey> keys,
                                 std::span<const std::string_view> names, bool count,
                                 const ClientInfo& client, std::optional<UserId> user) {
  auto decision = co_await deps_.store.rate_limit(keys, deps_.clock.now(), count);
  if (!decision) {
    if (decision.error().code == Errc::store_unavailable) ++counters_.store_errors;
    co_return decision.error();
  }
  if (decision->allowed) co_return Result<void>{};
  const std::size_t i = decision->refused_by < keys.size() ? decision->refused_by : 0;
  const std::string_view name = i < names.size() ? names[i] : "rate_limit";
  // A named key: g++ 12 mishandles a temporary built inside a co_await expression.
  std::string key = keys.empty() ? std::string(name) : keys[i].key;
  co_return co_await refused_by_limit(name, std::move(key), decision->retry_after, user, client);
}

awaitable<Error> SessionService::refused_by_limit(std::string_view name, std::string key,
                                                  Duration retry_after, std::optional<UserId> user,
                                                  const ClientInfo& client) {
  ++counters_.rate_limited;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(retry_after).count();
  const int seconds = static_cast<int>(std::max<std::int64_t>(1, (ms + 999) / 1000));
  // One audit event per limit and subject while it stays full: a flood of refused requests
  // must not become a flood of database writes.
  std::vector<store::RateKey> audited{{"audited:" + key, RateLimit{1, retry_after}}};
  auto first = co_await deps_.store.rate_limit(std::move(audited), deps_.clock.now(), true);
  if (!first || first->allowed) {
    db::ChangeBatch batch;
    batch.events.push_back(event("rate_limited", user, std::nullopt, client.ip,
                                 {{"limit", name}, {"retry_after", seconds}}));
    co_await record(std::move(batch));
  }
  Error e(Errc::rate_limited,
          "too many attempts; try again in " + std::to_string(seconds) + " seconds");
  e.retry_after_seconds = seconds;
  co_return e;
}

awaitable<void> SessionService::sign_in_failed(std::string_view method, std::string_view reason,
                                               std::optional<UserId> user,
                                               const ClientInfo& client) {
  ++counters_.sign_in_failures;
  db::ChangeBatch batch;
  batch.events.push_back(event("login_failed", user, std::nullopt, client.ip,
                               {{"auth_method", method}, {"reason", reason}}));
  co_await record(std::move(batch));
}

namespace {

// A code of `length` decimal digits, uniform (rejection sampling on 64 random bits).
std::string new_otp_code(Random& random, int length) {
  std::uint64_t range = 1;
  for (int i = 0; i < length; ++i) range *= 10;
  const std::uint64_t limit = UINT64_MAX - (UINT64_MAX % range);
  std::uint64_t value = 0;
  do {
    std::array<std::uint8_t, 8> bytes{};
    random.fill(bytes);
    value = 0;
    for (auto b : bytes) value = (value << 8) | b;
  } while (value >= limit);
  value %= range;
  std::string code(static_cast<std::size_t>(length), '0');
  for (int i = length - 1; i >= 0; --i) {
    code[static_cast<std::size_t>(i)] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  return code;
}

}  // namespace

Task<Duration> SessionService::otp_send(std::string mobile_number, ClientInfo client) {
  const std::string number = normalize_mobile(mobile_number);
  if (number.empty()) {
    co_return Error(Errc::invalid_request, "mobile_number must be E.164 or 10-15 digits");
  }
  static constexpr std::array<std::string_view, 2> kNames{"otp_send_per_number", "otp_send_per_ip"};
  const auto& limits = deps_.config.rate_limits;
  std::vector<store::RateKey> keys{
      {rate_key(kNames[0], number), limits.otp_send_per_number},
      {rate_key(kNames[1], address_subject(client.ip)), limits.otp_send_per_ip}};
  if (auto allowed = co_await limit(std::move(keys), kNames, true, client, std::nullopt);
      !allowed) {
    co_return allowed.error();
  }
  auto found = co_await db_call([&] { return deps_.database.find_user_by_mobile(number); });
  if (!found) co_return found.error();
  const auto& user = *found;
  const OtpConfig& otp = deps_.config.otp;
  // A code goes out only to a number that can sign in with it; the answer is the same either way.
  const bool can_sign_in = user ? !user->disabled : otp.auto_register;
  const TimePoint now = deps_.clock.now();
  if (can_sign_in) {
    std::string code = new_otp_code(deps_.random, otp.length);
    auto stored = co_await deps_.store.otp_put(otp_key(number), otp_hash(number, code),
                                               now + otp.ttl, otp.max_attempts, now);
    if (!stored) {
      if (stored.error().code == Errc::store_unavailable) ++counters_.store_errors;
      co_return stored.error();
    }
    // A named message: g++ 12 mishandles a braced temporary inside a co_await expression.
    OtpMessage message{number, std::move(code), otp.ttl, now};
    auto sent = co_await deps_.otp_sender.send(std::move(message));
    if (!sent) co_return sent.error();
    ++counters_.otp_sent;
  }
  db::ChangeBatch batch;
  batch.events.push_back(event("otp_sent", user ? std::optional(user->id) : std::nullopt,
                               std::nullopt, client.ip, {{"delivered", can_sign_in}}));
  co_await record(std::move(batch));
  co_return otp.ttl;
}

Task<TokenResponse> SessionService::otp_verify(std::string mobile_number, std::string code,
                                               ClientInfo client) {
  const std::string number = normalize_mobile(mobile_number);
  if (number.empty()) {
    co_return Error(Errc::invalid_request, "mobile_number must be E.164 or 10-15 digits");
  }
  const std::string account = "mobile:" + number;
  auto attempt = verify_code(number, code, client);
  co_return co_await counted_sign_in(account, client, std::move(attempt));
}

Task<TokenResponse> SessionService::counted_sign_in(const std::string& account,
                                                    const ClientInfo& client,
                                                    Task<TokenResponse> attempt) {
  // Every attempt counts against login_per_ip and login_per_account up front, atomically, so
  // that attempts running at once cannot pass a limit together; an attempt that did not fail on
  // its credentials (a success, a refused session limit, an outage) gives its hits back. A
  // success never resets what earlier failures counted.
  auto keys = sign_in_limits(account, client);
  if (auto allowed = co_await limit(keys, kSignInLimitNames, true, client, std::nullopt);
      !allowed) {
    co_return allowed.error();
  }
  auto result = co_await std::move(attempt);
  const bool failed = !result && (result.error().code == Errc::invalid_credentials ||
                                  result.error().code == Errc::invalid_otp);
  if (!failed) {
    auto refunded = co_await deps_.store.rate_refund(std::move(keys), deps_.clock.now());
    if (!refunded)
      spdlog::warn("a sign-in attempt was not given back: {}", refunded.error().detail);
  }
  co_return result;
}

Task<TokenResponse> SessionService::verify_code(std::string number, std::string code,
                                                ClientInfo client) {
  const Error wrong(Errc::invalid_otp, "the code is not correct, or no longer valid");
  const TimePoint now = deps_.clock.now();
  // The user first: a database outage then answers 503 without using the code up.
  auto found = co_await db_call([&] { return deps_.database.find_user_by_mobile(number); });
  if (!found) co_return found.error();
  std::optional<db::User> user = std::move(*found);
  auto checked = co_await deps_.store.otp_check(otp_key(number), otp_hash(number, code), now);
  if (!checked) {
    if (checked.error().code == Errc::store_unavailable) ++counters_.store_errors;
    co_return checked.error();
  }
  const auto user_id = user ? std::optional(user->id) : std::nullopt;
  if (*checked != store::OtpCheck::accepted) {
    const std::string_view reason = *checked == store::OtpCheck::burned  ? "otp_burned"
                                    : *checked == store::OtpCheck::wrong ? "invalid_otp"
                                                                         : "no_valid_otp";
    co_await sign_in_failed("otp", reason, user_id, client);
    co_return wrong;
  }
  db::ChangeBatch batch;
  if (!user) {
    if (!deps_.config.otp.auto_register) {
      co_await sign_in_failed("otp", "unknown_number", std::nullopt, client);
      co_return wrong;
    }
    db::NewUser nu;
    nu.mobile_number = number;
    nu.role = deps_.config.roles.default_role();
    auto created = co_await db_call([&] { return deps_.database.create_user(nu, now); });
    if (!created && created.error().code == Errc::conflict) {
      // Registered by a concurrent request in the meantime.
      auto again = co_await db_call([&] { return deps_.database.find_user_by_mobile(number); });
      if (!again) co_return again.error();
      if (!*again) co_return created.error();
      user = std::move(**again);
    } else if (!created) {
      co_return created.error();
    } else {
      user = std::move(*created);
      batch.events.push_back(event("user_created", user->id, std::nullopt, client.ip,
                                   {{"role", user->role}, {"auth_method", "otp"}}));
    }
  }
  if (user->disabled) {
    co_await sign_in_failed("otp", "disabled", user->id, client);
    co_return wrong;
  }
  json::object no_attributes;
  co_return co_await start_session(*user, AuthMethod::otp, std::move(no_attributes),
                                   std::move(client), std::nullopt, std::move(batch));
}

Task<TokenResponse> SessionService::login_password(std::string email, std::string password,
                                                   ClientInfo client) {
  if (email.empty() || password.empty()) {
    co_return Error(Errc::invalid_request, "email and password are required");
  }
  const std::string normalized = normalize_email(email);
  const std::string account = "email:" + (normalized.empty() ? email : normalized);
  auto attempt = check_password(normalized, std::move(password), client);
  co_return co_await counted_sign_in(account, client, std::move(attempt));
}

Task<TokenResponse> SessionService::check_password(std::string normalized, std::string password,
                                                   ClientInfo client) {
  std::optional<db::User> user;
  if (!normalized.empty()) {
    auto found = co_await db_call([&] { return deps_.database.find_user_by_email(normalized); });
    if (!found) co_return found.error();
    user = std::move(*found);
  }

  // An unknown account costs the same argon2id verification as a known one.
  const bool has_hash = user && user->password_hash;
  std::string hash = has_hash ? *user->password_hash : dummy_password_hash();
  const bool verified = co_await deps_.hash_workers.run(
      [&hash, &password] { return verify_password(hash, password); });

  if (!verified || !has_hash || user->disabled) {
    co_await sign_in_failed("password",
                            user && user->disabled && verified ? "disabled" : "invalid_credentials",
                            user ? std::optional(user->id) : std::nullopt, client);
    co_return Error(Errc::invalid_credentials, "the email or password is not correct");
  }

  if (password_needs_rehash(hash)) {
    std::string upgraded =
        co_await deps_.hash_workers.run([&password] { return hash_password(password); });
    db::UserPatch patch;
    patch.password_hash = std::move(upgraded);
    auto now = deps_.clock.now();
    auto updated =
        co_await db_call([&] { return deps_.database.update_user(user->id, patch, now); });
    if (!updated) spdlog::warn("could not upgrade the password hash of user {}", user->id);
  }
  // Named arguments: g++ 12 mishandles braced temporaries inside a co_await expression.
  json::object no_attributes;
  db::ChangeBatch no_changes;
  co_return co_await start_session(*user, AuthMethod::password, std::move(no_attributes),
                                   std::move(client), std::nullopt, std::move(no_changes));
}

// Refresh must work while the database is down: then the user is what the session knows.
awaitable<db::User> SessionService::user_or_minimal(const Session& s) {
  auto user = co_await get_user(s.user_id);
  if (user) co_return std::move(*user);
  db::User minimal;
  minimal.id = s.user_id;
  minimal.role = s.role;
  co_return minimal;
}

Task<TokenResponse> SessionService::refresh(std::string refresh_token, ClientInfo client) {
  if (refresh_token.size() < 10 || refresh_token.size() > 256 ||
      !refresh_token.starts_with("rt_")) {
    co_return Error(Errc::token_invalid, "the refresh token is not valid");
  }
  const TimePoint now = deps_.clock.now();
  const auto token_user = refresh_token_user(refresh_token);
  std::string successor =
      token_user ? new_refresh_token(deps_.random, *token_user) : new_refresh_token(deps_.random);
  store::RotateRequest request;
  request.user = token_user.value_or(0);
  request.presented = sha256(refresh_token);
  request.successor = sha256(successor);
  request.sealed_successor = seal_successor(deps_.random, refresh_token, successor);
  request.successor_expires_at = now + deps_.config.tokens.refresh_ttl;
  request.now = now;
  request.grace = deps_.config.tokens.refresh_grace;
  request.ip = client.ip;
  request.limit = deps_.config.rate_limits.refresh_per_session;
  const auto successor_hash = request.successor;

  auto rotated = co_await deps_.store.rotate_refresh(std::move(request));
  if (!rotated) {
    if (rotated.error().code == Errc::store_unavailable) ++counters_.store_errors;
    co_return rotated.error();
  }
  auto& outcome = *rotated;
  switch (outcome.kind) {
    case store::Rotation::rotated: {
      const Session& s = outcome.session;
      db::ChangeBatch batch;
      store::StoreChange change;
      change.kind = store::StoreChange::Kind::rotated;
      change.session = s;
      change.refresh_hash = successor_hash;
      change.refresh_expires_at =
          std::min(now + deps_.config.tokens.refresh_ttl, s.absolute_expires_at);
      change.at = now;
      change.ip = client.ip;
      add_store_change(batch, std::move(change));
      // Without the write the client keeps its old token, which the grace window answers again.
      if (!co_await record(std::move(batch))) co_return kNotDurable;
      co_return make_response(s, std::move(successor), now, co_await user_or_minimal(s));
    }
    case store::Rotation::grace: {
      auto previous = open_successor(refresh_token, outcome.sealed_successor);
      if (!previous) co_return Error(Errc::token_invalid, "the refresh token is not valid");
      co_return make_response(outcome.session, std::move(*previous), outcome.rotated_at,
                              co_await user_or_minimal(outcome.session));
    }
    case store::Rotation::reuse: {
      spdlog::warn("refresh token reuse: session {} of user {} ended",
                   outcome.session.id.to_string(), outcome.session.user_id);
      db::ChangeBatch batch;
      add_ended(batch, outcome.session, EndReason::refresh_token_reuse, now, client.ip);
      co_await record(std::move(batch));
      co_return ended_error(EndReason::refresh_token_reuse);
    }
    case store::Rotation::ended: co_return ended_error(outcome.reason);
    case store::Rotation::rate_limited: {
      std::string key = "refresh_per_session:" + to_hex(sha256(refresh_token));
      co_return co_await refused_by_limit("refresh_per_session", std::move(key),
                                          outcome.retry_after, token_user, client);
    }
    case store::Rotation::unknown: break;
  }
  co_return Error(Errc::token_invalid, "the refresh token is not valid");
}

Task<Principal> SessionService::authenticate(std::string_view access_token, ClientInfo client) {
  const TimePoint now = deps_.clock.now();
  auto claims = deps_.jwt.verify(access_token, now);
  if (!claims) co_return claims.error();
  auto found = co_await deps_.store.validate_and_touch(claims->sub, claims->sid, now, client.ip);
  if (!found) {
    if (found.error().code == Errc::store_unavailable) ++counters_.store_errors;
    co_return found.error();
  }
  switch (found->found) {
    case store::Found::alive: co_return Principal{std::move(*claims), std::move(found->session)};
    case store::Found::ended:
      if (found->reason == EndReason::expired) {
        Session s;
        s.id = claims->sid;
        s.user_id = claims->sub;
        db::ChangeBatch batch;
        add_ended(batch, s, EndReason::expired, now, client.ip);
        co_await record(std::move(batch));
      }
      co_return ended_error(found->reason);
    case store::Found::unknown: break;
  }
  co_return Error(Errc::session_revoked, "the session is not known");
}

bool SessionService::is_admin_key(std::string_view key) const {
  return !deps_.admin_key.empty() && constant_time_equal(key, deps_.admin_key);
}

bool SessionService::is_admin_role(std::string_view role) const {
  const auto& roles = deps_.config.admin.roles;
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

Task<void> SessionService::logout(const Principal& who, ClientInfo client) {
  co_return co_await revoke_session(who.session.user_id, who.session.id, EndReason::logout,
                                    std::move(client));
}

Task<std::vector<Session>> SessionService::list_sessions(UserId user) {
  co_return co_await deps_.store.list(user, deps_.clock.now());
}

Task<void> SessionService::revoke_session(UserId user, SessionId id, EndReason reason,
                                          ClientInfo client) {
  const TimePoint now = deps_.clock.now();
  auto revoked = co_await deps_.store.revoke(user, id, reason, now, client.ip);
  if (!revoked) co_return revoked.error();
  if (!*revoked) co_return Error(Errc::not_found, "no such live session");
  db::ChangeBatch batch;
  add_ended(batch, **revoked, reason, now, client.ip);
  if (!co_await record(std::move(batch))) co_return kNotDurable;
  co_return Result<void>{};
}

Task<int> SessionService::revoke_all(UserId user, std::optional<SessionId> keep, EndReason reason,
                                     ClientInfo client) {
  const TimePoint now = deps_.clock.now();
  auto revoked = co_await deps_.store.revoke_all(user, keep, reason, now, client.ip);
  if (!revoked) co_return revoked.error();
  db::ChangeBatch batch;
  for (const auto& s : *revoked) add_ended(batch, s, reason, now, client.ip);
  if (!co_await record(std::move(batch))) co_return kNotDurable;
  co_return static_cast<int>(revoked->size());
}

Task<void> SessionService::change_password(const Principal& who, std::string current_password,
                                           std::string new_password, ClientInfo client) {
  const auto min_length = static_cast<std::size_t>(deps_.config.password_min_length);
  if (new_password.size() < min_length) {
    co_return Error(Errc::invalid_request,
                    "new_password must be at least " + std::to_string(min_length) + " characters");
  }
  auto user = co_await get_user(who.session.user_id);
  if (!user) co_return user.error();
  // A wrong current password is a password guess like a failed sign-in: the same limits count it.
  auto keys = sign_in_limits("user:" + std::to_string(user->id), client);
  if (auto allowed = co_await limit(keys, kSignInLimitNames, true, client, user->id); !allowed) {
    co_return allowed.error();
  }
  const std::string hash = user->password_hash.value_or(dummy_password_hash());
  const bool verified = co_await deps_.hash_workers.run(
      [&hash, &current_password] { return verify_password(hash, current_password); });
  if (!verified || !user->password_hash) {
    co_await sign_in_failed("password_change", "invalid_credentials", user->id, client);
    co_return Error(Errc::invalid_credentials, "the current password is not correct");
  }
  (void)co_await deps_.store.rate_refund(std::move(keys), deps_.clock.now());
  db::UserPatch patch;
  patch.password_hash =
      co_await deps_.hash_workers.run([&new_password] { return hash_password(new_password); });
  const TimePoint now = deps_.clock.now();
  auto updated = co_await db_call([&] { return deps_.database.update_user(user->id, patch, now); });
  if (!updated) co_return updated.error();

  auto ended = co_await deps_.store.revoke_all(user->id, who.session.id,
                                               EndReason::password_changed, now, client.ip);
  db::ChangeBatch batch;
  batch.events.push_back(event("password_changed", user->id, who.session.id, client.ip));
  if (ended) {
    for (const auto& s : *ended) add_ended(batch, s, EndReason::password_changed, now, client.ip);
  }
  const bool durable = co_await record(std::move(batch));
  if (!ended) co_return ended.error();
  if (!durable) co_return kNotDurable;
  co_return Result<void>{};
}

Task<db::User> SessionService::get_user(UserId id) {
  auto found = co_await db_call([&] { return deps_.database.find_user(id); });
  if (!found) co_return found.error();
  if (!*found) co_return Error(Errc::not_found, "no such user");
  co_return std::move(**found);
}

Result<db::User> SessionService::validate_user_request(const CreateUserRequest& r) const {
  db::User u;
  if (!r.email && !r.mobile_number) {
    return Error(Errc::invalid_request, "email or mobile_number is required");
  }
  if (r.email) {
    auto email = normalize_email(*r.email);
    if (email.empty()) return Error(Errc::invalid_request, "email is not a valid address");
    u.email = email;
  }
  if (r.mobile_number) {
    auto mobile = normalize_mobile(*r.mobile_number);
    if (mobile.empty()) {
      return Error(Errc::invalid_request, "mobile_number must be E.164 or 10-15 digits");
    }
    u.mobile_number = mobile;
  }
  if (deps_.config.roles.find(r.role) == nullptr) {
    return Error(Errc::invalid_request, "role is not a configured role");
  }
  if (r.password &&
      r.password->size() < static_cast<std::size_t>(deps_.config.password_min_length)) {
    return Error(Errc::invalid_request, "password must be at least " +
                                            std::to_string(deps_.config.password_min_length) +
                                            " characters");
  }
  return u;
}

Task<db::User> SessionService::create_user(CreateUserRequest request, ClientInfo client) {
  auto checked = validate_user_request(request);
  if (!checked) co_return checked.error();
  db::NewUser nu;
  nu.email = checked->email;
  nu.mobile_number = checked->mobile_number;
  nu.role = request.role;
  nu.attributes = json::serialize(request.attributes);
  if (request.password) {
    nu.password_hash =
        co_await deps_.hash_workers.run([&request] { return hash_password(*request.password); });
  }
  const TimePoint now = deps_.clock.now();
  auto created = co_await db_call([&] { return deps_.database.create_user(nu, now); });
  if (!created) co_return created.error();
  db::ChangeBatch batch;
  batch.events.push_back(
      event("user_created", created->id, std::nullopt, client.ip, {{"role", created->role}}));
  co_await record(std::move(batch));
  co_return std::move(*created);
}

Task<db::User> SessionService::update_user(UserId id, UpdateUserRequest request,
                                           ClientInfo client) {
  auto existing = co_await get_user(id);
  if (!existing) co_return existing.error();
  db::UserPatch patch;
  if (request.role) {
    if (deps_.config.roles.find(*request.role) == nullptr) {
      co_return Error(Errc::invalid_request, "role is not a configured role");
    }
    patch.role = request.role;
  }
  if (request.password) {
    if (request.password->size() < static_cast<std::size_t>(deps_.config.password_min_length)) {
      co_return Error(Errc::invalid_request, "password must be at least " +
                                                 std::to_string(deps_.config.password_min_length) +
                                                 " characters");
    }
    patch.password_hash =
        co_await deps_.hash_workers.run([&request] { return hash_password(*request.password); });
  }
  patch.disabled = request.disabled;
  if (request.attributes) patch.attributes = json::serialize(*request.attributes);

  const TimePoint now = deps_.clock.now();
  auto updated = co_await db_call([&] { return deps_.database.update_user(id, patch, now); });
  if (!updated) co_return updated.error();

  std::optional<EndReason> end_all;
  db::ChangeBatch batch;
  if (request.disabled && *request.disabled) {
    // Also when the user was disabled already: a request retried after the store failed to end
    // the sessions ends them now.
    end_all = EndReason::user_disabled;
    if (!existing->disabled) {
      batch.events.push_back(event("user_disabled", id, std::nullopt, client.ip));
    }
  }
  if (request.role && *request.role != existing->role) {
    if (!end_all) end_all = EndReason::role_changed;
    batch.events.push_back(event("role_changed", id, std::nullopt, client.ip,
                                 {{"from", existing->role}, {"to", *request.role}}));
  }
  if (request.password)
    batch.events.push_back(event("password_changed", id, std::nullopt, client.ip));
  if (end_all) {
    auto ended = co_await deps_.store.revoke_all(id, std::nullopt, *end_all, now, client.ip);
    if (!ended) {
      co_await record(std::move(batch));
      co_return ended.error();
    }
    for (const auto& s : *ended) add_ended(batch, s, *end_all, now, client.ip);
  }
  if (!co_await record(std::move(batch))) co_return kNotDurable;
  co_return std::move(*updated);
}

Task<TokenResponse> SessionService::create_session_for(AdminSessionRequest request,
                                                       ClientInfo client) {
  auto user = co_await get_user(request.user_id);
  if (!user) co_return user.error();
  if (user->disabled) co_return Error(Errc::forbidden, "the user is disabled");
  ClientInfo effective = client;
  if (request.ip_address) effective.ip = *request.ip_address;
  if (request.user_agent) effective.user_agent = *request.user_agent;
  db::ChangeBatch no_changes;
  co_return co_await start_session(*user, AuthMethod::admin, std::move(request.attributes),
                                   std::move(effective), std::move(request.device_info),
                                   std::move(no_changes));
}

Task<void> SessionService::revoke_session_by_id(SessionId id, ClientInfo client) {
  auto owner = co_await deps_.store.owner_of(id, deps_.clock.now());
  if (!owner) co_return owner.error();
  if (!*owner) co_return Error(Errc::not_found, "no such live session");
  co_return co_await revoke_session(**owner, id, EndReason::revoked_by_admin, std::move(client));
}

Task<std::vector<db::Event>> SessionService::events(db::EventFilter filter) {
  co_return co_await db_call([&] { return deps_.database.list_events(filter); });
}

Task<db::Stats> SessionService::stats() {
  const TimePoint now = deps_.clock.now();
  co_return co_await db_call([&] { return deps_.database.stats(now); });
}

Task<void> SessionService::ready() {
  auto store_ok = co_await deps_.store.ping();
  if (!store_ok) co_return store_ok.error();
  co_return co_await db_call([&] { return deps_.database.ping(); });
}

awaitable<void> SessionService::run_jobs_once(bool flush_activity) {
  const TimePoint now = deps_.clock.now();
  for (;;) {
    auto expired = co_await deps_.store.collect_expired(now, 1000);
    if (!expired || expired->empty()) break;
    db::ChangeBatch batch;
    for (const auto& s : *expired)
      add_ended(batch, s, EndReason::expired, s.expires_at(), s.last_ip);
    co_await record(std::move(batch));
    if (expired->size() < 1000) break;
  }
  if (flush_activity) {
    auto touched = co_await deps_.store.collect_activity(100'000);
    if (touched && !touched->empty()) {
      db::ChangeBatch batch;
      for (const auto& t : *touched) {
        batch.changes.emplace_back(
            db::ActivityTouched{t.id, t.last_activity, t.expires_at, t.last_ip});
      }
      co_await record(std::move(batch));
    }
  }
  // Retry what the database refused earlier, oldest first, until it refuses again.
  for (;;) {
    db::ChangeBatch batch;
    {
      std::lock_guard lock(pending_mutex_);
      if (pending_.empty()) break;
      batch = std::move(pending_.front());
      pending_.pop_front();
    }
    auto result = co_await db_call([&] { return deps_.database.apply(batch); });
    if (!result) {
      std::lock_guard lock(pending_mutex_);
      pending_.push_front(std::move(batch));
      break;
    }
  }
}

Task<std::size_t> SessionService::drain_outbox(const std::string& consumer) {
  auto taken = co_await deps_.store.outbox_take(consumer, kOutboxBatch,
                                                deps_.config.jobs.outbox_claim_after);
  if (!taken) co_return taken.error();
  if (taken->empty()) co_return std::size_t{0};
  // The entry's id makes the event's: a batch written again stores each event once.
  const auto batch_of = [this](const store::OutboxEntry& entry) {
    db::ChangeBatch batch;
    add_change(batch, *entry.change, "outbox:" + entry.id);
    mark_webhook_events(batch, deps_.config.webhooks);
    return batch;
  };
  db::ChangeBatch batch;
  std::vector<std::string> ids;
  ids.reserve(taken->size());
  for (const auto& entry : *taken) {
    if (entry.change) {
      db::ChangeBatch one = batch_of(entry);
      std::move(one.changes.begin(), one.changes.end(), std::back_inserter(batch.changes));
      std::move(one.events.begin(), one.events.end(), std::back_inserter(batch.events));
    } else {
      spdlog::error("outbox entry {} cannot be read: skipped", entry.id);
    }
    ids.push_back(entry.id);
  }
  if (!batch.changes.empty() || !batch.events.empty()) {
    // Data the database refuses (a constraint, a value it cannot store) would be refused again;
    // any other failure may pass, and the batch is tried again later.
    const auto refused = [](const Error& e) {
      return e.code == Errc::conflict || e.code == Errc::invalid_request;
    };
    auto written = co_await db_call([&] { return deps_.database.apply(batch); });
    if (!written && !refused(written.error())) co_return written.error();
    if (!written) {
      // Write the entries one by one and skip the ones refused, so that one bad entry cannot
      // hold the outbox up for good.
      for (const auto& entry : *taken) {
        if (!entry.change) continue;
        const db::ChangeBatch one = batch_of(entry);
        auto alone = co_await db_call([&] { return deps_.database.apply(one); });
        if (!alone && !refused(alone.error())) co_return alone.error();
        if (!alone) {
          spdlog::error("outbox entry {} refused by the database ({}): skipped", entry.id,
                        alone.error().detail);
        }
      }
    }
  }
  auto acked = co_await deps_.store.outbox_ack(ids);
  if (!acked) co_return acked.error();
  co_return ids.size();
}

Task<void> SessionService::release_outbox(const std::string& consumer) {
  co_return co_await deps_.store.outbox_release(consumer);
}

Task<std::size_t> SessionService::outbox_length() {
  co_return co_await deps_.store.outbox_length();
}

std::string SessionService::new_csrf_token() const { return random_secret(deps_.random, 24); }

Task<std::size_t> SessionService::live_sessions() { co_return co_await deps_.store.live_count(); }

awaitable<void> SessionService::flush() { co_await run_jobs_once(true); }

}  // namespace sessiond::service
