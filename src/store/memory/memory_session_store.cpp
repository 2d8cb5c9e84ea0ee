#include "store/memory/memory_session_store.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

// Lock order: a user shard, then (one at a time, briefly) an id shard or a refresh shard; pool
// shards are leaves (taken under a user shard only, nothing taken under them). No code takes a
// user shard while it holds any other lock, and none holds two locks of one kind, so the order
// can never be reversed. rotate_refresh finds the user through the refresh
// shard, releases it, takes the user shard and reads the refresh entry again.
//
// Rate limits, one-time codes and leases have shards of their own, never taken together with a
// session lock: rate_limit takes the rate shards of its keys in index order (so two calls never
// wait on each other in a cycle); everything else takes one of them at a time.

namespace sessiond::store {
namespace {

constexpr Duration kTouchResolution = std::chrono::seconds{1};
constexpr std::size_t kPoolShards = 16;
constexpr std::size_t kSweepBucketsPerCollect = 256;
constexpr std::size_t kSweepBucketsPerCreate = 2;
constexpr TokenHash kNoHash{};

// Immutable strings shared by every session that holds the same text, counted by reference.
class StringPool {
  struct Shard;
  struct Node {
    std::string text;
    Shard* shard = nullptr;
    std::size_t refs = 0;
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string_view, std::unique_ptr<Node>> nodes;  // keys view Node::text
  };

 public:
  class Ref {
   public:
    Ref() = default;
    Ref(Ref&& other) noexcept : node_(std::exchange(other.node_, nullptr)) {}
    Ref& operator=(Ref&& other) noexcept {
      if (this != &other) {
        reset();
        node_ = std::exchange(other.node_, nullptr);
      }
      return *this;
    }
    Ref(const Ref&) = delete;
    Ref& operator=(const Ref&) = delete;
    ~Ref() { reset(); }

    std::string_view view() const { return node_ ? std::string_view(node_->text) : ""; }
    std::string str() const { return std::string(view()); }

   private:
    friend class StringPool;
    explicit Ref(Node* node) : node_(node) {}
    void reset() noexcept {
      if (node_ == nullptr) return;
      Shard& shard = *node_->shard;
      std::lock_guard lock(shard.mu);
      if (--node_->refs == 0) shard.nodes.erase(shard.nodes.find(std::string_view(node_->text)));
      node_ = nullptr;
    }
    Node* node_ = nullptr;
  };

  // The empty string is not pooled: its Ref holds nothing.
  Ref intern(std::string_view text) {
    if (text.empty()) return {};
    Shard& shard = shards_[std::hash<std::string_view>{}(text) % kPoolShards];
    std::lock_guard lock(shard.mu);
    auto it = shard.nodes.find(text);
    if (it == shard.nodes.end()) {
      auto node = std::make_unique<Node>();
      node->text = std::string(text);
      node->shard = &shard;
      std::string_view key = node->text;
      it = shard.nodes.emplace(key, std::move(node)).first;
    }
    ++it->second->refs;
    return Ref(it->second.get());
  }

 private:
  std::array<Shard, kPoolShards> shards_;
};

// The latest rotation of a session, kept only for the grace window: the answer to repeat when the
// token it replaced is presented again.
struct Grace {
  TokenHash predecessor{};
  TokenHash successor{};
  std::string sealed_successor;
  TimePoint rotated_at;
  TimePoint until;
};

// A live session as held in memory (the user id is the key it is filed under).
struct Record {
  SessionId id;
  TokenHash refresh{};  // current refresh-token hash; kNoHash when it has none
  TimePoint created_at;
  TimePoint last_activity;
  TimePoint absolute_expires_at;
  TimePoint scheduled_at;  // check_at of this session's one expiry-heap entry
  Duration idle_timeout{0};
  StringPool::Ref role;
  StringPool::Ref attributes;
  StringPool::Ref device_info;
  StringPool::Ref user_agent;
  std::string ip_address;
  std::string last_ip;
  std::unique_ptr<Grace> grace;
  AuthMethod auth_method = AuthMethod::password;
  bool dirty = false;  // in its shard's dirty list, activity not yet collected

  TimePoint expires_at() const {
    return std::min(last_activity + idle_timeout, absolute_expires_at);
  }

