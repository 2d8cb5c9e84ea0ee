// The SessionStore contract: every store (memory, redis) must pass every test here.
// Time is explicit (the interface takes `now`): no test sleeps.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <latch>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "store/session_store.hpp"
#include "store/store_factories.hpp"
#include "store/store_test_support.hpp"

namespace sessiond::store::testing {
namespace {

using namespace std::chrono_literals;

constexpr Duration kIdle = 1h;
constexpr Duration kAbsolute = 24h;
constexpr Duration kRefreshTtl = 12h;
constexpr Duration kGrace = 10s;
constexpr Duration kTtl = kContractTombstoneTtl;
const std::string kIp = "198.51.100.7";

class StoreContract : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    store_ = GetParam().make();
    if (!store_) GTEST_SKIP() << GetParam().name << " store is not available here";
  }

  SessionStore& store() { return *store_; }

  static SessionId new_id() {
    static std::atomic<std::uint64_t> counter{0};
    return test_session_id(++counter);
  }

  static Session session_for(UserId user, TimePoint now, Duration idle = kIdle,
                             Duration absolute = kAbsolute) {
    Session s;
    s.id = new_id();
    s.user_id = user;
    s.role = "GUEST";
    s.attributes = R"({"hotel_id":7})";
    s.auth_method = AuthMethod::otp;
    s.device_info = "iPhone · Safari";
    s.ip_address = kIp;
    s.last_ip = kIp;
    s.user_agent =
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
    s.created_at = now;
    s.last_activity = now;
    s.absolute_expires_at = now + absolute;
    s.idle_timeout = idle;
    return s;
  }

  // A refresh token. Like sessiond's own (new_refresh_token(random, user)), its text names its
  // user; the store is given only its hash, and the user through RotateRequest::user.
  struct RefreshToken {
    std::string text;
    TokenHash hash() const { return sha256(text); }
  };
  // The refresh token of `user` that a test calls `name`.
  static RefreshToken token(const std::string& name, UserId user) {
    return {"rt_" + name + "." + std::to_string(user)};
  }
  // The refresh token a session was created with by create()/add().
  static RefreshToken first_token(const Session& s) { return token(s.id.to_string(), s.user_id); }

  Result<CreateOutcome> try_create(const Session& s, int max = 5,
                                   OnLimit on_limit = OnLimit::evict_oldest,
                                   std::optional<TimePoint> refresh_expires_at = std::nullopt) {
    CreateRequest request;
    request.session = s;
    request.refresh_hash = first_token(s).hash();
    request.refresh_expires_at =
        refresh_expires_at.value_or(std::min(s.created_at + kRefreshTtl, s.absolute_expires_at));
    request.max_sessions = max;
    request.on_limit = on_limit;
    return run(store().create(std::move(request)));
  }

  CreateOutcome create(const Session& s, int max = 5, OnLimit on_limit = OnLimit::evict_oldest) {
    return try_create(s, max, on_limit).value();
  }

  // A new session of `user` created at `now`.
  Session add(UserId user, TimePoint now, Duration idle = kIdle, Duration absolute = kAbsolute) {
    Session s = session_for(user, now, idle, absolute);
    EXPECT_TRUE(create(s).evicted.empty());
    return s;
  }

  Lookup validate(UserId user, const SessionId& id, TimePoint now, const std::string& ip = kIp) {
    return run(store().validate_and_touch(user, id, now, ip)).value();
  }

  // Presents `presented` and rotates it to `successor`, as SessionService::refresh does: the
  // user is the one the presented token names.
  RotateOutcome rotate(const RefreshToken& presented, const RefreshToken& successor, TimePoint now,
                       const std::string& sealed = "sealed", Duration grace = kGrace,
                       const std::string& ip = kIp) {
    RotateRequest request;
    request.user = refresh_token_user(presented.text).value_or(0);
    request.presented = presented.hash();
    request.successor = successor.hash();
    request.sealed_successor = sealed;
    request.successor_expires_at = now + kRefreshTtl;
    request.now = now;
    request.grace = grace;
    request.ip = ip;
    return run(store().rotate_refresh(std::move(request))).value();
  }

  std::optional<Session> revoke(UserId user, const SessionId& id, EndReason reason, TimePoint now) {
    return run(store().revoke(user, id, reason, now)).value();
  }

  std::vector<Session> revoke_all(UserId user, std::optional<SessionId> keep, EndReason reason,
                                  TimePoint now) {
    return run(store().revoke_all(user, keep, reason, now)).value();
  }

  std::vector<Session> list(UserId user, TimePoint now) {
    return run(store().list(user, now)).value();
  }

  std::vector<Session> collect_expired(TimePoint now, std::size_t max = 1000) {
    return run(store().collect_expired(now, max)).value();
  }

  std::vector<ActivityChange> collect_activity(std::size_t max = 1000) {
    return run(store().collect_activity(max)).value();
  }

  std::size_t live_count() { return run(store().live_count()).value(); }

  RateDecision hit(std::vector<RateKey> keys, TimePoint now, bool count = true) {
    return run(store().rate_limit(std::move(keys), now, count)).value();
  }
  RateDecision hit(const std::string& key, RateLimit limit, TimePoint now, bool count = true) {
    return hit(std::vector<RateKey>{{key, limit}}, now, count);
  }

  void put_code(const std::string& key, const std::string& code_hash, TimePoint expires_at,
                int max_attempts, TimePoint now) {
    ASSERT_TRUE(run(store().otp_put(key, code_hash, expires_at, max_attempts, now)));
  }
  OtpCheck check_code(const std::string& key, const std::string& code_hash, TimePoint now) {
    return run(store().otp_check(key, code_hash, now)).value();
  }

  bool acquire(const std::string& name, const std::string& holder, Duration ttl, TimePoint now) {
    return run(store().lease_acquire(name, holder, ttl, now)).value();
  }
  void release(const std::string& name, const std::string& holder) {
    ASSERT_TRUE(run(store().lease_release(name, holder)));
  }

  // The session answers `ended` with `reason` until `ended_at + tombstone_ttl`, then unknown.
  void expect_tombstone(UserId user, const SessionId& id, TimePoint ended_at, EndReason reason) {
    for (TimePoint at : {ended_at, ended_at + kTtl - 1ms}) {
      Lookup l = validate(user, id, at);
      EXPECT_EQ(l.found, Found::ended) << "at +" << (at - ended_at).count() << " ms";
      EXPECT_EQ(l.reason, reason) << reason_name(l.reason);
    }
    EXPECT_EQ(validate(user, id, ended_at + kTtl).found, Found::unknown);
  }

  static std::vector<SessionId> ids_of(const std::vector<Session>& sessions) {
    std::vector<SessionId> ids;
    for (const Session& s : sessions) ids.push_back(s.id);
    return ids;
  }
  static std::set<SessionId> id_set(const std::vector<Session>& sessions) {
    auto ids = ids_of(sessions);
    return {ids.begin(), ids.end()};
  }

 private:
  std::unique_ptr<SessionStore> store_;
};

