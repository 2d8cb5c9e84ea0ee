// The SessionStore interface: where live sessions, refresh-token hashes and tombstones of ended
// sessions live. Implementations: memory/ (in process) and, later, redis/.
//
// Every operation is atomic with respect to every other on the same store, across threads and (for
// shared stores) across nodes. Domain outcomes (a session that ended, a reused refresh token) are
// values; errors are for the store itself failing (store_unavailable) or bugs (internal).
// All member functions may be called concurrently.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/crypto.hpp"
#include "core/error.hpp"
#include "core/session.hpp"
#include "core/time.hpp"

namespace sessiond::store {

template <class T>
using Task = boost::asio::awaitable<Result<T>>;

struct CreateRequest {
  Session session;
  TokenHash refresh_hash{};
  TimePoint refresh_expires_at;  // never after session.absolute_expires_at
  int max_sessions = 5;
  OnLimit on_limit = OnLimit::evict_oldest;
};

struct CreateOutcome {
  // Sessions ended with reason max_sessions_exceeded to make room (empty when under the limit).
  std::vector<Session> evicted;
};

// What a session id or token led to.
enum class Found {
  alive,    // `session` is the live session (already touched, for validate_and_touch)
  ended,    // a tombstone: `reason` says why (expired or an action); `session` is empty
  unknown,  // never existed here, or ended longer ago than the tombstone lifetime
};

struct Lookup {
  Found found = Found::unknown;
  Session session;
  EndReason reason = EndReason::expired;
};

struct RotateRequest {
  UserId user = 0;               // the user the token names (refresh_token_user); 0 when none
  TokenHash presented{};         // hash of the refresh token the client sent
  TokenHash successor{};         // hash of the new refresh token
  std::string sealed_successor;  // the new token sealed under the presented one (seal_successor)
  TimePoint successor_expires_at;
  TimePoint now;
  Duration grace{std::chrono::seconds{10}};
  std::string ip;
  // refresh_per_session (SPEC §2): a presented token that finds its session alive (current or in
  // the grace window) counts one hit against the session's limit, in the same atomic step; when
  // the limit is full nothing changes and the answer is `rate_limited`. count 0: no limit.
  RateLimit limit{};
};

enum class Rotation {
  rotated,  // `presented` was current: `successor` is current now
  grace,    // `presented` was rotated out less than `grace` ago: `sealed_successor` and
            // `rotated_at` of that rotation are returned so the same pair can be answered again
  reuse,    // `presented` was rotated out earlier than that: the session was ended with
            // reason refresh_token_reuse (`session` is the session that was ended)
  ended,    // the session had already ended: `reason` says why
  unknown,  // no such token
  rate_limited,  // RotateRequest::limit is full for this session: nothing changed; `retry_after`
};

struct RotateOutcome {
  Rotation kind = Rotation::unknown;
  Session session;  // rotated/grace: the live session, touched; reuse: the session just ended
  EndReason reason = EndReason::expired;
  TimePoint rotated_at;
  TokenHash successor{};
  std::string sealed_successor;
  Duration retry_after{0};  // rate_limited: how long until the session's limit has room
};

// A session restored at start from the database (embedded mode).
struct RestoredSession {
  Session session;
  TokenHash refresh_hash{};
  TimePoint refresh_expires_at;
};

// A session that ended recently, restored as a tombstone.
struct RestoredTombstone {
  SessionId id;
  UserId user_id = 0;
  EndReason reason = EndReason::expired;
  TimePoint ended_at;
  TokenHash refresh_hash{};  // the session's last refresh token, which answers `ended` too
};

// A change to a session as a shared store's outbox carries it (SPEC §6): the operation that makes
// the change enqueues it in the same atomic step, and a writer moves it into the database.
struct StoreChange {
  enum class Kind { created, rotated, ended };
  Kind kind = Kind::created;
  // created: the new session; rotated: the session after the rotation; ended: the session as it
  // was when it ended.
  Session session;
  TokenHash refresh_hash{};      // created, rotated: the session's current refresh-token hash
  TimePoint refresh_expires_at;  // created, rotated: when that token expires
  EndReason reason = EndReason::logout;  // ended
  TimePoint at;                          // when the change was made (an expiry: the deadline)
  std::string ip;  // address of the request that made it; empty when none (the cleanup job)
};

struct OutboxEntry {
  std::string id;                     // the store's id of the entry, unique and stable
  std::optional<StoreChange> change;  // nullopt when the entry cannot be read (acknowledge it)
};

// last_activity / last_ip changes not yet written to the database.
struct ActivityChange {
  SessionId id;
  TimePoint last_activity;
  std::string last_ip;
  TimePoint expires_at;  // the session's deadline after this activity
};

// One rate limit of SPEC §2 applied to one subject: at most `limit.count` hits in any window of
// `limit.window` (a sliding window: each hit counts for exactly `window` after it was made).
struct RateKey {
  std::string key;  // names the limit and the subject, e.g. "otp_send_per_number:<hash>"; the
                    // store may keep it as it is (the caller hashes anything personal)
  RateLimit limit;
};

struct RateDecision {
  bool allowed = true;
  std::size_t refused_by = 0;  // when !allowed: the index in the request of a limit that is full
  Duration retry_after{0};     // when !allowed: how long until that limit has room (>= 1 ms)
};

// What checking a one-time code found.
enum class OtpCheck {
  accepted,  // the code matched: it is used up (deleted)
  wrong,     // it did not match: one attempt fewer is left
  burned,    // it did not match and that was the last attempt: the code is deleted
  none,      // no code is waiting for that key (never sent, expired, used or burned)
};

class SessionStore {
 public:
  virtual ~SessionStore() = default;