  Session to_session(UserId user) const {
    Session s;
    s.id = id;
    s.user_id = user;
    s.role = role.str();
    s.attributes = attributes.str();
    s.auth_method = auth_method;
    s.device_info = device_info.str();
    s.ip_address = ip_address;
    s.last_ip = last_ip;
    s.user_agent = user_agent.str();
    s.created_at = created_at;
    s.last_activity = last_activity;
    s.absolute_expires_at = absolute_expires_at;
    s.idle_timeout = idle_timeout;
    return s;
  }
};

struct ExpiryCheck {
  TimePoint at;
  UserId user = 0;
  SessionId id;
};

// std::push_heap builds a max-heap: "later" on top would be wrong, so invert.
struct LaterCheck {
  bool operator()(const ExpiryCheck& a, const ExpiryCheck& b) const { return a.at > b.at; }
};

struct Tombstone {
  UserId user = 0;
  TimePoint ended_at;
  EndReason reason = EndReason::expired;
};

struct UnreportedExpiry {
  UserId user = 0;
  Record record;
};

struct UserShard {
  std::mutex mu;
  std::unordered_map<UserId, std::vector<Record>> users;  // live sessions; no empty vectors
  std::unordered_map<SessionId, Tombstone, SessionIdHash> tombstones;
  std::vector<ExpiryCheck> expiry;  // min-heap on `at` (LaterCheck)
  std::vector<std::pair<UserId, SessionId>> dirty;
  std::deque<UnreportedExpiry> unreported_expired;
  std::size_t live = 0;
  std::size_t tombstone_cursor = 0;  // next bucket to sweep
};

struct IdShard {
  std::mutex mu;
  std::unordered_map<SessionId, UserId, SessionIdHash> owners;  // live sessions only
};

// One refresh-token hash: the current one of a session, or one rotated out of it. `prev` links a
// session's hashes from the newest to the oldest, so ending the session can shorten them all.
struct RefreshEntry {
  TokenHash prev{};  // kNoHash for the first
  SessionId session;
  UserId user = 0;
  TimePoint expires_at;  // the token's own expiry, or the end of its session's tombstone
};

struct RefreshShard {
  std::mutex mu;
  std::unordered_map<TokenHash, RefreshEntry, TokenHashHash> entries;
  std::size_t cursor = 0;  // next bucket to sweep
};

// --- rate limits, one-time codes and leases ---

// One limit's sliding-window log: the times of its hits, each counting for `window` after it.
struct RateLog {
  std::vector<TimePoint> hits;  // ascending
  TimePoint until;              // when the latest hit stops counting: nothing counts from then
};

struct OtpEntry {
  std::string code_hash;
  TimePoint expires_at;
  int attempts_left = 0;
};

struct Lease {
  std::string holder;
  TimePoint until;
};

// Entries by their key, each with a time after which it is dead and may be swept.
template <class Entry>
struct KeyedShard {
  std::mutex mu;
  std::unordered_map<std::string, Entry> entries;
  std::size_t cursor = 0;  // next bucket to sweep
};

bool is_dead(const RateLog& log, TimePoint now) { return now >= log.until; }
bool is_dead(const OtpEntry& otp, TimePoint now) { return now >= otp.expires_at; }
bool is_dead(const Lease& lease, TimePoint now) { return now >= lease.until; }

std::size_t index_of(const std::vector<Record>& sessions, const SessionId& id) {
  for (std::size_t i = 0; i < sessions.size(); ++i) {
    if (sessions[i].id == id) return i;
  }
  return sessions.size();
}

// Visits `count` buckets of `map` from `cursor` and erases the entries `dead` selects.
template <class Map, class Dead>
void sweep_buckets(Map& map, std::size_t& cursor, std::size_t count, Dead dead) {
  if (map.empty()) return;
  const std::size_t buckets = map.bucket_count();
  std::vector<typename Map::key_type> doomed;
  for (std::size_t k = 0; k < std::min(count, buckets); ++k) {
    const std::size_t b = cursor++ % buckets;
    for (auto it = map.cbegin(b); it != map.cend(b); ++it) {
      if (dead(it->second)) doomed.push_back(it->first);
    }
  }
  for (const auto& key : doomed) map.erase(key);
}

template <class Entry>
void sweep_dead_locked(KeyedShard<Entry>& shard, TimePoint now, std::size_t buckets) {
  sweep_buckets(shard.entries, shard.cursor, buckets,
                [now](const Entry& e) { return is_dead(e, now); });
}

template <class Entry>
void sweep_dead(KeyedShard<Entry>& shard, TimePoint now, std::size_t buckets) {
  std::lock_guard lock(shard.mu);
  sweep_dead_locked(shard, now, buckets);
}

// The shard of a rate-limit or one-time-code key. The maps hash the same string: mix the hash so
// that a shard's keys still spread over its map's buckets.
std::size_t shard_index(std::string_view key, std::size_t shards) {
  const std::uint64_t hash = std::hash<std::string_view>{}(key);
  return static_cast<std::size_t>((hash * 0x9E3779B97F4A7C15ULL) >> 32) % shards;
}

}  // namespace

struct MemorySessionStore::Impl {
  explicit Impl(MemoryStoreOptions o)
      : options(o),
        user_shards(std::max<std::size_t>(o.shards, 1)),
        id_shards(std::max<std::size_t>(o.shards, 1)),
        refresh_shards(std::max<std::size_t>(o.shards, 1)),
        rate_shards(std::max<std::size_t>(o.shards, 1)),
        otp_shards(std::max<std::size_t>(o.shards, 1)) {}

  MemoryStoreOptions options;
  StringPool pool;  // declared first: destroyed after the records that hold its strings
  std::vector<UserShard> user_shards;
  std::vector<IdShard> id_shards;
  std::vector<RefreshShard> refresh_shards;
  std::vector<KeyedShard<RateLog>> rate_shards;
  std::vector<KeyedShard<OtpEntry>> otp_shards;
  KeyedShard<Lease> leases;  // a few names (background jobs): one shard
  std::atomic<std::size_t> live{0};
  std::atomic<std::size_t> expiry_cursor{0};
  std::atomic<std::size_t> activity_cursor{0};