void expect_same_session(const Session& got, const Session& want) {
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.user_id, want.user_id);
  EXPECT_EQ(got.role, want.role);
  EXPECT_EQ(got.attributes, want.attributes);
  EXPECT_EQ(got.auth_method, want.auth_method);
  EXPECT_EQ(got.device_info, want.device_info);
  EXPECT_EQ(got.ip_address, want.ip_address);
  EXPECT_EQ(got.user_agent, want.user_agent);
  EXPECT_EQ(got.created_at, want.created_at);
  EXPECT_EQ(got.absolute_expires_at, want.absolute_expires_at);
  EXPECT_EQ(got.idle_timeout, want.idle_timeout);
}

// --- create and validate ---

TEST_P(StoreContract, CreatedSessionValidatesAsAliveWithItsFields) {
  Session s = session_for(1, kT0);
  EXPECT_TRUE(create(s).evicted.empty());
  Lookup l = validate(1, s.id, kT0 + 5s);
  ASSERT_EQ(l.found, Found::alive);
  expect_same_session(l.session, s);
  EXPECT_EQ(l.session.last_activity, kT0 + 5s);
  EXPECT_EQ(live_count(), 1u);
}

TEST_P(StoreContract, UnknownSessionIsUnknown) {
  add(1, kT0);
  EXPECT_EQ(validate(1, new_id(), kT0).found, Found::unknown);
  EXPECT_EQ(validate(2, new_id(), kT0).found, Found::unknown);
}

TEST_P(StoreContract, SessionOfAnotherUserIsUnknown) {
  Session s = add(1, kT0);
  EXPECT_EQ(validate(2, s.id, kT0 + 1s).found, Found::unknown);
  EXPECT_EQ(validate(1, s.id, kT0 + 2s).found, Found::alive);

  ASSERT_TRUE(revoke(1, s.id, EndReason::logout, kT0 + 3s));
  EXPECT_EQ(validate(2, s.id, kT0 + 4s).found, Found::unknown);
  EXPECT_EQ(validate(1, s.id, kT0 + 4s).found, Found::ended);
}

// --- expiry ---

TEST_P(StoreContract, TouchExtendsTheIdleDeadline) {
  Session s = add(1, kT0);
  ASSERT_EQ(validate(1, s.id, kT0 + 50min).found, Found::alive);
  ASSERT_EQ(validate(1, s.id, kT0 + 50min + kIdle - 1ms).found, Found::alive);
  EXPECT_EQ(validate(1, s.id, kT0 + 50min + kIdle - 1ms + kIdle - 1ms).found, Found::alive);
}

TEST_P(StoreContract, UntouchedSessionExpiresAtLastActivityPlusIdle) {
  Session before = add(1, kT0);
  Session at = add(2, kT0);
  EXPECT_EQ(validate(1, before.id, kT0 + kIdle - 1ms).found, Found::alive);
  Lookup l = validate(2, at.id, kT0 + kIdle);
  EXPECT_EQ(l.found, Found::ended);
  EXPECT_EQ(l.reason, EndReason::expired);
}

TEST_P(StoreContract, TouchedSessionExpiresAtItsLastActivityPlusIdle) {
  Session before = add(1, kT0);
  Session at = add(2, kT0);
  ASSERT_EQ(validate(1, before.id, kT0 + 30min).found, Found::alive);
  ASSERT_EQ(validate(2, at.id, kT0 + 30min).found, Found::alive);
  EXPECT_EQ(validate(1, before.id, kT0 + 30min + kIdle - 1ms).found, Found::alive);
  Lookup l = validate(2, at.id, kT0 + 30min + kIdle);
  EXPECT_EQ(l.found, Found::ended);
  EXPECT_EQ(l.reason, EndReason::expired);
}

TEST_P(StoreContract, AbsoluteDeadlineEndsSessionDespiteActivity) {
  Session s = add(1, kT0, kIdle, 3h);
  for (TimePoint t = kT0 + 20min; t < kT0 + 3h; t += 20min) {
    ASSERT_EQ(validate(1, s.id, t).found, Found::alive);
  }
  ASSERT_EQ(validate(1, s.id, kT0 + 3h - 1ms).found, Found::alive);
  Lookup l = validate(1, s.id, kT0 + 3h);
  EXPECT_EQ(l.found, Found::ended);
  EXPECT_EQ(l.reason, EndReason::expired);
}

TEST_P(StoreContract, TouchWithinASecondDoesNotMoveLastActivity) {
  Session s = add(1, kT0);
  EXPECT_EQ(validate(1, s.id, kT0 + 500ms).session.last_activity, kT0);
  EXPECT_EQ(validate(1, s.id, kT0 + 999ms).session.last_activity, kT0);
  EXPECT_EQ(validate(1, s.id, kT0 + 1s).session.last_activity, kT0 + 1s);
  EXPECT_EQ(validate(1, s.id, kT0 + 1s + 999ms).session.last_activity, kT0 + 1s);
  EXPECT_EQ(validate(1, s.id, kT0 + 5s).session.last_activity, kT0 + 5s);
  EXPECT_EQ(list(1, kT0 + 6s).at(0).last_activity, kT0 + 5s);
}

TEST_P(StoreContract, LastIpFollowsTheLatestRequest) {
  Session s = add(1, kT0);
  Lookup l = validate(1, s.id, kT0 + 2s, "203.0.113.5");
  EXPECT_EQ(l.session.last_ip, "203.0.113.5");
  EXPECT_EQ(l.session.ip_address, kIp);
  l = validate(1, s.id, kT0 + 4s, "2001:db8::17");
  EXPECT_EQ(l.session.last_ip, "2001:db8::17");
  auto listed = list(1, kT0 + 5s);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].last_ip, "2001:db8::17");
  EXPECT_EQ(listed[0].ip_address, kIp);
}

// --- why it ended: one tombstone per end path ---

TEST_P(StoreContract, RevokeLeavesATombstoneWithItsReason) {
  const EndReason reasons[] = {EndReason::logout,           EndReason::revoked_by_user,
                               EndReason::revoked_by_admin, EndReason::password_changed,
                               EndReason::user_disabled,    EndReason::role_changed};
  for (EndReason reason : reasons) {
    SCOPED_TRACE(reason_name(reason));
    Session s = add(1, kT0);
    std::optional<Session> ended = revoke(1, s.id, reason, kT0 + 1min);
    ASSERT_TRUE(ended);
    EXPECT_EQ(ended->id, s.id);
    expect_same_session(*ended, s);
    expect_tombstone(1, s.id, kT0 + 1min, reason);
  }
}

TEST_P(StoreContract, RevokeOthersLeavesRevokedOthersTombstones) {
  Session current = add(1, kT0);
  Session other = add(1, kT0 + 1s);
  auto ended = revoke_all(1, current.id, EndReason::revoked_others, kT0 + 1min);
  ASSERT_EQ(ids_of(ended), std::vector<SessionId>{other.id});
  expect_tombstone(1, other.id, kT0 + 1min, EndReason::revoked_others);
}

TEST_P(StoreContract, AdminRevokeAllLeavesRevokedByAdminTombstones) {
  Session a = add(1, kT0);
  Session b = add(1, kT0 + 1s);
  auto ended = revoke_all(1, std::nullopt, EndReason::revoked_by_admin, kT0 + 1min);
  EXPECT_EQ(id_set(ended), (std::set<SessionId>{a.id, b.id}));
  expect_tombstone(1, a.id, kT0 + 1min, EndReason::revoked_by_admin);
  expect_tombstone(1, b.id, kT0 + 1min, EndReason::revoked_by_admin);
}

