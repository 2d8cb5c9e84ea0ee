// The in-process SessionStore (store.url = "memory://"): sharded by user, one mutex per shard,
// expiry by a per-shard deadline heap (no scan of live sessions on the request path), tombstones
// kept for `tombstone_ttl` after a session ends.
//
// Beyond the SessionStore contract:
// - A session found past its deadline on the request path (create, validate_and_touch,
//   rotate_refresh, revoke, revoke_all) is ended there and also reported by the next
//   collect_expired call, so the database learns of every expiry. At most
//   `max_unreported_expired` such sessions wait per shard; older ones are dropped from the report.
// - Tombstones and refresh-token hashes past their lifetime are purged incrementally by
//   collect_expired (and a little by create), a bounded number of hash buckets per call.
// - Strings that many sessions share (role, attributes, device_info, user_agent) are interned.
//   Measured with mallinfo2 (tests/store/memory_session_store_test.cpp): about 470 bytes per live
//   session with every index, one session per user.
// - Rate limits, one-time codes and leases live in maps of their own (sharded, apart from the
//   sessions' locks). What has run out (a limit's hits past their window, an expired or used code,
//   a lease past its end) is dropped when its key is next used, and swept incrementally by
//   collect_expired and a little by each call that adds one, like the tombstones.
#pragma once

#include <memory>

#include "store/session_store.hpp"

namespace sessiond::store {

struct MemoryStoreOptions {
  Duration tombstone_ttl{std::chrono::hours{1}};  // at least tokens.access_ttl
  std::size_t shards = 64;
  std::size_t max_unreported_expired = 1024;  // per shard; see above
};

class MemorySessionStore final : public SessionStore {
 public:
  explicit MemorySessionStore(MemoryStoreOptions options = {});
  ~MemorySessionStore() override;

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
  Task<void> ping() override;
  Result<void> restore(std::vector<RestoredSession> sessions,
                       std::vector<RestoredTombstone> tombstones) override;
  // Error: invalid_request for a limit with a count below 1 or a window not above 0.
  Task<RateDecision> rate_limit(std::vector<RateKey> keys, TimePoint now,
                                bool count = true) override;
  Task<void> rate_refund(std::vector<RateKey> keys, TimePoint now) override;
  // Error: invalid_request for max_attempts below 1.
  Task<void> otp_put(std::string key, std::string code_hash, TimePoint expires_at, int max_attempts,
                     TimePoint now) override;
  Task<OtpCheck> otp_check(std::string key, std::string code_hash, TimePoint now) override;
  // Error: invalid_request for a ttl not above 0.
  Task<bool> lease_acquire(std::string name, std::string holder, Duration ttl,
                           TimePoint now) override;
  Task<void> lease_release(std::string name, std::string holder) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sessiond::store
