// The database contract: what every Database (SQLite, PostgreSQL) does, tested the same way.
#include "database_contract.hpp"

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <map>
#include <thread>

#include "core/crypto.hpp"
#include "db/migrations.hpp"

namespace sessiond::db::testing {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

// Milliseconds on purpose: every timestamp must round-trip to the millisecond.
const TimePoint kT0 = *parse_rfc3339("2026-11-22T10:00:00.123Z");

template <class R>
std::string why(const R& result) {
  if (result) return {};
  return std::string(code_name(result.error().code)) + ": " + result.error().detail;
}

SessionId session_id(int n) {
  SessionId id;
  id.bytes[0] = 0xab;
  id.bytes[6] = 0x40;  // version 4
  id.bytes[8] = 0x80;  // RFC 4122 variant
  id.bytes[14] = static_cast<std::uint8_t>(n >> 8);
  id.bytes[15] = static_cast<std::uint8_t>(n);
  return id;
}

TokenHash refresh_hash(int n) { return sha256("rt_test_token_" + std::to_string(n)); }

// A session with every field set to something distinctive.
Session make_test_session(int n, UserId user, TimePoint created) {
  Session s;
  s.id = session_id(n);
  s.user_id = user;
  s.role = "HOTEL_EMPLOYEE";
  s.attributes = R"({"hotel_id":7})";
  s.auth_method = AuthMethod::otp;
  s.device_info = "iPhone · Safari";
  s.ip_address = "203.0.113.7";
  s.last_ip = "2001:db8::1";
  s.user_agent = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)";
  s.created_at = created;
  s.last_activity = created + milliseconds{1501};
  s.absolute_expires_at = created + hours{24 * 30} + milliseconds{7};
  s.idle_timeout = hours{8} + milliseconds{3};
  return s;
}

SessionCreated created_change(const Session& s, int hash = 0) {
  return SessionCreated{s, refresh_hash(hash), s.created_at + hours{24 * 30}};
}

Event make_event(std::string uid, std::string type, TimePoint at,
                 std::optional<UserId> user = std::nullopt,
                 std::optional<SessionId> session = std::nullopt) {
  Event e;
  e.uid = std::move(uid);
  e.type = std::move(type);
  e.at = at;
  e.user_id = user;
  e.session_id = session;
  e.ip_address = "198.51.100.4";
  e.detail = R"({"k":"v"})";
  return e;
}

void expect_same_session(const Session& a, const Session& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.user_id, b.user_id);
  EXPECT_EQ(a.role, b.role);
  EXPECT_EQ(a.attributes, b.attributes);
  EXPECT_EQ(a.auth_method, b.auth_method);
  EXPECT_EQ(a.device_info, b.device_info);
  EXPECT_EQ(a.ip_address, b.ip_address);
  EXPECT_EQ(a.last_ip, b.last_ip);
  EXPECT_EQ(a.user_agent, b.user_agent);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.last_activity, b.last_activity);
  EXPECT_EQ(a.absolute_expires_at, b.absolute_expires_at);
  EXPECT_EQ(a.idle_timeout, b.idle_timeout);
}

void expect_same_user(const User& a, const User& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.email, b.email);
  EXPECT_EQ(a.mobile_number, b.mobile_number);
  EXPECT_EQ(a.role, b.role);
  EXPECT_EQ(a.password_hash, b.password_hash);
  EXPECT_EQ(a.attributes, b.attributes);
  EXPECT_EQ(a.disabled, b.disabled);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.updated_at, b.updated_at);
}

std::vector<std::string> uids(const std::vector<Event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.uid);
  return out;
}

// Helpers that stop the test on an unexpected error.
#define ASSERT_OK(expr)                   \
  do {                                    \
    auto result_ = (expr);                \
    ASSERT_TRUE(result_) << why(result_); \
  } while (false)

User add_user(Database& db, const std::string& name, TimePoint now = kT0) {
  NewUser user;
  user.email = name + "@example.com";
  user.role = "GUEST";
  auto created = db.create_user(user, now);
  EXPECT_TRUE(created) << why(created);
  return created ? *created : User{};
}

std::optional<SessionRecord> find(Database& db, const SessionId& id) {
  auto found = db.find_session(id);
  EXPECT_TRUE(found) << why(found);
  return found ? *found : std::nullopt;
}

std::vector<Event> events(Database& db, EventFilter filter = {}) {
  auto listed = db.list_events(filter);
  EXPECT_TRUE(listed) << why(listed);
  return listed ? *listed : std::vector<Event>{};
}

std::vector<Event> queued(Database& db, int limit = 100) {
  auto head = db.webhook_queue_head(limit);
  EXPECT_TRUE(head) << why(head);
  return head ? *head : std::vector<Event>{};
}

Event notifying(Event e) {
  e.notify = true;
  return e;
}