  // Creates the session and indexes its refresh hash, enforcing max_sessions in the same atomic
  // step: evicts (evict_oldest by created_at, evict_lru by last_activity) or, with deny, fails with
  // session_limit. Sessions past their deadline do not count and are ended as expired.
  virtual Task<CreateOutcome> create(CreateRequest request) = 0;

  // Looks the session up; when alive, moves last_activity to `now` (it may skip the write when it
  // moved less than a second ago) and last_ip to `ip`. A session past its deadline is ended
  // (reason expired) and answered as ended. A session of another user is unknown.
  virtual Task<Lookup> validate_and_touch(UserId user, SessionId id, TimePoint now,
                                          std::string ip) = 0;

  // Refresh-token rotation with reuse detection and the grace window (SPEC §3). Touches the
  // session like validate_and_touch.
  virtual Task<RotateOutcome> rotate_refresh(RotateRequest request) = 0;

  // Ends one live session of `user`. Returns it, or nullopt when it is not a live session of
  // that user. `ip`: the address of the request, for the outbox.
  virtual Task<std::optional<Session>> revoke(UserId user, SessionId id, EndReason reason,
                                              TimePoint now, std::string ip = {}) = 0;

  // Ends every live session of `user` except `keep` (when given). Returns the ended sessions.
  virtual Task<std::vector<Session>> revoke_all(UserId user, std::optional<SessionId> keep,
                                                EndReason reason, TimePoint now,
                                                std::string ip = {}) = 0;

  // The user's live sessions, most recent activity first. Does not touch them.
  virtual Task<std::vector<Session>> list(UserId user, TimePoint now) = 0;

  // The user a live session belongs to (for admin calls that name only the session).
  virtual Task<std::optional<UserId>> owner_of(SessionId id, TimePoint now) = 0;

  // Ends (reason expired) up to `max` sessions whose deadline is before `now` and returns them,
  // without scanning live sessions that are not due.
  virtual Task<std::vector<Session>> collect_expired(TimePoint now, std::size_t max) = 0;

  // Activity not yet reported by an earlier call; for the database's last_activity.
  virtual Task<std::vector<ActivityChange>> collect_activity(std::size_t max) = 0;

  // Number of live sessions (approximate for shared stores).
  virtual Task<std::size_t> live_count() = 0;

  // Answers when the store is reachable; store_unavailable otherwise.
  virtual Task<void> ping() = 0;