  UserShard& user_shard(UserId user) {
    const auto mixed = static_cast<std::uint64_t>(user) * 0x9E3779B97F4A7C15ULL;
    return user_shards[(mixed >> 32) % user_shards.size()];
  }
  // The maps hash on the first bytes; the shards take a byte they do not use.
  IdShard& id_shard(const SessionId& id) { return id_shards[id.bytes[15] % id_shards.size()]; }
  RefreshShard& refresh_shard(const TokenHash& h) {
    return refresh_shards[h[31] % refresh_shards.size()];
  }

  // --- the id and refresh maps (each call takes and releases one shard lock) ---

  bool add_owner(const SessionId& id, UserId user) {
    IdShard& shard = id_shard(id);
    std::lock_guard lock(shard.mu);
    return shard.owners.try_emplace(id, user).second;
  }
  void remove_owner(const SessionId& id) {
    IdShard& shard = id_shard(id);
    std::lock_guard lock(shard.mu);
    shard.owners.erase(id);
  }
  std::optional<UserId> find_owner(const SessionId& id) {
    IdShard& shard = id_shard(id);
    std::lock_guard lock(shard.mu);
    auto it = shard.owners.find(id);
    if (it == shard.owners.end()) return std::nullopt;
    return it->second;
  }

  bool add_refresh(const TokenHash& h, const RefreshEntry& entry) {
    RefreshShard& shard = refresh_shard(h);
    std::lock_guard lock(shard.mu);
    return shard.entries.try_emplace(h, entry).second;
  }
  std::optional<RefreshEntry> find_refresh(const TokenHash& h) {
    RefreshShard& shard = refresh_shard(h);
    std::lock_guard lock(shard.mu);
    auto it = shard.entries.find(h);
    if (it == shard.entries.end()) return std::nullopt;
    return it->second;
  }
  // The session ended at `until`: its hashes answer `ended` as long as its tombstone, then go.
  void retire_refresh_chain(TokenHash h, TimePoint until) {
    while (h != kNoHash) {
      RefreshShard& shard = refresh_shard(h);
      std::lock_guard lock(shard.mu);
      auto it = shard.entries.find(h);
      if (it == shard.entries.end()) return;  // older ones expired before it: swept already
      it->second.expires_at = std::min(it->second.expires_at, until);
      h = it->second.prev;
    }
  }

  // --- a user shard's contents (callers hold shard.mu) ---

  static std::vector<Record>* sessions_of(UserShard& shard, UserId user) {
    auto it = shard.users.find(user);
    return it == shard.users.end() ? nullptr : &it->second;
  }
  static void drop_user_if_empty(UserShard& shard, UserId user) {
    auto it = shard.users.find(user);
    if (it != shard.users.end() && it->second.empty()) shard.users.erase(it);
  }

  Record make_record(const Session& in, const TokenHash& refresh) {
    Record r;
    r.id = in.id;
    r.refresh = refresh;
    r.created_at = in.created_at;
    r.last_activity = in.last_activity;
    r.absolute_expires_at = in.absolute_expires_at;
    r.idle_timeout = in.idle_timeout;
    r.role = pool.intern(in.role);
    r.attributes = pool.intern(in.attributes);
    r.device_info = pool.intern(in.device_info);
    r.user_agent = pool.intern(in.user_agent);
    r.ip_address = in.ip_address;
    r.last_ip = in.last_ip.empty() ? in.ip_address : in.last_ip;
    r.auth_method = in.auth_method;
    r.scheduled_at = r.expires_at();
    return r;
  }

  void add_record_locked(UserShard& shard, UserId user, Record record) {
    shard.expiry.push_back({record.scheduled_at, user, record.id});
    std::push_heap(shard.expiry.begin(), shard.expiry.end(), LaterCheck{});
    auto& sessions = shard.users[user];
    // Most users hold a handful of sessions: grow one at a time while the vector is small.
    if (sessions.size() == sessions.capacity() && sessions.size() < 8) {
      sessions.reserve(sessions.size() + 1);
    }
    sessions.push_back(std::move(record));
    ++shard.live;
    live.fetch_add(1, std::memory_order_relaxed);
  }

  // Removes sessions[i] from every index and leaves a tombstone. The caller drops the user's
  // entry when it becomes empty (after it is done with `sessions`).
  Record take_locked(UserShard& shard, UserId user, std::vector<Record>& sessions, std::size_t i,
                     EndReason reason, TimePoint now) {
    Record r = std::move(sessions[i]);
    if (i + 1 != sessions.size()) sessions[i] = std::move(sessions.back());
    sessions.pop_back();
    --shard.live;
    live.fetch_sub(1, std::memory_order_relaxed);
    remove_owner(r.id);
    retire_refresh_chain(r.refresh, now);
    shard.tombstones.insert_or_assign(r.id, Tombstone{user, now, reason});
    r.grace.reset();
    return r;
  }

  Session end_locked(UserShard& shard, UserId user, std::vector<Record>& sessions, std::size_t i,
                     EndReason reason, TimePoint now) {
    return take_locked(shard, user, sessions, i, reason, now).to_session(user);
  }

  // A session found past its deadline outside collect_expired: ended now, reported later.
  void expire_locked(UserShard& shard, UserId user, std::vector<Record>& sessions, std::size_t i,
                     TimePoint now) {
    Record r = take_locked(shard, user, sessions, i, EndReason::expired, now);
    if (options.max_unreported_expired == 0) return;
    if (shard.unreported_expired.size() >= options.max_unreported_expired) {
      shard.unreported_expired.pop_front();
    }
    shard.unreported_expired.push_back({user, std::move(r)});
  }

