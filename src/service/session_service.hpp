// SessionService: the use cases of sessiond (sign in, verify, refresh, sign out, list and revoke,
// admin calls), on top of a SessionStore, a Database and the JWT codec. Transport-free: the http
// layer turns requests into these calls and results into responses.
//
// Every change to a session is written to the database before the call returns (embedded mode:
// written through), together with its audit events. All member functions may be called
// concurrently from any io thread.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <deque>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/crypto.hpp"
#include "core/error.hpp"
#include "core/jwt.hpp"
#include "core/session.hpp"
#include "core/time.hpp"
#include "db/database.hpp"
#include "service/otp_sender.hpp"
#include "service/workers.hpp"
#include "store/session_store.hpp"

namespace sessiond::service {

template <class T>
using Task = boost::asio::awaitable<Result<T>>;
using awaitable_void = boost::asio::awaitable<void>;

// Who is calling, as the http layer saw it.
struct ClientInfo {
  std::string ip;
  std::string user_agent;
};

struct TokenResponse {
  std::string access_token;
  std::string refresh_token;
  Duration expires_in{0};
  Session session;
  db::User user;
};

// An authenticated caller: a verified access token whose session is alive (and was touched).
struct Principal {
  AccessClaims claims;
  Session session;
};

struct CreateUserRequest {
  std::optional<std::string> email;
  std::optional<std::string> mobile_number;
  std::optional<std::string> password;
  std::string role;
  boost::json::object attributes;
};

struct UpdateUserRequest {
  std::optional<std::string> role;
  std::optional<bool> disabled;
  std::optional<std::string> password;
  std::optional<boost::json::object> attributes;
};

struct AdminSessionRequest {
  UserId user_id = 0;
  boost::json::object attributes;
  std::optional<std::string> device_info;
  std::optional<std::string> ip_address;
  std::optional<std::string> user_agent;
};

struct ServiceDeps {
  const Config& config;
  const Clock& clock;
  Random& random;
  const JwtCodec& jwt;
  store::SessionStore& store;
  db::Database& database;
  Workers& db_workers;    // blocking database calls
  Workers& hash_workers;  // argon2id
  std::string admin_key;
  OtpSender& otp_sender;
  // Keys the hashes of one-time codes and of rate-limit subjects (numbers, emails, addresses), so
  // that what the store holds names no one and gives no code away. Shared by every node (derived
  // from the signing key).
  std::string pepper;
};

class SessionService {
 public:
  explicit SessionService(ServiceDeps deps);

  // --- sign-in ---
  // Errors: invalid_request, invalid_credentials (also for unknown email or disabled user),
  // session_limit, database_unavailable, store_unavailable.
  Task<TokenResponse> login_password(std::string email, std::string password, ClientInfo client);
  // Sends a one-time code to the number (SPEC §5): the same answer whether or not the number is
  // known. Returns the code's lifetime. Errors: invalid_request (not a mobile number),
  // rate_limited, upstream_unavailable (the sender failed), database_unavailable,
  // store_unavailable.
  Task<Duration> otp_send(std::string mobile_number, ClientInfo client);
  // Signs in with a code sent by otp_send; registers the number with roles.default when unknown
  // and otp.auto_register is on. Errors: invalid_request, invalid_otp (wrong, used, expired or
  // burned code; disabled user), rate_limited, session_limit, database_unavailable,
  // store_unavailable.
  Task<TokenResponse> otp_verify(std::string mobile_number, std::string code, ClientInfo client);
  // Errors: token_invalid (unknown token), session_revoked (reuse, or ended: with reason),
  // session_expired, store_unavailable.
  Task<TokenResponse> refresh(std::string refresh_token, ClientInfo client);

  // --- every authenticated request ---
  // Verifies the access token and that its session is alive; touches the session.
  // Errors: token_invalid, token_expired, session_revoked (with reason), session_expired,
  // store_unavailable.
  Task<Principal> authenticate(std::string_view access_token, ClientInfo client);
  // True when `key` is the admin API key (constant time).
  bool is_admin_key(std::string_view key) const;
  bool is_admin_role(std::string_view role) const;

  // --- the user's own sessions ---
  Task<void> logout(const Principal& who, ClientInfo client);
  Task<std::vector<Session>> list_sessions(UserId user);
  // Errors: not_found when it is not one of the user's live sessions.
  Task<void> revoke_session(UserId user, SessionId id, EndReason reason, ClientInfo client);
  // Ends every session of the user except `keep`. Returns how many ended.
  Task<int> revoke_all(UserId user, std::optional<SessionId> keep, EndReason reason,
                       ClientInfo client);
  // Errors: invalid_credentials (wrong current password), invalid_request (too short).
  Task<void> change_password(const Principal& who, std::string current_password,
                             std::string new_password, ClientInfo client);
  Task<db::User> get_user(UserId id);

  // --- admin ---
  Task<db::User> create_user(CreateUserRequest request, ClientInfo client);
  Task<db::User> update_user(UserId id, UpdateUserRequest request, ClientInfo client);
  Task<TokenResponse> create_session_for(AdminSessionRequest request, ClientInfo client);
  Task<void> revoke_session_by_id(SessionId id, ClientInfo client);
  Task<std::vector<db::Event>> events(db::EventFilter filter);
  Task<db::Stats> stats();

  // --- operations ---
  // Store and database both answer.
  Task<void> ready();
  // One round of background work: ends sessions past their deadline, flushes last_activity and
  // retries pending writes. Called by the job loop every few seconds.
  boost::asio::awaitable<void> run_jobs_once(bool flush_activity);
  // Writes whatever is still pending (at shutdown).
  boost::asio::awaitable<void> flush();