std::vector<SessionId> recent(Database& db, UserId user, TimePoint active_since,
                              TimePoint created_before) {
  auto found = db.recent_sessions(user, active_since, created_before);
  EXPECT_TRUE(found) << why(found);
  std::vector<SessionId> ids;
  if (found) {
    for (const auto& r : *found) ids.push_back(r.session.id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

// ---- migrations and reopening

TEST_P(DatabaseContract, MigrateIsIdempotentAndReturnsTheSameVersion) {
  auto first = db_->migrate();
  auto second = db_->migrate();
  ASSERT_TRUE(first) << why(first);
  ASSERT_TRUE(second) << why(second);
  EXPECT_EQ(*first, latest_schema_version());
  EXPECT_EQ(*second, *first);
}

TEST_P(DatabaseContract, ReopenKeepsDataAndSchemaVersion) {
  User user = add_user(*db_, "ana");
  db_.reset();
  db_ = backend_->reopen();
  auto version = db_->migrate();
  ASSERT_TRUE(version) << why(version);
  EXPECT_EQ(*version, latest_schema_version());
  auto found = db_->find_user(user.id);
  ASSERT_TRUE(found) << why(found);
  ASSERT_TRUE(found->has_value());
  expect_same_user(**found, user);
}

TEST_P(DatabaseContract, PingAnswers) { ASSERT_OK(db_->ping()); }

// ---- users

TEST_P(DatabaseContract, CreatedUserIsFoundByIdEmailAndMobile) {
  NewUser input;
  input.email = "ana@example.com";
  input.mobile_number = "+306900000001";
  input.role = "VENDOR_ADMIN";
  input.password_hash = "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA";
  input.attributes = R"({"vendor":3})";
  auto created = db_->create_user(input, kT0);
  ASSERT_TRUE(created) << why(created);
  EXPECT_GT(created->id, 0);
  EXPECT_EQ(created->email, input.email);
  EXPECT_EQ(created->mobile_number, input.mobile_number);
  EXPECT_EQ(created->role, input.role);
  EXPECT_EQ(created->password_hash, input.password_hash);
  EXPECT_EQ(created->attributes, input.attributes);
  EXPECT_FALSE(created->disabled);
  EXPECT_EQ(created->created_at, kT0);
  EXPECT_EQ(created->updated_at, kT0);

  auto by_id = db_->find_user(created->id);
  auto by_email = db_->find_user_by_email("ana@example.com");
  auto by_mobile = db_->find_user_by_mobile("+306900000001");
  for (const auto* found : {&by_id, &by_email, &by_mobile}) {
    ASSERT_TRUE(*found) << why(*found);
    ASSERT_TRUE(found->value().has_value());
    expect_same_user(*found->value(), *created);
  }
}

TEST_P(DatabaseContract, UsersGetDistinctIds) {
  User a = add_user(*db_, "a");
  User b = add_user(*db_, "b");
  EXPECT_NE(a.id, b.id);
}

TEST_P(DatabaseContract, MissingUserIsNotFound) {
  auto by_id = db_->find_user(424242);
  auto by_email = db_->find_user_by_email("nobody@example.com");
  auto by_mobile = db_->find_user_by_mobile("+15550000000");
  ASSERT_TRUE(by_id && by_email && by_mobile);
  EXPECT_FALSE(by_id->has_value());
  EXPECT_FALSE(by_email->has_value());
  EXPECT_FALSE(by_mobile->has_value());
}

TEST_P(DatabaseContract, DuplicateEmailIsConflictNamingTheField) {
  add_user(*db_, "ana");
  NewUser again;
  again.email = "ana@example.com";
  again.role = "GUEST";
  auto r = db_->create_user(again, kT0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::conflict);
  EXPECT_EQ(r.error().detail, "email is taken");
}

TEST_P(DatabaseContract, DuplicateMobileIsConflictNamingTheField) {
  NewUser user;
  user.mobile_number = "+306900000001";
  user.role = "GUEST";
  ASSERT_OK(db_->create_user(user, kT0));
  auto r = db_->create_user(user, kT0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::conflict);
  EXPECT_EQ(r.error().detail, "mobile_number is taken");
}

TEST_P(DatabaseContract, UsersWithoutEmailOrMobileDoNotConflict) {
  NewUser by_mobile_only;
  by_mobile_only.mobile_number = "+306900000001";
  by_mobile_only.role = "GUEST";
  NewUser by_email_only;
  by_email_only.email = "ana@example.com";
  by_email_only.role = "GUEST";
  NewUser neither;
  neither.role = "GUEST";
  ASSERT_OK(db_->create_user(by_mobile_only, kT0));
  ASSERT_OK(db_->create_user(by_email_only, kT0));
  ASSERT_OK(db_->create_user(neither, kT0));
  ASSERT_OK(db_->create_user(neither, kT0));
}

TEST_P(DatabaseContract, UpdateUserChangesEveryPatchedField) {
  User user = add_user(*db_, "ana");
  UserPatch patch;
  patch.role = "SYSTEM_ADMIN";
  patch.disabled = true;
  patch.password_hash = "$argon2id$new";
  patch.attributes = R"({"team":"ops"})";
  auto updated = db_->update_user(user.id, patch, kT0 + seconds{5});
  ASSERT_TRUE(updated) << why(updated);
  EXPECT_EQ(updated->role, "SYSTEM_ADMIN");
  EXPECT_TRUE(updated->disabled);
  EXPECT_EQ(updated->password_hash, "$argon2id$new");
  EXPECT_EQ(updated->attributes, R"({"team":"ops"})");
  EXPECT_EQ(updated->email, user.email);
  EXPECT_EQ(updated->created_at, kT0);
  EXPECT_EQ(updated->updated_at, kT0 + seconds{5});

  auto found = db_->find_user(user.id);
  ASSERT_TRUE(found && found->has_value());
  expect_same_user(**found, *updated);
}

TEST_P(DatabaseContract, UpdateUserKeepsFieldsNotInThePatch) {
  NewUser input;
  input.email = "ana@example.com";
  input.role = "GUEST";
  input.password_hash = "$argon2id$old";
  input.attributes = R"({"a":1})";
  auto user = db_->create_user(input, kT0);
  ASSERT_TRUE(user) << why(user);

  UserPatch disable;
  disable.disabled = true;
  auto updated = db_->update_user(user->id, disable, kT0 + seconds{1});
  ASSERT_TRUE(updated) << why(updated);
  EXPECT_TRUE(updated->disabled);
  EXPECT_EQ(updated->role, "GUEST");
  EXPECT_EQ(updated->password_hash, "$argon2id$old");
  EXPECT_EQ(updated->attributes, R"({"a":1})");

  UserPatch enable;
  enable.disabled = false;
  updated = db_->update_user(user->id, enable, kT0 + seconds{2});
  ASSERT_TRUE(updated) << why(updated);
  EXPECT_FALSE(updated->disabled);
}

TEST_P(DatabaseContract, UpdateMissingUserIsNotFound) {
  UserPatch patch;
  patch.role = "GUEST";
  auto r = db_->update_user(424242, patch, kT0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::not_found);
}

// ---- session records

TEST_P(DatabaseContract, CreatedSessionRoundTripsEveryField) {
  User user = add_user(*db_, "ana");
  Session s = make_test_session(1, user.id, kT0);
  ASSERT_OK(db_->apply({{created_change(s, 1)}, {}}));

  auto record = find(*db_, s.id);
  ASSERT_TRUE(record.has_value());
  expect_same_session(record->session, s);
  EXPECT_EQ(record->refresh_hash, refresh_hash(1));
  EXPECT_EQ(record->refresh_expires_at, kT0 + hours{24 * 30});
  EXPECT_TRUE(record->active);
  EXPECT_EQ(record->expires_at, s.expires_at());
  EXPECT_FALSE(record->invalidated_at.has_value());
  EXPECT_FALSE(record->invalidation_reason.has_value());
}

TEST_P(DatabaseContract, MissingSessionIsNotFound) {
  auto record = find(*db_, session_id(99));
  EXPECT_FALSE(record.has_value());
}

TEST_P(DatabaseContract, LoadLiveSessionsRoundTripsEveryField) {
  User user = add_user(*db_, "ana");
  Session live = make_test_session(1, user.id, kT0);
  Session other = make_test_session(2, user.id, kT0 + seconds{1});
  other.auth_method = AuthMethod::password;
  other.role = "GUEST";
  other.attributes = "{}";
  Session ended = make_test_session(3, user.id, kT0 + seconds{2});
  ASSERT_OK(db_->apply({{created_change(live, 1), created_change(other, 2),
                         created_change(ended, 3), SessionEnded{ended.id, kT0 + seconds{3}}},
                        {}}));

  auto loaded = db_->load_live_sessions();
  ASSERT_TRUE(loaded) << why(loaded);
  ASSERT_EQ(loaded->size(), 2u);
  const auto& first = (*loaded)[0].session.id == live.id ? (*loaded)[0] : (*loaded)[1];
  const auto& second = (*loaded)[0].session.id == live.id ? (*loaded)[1] : (*loaded)[0];
  expect_same_session(first.session, live);
  EXPECT_EQ(first.refresh_hash, refresh_hash(1));
  EXPECT_EQ(first.refresh_expires_at, live.created_at + hours{24 * 30});
  EXPECT_EQ(first.expires_at, live.expires_at());
  EXPECT_TRUE(first.active);
  expect_same_session(second.session, other);
  EXPECT_EQ(second.refresh_hash, refresh_hash(2));
}

TEST_P(DatabaseContract, RotationUpdatesRefreshHashActivityAndExpiry) {
  User user = add_user(*db_, "ana");
  Session s = make_test_session(1, user.id, kT0);
  ASSERT_OK(db_->apply({{created_change(s, 1)}, {}}));

  SessionRotated rotated{s.id,
                         refresh_hash(2),
                         kT0 + hours{24 * 31},
                         kT0 + hours{1},
                         kT0 + hours{9} + milliseconds{5},
                         "192.0.2.99"};
  ASSERT_OK(db_->apply({{rotated}, {}}));

  auto record = find(*db_, s.id);
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->refresh_hash, refresh_hash(2));
  EXPECT_EQ(record->refresh_expires_at, kT0 + hours{24 * 31});
  EXPECT_EQ(record->session.last_activity, kT0 + hours{1});
  EXPECT_EQ(record->expires_at, kT0 + hours{9} + milliseconds{5});
  EXPECT_EQ(record->session.last_ip, "192.0.2.99");
  EXPECT_EQ(record->session.ip_address, s.ip_address);
  EXPECT_TRUE(record->active);
}

// Activity is flushed in batches: a touch recorded later can reach the database before a rotation.
TEST_P(DatabaseContract, RotationAfterALaterTouchKeepsTheLaterActivityButTakesTheNewHash) {
  User user = add_user(*db_, "ana");
  Session s = make_test_session(1, user.id, kT0);
  ASSERT_OK(db_->apply({{created_change(s, 1)}, {}}));
  ASSERT_OK(
      db_->apply({{ActivityTouched{s.id, kT0 + hours{2}, kT0 + hours{10}, "192.0.2.2"}}, {}}));
  ASSERT_OK(db_->apply({{SessionRotated{s.id, refresh_hash(2), kT0 + hours{24 * 31}, kT0 + hours{1},
                                        kT0 + hours{9}, "192.0.2.1"}},
                        {}}));

  auto record = find(*db_, s.id);
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->refresh_hash, refresh_hash(2));
  EXPECT_EQ(record->refresh_expires_at, kT0 + hours{24 * 31});
  EXPECT_EQ(record->session.last_activity, kT0 + hours{2});
  EXPECT_EQ(record->expires_at, kT0 + hours{10});
  EXPECT_EQ(record->session.last_ip, "192.0.2.2");
}

TEST_P(DatabaseContract, EndedSessionIsInactiveWithTimeAndReason) {
  User user = add_user(*db_, "ana");
  Session s = make_test_session(1, user.id, kT0);
  ASSERT_OK(db_->apply({{created_change(s, 1)}, {}}));
  ASSERT_OK(db_->apply(
      {{SessionEnded{s.id, kT0 + minutes{5} + milliseconds{9}, EndReason::revoked_by_user}}, {}}));

  auto record = find(*db_, s.id);
  ASSERT_TRUE(record.has_value());
  EXPECT_FALSE(record->active);
  EXPECT_EQ(record->invalidated_at, kT0 + minutes{5} + milliseconds{9});
  EXPECT_EQ(record->invalidation_reason, EndReason::revoked_by_user);
  expect_same_session(record->session, s);

  auto live = db_->load_live_sessions();
  ASSERT_TRUE(live) << why(live);
  EXPECT_TRUE(live->empty());
}

TEST_P(DatabaseContract, FirstEndWins) {
  User user = add_user(*db_, "ana");
  Session s = make_test_session(1, user.id, kT0);
  ASSERT_OK(db_->apply({{created_change(s, 1)}, {}}));
  ASSERT_OK(
      db_->apply({{SessionEnded{s.id, kT0 + minutes{1}, EndReason::refresh_token_reuse}}, {}}));
  ASSERT_OK(db_->apply({{SessionEnded{s.id, kT0 + minutes{2}, EndReason::logout},
                         SessionEnded{s.id, kT0 + minutes{3}, EndReason::expired}},
                        {}}));

  auto record = find(*db_, s.id);
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->invalidated_at, kT0 + minutes{1});
  EXPECT_EQ(record->invalidation_reason, EndReason::refresh_token_reuse);
}

