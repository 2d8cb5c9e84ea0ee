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

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sessiond::store