  void expire_due_locked(UserShard& shard, UserId user, std::vector<Record>& sessions,
                         TimePoint now) {
    for (std::size_t i = sessions.size(); i-- > 0;) {
      if (now >= sessions[i].expires_at()) expire_locked(shard, user, sessions, i, now);
    }
  }

  static void touch_locked(UserShard& shard, UserId user, Record& r, TimePoint now,
                           std::string_view ip) {
    bool changed = false;
    if (now - r.last_activity >= kTouchResolution) {
      r.last_activity = now;
      changed = true;
    }
    if (!ip.empty() && r.last_ip != ip) {
      r.last_ip = std::string(ip);
      changed = true;
    }
    if (changed && !r.dirty) {
      r.dirty = true;
      shard.dirty.emplace_back(user, r.id);
    }
    if (r.grace && now >= r.grace->until) r.grace.reset();
  }

  Lookup tombstone_lookup(UserShard& shard, UserId user, const SessionId& id, TimePoint now) {
    auto it = shard.tombstones.find(id);
    if (it == shard.tombstones.end() || it->second.user != user ||
        now >= it->second.ended_at + options.tombstone_ttl) {
      return Lookup{};
    }
    return Lookup{Found::ended, {}, it->second.reason};
  }

  void sweep_tombstones_locked(UserShard& shard, TimePoint now, std::size_t buckets) {
    const Duration ttl = options.tombstone_ttl;
    sweep_buckets(shard.tombstones, shard.tombstone_cursor, buckets,
                  [&](const Tombstone& t) { return now >= t.ended_at + ttl; });
  }

  void sweep_refresh(RefreshShard& shard, TimePoint now, std::size_t buckets) {
    std::lock_guard lock(shard.mu);
    sweep_buckets(
        shard.entries, shard.cursor, buckets,
        // Kept a tombstone lifetime past their end, so that an expired or ended
        // session's refresh token still answers why it stopped working.
        [&](const RefreshEntry& e) { return now >= e.expires_at + options.tombstone_ttl; });
  }

  // Entries of ended sessions stay in the heap until due; rebuild it when they dominate.
  static void compact_expiry_locked(UserShard& shard) {
    if (shard.expiry.size() <= 2 * shard.live + 64) return;
    std::vector<ExpiryCheck> rebuilt;
    rebuilt.reserve(shard.live + shard.live / 4);
    for (const auto& [user, sessions] : shard.users) {
      for (const Record& r : sessions) {
        rebuilt.push_back({r.scheduled_at, user, r.id});
        if (r.grace) rebuilt.push_back({r.grace->until, user, r.id});
      }
    }
    std::make_heap(rebuilt.begin(), rebuilt.end(), LaterCheck{});
    shard.expiry = std::move(rebuilt);
  }

  // --- operations ---

  Result<CreateOutcome> create(const CreateRequest& request) {
    if (request.max_sessions < 1) {
      return Error(Errc::invalid_request, "max_sessions must be at least 1");
    }
    const UserId user = request.session.user_id;
    UserShard& shard = user_shard(user);
    std::lock_guard lock(shard.mu);
    auto result = create_locked(shard, request);
    drop_user_if_empty(shard, user);
    sweep_tombstones_locked(shard, request.session.created_at, kSweepBucketsPerCreate);
    return result;
  }

  Result<CreateOutcome> create_locked(UserShard& shard, const CreateRequest& request) {
    const Session& in = request.session;
    const UserId user = in.user_id;
    const TimePoint now = in.created_at;
    const auto max = static_cast<std::size_t>(request.max_sessions);

    std::vector<Record>* sessions = sessions_of(shard, user);
    if (sessions != nullptr) expire_due_locked(shard, user, *sessions, now);
    const std::size_t count = sessions == nullptr ? 0 : sessions->size();
    if (request.on_limit == OnLimit::deny && count >= max) {
      return Error(Errc::session_limit, "the user has as many sessions as the role allows");
    }
    if (!add_owner(in.id, user)) return Error(Errc::internal, "duplicate session id");
    if (request.refresh_hash != kNoHash) {
      RefreshEntry entry{kNoHash, in.id, user, request.refresh_expires_at};
      if (!add_refresh(request.refresh_hash, entry)) {
        remove_owner(in.id);
        return Error(Errc::internal, "duplicate refresh-token hash");
      }
      sweep_refresh(refresh_shard(request.refresh_hash), now, kSweepBucketsPerCreate);
    }

    CreateOutcome out;
    while (sessions != nullptr && sessions->size() >= max) {
      auto earlier = [&](const Record& a, const Record& b) {
        return request.on_limit == OnLimit::evict_lru ? a.last_activity < b.last_activity
                                                      : a.created_at < b.created_at;
      };
      auto victim = std::min_element(sessions->begin(), sessions->end(), earlier);
      out.evicted.push_back(end_locked(shard, user, *sessions,
                                       static_cast<std::size_t>(victim - sessions->begin()),
                                       EndReason::max_sessions_exceeded, now));
    }
    add_record_locked(shard, user, make_record(in, request.refresh_hash));
    return out;
  }