TEST_P(DatabaseContract, EndedSessionIgnoresLaterTouchesAndRotations) {
  User user = add_user(*db_, "ana");
  Session s = make_test_session(1, user.id, kT0);
  ASSERT_OK(db_->apply({{created_change(s, 1)}, {}}));
  ASSERT_OK(db_->apply({{SessionEnded{s.id, kT0 + minutes{1}, EndReason::logout}}, {}}));
  ASSERT_OK(db_->apply({{ActivityTouched{s.id, kT0 + hours{1}, kT0 + hours{9}, "192.0.2.1"},
                         SessionRotated{s.id, refresh_hash(2), kT0 + hours{24 * 31}, kT0 + hours{2},
                                        kT0 + hours{10}, "192.0.2.2"}},
                        {}}));

  auto record = find(*db_, s.id);
  ASSERT_TRUE(record.has_value());
  EXPECT_FALSE(record->active);
  EXPECT_EQ(record->session.last_activity, s.last_activity);
  EXPECT_EQ(record->expires_at, s.expires_at());
  EXPECT_EQ(record->refresh_hash, refresh_hash(1));
}

TEST_P(DatabaseContract, TouchMovesActivityForwardOnly) {
  User user = add_user(*db_, "ana");
  Session s = make_test_session(1, user.id, kT0);
  ASSERT_OK(db_->apply({{created_change(s, 1)}, {}}));
  ASSERT_OK(db_->apply(
      {{ActivityTouched{s.id, kT0 + hours{1} + milliseconds{1}, kT0 + hours{9}, "192.0.2.1"}},
       {}}));
  // An older touch arriving late changes nothing.
  ASSERT_OK(
      db_->apply({{ActivityTouched{s.id, kT0 + minutes{30}, kT0 + hours{8}, "192.0.2.2"}}, {}}));

  auto record = find(*db_, s.id);
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->session.last_activity, kT0 + hours{1} + milliseconds{1});
  EXPECT_EQ(record->expires_at, kT0 + hours{9});
  EXPECT_EQ(record->session.last_ip, "192.0.2.1");
  EXPECT_EQ(record->refresh_hash, refresh_hash(1));
}

