// The in-process SessionStore (store.url = "memory://"): sharded by user, one mutex per shard,
// expiry by a per-shard deadline heap (no scan of live sessions on the request path), tombstones
// kept for `tombstone_ttl` after a session ends.
#pragma once

#include "store/session_store.hpp"

#include <memory>

namespace sessiond::store {

struct MemoryStoreOptions {
  Duration tombstone_ttl{std::chrono::hours{1}};  // at least tokens.access_ttl
  std::size_t shards = 64;
};

class MemorySessionStore final : public SessionStore {
 public:
  explicit MemorySessionStore(MemoryStoreOptions options = {});
  ~MemorySessionStore() override;

  Task<CreateOutcome> create(CreateRequest request) override;
  Task<Lookup> validate_and_touch(UserId user, SessionId id, TimePoint now,
                                  std::string ip) override;
  Task<RotateOutcome> rotate_refresh(RotateRequest request) override;
  Task<std::optional<Session>> revoke(UserId user, SessionId id, EndReason reason,
                                      TimePoint now) override;
  Task<std::vector<Session>> revoke_all(UserId user, std::optional<SessionId> keep,
                                        EndReason reason, TimePoint now) override;
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