  Lookup validate_and_touch(UserId user, const SessionId& id, TimePoint now, std::string_view ip) {
    UserShard& shard = user_shard(user);
    std::lock_guard lock(shard.mu);
    std::vector<Record>* sessions = sessions_of(shard, user);
    const std::size_t i = sessions == nullptr ? 0 : index_of(*sessions, id);
    if (sessions == nullptr || i == sessions->size()) return tombstone_lookup(shard, user, id, now);
    Record& r = (*sessions)[i];
    if (now >= r.expires_at()) {
      expire_locked(shard, user, *sessions, i, now);
      drop_user_if_empty(shard, user);
      return Lookup{Found::ended, {}, EndReason::expired};
    }
    touch_locked(shard, user, r, now, ip);
    return Lookup{Found::alive, r.to_session(user), EndReason::expired};
  }

  Result<RotateOutcome> rotate_refresh(const RotateRequest& request) {
    std::optional<RefreshEntry> entry = find_refresh(request.presented);
    if (!entry) return RotateOutcome{};
    UserShard& shard = user_shard(entry->user);
    std::lock_guard lock(shard.mu);
    // Read again under the user's lock: every change to this session's hashes happens under it,
    // except the sweep, which may have removed an expired one in between.
    entry = find_refresh(request.presented);
    if (!entry) return RotateOutcome{};
    auto result = rotate_locked(shard, *entry, request);
    drop_user_if_empty(shard, entry->user);
    return result;
  }

  Result<RotateOutcome> rotate_locked(UserShard& shard, const RefreshEntry& entry,
                                      const RotateRequest& request) {
    const UserId user = entry.user;
    const TimePoint now = request.now;
    RotateOutcome out;
    std::vector<Record>* sessions = sessions_of(shard, user);
    const std::size_t i = sessions == nullptr ? 0 : index_of(*sessions, entry.session);
    if (sessions == nullptr || i == sessions->size()) {
      Lookup ended = tombstone_lookup(shard, user, entry.session, now);
      if (ended.found == Found::ended) {
        out.kind = Rotation::ended;
        out.reason = ended.reason;
      }
      return out;
    }
    Record& r = (*sessions)[i];
    if (now >= r.expires_at()) {
      expire_locked(shard, user, *sessions, i, now);
      out.kind = Rotation::ended;
      out.reason = EndReason::expired;
      return out;
    }
    if (now >= entry.expires_at) return out;  // this token expired; its session lives on

    const bool in_grace = r.grace && r.grace->predecessor == request.presented &&
                          now - r.grace->rotated_at < request.grace && now < r.grace->until;
    if (request.limit.count > 0 && (r.refresh == request.presented || in_grace)) {
      // Rate shards are only ever locked after a user shard (never before one): no deadlock.
      auto decision = rate_limit(
          {RateKey{"refresh_per_session:" + r.id.to_string(), request.limit}}, now, true);
      if (!decision) return decision.error();
      if (!decision->allowed) {
        out.kind = Rotation::rate_limited;
        out.retry_after = decision->retry_after;
        return out;
      }
    }

    if (r.refresh == request.presented) {
      RefreshEntry successor{request.presented, r.id, user, request.successor_expires_at};
      if (!add_refresh(request.successor, successor)) {
        return Error(Errc::internal, "duplicate refresh-token hash");
      }
      r.refresh = request.successor;
      r.grace = std::make_unique<Grace>(Grace{request.presented, request.successor,
                                              request.sealed_successor, now, now + request.grace});
      // A second heap entry, so collect_expired drops the sealed successor when the grace ends.
      shard.expiry.push_back({r.grace->until, user, r.id});
      std::push_heap(shard.expiry.begin(), shard.expiry.end(), LaterCheck{});
      touch_locked(shard, user, r, now, request.ip);
      out.kind = Rotation::rotated;
      out.rotated_at = now;
      out.successor = request.successor;
      out.sealed_successor = request.sealed_successor;
      out.session = r.to_session(user);
      return out;
    }

    // `presented` was rotated out. Its successor is current exactly when it is the predecessor
    // of the latest rotation, the one whose answer `grace` holds.
    if (in_grace) {
      out.kind = Rotation::grace;
      out.rotated_at = r.grace->rotated_at;
      out.successor = r.grace->successor;
      out.sealed_successor = r.grace->sealed_successor;
      touch_locked(shard, user, r, now, request.ip);
      out.session = r.to_session(user);
      return out;
    }

    out.kind = Rotation::reuse;
    out.reason = EndReason::refresh_token_reuse;
    out.session = end_locked(shard, user, *sessions, i, EndReason::refresh_token_reuse, now);
    return out;
  }

  std::optional<Session> revoke(UserId user, const SessionId& id, EndReason reason, TimePoint now) {
    UserShard& shard = user_shard(user);
    std::lock_guard lock(shard.mu);
    std::vector<Record>* sessions = sessions_of(shard, user);
    if (sessions == nullptr) return std::nullopt;
    const std::size_t i = index_of(*sessions, id);
    if (i == sessions->size()) return std::nullopt;
    std::optional<Session> ended;
    if (now >= (*sessions)[i].expires_at()) {
      expire_locked(shard, user, *sessions, i, now);
    } else {
      ended = end_locked(shard, user, *sessions, i, reason, now);
    }
    drop_user_if_empty(shard, user);
    return ended;
  }