TEST_P(DatabaseContract, ChangesToUnknownSessionsAreIgnored) {
  SessionId unknown = session_id(77);
  ASSERT_OK(
      db_->apply({{SessionRotated{unknown, refresh_hash(2), kT0, kT0, kT0, "192.0.2.1"},
                   ActivityTouched{unknown, kT0, kT0, "192.0.2.1"}, SessionEnded{unknown, kT0}},
                  {}}));
  EXPECT_FALSE(find(*db_, unknown).has_value());
}

TEST_P(DatabaseContract, RedeliveredBatchChangesNothing) {
  User user = add_user(*db_, "ana");
  Session s = make_test_session(1, user.id, kT0);
  ChangeBatch batch{{created_change(s, 1)}, {make_event("e1", "session_created", kT0, user.id)}};
  ASSERT_OK(db_->apply(batch));
  ASSERT_OK(db_->apply({{SessionRotated{s.id, refresh_hash(2), kT0 + hours{24 * 31}, kT0 + hours{1},
                                        kT0 + hours{9}, "192.0.2.1"}},
                        {}}));
  ASSERT_OK(db_->apply(batch));

  auto record = find(*db_, s.id);
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->refresh_hash, refresh_hash(2));
  EXPECT_EQ(events(*db_).size(), 1u);
}

TEST_P(DatabaseContract, FailingBatchWritesNothing) {
  User user = add_user(*db_, "ana");
  Session good = make_test_session(1, user.id, kT0);
  Session orphan = make_test_session(2, /*user=*/user.id + 1000, kT0);
  auto r = db_->apply({{created_change(good, 1), created_change(orphan, 2)},
                       {make_event("e1", "session_created", kT0, user.id, good.id)}});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().code, Errc::database_unavailable);
  EXPECT_FALSE(find(*db_, good.id).has_value());
  EXPECT_FALSE(find(*db_, orphan.id).has_value());
  EXPECT_TRUE(events(*db_).empty());

  // The database is still usable after the rolled-back batch.
  ASSERT_OK(db_->apply({{created_change(good, 1)}, {}}));
  EXPECT_TRUE(find(*db_, good.id).has_value());
}

TEST_P(DatabaseContract, LoadEndedSinceReturnsSessionsEndedAtOrAfter) {
  User user = add_user(*db_, "ana");
  ChangeBatch batch;
  for (int n = 1; n <= 4; ++n) {
    batch.changes.push_back(created_change(make_test_session(n, user.id, kT0), n));
  }
  batch.changes.push_back(SessionEnded{session_id(1), kT0 + minutes{1}, EndReason::logout});
  batch.changes.push_back(SessionEnded{session_id(2), kT0 + minutes{2}, EndReason::expired});
  batch.changes.push_back(
      SessionEnded{session_id(3), kT0 + minutes{3}, EndReason::max_sessions_exceeded});
  ASSERT_OK(db_->apply(batch));

  auto ended = db_->load_ended_since(kT0 + minutes{2});
  ASSERT_TRUE(ended) << why(ended);
  ASSERT_EQ(ended->size(), 2u);
  std::map<SessionId, SessionRecord> by_id;
  for (const auto& r : *ended) by_id[r.session.id] = r;
  ASSERT_EQ(by_id.count(session_id(2)), 1u);
  ASSERT_EQ(by_id.count(session_id(3)), 1u);
  EXPECT_EQ(by_id[session_id(2)].invalidation_reason, EndReason::expired);
  EXPECT_EQ(by_id[session_id(3)].invalidated_at, kT0 + minutes{3});
  EXPECT_EQ(by_id[session_id(3)].invalidation_reason, EndReason::max_sessions_exceeded);
  EXPECT_FALSE(by_id[session_id(3)].active);
  EXPECT_EQ(by_id[session_id(3)].refresh_hash, refresh_hash(3));
}

// ---- recent sessions (session.new_device)