  // --- the outbox (Redis store; SPEC §6) ---
  bool has_outbox() const { return outbox_; }
  // Moves one batch of the store's outbox into the database, then acknowledges it. Returns how
  // many entries it wrote: 0 when there was nothing, or another node holds the writer's lease.
  // Errors: database_unavailable or store_unavailable (nothing acknowledged: tried again later).
  Task<std::size_t> drain_outbox(const std::string& consumer);
  // Hands the writer's lease over (at shutdown).
  Task<void> release_outbox(const std::string& consumer);
  Task<std::size_t> outbox_length();

  // The public signing key for /.well-known/jwks.json (none for HS256).
  std::optional<boost::json::object> public_jwk() const { return deps_.jwt.public_jwk(); }
  // Operator warnings about the store's configuration (SPEC §7), for /readyz.
  std::vector<std::string> store_warnings() const { return deps_.store.warnings(); }
  std::string store_metrics() const { return deps_.store.metrics_text(); }
  // A fresh value for the sessiond_csrf cookie.
  std::string new_csrf_token() const;
  // Live sessions in the store.
  Task<std::size_t> live_sessions();

  // Counters for /metrics.
  struct Counters {
    std::atomic<std::uint64_t> sign_ins{0};
    std::atomic<std::uint64_t> sign_in_failures{0};
    std::atomic<std::uint64_t> evictions{0};
    std::atomic<std::uint64_t> store_errors{0};
    std::atomic<std::uint64_t> database_errors{0};
    std::atomic<std::uint64_t> rate_limited{0};
    std::atomic<std::uint64_t> otp_sent{0};
  };
  const Counters& counters() const { return counters_; }
  std::size_t pending_writes() const;

 private:
  Task<TokenResponse> start_session(const db::User& user, AuthMethod method,
                                    boost::json::object attributes, ClientInfo client,
                                    std::optional<std::string> device_info, db::ChangeBatch batch);
  boost::asio::awaitable<db::User> user_or_minimal(const Session& s);
  TokenResponse make_response(const Session& session, std::string refresh_token, TimePoint iat,
                              const db::User& user) const;
  std::string mint_access_token(const Session& session, TimePoint iat, std::string jti) const;
  db::Event event(std::string type, std::optional<UserId> user, std::optional<SessionId> session,
                  const std::string& ip, const boost::json::object& detail = {}) const;
  // Adds a change the store made to `batch`, unless the store's outbox already carries it.
  void add_store_change(db::ChangeBatch& batch, store::StoreChange change) const;
  void add_ended(db::ChangeBatch& batch, const Session& s, EndReason reason, TimePoint at,
                 const std::string& ip) const;
  // Writes the batch (write-through). Returns false when the database failed: the batch is then
  // kept and retried by the job loop, and callers do not acknowledge the change as durable.
  boost::asio::awaitable<bool> record(db::ChangeBatch batch);
  template <class Fn>
  auto db_call(Fn fn) -> boost::asio::awaitable<std::invoke_result_t<Fn&>>;
  Result<db::User> validate_user_request(const CreateUserRequest& r) const;
  // Applies rate limits (SPEC §2) named `names[i]` for `keys[i]`; a refusal is audited
  // (rate_limited) and answered with its Retry-After. count=false only checks.
  Task<void> limit(std::vector<store::RateKey> keys, std::span<const std::string_view> names,
                   bool count, const ClientInfo& client, std::optional<UserId> user);
  // Audits a refusal by the limit `name` and makes its 429 error.
  boost::asio::awaitable<Error> refused_by_limit(std::string_view name, std::string key,
                                                 Duration retry_after, std::optional<UserId> user,
                                                 const ClientInfo& client);
  // login_per_ip and login_per_account for `account` ("email:..." or "mobile:...").
  std::vector<store::RateKey> sign_in_limits(const std::string& account,
                                             const ClientInfo& client) const;
  // A store key for a rate limit on `subject`: the limit's name and a keyed hash of the subject.
  std::string rate_key(std::string_view name, std::string_view subject) const;
  std::string otp_key(const std::string& mobile_number) const;
  std::string otp_hash(const std::string& mobile_number, std::string_view code) const;
  // Runs a sign-in `attempt` under login_per_ip and login_per_account for `account`.
  Task<TokenResponse> counted_sign_in(const std::string& account, const ClientInfo& client,
                                      Task<TokenResponse> attempt);
  Task<TokenResponse> verify_code(std::string number, std::string code, ClientInfo client);
  Task<TokenResponse> check_password(std::string normalized, std::string password,
                                     ClientInfo client);
  // Audits a failed sign-in (the attempt was counted by counted_sign_in).
  awaitable_void sign_in_failed(std::string_view method, std::string_view reason,
                                std::optional<UserId> user, const ClientInfo& client);

  ServiceDeps deps_;
  const bool outbox_;  // the store enqueues session changes itself (SPEC §6)
  Counters counters_;
  mutable std::mutex pending_mutex_;
  std::deque<db::ChangeBatch> pending_;
};

// Normalises an email for lookup and storage (trimmed, lower-case). Empty when not plausible.
std::string normalize_email(std::string_view email);
// At most `max` bytes of `text` as valid UTF-8 (for header values kept in the database, which
// refuses anything else): bytes that do not form a character, and NUL, become '?'; a character is
// never cut in two.
std::string valid_utf8(std::string_view text, std::size_t max);
// Normalises a mobile number to E.164 ("+" and 8-15 digits); empty when not plausible.
std::string normalize_mobile(std::string_view number);

}  // namespace sessiond::service