TEST_P(StoreContract, EvictionLeavesMaxSessionsExceededTombstone) {
  Session first = add(1, kT0);
  Session second = session_for(1, kT0 + 1min);
  auto out = create(second, 1);
  ASSERT_EQ(ids_of(out.evicted), std::vector<SessionId>{first.id});
  expect_same_session(out.evicted[0], first);
  expect_tombstone(1, first.id, kT0 + 1min, EndReason::max_sessions_exceeded);
}

TEST_P(StoreContract, ExpiryLeavesExpiredTombstone) {
  Session s = add(1, kT0);
  const TimePoint ended_at = kT0 + 2 * kIdle;
  Lookup l = validate(1, s.id, ended_at);
  ASSERT_EQ(l.found, Found::ended);
  expect_tombstone(1, s.id, ended_at, EndReason::expired);
}

TEST_P(StoreContract, RefreshReuseLeavesRefreshTokenReuseTombstone) {
  Session s = add(1, kT0);
  ASSERT_EQ(rotate(first_token(s), token("gen1", 1), kT0 + 1min).kind, Rotation::rotated);
  ASSERT_EQ(rotate(first_token(s), token("gen1b", 1), kT0 + 1min + kGrace).kind, Rotation::reuse);
  expect_tombstone(1, s.id, kT0 + 1min + kGrace, EndReason::refresh_token_reuse);
}

// --- the limit ---

TEST_P(StoreContract, EvictOldestEndsTheEarliestCreated) {
  Session a = add(1, kT0);
  Session b = add(1, kT0 + 1min);
  ASSERT_EQ(validate(1, a.id, kT0 + 2min).found, Found::alive);  // a is the most recently active
  Session c = session_for(1, kT0 + 3min);
  auto out = create(c, 2, OnLimit::evict_oldest);
  ASSERT_EQ(ids_of(out.evicted), std::vector<SessionId>{a.id});
  EXPECT_EQ(id_set(list(1, kT0 + 4min)), (std::set<SessionId>{b.id, c.id}));
  EXPECT_EQ(validate(1, a.id, kT0 + 4min).reason, EndReason::max_sessions_exceeded);
}

TEST_P(StoreContract, EvictLruEndsTheLeastRecentlyActive) {
  Session a = add(1, kT0);
  Session b = add(1, kT0 + 1min);
  ASSERT_EQ(validate(1, a.id, kT0 + 2min).found, Found::alive);  // b is now the least active
  Session c = session_for(1, kT0 + 3min);
  auto out = create(c, 2, OnLimit::evict_lru);
  ASSERT_EQ(ids_of(out.evicted), std::vector<SessionId>{b.id});
  EXPECT_EQ(id_set(list(1, kT0 + 4min)), (std::set<SessionId>{a.id, c.id}));
  Lookup l = validate(1, b.id, kT0 + 4min);
  EXPECT_EQ(l.found, Found::ended);
  EXPECT_EQ(l.reason, EndReason::max_sessions_exceeded);
}

TEST_P(StoreContract, DenyRefusesAndCreatesNothing) {
  Session a = add(1, kT0);
  Session b = add(1, kT0 + 1min);
  Session c = session_for(1, kT0 + 2min);
  auto refused = try_create(c, 2, OnLimit::deny);
  ASSERT_TRUE(refused.has_error());
  EXPECT_EQ(refused.error().code, Errc::session_limit);
  EXPECT_EQ(validate(1, c.id, kT0 + 3min).found, Found::unknown);
  EXPECT_EQ(rotate(first_token(c), token("c1", 1), kT0 + 3min).kind, Rotation::unknown);
  EXPECT_EQ(id_set(list(1, kT0 + 3min)), (std::set<SessionId>{a.id, b.id}));
  EXPECT_EQ(live_count(), 2u);
}

TEST_P(StoreContract, ExpiredSessionsDoNotCountTowardsTheLimit) {
  Session old = add(1, kT0);
  Session fresh = session_for(1, kT0 + 2 * kIdle);
  auto out = try_create(fresh, 1, OnLimit::deny);
  ASSERT_TRUE(out.has_value());
  EXPECT_TRUE(out->evicted.empty());
  Lookup l = validate(1, old.id, kT0 + 2 * kIdle + 1s);
  EXPECT_EQ(l.found, Found::ended);
  EXPECT_EQ(l.reason, EndReason::expired);
  EXPECT_EQ(validate(1, fresh.id, kT0 + 2 * kIdle + 1s).found, Found::alive);
}

TEST_P(StoreContract, LowerLimitEvictsUntilThereIsRoom) {
  Session a = add(1, kT0);
  Session b = add(1, kT0 + 1s);
  Session c = add(1, kT0 + 2s);
  auto out = create(session_for(1, kT0 + 3s), 2);
  EXPECT_EQ(ids_of(out.evicted), (std::vector<SessionId>{a.id, b.id}));
  EXPECT_EQ(list(1, kT0 + 4s).size(), 2u);
  EXPECT_EQ(validate(1, c.id, kT0 + 4s).found, Found::alive);
}

