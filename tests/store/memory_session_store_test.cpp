// What the in-process store promises beyond the contract: bounded memory, and expiries found on
// the request path reported by collect_expired.
#include "store/memory/memory_session_store.hpp"

#include <gtest/gtest.h>
#include <malloc.h>

#include <array>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "store/store_test_support.hpp"

namespace sessiond::store::testing {
namespace {

using namespace std::chrono_literals;

// Heap measurements are built in the Release build only: a sanitizer's allocator hides heap use.
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define SESSIOND_MEASURES_HEAP 1
#endif

#ifdef SESSIOND_MEASURES_HEAP
std::size_t heap_in_use() {
  malloc_trim(0);
  return mallinfo2().uordblks;
}
#endif

constexpr std::array<const char*, 4> kAgents{
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36",
    "sessionctl/0.1.0",
};
constexpr std::array<const char*, 4> kDevices{"iPhone · Safari", "Windows · Chrome",
                                              "Android · Chrome", "CLI"};

// A session as the service would create it: shared agents and roles, an IPv4 address per user.
CreateRequest realistic_request(std::uint64_t n, TimePoint now) {
  CreateRequest request;
  Session& s = request.session;
  s.id = test_session_id(n);
  s.user_id = static_cast<UserId>(n);
  s.role = n % 10 == 0 ? "HOTEL_EMPLOYEE" : "GUEST";
  s.attributes = "{}";
  s.auth_method = AuthMethod::otp;
  s.device_info = kDevices[n % kDevices.size()];
  s.user_agent = kAgents[n % kAgents.size()];
  s.ip_address = "10." + std::to_string(n >> 16 & 255) + "." + std::to_string(n >> 8 & 255) + "." +
                 std::to_string(n & 255);
  s.last_ip = s.ip_address;
  s.created_at = now;
  s.last_activity = now;
  s.absolute_expires_at = now + 24h * 30;
  s.idle_timeout = 24h;
  request.refresh_hash = sha256("rt_" + std::to_string(n));
  request.refresh_expires_at = now + 24h * 30;
  return request;
}

#ifdef SESSIOND_MEASURES_HEAP
TEST(MemorySessionStore, LiveSessionCostsWellUnderOneKiB) {
  constexpr std::uint64_t kSessions = 200'000;
  MemorySessionStore store;
  const std::size_t before = heap_in_use();
  for (std::uint64_t n = 1; n <= kSessions; ++n) {
    ASSERT_TRUE(run(store.create(realistic_request(n, kT0))));
  }
  const std::size_t after = heap_in_use();
  const double per_session = static_cast<double>(after - before) / kSessions;
  std::printf("memory store: %.0f bytes per live session (%llu sessions, one per user)\n",
              per_session, static_cast<unsigned long long>(kSessions));
  RecordProperty("bytes_per_session", static_cast<int>(per_session));
  EXPECT_LT(per_session, 700.0);
}

TEST(MemorySessionStore, EndedSessionsAreForgottenAfterTheirTombstoneLifetime) {
  constexpr std::uint64_t kSessions = 20'000;
  MemoryStoreOptions options;
  options.tombstone_ttl = 1h;
  MemorySessionStore store(options);
  const std::size_t before = heap_in_use();
  for (std::uint64_t n = 1; n <= kSessions; ++n) {
    ASSERT_TRUE(run(store.create(realistic_request(n, kT0))));
    RotateRequest rotation;
    rotation.presented = sha256("rt_" + std::to_string(n));
    rotation.successor = sha256("rt2_" + std::to_string(n));
    rotation.sealed_successor = std::string(120, 's');
    rotation.successor_expires_at = kT0 + 24h * 30;
    rotation.now = kT0 + 1min;
    ASSERT_EQ(run(store.rotate_refresh(rotation)).value().kind, Rotation::rotated);
  }
  const std::size_t peak = heap_in_use();
  for (std::uint64_t n = 1; n <= kSessions; ++n) {
    ASSERT_TRUE(
        run(store.revoke(static_cast<UserId>(n), test_session_id(n), EndReason::logout, kT0 + 2min))
            .value());
  }
  for (int call = 0; call < 50; ++call) {
    ASSERT_TRUE(run(store.collect_expired(kT0 + 2min + 1h, 1000)).value().empty());
  }
  const std::size_t purged = heap_in_use();
  std::printf(
      "memory store: %zu bytes in use with %llu sessions, %zu after they ended and "
      "were purged\n",
      peak - before, static_cast<unsigned long long>(kSessions), purged - before);
  // What stays are the hash tables' bucket arrays, which never shrink.
  EXPECT_LT(purged - before, (peak - before) / 5);
}

// Every limit, code and lease of `n` subjects, as the service keeps them: each runs out within the
// hour after `now`.
void add_guards(MemorySessionStore& store, std::uint64_t n, TimePoint now) {
  const std::string subject = "subject-" + std::to_string(n) + "-0123456789abcdef";
  std::vector<RateKey> limits{{"otp_send_per_number:" + subject, RateLimit{3, 10min}},
                              {"otp_send_per_ip:" + subject, RateLimit{30, 1h}}};
  ASSERT_TRUE(run(store.rate_limit(std::move(limits), now)).value().allowed);
  ASSERT_TRUE(run(store.otp_put(subject, std::string(43, 'h'), now + 5min, 5, now)));
  ASSERT_TRUE(run(store.lease_acquire(subject, "node-a", 1min, now)).value());
}

TEST(MemorySessionStore, LimitsCodesAndLeasesAreForgottenOnceOver) {
  constexpr std::uint64_t kSubjects = 20'000;
  MemorySessionStore store;
  const std::size_t before = heap_in_use();
  for (std::uint64_t n = 1; n <= kSubjects; ++n) add_guards(store, n, kT0);
  const std::size_t peak = heap_in_use();
  for (int call = 0; call < 50; ++call) {
    ASSERT_TRUE(run(store.collect_expired(kT0 + 1h, 1000)).value().empty());
  }
  const std::size_t swept = heap_in_use();
  std::printf(
      "memory store: %zu bytes for the limits, codes and leases of %llu subjects, %zu "
      "after they ran out and were swept\n",
      peak - before, static_cast<unsigned long long>(kSubjects), swept - before);
  // What stays are the hash tables' bucket arrays, which never shrink.
  EXPECT_LT(swept - before, (peak - before) / 5);
}

TEST(MemorySessionStore, LimitsCodesAndLeasesStayBoundedWithoutCollectExpired) {
  constexpr std::uint64_t kSubjects = 20'000;
  std::size_t all_live = 0;
  {
    MemorySessionStore store;
    const std::size_t before = heap_in_use();
    for (std::uint64_t n = 1; n <= kSubjects; ++n) add_guards(store, n, kT0);
    all_live = heap_in_use() - before;
  }
  // A new subject every 10 s: a few hundred are live at a time (the longest window is an hour);
  // the calls that add sweep the rest.
  MemorySessionStore store;
  const std::size_t before = heap_in_use();
  for (std::uint64_t n = 1; n <= kSubjects; ++n) {
    add_guards(store, n, kT0 + 10s * static_cast<std::int64_t>(n));
  }
  const std::size_t churned = heap_in_use() - before;
  std::printf("memory store: %zu bytes with %llu subjects live, %zu after as many came and went\n",
              all_live, static_cast<unsigned long long>(kSubjects), churned);
  EXPECT_LT(churned, all_live / 3);
}
#endif  // SESSIOND_MEASURES_HEAP

TEST(MemorySessionStore, ExpiryFoundOnTheRequestPathIsReportedByCollectExpired) {
  MemorySessionStore store;
  CreateRequest request = realistic_request(1, kT0);
  request.session.idle_timeout = 1h;
  ASSERT_TRUE(run(store.create(request)));
  Lookup l = run(store.validate_and_touch(1, request.session.id, kT0 + 2h, "10.0.0.1")).value();
  ASSERT_EQ(l.found, Found::ended);
  auto reported = run(store.collect_expired(kT0 + 2h, 10)).value();
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_EQ(reported[0].id, request.session.id);
  EXPECT_EQ(reported[0].user_id, 1);
  EXPECT_EQ(reported[0].last_activity, kT0);
  EXPECT_TRUE(run(store.collect_expired(kT0 + 3h, 10)).value().empty());
}

TEST(MemorySessionStore, CreateRejectsADuplicateSessionIdWithoutEvicting) {
  MemorySessionStore store;
  CreateRequest first = realistic_request(1, kT0);
  ASSERT_TRUE(run(store.create(first)));
  CreateRequest again = realistic_request(1, kT0 + 1s);
  again.refresh_hash = sha256("another");
  again.max_sessions = 1;
  auto out = run(store.create(again));
  ASSERT_TRUE(out.has_error());
  EXPECT_EQ(out.error().code, Errc::internal);
  EXPECT_EQ(run(store.validate_and_touch(1, first.session.id, kT0 + 2s, "")).value().found,
            Found::alive);
}

}  // namespace
}  // namespace sessiond::store::testing