  // Loads sessions and tombstones at start (embedded mode). Not concurrent with other calls.
  virtual Result<void> restore(std::vector<RestoredSession> sessions,
                               std::vector<RestoredTombstone> tombstones) = 0;

  // --- the outbox (shared stores; SPEC §6) ---
  // True when every operation that changes a session also enqueues the change (a StoreChange) in
  // the same atomic step; the caller then does not write those changes through itself.
  virtual bool has_outbox() const { return false; }
  // Up to `max` entries for `consumer` (a name unique to one process), oldest first. One consumer
  // at a time takes entries: a lease of `claim_after` (at least a second), renewed by each call;
  // the others get none, and take over when it runs out or is released. The holder gets the
  // oldest unacknowledged entries (its own, and those a former holder left), and new ones only
  // when none is left: so changes reach the database in the order they were made.
  virtual Task<std::vector<OutboxEntry>> outbox_take(std::string consumer, std::size_t max,
                                                     Duration claim_after) {
    (void)consumer, (void)max, (void)claim_after;
    co_return std::vector<OutboxEntry>{};
  }
  // The entries are in the database: they are removed from the outbox.
  virtual Task<void> outbox_ack(std::vector<std::string> ids) {
    (void)ids;
    co_return Result<void>{};
  }
  // Gives the lease up (at shutdown), so that another consumer takes over at once.
  virtual Task<void> outbox_release(std::string consumer) {
    (void)consumer;
    co_return Result<void>{};
  }
  // Entries waiting in the outbox (taken or not).
  virtual Task<std::size_t> outbox_length() { co_return std::size_t{0}; }

  // --- rate limits (SPEC §2 [rate_limits]) ---
  // Atomically over every key (and every node of a shared store): when each limit has room, counts
  // one hit against each (unless `count` is false) and answers allowed; when one is full, counts
  // nothing and answers which one and when it has room again. Counters expire by themselves
  // (a key lives no longer than its window). Error: store_unavailable.
  virtual Task<RateDecision> rate_limit(std::vector<RateKey> keys, TimePoint now,
                                        bool count = true) = 0;

  // Takes one hit back from each key (its latest): for an attempt counted up front that turned
  // out not to be one that counts (a sign-in that succeeded). A key with no hit is left alone.
  // Error: store_unavailable.
  virtual Task<void> rate_refund(std::vector<RateKey> keys, TimePoint now) = 0;

  // --- one-time codes (SPEC §5 OTP sign-in) ---
  // Keeps `code_hash` (a keyed hash: the store never sees a code) for `key` until `expires_at`,
  // with `max_attempts` tries; replaces any code waiting for the same key. Error:
  // store_unavailable.
  virtual Task<void> otp_put(std::string key, std::string code_hash, TimePoint expires_at,
                             int max_attempts, TimePoint now) = 0;
  // Checks `code_hash` against the code waiting for `key`, atomically (two checks racing on one
  // code accept it at most once). Error: store_unavailable.
  virtual Task<OtpCheck> otp_check(std::string key, std::string code_hash, TimePoint now) = 0;

  // --- leases: one holder at a time for a background job of many nodes (webhook delivery) ---
  // True when `holder` holds the lease `name` now: it was free, had run out, or `holder` already
  // held it; the lease then runs until now + ttl. False when another holder's lease is running.
  // Error: store_unavailable.
  virtual Task<bool> lease_acquire(std::string name, std::string holder, Duration ttl,
                                   TimePoint now) = 0;
  // Gives the lease up when `holder` holds it (nothing otherwise).
  virtual Task<void> lease_release(std::string name, std::string holder) = 0;

  // Configuration problems of the backing service found at start (for the log and /readyz), e.g.
  // a Redis that may evict keys or persists nothing. Empty when there is nothing to say.
  virtual std::vector<std::string> warnings() const { return {}; }

  // Store-specific Prometheus series (complete "# HELP/# TYPE/value" lines), for /metrics.
  virtual std::string metrics_text() const { return {}; }
};

}  // namespace sessiond::store