  std::vector<Session> revoke_all(UserId user, const std::optional<SessionId>& keep,
                                  EndReason reason, TimePoint now) {
    UserShard& shard = user_shard(user);
    std::lock_guard lock(shard.mu);
    std::vector<Session> ended;
    std::vector<Record>* sessions = sessions_of(shard, user);
    if (sessions == nullptr) return ended;
    // Backwards: take_locked moves the last record into the freed slot, already visited.
    for (std::size_t i = sessions->size(); i-- > 0;) {
      Record& r = (*sessions)[i];
      if (now >= r.expires_at()) {
        expire_locked(shard, user, *sessions, i, now);
      } else if (!keep || r.id != *keep) {
        ended.push_back(end_locked(shard, user, *sessions, i, reason, now));
      }
    }
    drop_user_if_empty(shard, user);
    return ended;
  }

  std::vector<Session> list(UserId user, TimePoint now) {
    std::vector<Session> out;
    {
      UserShard& shard = user_shard(user);
      std::lock_guard lock(shard.mu);
      std::vector<Record>* sessions = sessions_of(shard, user);
      if (sessions == nullptr) return out;
      for (const Record& r : *sessions) {
        if (now < r.expires_at()) out.push_back(r.to_session(user));
      }
    }
    std::sort(out.begin(), out.end(), [](const Session& a, const Session& b) {
      if (a.last_activity != b.last_activity) return a.last_activity > b.last_activity;
      if (a.created_at != b.created_at) return a.created_at > b.created_at;
      return a.id < b.id;
    });
    return out;
  }

  std::optional<UserId> owner_of(const SessionId& id, TimePoint now) {
    const std::optional<UserId> user = find_owner(id);
    if (!user) return std::nullopt;
    UserShard& shard = user_shard(*user);
    std::lock_guard lock(shard.mu);
    std::vector<Record>* sessions = sessions_of(shard, *user);
    if (sessions == nullptr) return std::nullopt;
    const std::size_t i = index_of(*sessions, id);
    if (i == sessions->size() || now >= (*sessions)[i].expires_at()) return std::nullopt;
    return user;
  }

  std::vector<Session> collect_expired(TimePoint now, std::size_t max) {
    std::vector<Session> out;
    const std::size_t n = user_shards.size();
    const std::size_t start = expiry_cursor.fetch_add(1, std::memory_order_relaxed);
    for (std::size_t k = 0; k < n && out.size() < max; ++k) {
      UserShard& shard = user_shards[(start + k) % n];
      std::lock_guard lock(shard.mu);
      while (!shard.unreported_expired.empty() && out.size() < max) {
        auto& front = shard.unreported_expired.front();
        out.push_back(front.record.to_session(front.user));
        shard.unreported_expired.pop_front();
      }
      while (!shard.expiry.empty() && shard.expiry.front().at <= now && out.size() < max) {
        std::pop_heap(shard.expiry.begin(), shard.expiry.end(), LaterCheck{});
        const ExpiryCheck check = shard.expiry.back();
        shard.expiry.pop_back();
        std::vector<Record>* sessions = sessions_of(shard, check.user);
        const std::size_t i = sessions == nullptr ? 0 : index_of(*sessions, check.id);
        if (sessions == nullptr || i == sessions->size()) continue;  // ended since
        Record& r = (*sessions)[i];
        if (r.grace && now >= r.grace->until) r.grace.reset();
        const TimePoint deadline = r.expires_at();
        if (now >= deadline) {
          out.push_back(end_locked(shard, check.user, *sessions, i, EndReason::expired, now));
          drop_user_if_empty(shard, check.user);
        } else if (check.at == r.scheduled_at) {
          // Touched since it was scheduled: check again at the deadline it has now.
          r.scheduled_at = deadline;
          shard.expiry.push_back({deadline, check.user, check.id});
          std::push_heap(shard.expiry.begin(), shard.expiry.end(), LaterCheck{});
        }
      }
      sweep_tombstones_locked(shard, now, kSweepBucketsPerCollect);
      compact_expiry_locked(shard);
    }
    for (RefreshShard& shard : refresh_shards) sweep_refresh(shard, now, kSweepBucketsPerCollect);
    for (auto& shard : rate_shards) sweep_dead(shard, now, kSweepBucketsPerCollect);
    for (auto& shard : otp_shards) sweep_dead(shard, now, kSweepBucketsPerCollect);
    sweep_dead(leases, now, kSweepBucketsPerCollect);
    return out;
  }

  std::vector<ActivityChange> collect_activity(std::size_t max) {
    std::vector<ActivityChange> out;
    const std::size_t n = user_shards.size();
    const std::size_t start = activity_cursor.fetch_add(1, std::memory_order_relaxed);
    for (std::size_t k = 0; k < n && out.size() < max; ++k) {
      UserShard& shard = user_shards[(start + k) % n];
      std::lock_guard lock(shard.mu);
      while (!shard.dirty.empty() && out.size() < max) {
        const auto [user, id] = shard.dirty.back();
        shard.dirty.pop_back();
        std::vector<Record>* sessions = sessions_of(shard, user);
        const std::size_t i = sessions == nullptr ? 0 : index_of(*sessions, id);
        if (sessions == nullptr || i == sessions->size()) continue;  // ended since
        Record& r = (*sessions)[i];
        r.dirty = false;
        out.push_back({r.id, r.last_activity, r.last_ip, r.expires_at()});
      }
      if (shard.dirty.empty() && shard.dirty.capacity() > 4096) shard.dirty.shrink_to_fit();
    }
    return out;
  }