TEST_P(StoreContract, ConcurrentCreatesNeverExceedTheLimit) {
  constexpr int kThreads = 20;
  std::vector<Session> sessions;
  for (int i = 0; i < kThreads; ++i) sessions.push_back(session_for(1, kT0 + 1ms * i));
  std::atomic<std::size_t> evicted{0};
  std::atomic<int> failures{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      auto out = try_create(sessions[static_cast<std::size_t>(i)], 2, OnLimit::evict_oldest);
      if (out) {
        evicted += out->evicted.size();
      } else {
        ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(evicted.load(), 18u);
  EXPECT_EQ(list(1, kT0 + 1s).size(), 2u);
  EXPECT_EQ(live_count(), 2u);
}

TEST_P(StoreContract, ConcurrentCreatesWithDenyCreateExactlyTheLimit) {
  constexpr int kThreads = 20;
  std::vector<Session> sessions;
  for (int i = 0; i < kThreads; ++i) sessions.push_back(session_for(1, kT0 + 1ms * i));
  std::atomic<int> created{0};
  std::atomic<int> refused{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      auto out = try_create(sessions[static_cast<std::size_t>(i)], 2, OnLimit::deny);
      if (out) {
        ++created;
      } else if (out.error().code == Errc::session_limit) {
        ++refused;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created.load(), 2);
  EXPECT_EQ(refused.load(), 18);
  EXPECT_EQ(list(1, kT0 + 1s).size(), 2u);
  EXPECT_EQ(live_count(), 2u);
}

// --- refresh rotation ---

TEST_P(StoreContract, RotationMakesTheSuccessorCurrentAndTouches) {
  Session s = add(1, kT0);
  RotateOutcome r =
      rotate(first_token(s), token("gen1", 1), kT0 + 1min, "sealed1", kGrace, "203.0.113.9");
  ASSERT_EQ(r.kind, Rotation::rotated);
  EXPECT_EQ(r.rotated_at, kT0 + 1min);
  EXPECT_EQ(r.successor, token("gen1", 1).hash());
  EXPECT_EQ(r.sealed_successor, "sealed1");
  expect_same_session(r.session, s);
  EXPECT_EQ(r.session.last_activity, kT0 + 1min);
  EXPECT_EQ(r.session.last_ip, "203.0.113.9");
  EXPECT_EQ(list(1, kT0 + 2min).at(0).last_activity, kT0 + 1min);

  // The first rotation moved the idle deadline.
  RotateOutcome next = rotate(token("gen1", 1), token("gen2", 1), kT0 + 1min + kIdle - 1ms);
  EXPECT_EQ(next.kind, Rotation::rotated);
  EXPECT_EQ(next.session.last_activity, kT0 + 1min + kIdle - 1ms);
}

TEST_P(StoreContract, RotatedOutTokenWithinGraceReturnsTheSameSuccessor) {
  Session s = add(1, kT0);
  const TimePoint t1 = kT0 + 1min;
  ASSERT_EQ(rotate(first_token(s), token("gen1", 1), t1, "sealed1").kind, Rotation::rotated);

  RotateOutcome again = rotate(first_token(s), token("other", 1), t1 + 5s, "other-sealed");
  ASSERT_EQ(again.kind, Rotation::grace);
  EXPECT_EQ(again.successor, token("gen1", 1).hash());
  EXPECT_EQ(again.sealed_successor, "sealed1");
  EXPECT_EQ(again.rotated_at, t1);
  EXPECT_EQ(again.session.id, s.id);
  EXPECT_EQ(again.session.last_activity, t1 + 5s);

  RotateOutcome edge = rotate(first_token(s), token("other2", 1), t1 + kGrace - 1ms);
  EXPECT_EQ(edge.kind, Rotation::grace);
  EXPECT_EQ(edge.successor, token("gen1", 1).hash());

  // Not rotated again: the first successor is still the current token, the others never were.
  EXPECT_EQ(rotate(token("other", 1), token("x", 1), t1 + 6s).kind, Rotation::unknown);
  EXPECT_EQ(rotate(token("gen1", 1), token("gen2", 1), t1 + 7s).kind, Rotation::rotated);
}

TEST_P(StoreContract, RotatedOutTokenAfterGraceIsReuseAndEndsTheSession) {
  Session s = add(1, kT0);
  const TimePoint t1 = kT0 + 1min;
  ASSERT_EQ(rotate(first_token(s), token("gen1", 1), t1).kind, Rotation::rotated);
  RotateOutcome r = rotate(first_token(s), token("stolen", 1), t1 + kGrace);
  ASSERT_EQ(r.kind, Rotation::reuse);
  EXPECT_EQ(r.session.id, s.id);
  expect_same_session(r.session, s);

  Lookup l = validate(1, s.id, t1 + kGrace + 1s);
  EXPECT_EQ(l.found, Found::ended);
  EXPECT_EQ(l.reason, EndReason::refresh_token_reuse);
  RotateOutcome current = rotate(token("gen1", 1), token("gen2", 1), t1 + kGrace + 2s);
  EXPECT_EQ(current.kind, Rotation::ended);
  EXPECT_EQ(current.reason, EndReason::refresh_token_reuse);
  EXPECT_EQ(live_count(), 0u);
}

TEST_P(StoreContract, SecondGenerationOldTokenIsReuseEvenWithinGrace) {
  Session s = add(1, kT0);
  const TimePoint t1 = kT0 + 1min;
  ASSERT_EQ(rotate(first_token(s), token("gen1", 1), t1).kind, Rotation::rotated);
  ASSERT_EQ(rotate(token("gen1", 1), token("gen2", 1), t1 + 1s).kind, Rotation::rotated);
  RotateOutcome r = rotate(first_token(s), token("x", 1), t1 + 2s);
  EXPECT_EQ(r.kind, Rotation::reuse);
  EXPECT_EQ(validate(1, s.id, t1 + 3s).reason, EndReason::refresh_token_reuse);
}

TEST_P(StoreContract, ConcurrentRotationsOfOneTokenRotateOnce) {
  Session s = add(1, kT0);
  constexpr int kThreads = 8;
  std::atomic<int> rotated{0};
  std::atomic<int> grace{0};
  std::vector<TokenHash> successors(kThreads);
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      RotateOutcome r = rotate(first_token(s), token("succ" + std::to_string(i), 1), kT0 + 1min);
      successors[static_cast<std::size_t>(i)] = r.successor;
      if (r.kind == Rotation::rotated) ++rotated;
      if (r.kind == Rotation::grace) ++grace;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(rotated.load(), 1);
  EXPECT_EQ(grace.load(), kThreads - 1);
  for (const TokenHash& h : successors) EXPECT_EQ(h, successors[0]);
}

TEST_P(StoreContract, UnknownRefreshTokenIsUnknown) {
  add(1, kT0);
  EXPECT_EQ(rotate(token("never-issued", 1), token("x", 1), kT0 + 1s).kind, Rotation::unknown);
}

TEST_P(StoreContract, ExpiredRefreshTokenIsUnknown) {
  Session s = session_for(1, kT0, 4h);
  ASSERT_TRUE(try_create(s, 5, OnLimit::evict_oldest, kT0 + 1h));
  EXPECT_EQ(rotate(first_token(s), token("x", 1), kT0 + 1h).kind, Rotation::unknown);
  EXPECT_EQ(validate(1, s.id, kT0 + 1h + 1s).found, Found::alive);
}

TEST_P(StoreContract, RotationOfAnEndedSessionAnswersEnded) {
  Session s = add(1, kT0);
  ASSERT_TRUE(revoke(1, s.id, EndReason::logout, kT0 + 1min));
  RotateOutcome r = rotate(first_token(s), token("x", 1), kT0 + 2min);
  EXPECT_EQ(r.kind, Rotation::ended);
  EXPECT_EQ(r.reason, EndReason::logout);
  EXPECT_EQ(rotate(first_token(s), token("y", 1), kT0 + 1min + kTtl).kind, Rotation::unknown);
}

TEST_P(StoreContract, RotationOfASessionPastItsDeadlineEndsItAsExpired) {
  Session s = add(1, kT0);
  RotateOutcome r = rotate(first_token(s), token("x", 1), kT0 + kIdle);
  EXPECT_EQ(r.kind, Rotation::ended);
  EXPECT_EQ(r.reason, EndReason::expired);
  Lookup l = validate(1, s.id, kT0 + kIdle + 1s);
  EXPECT_EQ(l.found, Found::ended);
  EXPECT_EQ(l.reason, EndReason::expired);
  EXPECT_EQ(live_count(), 0u);
}

TEST_P(StoreContract, RefreshTokenEndingWithItsSessionAnswersExpiredAfterTheAbsoluteEnd) {
  // The refresh token expires exactly when the session's absolute lifetime does.
  Session s = session_for(1, kT0, kIdle, 2h);
  ASSERT_TRUE(try_create(s, 5, OnLimit::evict_oldest, s.absolute_expires_at));
  ASSERT_EQ(validate(1, s.id, kT0 + 50min).found, Found::alive);
  ASSERT_EQ(validate(1, s.id, kT0 + 100min).found, Found::alive);
  RotateOutcome r = rotate(first_token(s), token("x", 1), kT0 + 2h + 1s);
  EXPECT_EQ(r.kind, Rotation::ended);
  EXPECT_EQ(r.reason, EndReason::expired);
  // Still so later, as long as the tombstone lives.
  r = rotate(first_token(s), token("y", 1), kT0 + 2h + kTtl / 2);
  EXPECT_EQ(r.kind, Rotation::ended);
  EXPECT_EQ(r.reason, EndReason::expired);
}

TEST_P(StoreContract, RestoredTombstoneAnswersItsRefreshTokenWithTheReason) {
  const SessionId ended_id = new_id();
  std::vector<RestoredTombstone> tombstones{
      {ended_id, 1, EndReason::revoked_by_user, kT0, token("last-of-ended", 1).hash()}};
  ASSERT_TRUE(store().restore({}, std::move(tombstones)));
  RotateOutcome r = rotate(token("last-of-ended", 1), token("x", 1), kT0 + 1min);
  EXPECT_EQ(r.kind, Rotation::ended);
  EXPECT_EQ(r.reason, EndReason::revoked_by_user);
}

// --- revoke, list, owner_of ---

TEST_P(StoreContract, RevokeOfAnotherUsersSessionReturnsNulloptAndLeavesItAlive) {
  Session s = add(1, kT0);
  EXPECT_FALSE(revoke(2, s.id, EndReason::revoked_by_user, kT0 + 1s));
  EXPECT_EQ(validate(1, s.id, kT0 + 2s).found, Found::alive);
}

TEST_P(StoreContract, RevokeOfAnUnknownOrEndedSessionReturnsNullopt) {
  Session s = add(1, kT0);
  EXPECT_FALSE(revoke(1, new_id(), EndReason::revoked_by_user, kT0 + 1s));
  ASSERT_TRUE(revoke(1, s.id, EndReason::logout, kT0 + 2s));
  EXPECT_FALSE(revoke(1, s.id, EndReason::revoked_by_user, kT0 + 3s));
  EXPECT_EQ(validate(1, s.id, kT0 + 4s).reason, EndReason::logout);  // the first reason stays
}

TEST_P(StoreContract, RevokeAllKeepsTheGivenSession) {
  Session a = add(1, kT0);
  Session b = add(1, kT0 + 1s);
  Session c = add(1, kT0 + 2s);
  Session other_user = add(2, kT0);
  auto ended = revoke_all(1, b.id, EndReason::revoked_others, kT0 + 1min);
  EXPECT_EQ(id_set(ended), (std::set<SessionId>{a.id, c.id}));
  EXPECT_EQ(ids_of(list(1, kT0 + 2min)), std::vector<SessionId>{b.id});
  EXPECT_EQ(validate(2, other_user.id, kT0 + 2min).found, Found::alive);
}

TEST_P(StoreContract, RevokeAllWithoutKeepEndsEverySession) {
  add(1, kT0);
  add(1, kT0 + 1s);
  add(1, kT0 + 2s);
  Session other_user = add(2, kT0);
  EXPECT_EQ(revoke_all(1, std::nullopt, EndReason::user_disabled, kT0 + 1min).size(), 3u);
  EXPECT_TRUE(list(1, kT0 + 2min).empty());
  EXPECT_EQ(live_count(), 1u);
  EXPECT_TRUE(revoke_all(1, std::nullopt, EndReason::user_disabled, kT0 + 3min).empty());
  EXPECT_EQ(validate(2, other_user.id, kT0 + 2min).found, Found::alive);
}

TEST_P(StoreContract, ListIsMostRecentActivityFirstAndExcludesEnded) {
  Session a = add(1, kT0);
  Session b = add(1, kT0 + 1min);
  Session c = add(1, kT0 + 2min);
  Session d = add(1, kT0 + 3min);
  Session short_lived = add(1, kT0 + 3min, 10min);
  ASSERT_EQ(validate(1, a.id, kT0 + 5min).found, Found::alive);
  ASSERT_TRUE(revoke(1, c.id, EndReason::logout, kT0 + 6min));
  auto listed = list(1, kT0 + 14min);
  EXPECT_EQ(ids_of(listed), (std::vector<SessionId>{a.id, d.id, b.id}));
  // Listing does not touch.
  EXPECT_EQ(list(1, kT0 + 15min).at(2).last_activity, kT0 + 1min);
  EXPECT_TRUE(list(2, kT0).empty());
}

TEST_P(StoreContract, OwnerOfAnswersForLiveSessionsOnly) {
  Session a = add(7, kT0);
  Session b = add(7, kT0);
  Session c = add(8, kT0, 10min);
  EXPECT_EQ(run(store().owner_of(a.id, kT0 + 1s)).value(), std::optional<UserId>{7});
  EXPECT_EQ(run(store().owner_of(c.id, kT0 + 1s)).value(), std::optional<UserId>{8});
  EXPECT_EQ(run(store().owner_of(new_id(), kT0 + 1s)).value(), std::nullopt);
  ASSERT_TRUE(revoke(7, b.id, EndReason::revoked_by_admin, kT0 + 2s));
  EXPECT_EQ(run(store().owner_of(b.id, kT0 + 3s)).value(), std::nullopt);
  EXPECT_EQ(run(store().owner_of(c.id, kT0 + 10min)).value(), std::nullopt);
}

// --- background collection ---

TEST_P(StoreContract, CollectExpiredEndsOnlyDueSessions) {
  Session a = add(1, kT0, 1h);
  Session b = add(2, kT0, 2h);
  Session c = add(3, kT0, 3h);
  EXPECT_TRUE(collect_expired(kT0 + 1h - 1ms).empty());
  auto ended = collect_expired(kT0 + 2h);
  EXPECT_EQ(id_set(ended), (std::set<SessionId>{a.id, b.id}));
  for (const Session& s : ended) EXPECT_EQ(s.user_id, s.id == a.id ? 1 : 2);
  EXPECT_EQ(live_count(), 1u);
  EXPECT_EQ(validate(1, a.id, kT0 + 2h).reason, EndReason::expired);
  EXPECT_EQ(validate(2, b.id, kT0 + 2h).reason, EndReason::expired);
  EXPECT_EQ(validate(3, c.id, kT0 + 2h).found, Found::alive);
  EXPECT_TRUE(collect_expired(kT0 + 2h).empty());
}

TEST_P(StoreContract, CollectExpiredRespectsMax) {
  for (UserId user = 1; user <= 5; ++user) add(user, kT0);
  const TimePoint later = kT0 + 2 * kIdle;
  EXPECT_EQ(collect_expired(later, 2).size(), 2u);
  EXPECT_EQ(collect_expired(later, 2).size(), 2u);
  EXPECT_EQ(collect_expired(later, 2).size(), 1u);
  EXPECT_TRUE(collect_expired(later, 2).empty());
  EXPECT_EQ(live_count(), 0u);
}

TEST_P(StoreContract, CollectExpiredSkipsATouchedSession) {
  Session s = add(1, kT0);
  ASSERT_EQ(validate(1, s.id, kT0 + 30min).found, Found::alive);
  EXPECT_TRUE(collect_expired(kT0 + kIdle).empty());
  EXPECT_EQ(validate(1, s.id, kT0 + kIdle + 1s).found, Found::alive);
  EXPECT_TRUE(collect_expired(kT0 + kIdle + 1s + kIdle - 1ms).empty());
  EXPECT_EQ(ids_of(collect_expired(kT0 + kIdle + 1s + kIdle)), std::vector<SessionId>{s.id});
}

TEST_P(StoreContract, CollectActivityReportsEachTouchedSessionOnce) {
  Session a = add(1, kT0);
  Session b = add(1, kT0);
  Session untouched = add(2, kT0);
  ASSERT_EQ(validate(1, a.id, kT0 + 5s, "203.0.113.1").found, Found::alive);
  ASSERT_EQ(validate(1, a.id, kT0 + 10s, "203.0.113.2").found, Found::alive);
  ASSERT_EQ(validate(1, b.id, kT0 + 7s).found, Found::alive);

  auto changes = collect_activity();
  ASSERT_EQ(changes.size(), 2u);
  if (changes[0].id != a.id) std::swap(changes[0], changes[1]);
  EXPECT_EQ(changes[0].id, a.id);
  EXPECT_EQ(changes[0].last_activity, kT0 + 10s);
  EXPECT_EQ(changes[0].last_ip, "203.0.113.2");
  EXPECT_EQ(changes[1].id, b.id);
  EXPECT_EQ(changes[1].last_activity, kT0 + 7s);
  EXPECT_TRUE(collect_activity().empty());

  ASSERT_EQ(validate(1, a.id, kT0 + 20s).found, Found::alive);
  ASSERT_EQ(validate(1, b.id, kT0 + 20s).found, Found::alive);
  EXPECT_EQ(collect_activity(1).size(), 1u);
  EXPECT_EQ(collect_activity(1).size(), 1u);
  EXPECT_TRUE(collect_activity(1).empty());
  (void)untouched;
}

// --- restore ---

TEST_P(StoreContract, RestoreBringsBackSessionsAndTombstones) {
  Session restored = session_for(1, kT0);
  const SessionId ended_id = new_id();
  std::vector<RestoredSession> sessions{{restored, token("restored", 1).hash(), kT0 + kRefreshTtl}};
  std::vector<RestoredTombstone> tombstones{{ended_id, 1, EndReason::revoked_by_user, kT0}};
  ASSERT_TRUE(store().restore(std::move(sessions), std::move(tombstones)));

  Lookup l = validate(1, restored.id, kT0 + 1min);
  ASSERT_EQ(l.found, Found::alive);
  expect_same_session(l.session, restored);
  EXPECT_EQ(run(store().owner_of(restored.id, kT0 + 1min)).value(), std::optional<UserId>{1});
  EXPECT_EQ(live_count(), 1u);
  EXPECT_EQ(rotate(token("restored", 1), token("next", 1), kT0 + 2min).kind, Rotation::rotated);
  expect_tombstone(1, ended_id, kT0, EndReason::revoked_by_user);
  EXPECT_EQ(ids_of(collect_expired(kT0 + 2min + kIdle)), std::vector<SessionId>{restored.id});
}

// --- rate limits ---

TEST_P(StoreContract, RateLimitAllowsTheLimitThenRefusesWithRetryAfterFromTheOldestHit) {
  const RateLimit three{3, 10min};
  EXPECT_TRUE(hit("otp_send_per_number:a", three, kT0).allowed);
  EXPECT_TRUE(hit("otp_send_per_number:a", three, kT0 + 1min).allowed);
  EXPECT_TRUE(hit("otp_send_per_number:a", three, kT0 + 2min).allowed);
  RateDecision d = hit("otp_send_per_number:a", three, kT0 + 3min);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.refused_by, 0u);
  EXPECT_EQ(d.retry_after, 7min);  // the hit at kT0 stops counting at kT0 + 10min
  // Refusals are not hits: the next room still comes at kT0 + 10min, then at kT0 + 11min.
  d = hit("otp_send_per_number:a", three, kT0 + 9min);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, 1min);
  EXPECT_TRUE(hit("otp_send_per_number:a", three, kT0 + 10min).allowed);
  d = hit("otp_send_per_number:a", three, kT0 + 10min + 1s);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, 1min - 1s);
}