TEST_P(DatabaseContract, RecentSessionsAreTheUsersSessionsActiveSinceAndCreatedBefore) {
  User ana = add_user(*db_, "ana");
  User bob = add_user(*db_, "bob");
  const TimePoint since = kT0 + hours{1};
  const TimePoint before = kT0 + hours{5};
  auto session = [&](int n, UserId user, TimePoint created, TimePoint last_activity) {
    Session s = make_test_session(n, user, created);
    s.last_activity = last_activity;
    return s;
  };
  Session active_at_since = session(1, ana.id, kT0, since);                     // bound included
  Session created_at_before = session(2, ana.id, before, before + minutes{1});  // bound excluded
  Session idle_before_since = session(3, ana.id, kT0, since - milliseconds{1});
  Session ended = session(4, ana.id, kT0 + hours{2}, kT0 + hours{3});
  Session bobs = session(5, bob.id, kT0 + hours{2}, kT0 + hours{3});
  Session created_just_before = session(6, ana.id, before - milliseconds{1}, before);
  Session touched_later = session(7, ana.id, kT0, kT0 + minutes{1});
  ASSERT_OK(db_->apply(
      {{created_change(active_at_since, 1), created_change(created_at_before, 2),
        created_change(idle_before_since, 3), created_change(ended, 4), created_change(bobs, 5),
        created_change(created_just_before, 6), created_change(touched_later, 7),
        SessionEnded{ended.id, kT0 + hours{4}, EndReason::logout},
        ActivityTouched{touched_later.id, since + minutes{1}, since + hours{9}, "192.0.2.9"}},
       {}}));

  std::vector<SessionId> expected{active_at_since.id, ended.id, created_just_before.id,
                                  touched_later.id};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(recent(*db_, ana.id, since, before), expected);
  EXPECT_EQ(recent(*db_, bob.id, since, before), (std::vector<SessionId>{bobs.id}));
  EXPECT_TRUE(recent(*db_, ana.id, before + hours{1}, before).empty());
  EXPECT_TRUE(recent(*db_, ana.id + bob.id + 1000, since, before).empty());
}

TEST_P(DatabaseContract, RecentSessionsRoundTripEveryField) {
  User user = add_user(*db_, "ana");
  Session s = make_test_session(1, user.id, kT0);
  ASSERT_OK(db_->apply(
      {{created_change(s, 1), SessionEnded{s.id, kT0 + minutes{5}, EndReason::revoked_by_user}},
       {}}));

  auto found = db_->recent_sessions(user.id, kT0, kT0 + hours{1});
  ASSERT_TRUE(found) << why(found);
  ASSERT_EQ(found->size(), 1u);
  const SessionRecord& record = found->front();
  expect_same_session(record.session, s);
  EXPECT_EQ(record.refresh_hash, refresh_hash(1));
  EXPECT_EQ(record.refresh_expires_at, kT0 + hours{24 * 30});
  EXPECT_EQ(record.expires_at, s.expires_at());
  EXPECT_FALSE(record.active);
  EXPECT_EQ(record.invalidated_at, kT0 + minutes{5});
  EXPECT_EQ(record.invalidation_reason, EndReason::revoked_by_user);
}

// ---- events

TEST_P(DatabaseContract, EventRoundTripsEveryField) {
  Event e = make_event("uid-1", "login_succeeded", kT0 + milliseconds{1}, 42, session_id(1));
  ASSERT_OK(db_->apply({{}, {e}}));
  auto listed = events(*db_);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_GT(listed[0].id, 0);
  EXPECT_EQ(listed[0].uid, e.uid);
  EXPECT_EQ(listed[0].type, e.type);
  EXPECT_EQ(listed[0].at, e.at);
  EXPECT_EQ(listed[0].user_id, e.user_id);
  EXPECT_EQ(listed[0].session_id, e.session_id);
  EXPECT_EQ(listed[0].ip_address, e.ip_address);
  EXPECT_EQ(listed[0].detail, e.detail);
}

TEST_P(DatabaseContract, EventWithoutUserOrSessionIsStored) {
  Event e = make_event("uid-1", "login_failed", kT0);
  ASSERT_OK(db_->apply({{}, {e}}));
  auto listed = events(*db_);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_FALSE(listed[0].user_id.has_value());
  EXPECT_FALSE(listed[0].session_id.has_value());
}

TEST_P(DatabaseContract, EventWithDuplicateUidIsStoredOnce) {
  Event first = make_event("dup", "login_succeeded", kT0, 1);
  Event again = make_event("dup", "login_failed", kT0 + seconds{1}, 2);
  ASSERT_OK(db_->apply({{}, {first, again}}));
  ASSERT_OK(db_->apply({{}, {again, make_event("other", "logout", kT0)}}));
  auto listed = events(*db_);
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(uids(listed), (std::vector<std::string>{"other", "dup"}));
  EXPECT_EQ(listed[1].type, "login_succeeded");
  EXPECT_EQ(listed[1].user_id, 1);
}

TEST_P(DatabaseContract, SessionChangesAndEventsAreWrittenTogether) {
  User user = add_user(*db_, "ana");
  Session s = make_test_session(1, user.id, kT0);
  ASSERT_OK(
      db_->apply({{created_change(s, 1)},
                  {make_event("e1", "login_succeeded", kT0, user.id, s.id),
                   make_event("e2", "session_created", kT0 + milliseconds{1}, user.id, s.id)}}));
  EXPECT_TRUE(find(*db_, s.id).has_value());
  EXPECT_EQ(uids(events(*db_)), (std::vector<std::string>{"e2", "e1"}));
}

// Newest first means the order of writing, whatever the events' own times.
TEST_P(DatabaseContract, ListEventsNewestFirst) {
  ASSERT_OK(db_->apply({{}, {make_event("a", "t", kT0 + seconds{5})}}));
  ASSERT_OK(db_->apply({{}, {make_event("b", "t", kT0), make_event("c", "t", kT0 + seconds{1})}}));
  EXPECT_EQ(uids(events(*db_)), (std::vector<std::string>{"c", "b", "a"}));
}