  // --- rate limits ---

  Result<RateDecision> rate_limit(const std::vector<RateKey>& keys, TimePoint now, bool count) {
    for (const RateKey& k : keys) {
      if (k.limit.count < 1 || k.limit.window <= Duration::zero()) {
        return Error(Errc::invalid_request, "a rate limit needs a count >= 1 and a window > 0");
      }
    }
    std::vector<std::size_t> shard_of(keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
      shard_of[i] = shard_index(keys[i].key, rate_shards.size());
    }
    std::vector<std::size_t> order = shard_of;
    std::sort(order.begin(), order.end());
    order.erase(std::unique(order.begin(), order.end()), order.end());
    std::vector<std::unique_lock<std::mutex>> locks;
    locks.reserve(order.size());
    for (std::size_t index : order) locks.emplace_back(rate_shards[index].mu);

    RateDecision decision;
    for (std::size_t i = 0; i < keys.size() && decision.allowed; ++i) {
      const RateKey& k = keys[i];
      auto& logs = rate_shards[shard_of[i]].entries;
      const auto it = logs.find(k.key);
      std::size_t held = 0;
      if (it != logs.end()) {
        auto& hits = it->second.hits;
        // A hit counts while now < its time + window.
        hits.erase(hits.begin(), std::upper_bound(hits.begin(), hits.end(), now - k.limit.window));
        held = hits.size();
      }
      // A key named twice in one call needs room for each of its hits.
      const auto earlier = count ? static_cast<std::size_t>(std::count_if(
                                       keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(i),
                                       [&](const RateKey& other) { return other.key == k.key; }))
                                 : std::size_t{0};
      const auto limit = static_cast<std::size_t>(k.limit.count);
      if (held + earlier < limit) continue;
      // Room comes when the hit that leaves `limit - earlier - 1` newer ones behind stops counting.
      const std::size_t leaving = held + earlier - limit;
      const Duration wait =
          leaving < held ? it->second.hits[leaving] + k.limit.window - now : k.limit.window;
      decision.allowed = false;
      decision.refused_by = i;
      decision.retry_after = std::max(wait, Duration{1});
    }

    for (std::size_t i = 0; i < keys.size(); ++i) {
      auto& shard = rate_shards[shard_of[i]];
      if (decision.allowed && count) {
        RateLog& log = shard.entries[keys[i].key];
        log.hits.insert(std::upper_bound(log.hits.begin(), log.hits.end(), now), now);
        log.until = std::max(log.until, now + keys[i].limit.window);
      } else if (auto it = shard.entries.find(keys[i].key);
                 it != shard.entries.end() && it->second.hits.empty()) {
        shard.entries.erase(it);
      }
    }
    if (decision.allowed && count) {
      for (std::size_t index : order) {
        sweep_dead_locked(rate_shards[index], now, kSweepBucketsPerCreate);
      }
    }
    return decision;
  }

  void rate_refund(const std::vector<RateKey>& keys) {
    for (const RateKey& k : keys) {
      auto& shard = rate_shards[shard_index(k.key, rate_shards.size())];
      std::lock_guard lock(shard.mu);
      auto it = shard.entries.find(k.key);
      if (it == shard.entries.end()) continue;
      if (!it->second.hits.empty()) it->second.hits.pop_back();
      if (it->second.hits.empty()) shard.entries.erase(it);
    }
  }

  // --- one-time codes ---

  Result<void> otp_put(std::string key, std::string code_hash, TimePoint expires_at,
                       int max_attempts, TimePoint now) {
    if (max_attempts < 1) return Error(Errc::invalid_request, "max_attempts must be at least 1");
    auto& shard = otp_shards[shard_index(key, otp_shards.size())];
    std::lock_guard lock(shard.mu);
    if (now >= expires_at) {
      shard.entries.erase(key);  // expired already: nothing waits
    } else {
      shard.entries.insert_or_assign(std::move(key),
                                     OtpEntry{std::move(code_hash), expires_at, max_attempts});
    }
    sweep_dead_locked(shard, now, kSweepBucketsPerCreate);
    return {};
  }

  OtpCheck otp_check(const std::string& key, std::string_view code_hash, TimePoint now) {
    auto& shard = otp_shards[shard_index(key, otp_shards.size())];
    std::lock_guard lock(shard.mu);
    const auto it = shard.entries.find(key);
    if (it == shard.entries.end()) return OtpCheck::none;
    OtpEntry& otp = it->second;
    if (now >= otp.expires_at) {
      shard.entries.erase(it);
      return OtpCheck::none;
    }
    if (constant_time_equal(code_hash, otp.code_hash)) {
      shard.entries.erase(it);
      return OtpCheck::accepted;
    }
    if (--otp.attempts_left <= 0) {
      shard.entries.erase(it);
      return OtpCheck::burned;
    }
    return OtpCheck::wrong;
  }

  // --- leases ---

  Result<bool> lease_acquire(const std::string& name, const std::string& holder, Duration ttl,
                             TimePoint now) {
    if (ttl <= Duration::zero()) return Error(Errc::invalid_request, "a lease needs a ttl > 0");
    std::lock_guard lock(leases.mu);
    auto [it, fresh] = leases.entries.try_emplace(name);
    Lease& lease = it->second;
    if (!fresh && lease.holder != holder && now < lease.until) return false;
    lease.holder = holder;
    lease.until = now + ttl;
    sweep_dead_locked(leases, now, kSweepBucketsPerCreate);
    return true;
  }