TEST_P(StoreContract, RateLimitHitCountsForExactlyTheWindow) {
  const RateLimit one{1, 1min};
  ASSERT_TRUE(hit("login_per_ip:x", one, kT0).allowed);
  RateDecision d = hit("login_per_ip:x", one, kT0 + 1min - 1ms);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, 1ms);
  EXPECT_TRUE(hit("login_per_ip:x", one, kT0 + 1min).allowed);
  d = hit("login_per_ip:x", one, kT0 + 1min);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, 1min);
}

TEST_P(StoreContract, RateLimitCountsEveryHitOfOneMillisecond) {
  const RateLimit two{2, 1s};
  EXPECT_TRUE(hit("same-ms", two, kT0).allowed);
  EXPECT_TRUE(hit("same-ms", two, kT0).allowed);
  RateDecision d = hit("same-ms", two, kT0);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, 1s);
  EXPECT_TRUE(hit("same-ms", two, kT0 + 1s).allowed);
}

TEST_P(StoreContract, RateLimitOfSeveralKeysCountsNothingWhenOneIsFull) {
  const RateLimit roomy{3, 1h};
  const RateLimit single{1, 10min};
  ASSERT_TRUE(hit("per_ip:1", single, kT0).allowed);
  // per_ip:1 is full: per_number:1 is not counted, whichever comes first.
  for (int round = 0; round < 5; ++round) {
    RateDecision d = hit({{"per_number:1", roomy}, {"per_ip:1", single}}, kT0 + 1min);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.refused_by, 1u);
    EXPECT_EQ(d.retry_after, 9min);
    d = hit({{"per_ip:1", single}, {"per_number:1", roomy}}, kT0 + 1min);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.refused_by, 0u);
  }
  // Both have room: both count.
  EXPECT_TRUE(hit({{"per_number:1", roomy}, {"per_ip:1", single}}, kT0 + 10min).allowed);
  RateDecision d = hit({{"per_number:1", roomy}, {"per_ip:1", single}}, kT0 + 11min);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.refused_by, 1u);
  EXPECT_EQ(d.retry_after, 9min);
  EXPECT_TRUE(hit("per_number:1", roomy, kT0 + 12min).allowed);
  EXPECT_TRUE(hit("per_number:1", roomy, kT0 + 12min).allowed);
  d = hit("per_number:1", roomy, kT0 + 12min);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, 1h - 2min);  // per_number:1's first hit was at kT0 + 10min
  EXPECT_TRUE(hit(std::vector<RateKey>{}, kT0).allowed);
}

