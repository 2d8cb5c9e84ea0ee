// The shared SessionStore (store.url = "redis://..."): any number of sessiond nodes on one Redis 7
// behave like one embedded store. Each operation on a user's sessions is one Lua script call on
// that user's hash slot (atomic, one round trip, Redis Cluster-safe); docs/deployment.md shows
// the key layout.
//
// Beyond the SessionStore contract:
// - rotate_refresh finds the token's keys through RotateRequest::user (refresh tokens name their
//   user); a request with user 0, or naming another user than the token's, answers `unknown`.
// - A session found past its deadline on the request path is ended there and reported by a later
//   collect_expired call (exactly once, whichever node collects).
// - collect_activity reports the touches made through this object (this node) only: each node
//   reports what it saw, at no Redis cost on the verify path.
// - live_count counts the sessions scheduled in `<p>:exp`: live ones, and ones past their
//   deadline that collect_expired has not ended yet (like the memory store).
// - Errors: store_unavailable when Redis cannot be reached or cannot serve (loading, out of
//   memory, read only); internal for a reply this code does not expect. Nothing is granted
//   without Redis's answer.
// All member functions may be called concurrently, from any io_context.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "store/redis/redis_client.hpp"
#include "store/session_store.hpp"

namespace sessiond::store {

struct RedisStoreOptions {
  std::string prefix = "sd";                      // every key starts with "<prefix>:"
  Duration tombstone_ttl{std::chrono::hours{1}};  // at least tokens.access_ttl
  // Every change to a session is also added to the stream "<prefix>:outbox" by the script that
  // makes it (SPEC §6), for OutboxWriter to move into the database.
  bool outbox = false;
};

class RedisSessionStore final : public SessionStore {
 public:
  RedisSessionStore(std::shared_ptr<redis::RedisClient> client, RedisStoreOptions options = {});
  ~RedisSessionStore() override;

  Task<CreateOutcome> create(CreateRequest request) override;
  Task<Lookup> validate_and_touch(UserId user, SessionId id, TimePoint now,
                                  std::string ip) override;
  Task<RotateOutcome> rotate_refresh(RotateRequest request) override;
  Task<std::optional<Session>> revoke(UserId user, SessionId id, EndReason reason, TimePoint now,
                                      std::string ip = {}) override;
  Task<std::vector<Session>> revoke_all(UserId user, std::optional<SessionId> keep,
                                        EndReason reason, TimePoint now,
                                        std::string ip = {}) override;
  Task<std::vector<Session>> list(UserId user, TimePoint now) override;
  Task<std::optional<UserId>> owner_of(SessionId id, TimePoint now) override;
  Task<std::vector<Session>> collect_expired(TimePoint now, std::size_t max) override;
  Task<std::vector<ActivityChange>> collect_activity(std::size_t max) override;
  Task<std::size_t> live_count() override;
  bool has_outbox() const override;
  // The lease ("<prefix>:outbox:lease", a script); then XAUTOCLAIM of every pending entry and
  // XREADGROUP of the oldest pending ones (one round trip), and only when none is pending
  // XREADGROUP of new ones (group "writers", created when missing).
  Task<std::vector<OutboxEntry>> outbox_take(std::string consumer, std::size_t max,
                                             Duration claim_after) override;
  // DEL of the lease when `consumer` holds it.
  Task<void> outbox_release(std::string consumer) override;
  // XACK and XDEL.
  Task<void> outbox_ack(std::vector<std::string> ids) override;
  Task<std::size_t> outbox_length() override;
  // One script call each, on keys of their own: "<prefix>:rl:<key>" (a sorted set of hit times),
  // "<prefix>:otp:<key>" (a hash), "<prefix>:lease:<name>" (a string); scripts.cpp shows the
  // layout. The callers' `now` decides; each key's TTL only lets Redis drop what is over.
  // Errors as above, and invalid_request for a limit with a count below 1 or a window not above
  // 0, max_attempts below 1 or a lease ttl not above 0.
  Task<RateDecision> rate_limit(std::vector<RateKey> keys, TimePoint now,
                                bool count = true) override;
  Task<void> rate_refund(std::vector<RateKey> keys, TimePoint now) override;
  Task<void> otp_put(std::string key, std::string code_hash, TimePoint expires_at, int max_attempts,
                     TimePoint now) override;
  Task<OtpCheck> otp_check(std::string key, std::string code_hash, TimePoint now) override;
  Task<bool> lease_acquire(std::string name, std::string holder, Duration ttl,
                           TimePoint now) override;
  Task<void> lease_release(std::string name, std::string holder) override;
  // PING; the first answered ping also runs check_configuration() when it has not run yet.
  Task<void> ping() override;
  // Writes each session (without the limit) and tombstone through the scripts. The TTLs of a
  // restored item are counted from its own last_activity / ended_at (restore takes no `now`).
  // Runs on a private io_context: never call it from an io_context thread.
  Result<void> restore(std::vector<RestoredSession> sessions,
                       std::vector<RestoredTombstone> tombstones) override;

  // The warnings of the latest check_configuration() (empty before the first).
  std::vector<std::string> warnings() const override;
  // sessiond_redis_commands_written_total and sessiond_redis_writes_total: their ratio is how many
  // commands each socket write carried (pipelining).
  std::string metrics_text() const override;

  // Reads maxmemory-policy and the persistence settings (SPEC §7) and keeps the warnings for
  // warnings(); returns them. Error: store_unavailable.
  Task<std::vector<std::string>> check_configuration();

  // The same check on any client: a warning when maxmemory-policy is not noeviction, when
  // neither AOF nor RDB is on, or when CONFIG GET is refused (managed Redis). Error:
  // store_unavailable.
  static Task<std::vector<std::string>> check_configuration(redis::RedisClient& client);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sessiond::store