// Events for the filter tests, written in this order (ids ascending).
void seed_filter_events(Database& db) {
  ASSERT_OK(db.apply(
      {{},
       {
           make_event("u1-s1-login", "login_succeeded", kT0, 1, session_id(1)),
           make_event("u1-s1-refresh", "refresh", kT0 + minutes{1}, 1, session_id(1)),
           make_event("u2-s2-login", "login_succeeded", kT0 + minutes{2}, 2, session_id(2)),
           make_event("u1-fail", "login_failed", kT0 + minutes{3}, 1),
           make_event("anon-fail", "login_failed", kT0 + minutes{4}),
           make_event("u1-s3-login", "login_succeeded", kT0 + minutes{5}, 1, session_id(3)),
       }}));
}

TEST_P(DatabaseContract, ListEventsFiltersByUser) {
  seed_filter_events(*db_);
  EventFilter f;
  f.user_id = 1;
  EXPECT_EQ(uids(events(*db_, f)),
            (std::vector<std::string>{"u1-s3-login", "u1-fail", "u1-s1-refresh", "u1-s1-login"}));
}

TEST_P(DatabaseContract, ListEventsFiltersBySession) {
  seed_filter_events(*db_);
  EventFilter f;
  f.session_id = session_id(1);
  EXPECT_EQ(uids(events(*db_, f)), (std::vector<std::string>{"u1-s1-refresh", "u1-s1-login"}));
}

TEST_P(DatabaseContract, ListEventsFiltersByType) {
  seed_filter_events(*db_);
  EventFilter f;
  f.type = "login_failed";
  EXPECT_EQ(uids(events(*db_, f)), (std::vector<std::string>{"anon-fail", "u1-fail"}));
}

TEST_P(DatabaseContract, ListEventsSinceIsInclusive) {
  seed_filter_events(*db_);
  EventFilter f;
  f.since = kT0 + minutes{3};
  EXPECT_EQ(uids(events(*db_, f)),
            (std::vector<std::string>{"u1-s3-login", "anon-fail", "u1-fail"}));
}

TEST_P(DatabaseContract, ListEventsCombinesFilters) {
  seed_filter_events(*db_);
  EventFilter f;
  f.user_id = 1;
  f.type = "login_succeeded";
  f.since = kT0 + seconds{1};
  EXPECT_EQ(uids(events(*db_, f)), (std::vector<std::string>{"u1-s3-login"}));
  f.session_id = session_id(1);
  EXPECT_TRUE(uids(events(*db_, f)).empty());
}

TEST_P(DatabaseContract, ListEventsHonoursTheLimit) {
  seed_filter_events(*db_);
  EventFilter f;
  f.limit = 2;
  EXPECT_EQ(uids(events(*db_, f)), (std::vector<std::string>{"u1-s3-login", "anon-fail"}));
}

TEST_P(DatabaseContract, ListEventsLimitIsClampedTo1Through1000) {
  ChangeBatch batch;
  for (int i = 0; i < 1005; ++i) {
    batch.events.push_back(make_event("e" + std::to_string(i), "t", kT0 + milliseconds{i}));
  }
  ASSERT_OK(db_->apply(batch));

  EventFilter f;
  EXPECT_EQ(events(*db_, f).size(), 100u);  // the default
  f.limit = 0;
  EXPECT_EQ(uids(events(*db_, f)), (std::vector<std::string>{"e1004"}));
  f.limit = -5;
  EXPECT_EQ(events(*db_, f).size(), 1u);
  f.limit = 1000;
  EXPECT_EQ(events(*db_, f).size(), 1000u);
  f.limit = 5000;
  auto many = events(*db_, f);
  ASSERT_EQ(many.size(), 1000u);
  EXPECT_EQ(many.front().uid, "e1004");
  EXPECT_EQ(many.back().uid, "e5");
}

// ---- webhook queue

void expect_same_event(const Event& stored, const Event& written) {
  EXPECT_EQ(stored.uid, written.uid);
  EXPECT_EQ(stored.at, written.at);
  EXPECT_EQ(stored.type, written.type);
  EXPECT_EQ(stored.user_id, written.user_id);
  EXPECT_EQ(stored.session_id, written.session_id);
  EXPECT_EQ(stored.ip_address, written.ip_address);
  EXPECT_EQ(stored.detail, written.detail);
}

TEST_P(DatabaseContract, NotifyEventsAreQueuedOldestFirstWithEveryField) {
  Event first = notifying(make_event("n1", "session_created", kT0 + seconds{9}, 42, session_id(1)));
  Event plain = make_event("p1", "refresh", kT0, 42, session_id(1));
  Event anonymous = notifying(make_event("n2", "login_failed", kT0 + milliseconds{1}));
  anonymous.ip_address = "2001:db8::7";
  anonymous.detail = R"({"reason":"bad_password","n":[1,2]})";
  Event later = notifying(make_event("n3", "session_revoked", kT0 - seconds{1}, 43, session_id(2)));
  ASSERT_OK(db_->apply({{}, {first, plain, anonymous}}));
  ASSERT_OK(db_->apply({{}, {later}}));

  auto head = queued(*db_);
  ASSERT_EQ(uids(head), (std::vector<std::string>{"n1", "n2", "n3"}));
  expect_same_event(head[0], first);
  expect_same_event(head[1], anonymous);
  expect_same_event(head[2], later);
  // The ids are the events' own, as list_events answers them (newest first).
  auto listed = events(*db_);
  ASSERT_EQ(uids(listed), (std::vector<std::string>{"n3", "n2", "p1", "n1"}));
  EXPECT_EQ(head[0].id, listed[3].id);
  EXPECT_EQ(head[1].id, listed[1].id);
  EXPECT_EQ(head[2].id, listed[0].id);
  EXPECT_LT(head[0].id, head[1].id);
  EXPECT_LT(head[1].id, head[2].id);
}