TEST_P(StoreContract, RateLimitWithoutCountingCountsNothing) {
  const RateLimit one{1, 1min};
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(hit("check-only", one, kT0 + 1s * i, false).allowed);
  ASSERT_TRUE(hit("check-only", one, kT0 + 10s).allowed);
  RateDecision d = hit("check-only", one, kT0 + 20s, false);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, 50s);
  d = hit({{"other", one}, {"check-only", one}}, kT0 + 30s, false);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.refused_by, 1u);
  EXPECT_TRUE(hit("check-only", one, kT0 + 70s, false).allowed);
  EXPECT_TRUE(hit("other", one, kT0 + 70s).allowed);  // "other" was only checked
}

TEST_P(StoreContract, RateRefundTakesTheLatestHitBack) {
  const RateLimit two{2, 1min};
  ASSERT_TRUE(hit("refund", two, kT0).allowed);
  ASSERT_TRUE(hit({{"refund", two}, {"refund-other", two}}, kT0 + 10s).allowed);
  ASSERT_FALSE(hit("refund", two, kT0 + 20s, false).allowed);
  ASSERT_TRUE(run(store().rate_refund({{"refund", two}, {"never-hit", two}}, kT0 + 20s)));
  // The hit of +10 s went back: one place is free, and the hit of +0 s still counts.
  ASSERT_TRUE(hit("refund", two, kT0 + 20s).allowed);
  RateDecision d = hit("refund", two, kT0 + 30s, false);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, 30s);
  EXPECT_FALSE(hit("refund-other", RateLimit{1, 1min}, kT0 + 30s, false).allowed)
      << "other keys keep their hits";
  ASSERT_TRUE(run(store().rate_refund({{"refund-other", two}}, kT0 + 30s)));
  ASSERT_TRUE(run(store().rate_refund({{"refund-other", two}}, kT0 + 30s))) << "none left: a no-op";
  EXPECT_TRUE(hit("refund-other", RateLimit{1, 1min}, kT0 + 30s).allowed);
}

