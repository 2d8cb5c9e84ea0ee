#include "core/session.hpp"

#include <gtest/gtest.h>

#include "unit/counter_random.hpp"

namespace sessiond {
namespace {

using namespace std::chrono_literals;

RolePolicy policy(Duration idle, Duration absolute) {
  return RolePolicy{idle, absolute, 2, OnLimit::evict_oldest};
}

Session new_session(const FakeClock& clock, const RolePolicy& p) {
  testing::CounterRandom random;
  return make_session(SessionId::generate(random), 42, "HOTEL_EMPLOYEE", p, clock.now());
}

TEST(Session, MakeSessionSetsDeadlinesFromThePolicy) {
  FakeClock clock;
  const auto s = new_session(clock, policy(8h, 24h * 30));
  EXPECT_EQ(s.user_id, 42);
  EXPECT_EQ(s.role, "HOTEL_EMPLOYEE");
  EXPECT_EQ(s.created_at, clock.now());
  EXPECT_EQ(s.last_activity, clock.now());
  EXPECT_EQ(s.absolute_expires_at, clock.now() + 24h * 30);
  EXPECT_EQ(s.idle_timeout, 8h);
  EXPECT_EQ(s.attributes, "{}");
}

TEST(Session, ExpiresAtIsIdleDeadlineWhileItComesFirst) {
  FakeClock clock;
  auto s = new_session(clock, policy(8h, 24h * 30));
  EXPECT_EQ(s.expires_at(), clock.now() + 8h);
  clock.advance(5h);
  s.last_activity = clock.now();  // a request slides the idle window
  EXPECT_EQ(s.expires_at(), clock.now() + 8h);
}

TEST(Session, ExpiresAtNeverPassesTheAbsoluteDeadline) {
  FakeClock clock;
  auto s = new_session(clock, policy(8h, 24h * 30));
  const auto absolute = clock.now() + 24h * 30;
  clock.advance(24h * 30 - 1h);
  s.last_activity = clock.now();
  EXPECT_EQ(s.expires_at(), absolute);
}

TEST(Session, ExpiresAtIsAbsoluteWhenIdleTimeoutIsLonger) {
  FakeClock clock;
  const auto s = new_session(clock, policy(24h * 60, 24h * 7));
  EXPECT_EQ(s.expires_at(), clock.now() + 24h * 7);
}

TEST(Session, IsDeadExactlyAtItsDeadline) {
  FakeClock clock;
  const auto s = new_session(clock, policy(4h, 24h * 7));
  EXPECT_TRUE(s.alive_at(clock.now()));
  EXPECT_TRUE(s.alive_at(s.expires_at() - 1ms));
  EXPECT_FALSE(s.alive_at(s.expires_at()));
  EXPECT_FALSE(s.alive_at(s.expires_at() + 1h));
}

TEST(RoleTable, DefaultsMatchTheSpecification) {
  const auto roles = RoleTable::defaults();
  EXPECT_EQ(roles.default_role(), "GUEST");
  EXPECT_EQ(roles.all().size(), 4u);
  struct Expected {
    const char* name;
    Duration idle;
    Duration absolute;
    int max_sessions;
  };
  for (const auto& e :
       {Expected{"GUEST", 24h, 24h * 30, 5}, Expected{"HOTEL_EMPLOYEE", 8h, 24h * 30, 2},
        Expected{"VENDOR_ADMIN", 12h, 24h * 30, 3}, Expected{"SYSTEM_ADMIN", 4h, 24h * 7, 2}}) {
    const RolePolicy* p = roles.find(e.name);
    ASSERT_NE(p, nullptr) << e.name;
    EXPECT_EQ(p->idle_timeout, e.idle) << e.name;
    EXPECT_EQ(p->absolute_timeout, e.absolute) << e.name;
    EXPECT_EQ(p->max_sessions, e.max_sessions) << e.name;
    EXPECT_EQ(p->on_limit, OnLimit::evict_oldest) << e.name;
  }
}

TEST(RoleTable, FindIsExactAndCaseSensitive) {
  const auto roles = RoleTable::defaults();
  EXPECT_EQ(roles.find("guest"), nullptr);
  EXPECT_EQ(roles.find("GUEST "), nullptr);
  EXPECT_EQ(roles.find(""), nullptr);
}

TEST(RoleTable, SetAddsOrReplacesARole) {
  auto roles = RoleTable::defaults();
  roles.set("AUDITOR", policy(1h, 24h));
  roles.set("GUEST", RolePolicy{2h, 48h, 1, OnLimit::deny});
  ASSERT_NE(roles.find("AUDITOR"), nullptr);
  EXPECT_EQ(roles.find("AUDITOR")->idle_timeout, 1h);
  EXPECT_EQ(roles.find("GUEST")->on_limit, OnLimit::deny);
  EXPECT_EQ(roles.find("GUEST")->max_sessions, 1);
  roles.set_default_role("AUDITOR");
  EXPECT_EQ(roles.default_role(), "AUDITOR");
}

TEST(Session, AuthMethodNamesRoundTrip) {
  for (auto m : {AuthMethod::otp, AuthMethod::password, AuthMethod::admin}) {
    EXPECT_EQ(parse_auth_method(auth_method_name(m)), m);
  }
  EXPECT_EQ(auth_method_name(AuthMethod::otp), "otp");
  EXPECT_EQ(parse_auth_method("OTP"), std::nullopt);
  EXPECT_EQ(parse_auth_method(""), std::nullopt);
}

TEST(Session, OnLimitNamesRoundTrip) {
  for (auto p : {OnLimit::evict_oldest, OnLimit::evict_lru, OnLimit::deny}) {
    EXPECT_EQ(parse_on_limit(on_limit_name(p)), p);
  }
  EXPECT_EQ(on_limit_name(OnLimit::evict_lru), "evict_lru");
  EXPECT_EQ(parse_on_limit("evict_newest"), std::nullopt);
}

}  // namespace
}  // namespace sessiond