TEST_P(DatabaseContract, EventsWithoutNotifyAreNotQueued) {
  User user = add_user(*db_, "ana");
  Session s = make_test_session(1, user.id, kT0);
  ASSERT_OK(db_->apply({{created_change(s, 1)},
                        {make_event("e1", "login_succeeded", kT0, user.id, s.id),
                         make_event("e2", "session_created", kT0, user.id, s.id)}}));
  ASSERT_OK(db_->apply({{SessionEnded{s.id, kT0 + minutes{1}}}, {}}));
  EXPECT_EQ(events(*db_).size(), 2u);
  EXPECT_TRUE(queued(*db_).empty());
}

TEST_P(DatabaseContract, WebhookQueueHeadHonoursTheLimitAndKeepsEventsQueued) {
  ChangeBatch batch;
  for (int i = 0; i < 5; ++i) {
    batch.events.push_back(notifying(make_event("n" + std::to_string(i), "t", kT0)));
  }
  ASSERT_OK(db_->apply(batch));
  EXPECT_EQ(uids(queued(*db_, 2)), (std::vector<std::string>{"n0", "n1"}));
  EXPECT_EQ(uids(queued(*db_, 2)), (std::vector<std::string>{"n0", "n1"}));
  EXPECT_EQ(queued(*db_, 1000).size(), 5u);
}

TEST_P(DatabaseContract, EventAppliedTwiceIsQueuedOnce) {
  Event e = notifying(make_event("n1", "session_created", kT0, 1));
  ChangeBatch batch{{}, {e, make_event("p1", "refresh", kT0, 1)}};
  ASSERT_OK(db_->apply(batch));
  ASSERT_OK(db_->apply(batch));
  // Twice in one batch as well.
  ASSERT_OK(db_->apply({{}, {e, notifying(make_event("n2", "t", kT0)), e}}));
  EXPECT_EQ(uids(queued(*db_)), (std::vector<std::string>{"n1", "n2"}));

  // Delivered and dequeued: a late redelivery of the batch does not queue it again.
  auto head = queued(*db_);
  ASSERT_OK(db_->webhook_dequeue({head[0].id}));
  ASSERT_OK(db_->apply(batch));
  EXPECT_EQ(uids(queued(*db_)), (std::vector<std::string>{"n2"}));
}

// The event stored for a uid is the first one written; its notify decides, not a later copy's.
TEST_P(DatabaseContract, OnlyTheStoredCopyOfAnEventDecidesWhetherItIsQueued) {
  Event plain = make_event("dup", "login_succeeded", kT0, 1);
  ASSERT_OK(db_->apply({{}, {plain, notifying(plain)}}));
  ASSERT_OK(db_->apply({{}, {notifying(plain)}}));
  EXPECT_TRUE(queued(*db_).empty());
  EXPECT_EQ(events(*db_).size(), 1u);
}

TEST_P(DatabaseContract, DequeueRemovesOnlyTheGivenEvents) {
  ASSERT_OK(
      db_->apply({{},
                  {notifying(make_event("n1", "t", kT0)), notifying(make_event("n2", "t", kT0)),
                   notifying(make_event("n3", "t", kT0)), notifying(make_event("n4", "t", kT0))}}));
  auto head = queued(*db_);
  ASSERT_EQ(head.size(), 4u);
  const std::int64_t unknown = head[3].id + 1000;
  const std::vector<std::int64_t> delivered{head[0].id, head[2].id, unknown};
  ASSERT_OK(db_->webhook_dequeue(delivered));
  EXPECT_EQ(uids(queued(*db_)), (std::vector<std::string>{"n2", "n4"}));
  ASSERT_OK(db_->webhook_dequeue({}));
  ASSERT_OK(db_->webhook_dequeue({head[0].id}));  // already gone: nothing happens
  EXPECT_EQ(uids(queued(*db_)), (std::vector<std::string>{"n2", "n4"}));
  // Dequeued events stay in the audit trail.
  EXPECT_EQ(events(*db_).size(), 4u);
}

TEST_P(DatabaseContract, FailingBatchQueuesNothing) {
  User user = add_user(*db_, "ana");
  Session orphan = make_test_session(2, /*user=*/user.id + 1000, kT0);
  auto r = db_->apply({{created_change(orphan, 2)},
                       {notifying(make_event("n1", "session_created", kT0, user.id, orphan.id))}});
  ASSERT_FALSE(r);
  EXPECT_TRUE(queued(*db_).empty());
  EXPECT_TRUE(events(*db_).empty());

  // The same event in a batch that succeeds is queued.
  ASSERT_OK(db_->apply({{}, {notifying(make_event("n1", "session_created", kT0, user.id))}}));
  EXPECT_EQ(uids(queued(*db_)), (std::vector<std::string>{"n1"}));
}

TEST_P(DatabaseContract, QueuedEventsSurviveReopening) {
  ASSERT_OK(db_->apply({{}, {notifying(make_event("n1", "t", kT0)), make_event("p1", "t", kT0)}}));
  db_.reset();
  db_ = backend_->reopen();
  EXPECT_EQ(uids(queued(*db_)), (std::vector<std::string>{"n1"}));
}

// ---- stats