TEST_P(StoreContract, RateLimitKeysAreIndependent) {
  const RateLimit two{2, 1h};
  ASSERT_TRUE(hit("login_per_account:7", two, kT0).allowed);
  ASSERT_TRUE(hit("login_per_account:7", two, kT0).allowed);
  ASSERT_FALSE(hit("login_per_account:7", two, kT0 + 1s).allowed);
  EXPECT_TRUE(hit("login_per_account:70", two, kT0 + 1s).allowed);
  EXPECT_TRUE(hit("login_per_account:8", two, kT0 + 1s).allowed);
  EXPECT_TRUE(hit("login_per_ip:7", two, kT0 + 1s).allowed);
  EXPECT_TRUE(hit("login_per_account:8", two, kT0 + 1s).allowed);
  EXPECT_FALSE(hit("login_per_account:8", two, kT0 + 1s).allowed);
}

TEST_P(StoreContract, RateLimitRejectsALimitWithoutRoom) {
  for (RateLimit bad : {RateLimit{0, 1min}, RateLimit{1, 0ms}, RateLimit{-1, 1min}}) {
    auto out = run(store().rate_limit(std::vector<RateKey>{{"k", bad}}, kT0));
    ASSERT_TRUE(out.has_error());
    EXPECT_EQ(out.error().code, Errc::invalid_request);
  }
}

TEST_P(StoreContract, ConcurrentRateLimitCallsOnThreadsAllowExactlyTheLimit) {
  constexpr int kThreads = 20;
  std::atomic<int> allowed{0};
  std::atomic<int> refused{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      auto d = run(store().rate_limit(std::vector<RateKey>{{"busy", RateLimit{5, 1min}}}, kT0));
      if (d && d->allowed) ++allowed;
      if (d && !d->allowed) ++refused;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed.load(), 5);
  EXPECT_EQ(refused.load(), kThreads - 5);
}

// Starts `callers` rate_limit calls at once on the calling thread's io_context (on Redis: they
// pipeline on one connection) and answers how many were allowed, or -1 when one failed.
boost::asio::awaitable<int> allowed_among_concurrent_calls(SessionStore& store, RateKey key,
                                                           TimePoint now, int callers) {
  auto executor = co_await boost::asio::this_coro::executor;
  boost::asio::steady_timer all_done(executor, boost::asio::steady_timer::time_point::max());
  int allowed = 0;
  int finished = 0;
  bool failed = false;
  for (int i = 0; i < callers; ++i) {
    std::vector<RateKey> keys{key};
    // The handlers run on this thread while this frame waits below for the last of them.
    boost::asio::co_spawn(executor, store.rate_limit(std::move(keys), now),
                          [&](const std::exception_ptr& e, const Result<RateDecision>& d) {
                            if (e || !d) failed = true;
                            if (!e && d && d->allowed) ++allowed;
                            if (++finished == callers) all_done.cancel();
                          });
  }
  while (finished < callers) {
    co_await all_done.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }
  co_return failed ? -1 : allowed;
}

TEST_P(StoreContract, ConcurrentRateLimitCallsOnOneThreadAllowExactlyTheLimit) {
  const RateKey key{"busy-coroutines", RateLimit{5, 1min}};
  EXPECT_EQ(run(allowed_among_concurrent_calls(store(), key, kT0, 20)), 5);
  EXPECT_EQ(run(allowed_among_concurrent_calls(store(), key, kT0 + 1min - 1ms, 20)), 0);
  EXPECT_EQ(run(allowed_among_concurrent_calls(store(), key, kT0 + 1min, 20)), 5);
}

// --- one-time codes ---

TEST_P(StoreContract, OtpCodeIsAcceptedOnceThenNone) {
  put_code("otp:+15550100", "hash-123456", kT0 + 5min, 5, kT0);
  EXPECT_EQ(check_code("otp:+15550100", "hash-123456", kT0 + 1min), OtpCheck::accepted);
  EXPECT_EQ(check_code("otp:+15550100", "hash-123456", kT0 + 1min), OtpCheck::none);
  EXPECT_EQ(check_code("otp:+15550100", "hash-000000", kT0 + 1min), OtpCheck::none);
}

TEST_P(StoreContract, OtpCheckWithNoCodeIsNone) {
  EXPECT_EQ(check_code("otp:never-sent", "hash-123456", kT0), OtpCheck::none);
  put_code("otp:a", "hash-123456", kT0 + 5min, 5, kT0);
  EXPECT_EQ(check_code("otp:b", "hash-123456", kT0), OtpCheck::none);
  EXPECT_EQ(check_code("otp:a", "hash-123456", kT0), OtpCheck::accepted);
}

TEST_P(StoreContract, OtpWrongCodesUseAttemptsAndTheLastWrongTryBurnsIt) {
  put_code("otp:1", "right", kT0 + 5min, 3, kT0);
  EXPECT_EQ(check_code("otp:1", "wrong-a", kT0 + 1s), OtpCheck::wrong);
  EXPECT_EQ(check_code("otp:1", "wrong-b", kT0 + 2s), OtpCheck::wrong);
  EXPECT_EQ(check_code("otp:1", "wrong-c", kT0 + 3s), OtpCheck::burned);
  EXPECT_EQ(check_code("otp:1", "right", kT0 + 4s), OtpCheck::none);
  EXPECT_EQ(check_code("otp:1", "wrong-d", kT0 + 5s), OtpCheck::none);

  put_code("otp:2", "right", kT0 + 5min, 3, kT0);
  EXPECT_EQ(check_code("otp:2", "wrong", kT0 + 1s), OtpCheck::wrong);
  EXPECT_EQ(check_code("otp:2", "wrong", kT0 + 2s), OtpCheck::wrong);
  EXPECT_EQ(check_code("otp:2", "right", kT0 + 3s), OtpCheck::accepted);

  put_code("otp:3", "right", kT0 + 5min, 1, kT0);
  EXPECT_EQ(check_code("otp:3", "wrong", kT0 + 1s), OtpCheck::burned);
  EXPECT_EQ(check_code("otp:3", "right", kT0 + 2s), OtpCheck::none);
}