  void lease_release(const std::string& name, const std::string& holder) {
    std::lock_guard lock(leases.mu);
    const auto it = leases.entries.find(name);
    if (it != leases.entries.end() && it->second.holder == holder) leases.entries.erase(it);
  }

  Result<void> restore(const std::vector<RestoredSession>& sessions,
                       const std::vector<RestoredTombstone>& tombstones) {
    for (const RestoredSession& restored : sessions) {
      const Session& in = restored.session;
      UserShard& shard = user_shard(in.user_id);
      std::lock_guard lock(shard.mu);
      if (!add_owner(in.id, in.user_id)) return Error(Errc::internal, "duplicate session id");
      if (restored.refresh_hash != kNoHash &&
          !add_refresh(restored.refresh_hash,
                       RefreshEntry{kNoHash, in.id, in.user_id, restored.refresh_expires_at})) {
        remove_owner(in.id);
        return Error(Errc::internal, "duplicate refresh-token hash");
      }
      add_record_locked(shard, in.user_id, make_record(in, restored.refresh_hash));
    }
    for (const RestoredTombstone& t : tombstones) {
      UserShard& shard = user_shard(t.user_id);
      std::lock_guard lock(shard.mu);
      shard.tombstones.insert_or_assign(t.id, Tombstone{t.user_id, t.ended_at, t.reason});
      // Its last refresh token answers why the session ended, like its access tokens do.
      if (t.refresh_hash != kNoHash) {
        add_refresh(t.refresh_hash, RefreshEntry{kNoHash, t.id, t.user_id, t.ended_at});
      }
    }
    return {};
  }
};

MemorySessionStore::MemorySessionStore(MemoryStoreOptions options)
    : impl_(std::make_unique<Impl>(options)) {}

MemorySessionStore::~MemorySessionStore() = default;

Task<CreateOutcome> MemorySessionStore::create(CreateRequest request) {
  co_return impl_->create(request);
}

Task<Lookup> MemorySessionStore::validate_and_touch(UserId user, SessionId id, TimePoint now,
                                                    std::string ip) {
  co_return impl_->validate_and_touch(user, id, now, ip);
}

Task<RotateOutcome> MemorySessionStore::rotate_refresh(RotateRequest request) {
  co_return impl_->rotate_refresh(request);
}

Task<std::optional<Session>> MemorySessionStore::revoke(UserId user, SessionId id, EndReason reason,
                                                        TimePoint now, std::string /*ip*/) {
  co_return impl_->revoke(user, id, reason, now);
}

Task<std::vector<Session>> MemorySessionStore::revoke_all(UserId user,
                                                          std::optional<SessionId> keep,
                                                          EndReason reason, TimePoint now,
                                                          std::string /*ip*/) {
  co_return impl_->revoke_all(user, keep, reason, now);
}

Task<std::vector<Session>> MemorySessionStore::list(UserId user, TimePoint now) {
  co_return impl_->list(user, now);
}

Task<std::optional<UserId>> MemorySessionStore::owner_of(SessionId id, TimePoint now) {
  co_return impl_->owner_of(id, now);
}

Task<std::vector<Session>> MemorySessionStore::collect_expired(TimePoint now, std::size_t max) {
  co_return impl_->collect_expired(now, max);
}

Task<std::vector<ActivityChange>> MemorySessionStore::collect_activity(std::size_t max) {
  co_return impl_->collect_activity(max);
}

Task<std::size_t> MemorySessionStore::live_count() {
  co_return impl_->live.load(std::memory_order_relaxed);
}

Task<void> MemorySessionStore::ping() {
  Result<void> reachable = boost::system::in_place_value;
  co_return reachable;
}

Task<void> MemorySessionStore::rate_refund(std::vector<RateKey> keys, TimePoint now) {
  (void)now;
  impl_->rate_refund(keys);
  co_return Result<void>{};
}

Task<RateDecision> MemorySessionStore::rate_limit(std::vector<RateKey> keys, TimePoint now,
                                                  bool count) {
  co_return impl_->rate_limit(keys, now, count);
}

Task<void> MemorySessionStore::otp_put(std::string key, std::string code_hash, TimePoint expires_at,
                                       int max_attempts, TimePoint now) {
  co_return impl_->otp_put(std::move(key), std::move(code_hash), expires_at, max_attempts, now);
}

Task<OtpCheck> MemorySessionStore::otp_check(std::string key, std::string code_hash,
                                             TimePoint now) {
  co_return impl_->otp_check(key, code_hash, now);
}

Task<bool> MemorySessionStore::lease_acquire(std::string name, std::string holder, Duration ttl,
                                             TimePoint now) {
  co_return impl_->lease_acquire(name, holder, ttl, now);
}

Task<void> MemorySessionStore::lease_release(std::string name, std::string holder) {
  impl_->lease_release(name, holder);
  Result<void> done = boost::system::in_place_value;
  co_return done;
}

Result<void> MemorySessionStore::restore(std::vector<RestoredSession> sessions,
                                         std::vector<RestoredTombstone> tombstones) {
  return impl_->restore(sessions, tombstones);
}

}  // namespace sessiond::store