TEST_P(DatabaseContract, StatsCountLiveSessionsAndSignIns) {
  const TimePoint now = kT0 + hours{48};
  User user = add_user(*db_, "ana");
  auto session = [&](int n, std::string role, std::string device) {
    Session s = make_test_session(n, user.id, now - hours{1});
    s.role = std::move(role);
    s.device_info = std::move(device);
    return s;
  };
  Session guest_iphone = session(1, "GUEST", "iPhone · Safari");
  Session guest_windows = session(2, "GUEST", "Windows · Chrome");
  Session employee_iphone = session(3, "HOTEL_EMPLOYEE", "iPhone · Safari");
  Session ended = session(4, "GUEST", "Mac · Safari");
  Session expired_now = session(5, "GUEST", "Linux · Firefox");
  expired_now.last_activity = now - hours{8};
  expired_now.idle_timeout = hours{8};  // expires_at == now: not live
  Session long_expired = session(6, "VENDOR_ADMIN", "Android · Chrome");
  long_expired.created_at = now - hours{40};
  long_expired.last_activity = now - hours{40};
  long_expired.idle_timeout = hours{1};

  ChangeBatch batch;
  for (const auto* s :
       {&guest_iphone, &guest_windows, &employee_iphone, &ended, &expired_now, &long_expired}) {
    batch.changes.push_back(created_change(*s));
  }
  batch.changes.push_back(SessionEnded{ended.id, now - minutes{1}});
  batch.events = {
      make_event("s1", "login_succeeded", now - minutes{10}),
      make_event("s2", "login_succeeded", now - hours{1}),  // the hour is inclusive
      make_event("s3", "login_succeeded", now - hours{2}),
      make_event("s4", "login_succeeded", now - hours{25}),
      make_event("f1", "login_failed", now - minutes{5}),
      make_event("f2", "login_failed", now - hours{3}),
      make_event("f3", "login_failed", now - hours{23}),
      make_event("f4", "login_failed", now - hours{30}),
      make_event("x1", "refresh", now - minutes{1}),
      make_event("x2", "session_revoked", now - minutes{1}),
  };
  ASSERT_OK(db_->apply(batch));

  auto stats = db_->stats(now);
  ASSERT_TRUE(stats) << why(stats);
  EXPECT_EQ(stats->live_by_role,
            (std::map<std::string, std::int64_t>{{"GUEST", 2}, {"HOTEL_EMPLOYEE", 1}}));
  EXPECT_EQ(stats->live_by_device,
            (std::map<std::string, std::int64_t>{{"iPhone · Safari", 2}, {"Windows · Chrome", 1}}));
  EXPECT_EQ(stats->sign_ins_last_hour, 2);
  EXPECT_EQ(stats->sign_ins_last_day, 3);
  EXPECT_EQ(stats->failures_last_hour, 1);
  EXPECT_EQ(stats->failures_last_day, 3);
}

TEST_P(DatabaseContract, StatsOfAnEmptyDatabaseAreZero) {
  auto stats = db_->stats(kT0);
  ASSERT_TRUE(stats) << why(stats);
  EXPECT_TRUE(stats->live_by_role.empty());
  EXPECT_TRUE(stats->live_by_device.empty());
  EXPECT_EQ(stats->sign_ins_last_hour, 0);
  EXPECT_EQ(stats->sign_ins_last_day, 0);
  EXPECT_EQ(stats->failures_last_hour, 0);
  EXPECT_EQ(stats->failures_last_day, 0);
}

// ---- concurrency and durability

TEST_P(DatabaseContract, ConcurrentWritesFromEightThreadsLoseNothing) {
  constexpr int kThreads = 8;
  constexpr int kBatchesPerThread = 25;
  std::atomic<int> failures{0};
  std::atomic<bool> writing{true};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      NewUser input;
      input.email = "user" + std::to_string(t) + "@example.com";
      input.role = "GUEST";
      auto user = db_->create_user(input, kT0);
      if (!user) {
        ++failures;
        return;
      }
      for (int i = 0; i < kBatchesPerThread; ++i) {
        int n = t * kBatchesPerThread + i;
        Session s = make_test_session(n, user->id, kT0 + milliseconds{n});
        ChangeBatch batch{
            {created_change(s, n), ActivityTouched{s.id, kT0 + hours{1}, kT0 + hours{9}, "::1"}},
            {make_event("e" + std::to_string(n), "session_created", kT0, user->id, s.id)}};
        if (!db_->apply(batch)) ++failures;
      }
    });
  }
  // Readers run meanwhile.
  std::thread reader([&] {
    while (writing) {
      if (!db_->list_events({}) || !db_->load_live_sessions() || !db_->stats(kT0)) ++failures;
    }
  });
  for (auto& t : threads) t.join();
  writing = false;
  reader.join();

  EXPECT_EQ(failures.load(), 0);
  auto live = db_->load_live_sessions();
  ASSERT_TRUE(live) << why(live);
  EXPECT_EQ(live->size(), static_cast<std::size_t>(kThreads * kBatchesPerThread));
  for (const auto& r : *live) EXPECT_EQ(r.session.last_activity, kT0 + hours{1});
  EventFilter all;
  all.limit = 1000;
  EXPECT_EQ(events(*db_, all).size(), static_cast<std::size_t>(kThreads * kBatchesPerThread));
}

TEST_P(DatabaseContract, CloseAndReopenKeepsAcknowledgedWrites) {
  User user = add_user(*db_, "ana");
  Session live = make_test_session(1, user.id, kT0);
  Session ended = make_test_session(2, user.id, kT0);
  ASSERT_OK(db_->apply({{created_change(live, 1), created_change(ended, 2),
                         SessionEnded{ended.id, kT0 + minutes{1}, EndReason::password_changed}},
                        {make_event("e1", "session_created", kT0, user.id, live.id)}}));
  db_.reset();
  db_ = backend_->reopen();

  auto record = find(*db_, live.id);
  ASSERT_TRUE(record.has_value());
  expect_same_session(record->session, live);
  auto gone = find(*db_, ended.id);
  ASSERT_TRUE(gone.has_value());
  EXPECT_EQ(gone->invalidation_reason, EndReason::password_changed);
  EXPECT_EQ(uids(events(*db_)), (std::vector<std::string>{"e1"}));
}

// SPEC §8: SIGKILL and restart lose no acknowledged write. The child writes, then is killed
// before it can close anything.
TEST_P(DatabaseContract, KilledProcessKeepsAcknowledgedWrites) {
  User user = add_user(*db_, "ana");
  Session s = make_test_session(1, user.id, kT0);
  db_.reset();  // no connection may cross fork()

  pid_t child = fork();
  ASSERT_NE(child, -1);
  if (child == 0) {
    auto db = backend_->reopen();
    bool ok = static_cast<bool>(
        db->apply({{created_change(s, 1), SessionEnded{s.id, kT0 + minutes{1}, EndReason::logout}},
                   {make_event("before-kill", "session_created", kT0, user.id, s.id)}}));
    if (!ok) _exit(1);
    kill(getpid(), SIGKILL);
    _exit(2);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);

  db_ = backend_->reopen();
  auto record = find(*db_, s.id);
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->invalidation_reason, EndReason::logout);
  EXPECT_EQ(uids(events(*db_)), (std::vector<std::string>{"before-kill"}));
}

}  // namespace

}  // namespace sessiond::db::testing