TEST_P(StoreContract, OtpExpiredCodeIsNone) {
  put_code("otp:early", "right", kT0 + 5min, 5, kT0);
  put_code("otp:late", "right", kT0 + 5min, 5, kT0);
  EXPECT_EQ(check_code("otp:early", "right", kT0 + 5min - 1ms), OtpCheck::accepted);
  EXPECT_EQ(check_code("otp:late", "right", kT0 + 5min), OtpCheck::none);
  EXPECT_EQ(check_code("otp:late", "wrong", kT0 + 5min), OtpCheck::none);
  EXPECT_EQ(check_code("otp:late", "right", kT0 + 4min), OtpCheck::none);  // gone for good

  put_code("otp:born-expired", "right", kT0, 5, kT0);
  EXPECT_EQ(check_code("otp:born-expired", "right", kT0), OtpCheck::none);
}

TEST_P(StoreContract, OtpPutReplacesTheCodeAndResetsTheAttempts) {
  put_code("otp:x", "first", kT0 + 5min, 3, kT0);
  ASSERT_EQ(check_code("otp:x", "wrong", kT0 + 1s), OtpCheck::wrong);
  ASSERT_EQ(check_code("otp:x", "wrong", kT0 + 2s), OtpCheck::wrong);
  put_code("otp:x", "second", kT0 + 1min + 5min, 3, kT0 + 1min);
  EXPECT_EQ(check_code("otp:x", "first", kT0 + 1min + 1s), OtpCheck::wrong);  // replaced
  EXPECT_EQ(check_code("otp:x", "wrong", kT0 + 1min + 2s), OtpCheck::wrong);
  // The new code runs until its own expiry, past the first one's.
  EXPECT_EQ(check_code("otp:x", "second", kT0 + 5min + 1s), OtpCheck::accepted);
}

TEST_P(StoreContract, ConcurrentChecksOfTheRightCodeAcceptItOnce) {
  put_code("otp:race", "right", kT0 + 5min, 5, kT0);
  constexpr int kThreads = 8;
  std::atomic<int> accepted{0};
  std::atomic<int> none{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      auto checked = run(store().otp_check("otp:race", "right", kT0 + 1s));
      if (checked && *checked == OtpCheck::accepted) ++accepted;
      if (checked && *checked == OtpCheck::none) ++none;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(accepted.load(), 1);
  EXPECT_EQ(none.load(), kThreads - 1);
}

TEST_P(StoreContract, OtpPutRejectsNoAttempts) {
  auto out = run(store().otp_put("otp:k", "right", kT0 + 5min, 0, kT0));
  ASSERT_TRUE(out.has_error());
  EXPECT_EQ(out.error().code, Errc::invalid_request);
}

// --- leases ---

TEST_P(StoreContract, LeaseGoesToOneHolderUntilItsTtlPasses) {
  EXPECT_TRUE(acquire("webhooks", "node-a", 30s, kT0));
  EXPECT_FALSE(acquire("webhooks", "node-b", 30s, kT0 + 1s));
  EXPECT_FALSE(acquire("webhooks", "node-b", 30s, kT0 + 30s - 1ms));
  EXPECT_TRUE(acquire("webhooks", "node-b", 30s, kT0 + 30s));
  EXPECT_FALSE(acquire("webhooks", "node-a", 30s, kT0 + 31s));
}

TEST_P(StoreContract, LeaseHolderRenewsIt) {
  ASSERT_TRUE(acquire("webhooks", "node-a", 30s, kT0));
  EXPECT_TRUE(acquire("webhooks", "node-a", 30s, kT0 + 20s));  // now runs until kT0 + 50s
  EXPECT_FALSE(acquire("webhooks", "node-b", 30s, kT0 + 40s));
  EXPECT_FALSE(acquire("webhooks", "node-b", 30s, kT0 + 50s - 1ms));
  EXPECT_TRUE(acquire("webhooks", "node-b", 30s, kT0 + 50s));
}

TEST_P(StoreContract, LeaseReleaseFreesItOnlyForItsHolder) {
  ASSERT_TRUE(acquire("webhooks", "node-a", 30s, kT0));
  release("webhooks", "node-b");  // not the holder: nothing happens
  EXPECT_FALSE(acquire("webhooks", "node-b", 30s, kT0 + 1s));
  release("webhooks", "node-a");
  EXPECT_TRUE(acquire("webhooks", "node-b", 30s, kT0 + 2s));
  EXPECT_FALSE(acquire("webhooks", "node-a", 30s, kT0 + 3s));
  release("never-held", "node-a");
}

TEST_P(StoreContract, LeasesOfDifferentNamesAreIndependent) {
  ASSERT_TRUE(acquire("webhooks", "node-a", 30s, kT0));
  EXPECT_TRUE(acquire("cleanup", "node-b", 30s, kT0));
  EXPECT_FALSE(acquire("cleanup", "node-a", 30s, kT0 + 1s));
  EXPECT_FALSE(acquire("webhooks", "node-b", 30s, kT0 + 1s));
}

TEST_P(StoreContract, ConcurrentLeaseAcquiresHaveOneWinner) {
  constexpr int kThreads = 8;
  std::atomic<int> held{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      auto got = run(store().lease_acquire("webhooks", "node-" + std::to_string(i), 30s, kT0));
      if (got && *got) ++held;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(held.load(), 1);
}

// --- concurrency and health ---

TEST_P(StoreContract, ValidateWhileRevokingStaysConsistent) {
  constexpr int kSessions = 40;
  constexpr int kReaders = 4;
  std::vector<Session> sessions;
  for (int i = 0; i < kSessions; ++i) {
    sessions.push_back(session_for(1, kT0));
    ASSERT_TRUE(create(sessions.back(), kSessions).evicted.empty());
  }
  std::atomic<bool> inconsistent{false};
  std::latch start(kReaders + 1);
  std::vector<std::thread> threads;
  for (int r = 0; r < kReaders; ++r) {
    threads.emplace_back([&, r] {
      start.arrive_and_wait();
      for (int round = 0; round < 25; ++round) {
        for (int i = 0; i < kSessions; ++i) {
          const TimePoint now = kT0 + 1s + 1ms * (round * kSessions + i);
          Lookup l = validate(1, sessions[static_cast<std::size_t>(i)].id, now,
                              "203.0.113." + std::to_string(r));
          const bool ok =
              l.found == Found::alive ||
              (l.found == Found::ended && l.reason == EndReason::revoked_by_user && i % 2 == 0);
          if (!ok) inconsistent = true;
        }
      }
    });
  }
  threads.emplace_back([&] {
    start.arrive_and_wait();
    for (int i = 0; i < kSessions; i += 2) {
      if (!revoke(1, sessions[static_cast<std::size_t>(i)].id, EndReason::revoked_by_user,
                  kT0 + 1s)) {
        inconsistent = true;
      }
    }
  });
  for (auto& t : threads) t.join();
  EXPECT_FALSE(inconsistent.load());
  EXPECT_EQ(list(1, kT0 + 2s).size(), static_cast<std::size_t>(kSessions / 2));
  EXPECT_EQ(live_count(), static_cast<std::size_t>(kSessions / 2));
}

TEST_P(StoreContract, PingAnswers) { EXPECT_TRUE(run(store().ping())); }

INSTANTIATE_TEST_SUITE_P(Stores, StoreContract, ::testing::ValuesIn(store_factories()),
                         [](const ::testing::TestParamInfo<StoreFactory>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace sessiond::store::testing
