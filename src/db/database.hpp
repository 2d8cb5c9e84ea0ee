// The Database interface: users, the durable session records and the audit trail (SPEC §6).
// Implementations: sqlite/ (embedded default) and postgres/ (libpq).
//
// Calls are blocking: the service runs them on a small worker pool, never on an io thread.
// Every member function may be called concurrently. Errors: database_unavailable when the database
// cannot be reached or written, conflict for a unique value already taken, not_found, internal.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/crypto.hpp"
#include "core/error.hpp"
#include "core/session.hpp"
#include "core/time.hpp"

namespace sessiond::db {

struct User {
  UserId id = 0;
  std::optional<std::string> email;          // stored lower-case
  std::optional<std::string> mobile_number;  // E.164
  std::string role;
  std::optional<std::string> password_hash;
  std::string attributes = "{}";  // JSON object, serialised
  bool disabled = false;
  TimePoint created_at;
  TimePoint updated_at;
};

struct NewUser {
  std::optional<std::string> email;
  std::optional<std::string> mobile_number;
  std::string role;
  std::optional<std::string> password_hash;
  std::string attributes = "{}";
};

struct UserPatch {
  std::optional<std::string> role;
  std::optional<bool> disabled;
  std::optional<std::string> password_hash;
  std::optional<std::string> attributes;
};

// One audit event (session_events). `uid` is unique: writing the same event twice stores it once.
struct Event {
  std::string uid;
  TimePoint at;
  std::string type;  // "login_succeeded", "session_revoked", ...
  std::optional<UserId> user_id;
  std::optional<SessionId> session_id;
  std::string ip_address;
  std::string detail = "{}";  // JSON object, serialised
  std::int64_t id = 0;        // assigned by the database; 0 before it is written
  // apply() also queues the event for webhook delivery (webhook_queue), in the same transaction,
  // when it stores the event (not when its uid was already stored). Not read back.
  bool notify = false;
};

// The durable record of a session (user_sessions).
struct SessionRecord {
  Session session;
  TokenHash refresh_hash{};
  TimePoint refresh_expires_at;
  bool active = true;
  std::optional<TimePoint> invalidated_at;
  std::optional<EndReason> invalidation_reason;
  TimePoint expires_at;  // as last written: may lag behind the store by activity_flush_interval
};

// Changes to session records, applied with their events in one transaction.
struct SessionCreated {
  Session session;
  TokenHash refresh_hash{};
  TimePoint refresh_expires_at;
};
struct SessionRotated {
  SessionId id;
  TokenHash refresh_hash{};
  TimePoint refresh_expires_at;
  TimePoint last_activity;
  TimePoint expires_at;
  std::string last_ip;
};
struct SessionEnded {
  SessionId id;
  TimePoint at;
  EndReason reason = EndReason::logout;
};
struct ActivityTouched {
  SessionId id;
  TimePoint last_activity;
  TimePoint expires_at;
  std::string last_ip;
};
using SessionChange = std::variant<SessionCreated, SessionRotated, SessionEnded, ActivityTouched>;

struct ChangeBatch {
  std::vector<SessionChange> changes;
  std::vector<Event> events;
};

struct EventFilter {
  std::optional<UserId> user_id;
  std::optional<SessionId> session_id;
  std::optional<std::string> type;
  std::optional<TimePoint> since;  // events at or after
  int limit = 100;                 // 1..1000
};

struct Stats {
  std::map<std::string, std::int64_t> live_by_role;
  std::map<std::string, std::int64_t> live_by_device;
  std::int64_t sign_ins_last_hour = 0;
  std::int64_t sign_ins_last_day = 0;
  std::int64_t failures_last_hour = 0;
  std::int64_t failures_last_day = 0;
};

class Database {
 public:
  virtual ~Database() = default;

  // Applies every migration not applied yet, in order; safe to call on an up-to-date schema.
  // Returns the schema version.
  virtual Result<int> migrate() = 0;

  // Error conflict when the email or mobile number is taken.
  virtual Result<User> create_user(const NewUser& user, TimePoint now) = 0;
  virtual Result<std::optional<User>> find_user(UserId id) = 0;
  virtual Result<std::optional<User>> find_user_by_email(std::string_view email) = 0;
  virtual Result<std::optional<User>> find_user_by_mobile(std::string_view mobile_number) = 0;
  // Error not_found, conflict.
  virtual Result<User> update_user(UserId id, const UserPatch& patch, TimePoint now) = 0;

  // Applies the changes and writes the events in one transaction (all or nothing). Events whose
  // uid is already stored are skipped. Changes to unknown sessions are ignored.
  virtual Result<void> apply(const ChangeBatch& batch) = 0;

  // Sessions with is_active = true (for rebuilding the memory store at start).
  virtual Result<std::vector<SessionRecord>> load_live_sessions() = 0;
  // Sessions ended at or after `since` (for tombstones).
  virtual Result<std::vector<SessionRecord>> load_ended_since(TimePoint since) = 0;
  virtual Result<std::optional<SessionRecord>> find_session(SessionId id) = 0;

  // Newest first.
  virtual Result<std::vector<Event>> list_events(const EventFilter& filter) = 0;
  // Live = is_active rows whose expires_at is after `now`.
  virtual Result<Stats> stats(TimePoint now) = 0;

  // --- webhook delivery (SPEC §6): events apply() queued (Event::notify) ---
  // The oldest `limit` queued events, oldest (lowest id) first, with every field as stored (id
  // set). Events stay queued until webhook_dequeue.
  virtual Result<std::vector<Event>> webhook_queue_head(int limit) = 0;
  // Removes these events (by Event::id) from the queue; unknown ids are ignored.
  virtual Result<void> webhook_dequeue(const std::vector<std::int64_t>& event_ids) = 0;
  // The user's sessions created before `created_before` whose last_activity is at or after
  // `active_since`, live or ended (for session.new_device), any order.
  virtual Result<std::vector<SessionRecord>> recent_sessions(UserId user, TimePoint active_since,
                                                             TimePoint created_before) = 0;

  // Answers when the database is reachable.
  virtual Result<void> ping() = 0;
};

}  // namespace sessiond::db
