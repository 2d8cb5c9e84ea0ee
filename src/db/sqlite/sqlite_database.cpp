#include "db/sqlite/sqlite_database.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <utility>

#include "db/migrations.hpp"
#include "db/sqlite/detail/connection.hpp"

namespace sessiond::db {

namespace {

using sqlite::detail::Connection;
using sqlite::detail::damaged_row_error;
using sqlite::detail::Statement;
using sqlite::detail::Transaction;

// Readers run concurrently with the writer and with each other (WAL); callers are a small worker
// pool, so a few connections are enough.
constexpr int kReaders = 4;

constexpr std::string_view kMemoryPath = ":memory:";

// ---- users

#define SESSIOND_USER_COLUMNS \
  "id, email, mobile_number, role, password_hash, attributes, disabled, created_at, updated_at"

User read_user(Statement& row) {
  User user;
  user.id = row.integer(0);
  user.email = row.optional_text(1);
  user.mobile_number = row.optional_text(2);
  user.role = row.text(3);
  user.password_hash = row.optional_text(4);
  user.attributes = row.text(5);
  user.disabled = row.integer(6) != 0;
  user.created_at = row.time(7);
  user.updated_at = row.time(8);
  return user;
}

Result<std::optional<User>> query_user(Connection& connection, std::string_view sql,
                                       auto&& bind_key) {
  auto stmt = connection.prepare(sql);
  if (!stmt) return stmt.error();
  bind_key(*stmt);
  auto row = stmt->step();
  if (!row) return row.error();
  if (!*row) return std::optional<User>();
  auto user = read_user(*stmt);
  if (stmt->damaged()) return damaged_row_error();
  return std::optional<User>(std::move(user));
}

Result<std::optional<User>> query_user_by_id(Connection& connection, UserId id) {
  return query_user(connection, "SELECT " SESSIOND_USER_COLUMNS " FROM users WHERE id = ?1",
                    [&](Statement& s) { s.bind(1, id); });
}

// ---- sessions

#define SESSIOND_SESSION_COLUMNS                                                               \
  "id, user_id, role, device_info, ip_address, last_ip, user_agent, auth_method, attributes, " \
  "created_at, last_activity, expires_at, absolute_expires_at, idle_timeout_ms, "              \
  "refresh_token_hash, refresh_expires_at, is_active, invalidated_at, invalidation_reason"

SessionRecord read_session(Statement& row) {
  SessionRecord record;
  Session& s = record.session;
  if (auto id = SessionId::parse(row.text(0))) {
    s.id = *id;
  } else {
    row.mark_damaged();
  }
  s.user_id = row.integer(1);
  s.role = row.text(2);
  s.device_info = row.text(3);
  s.ip_address = row.text(4);
  s.last_ip = row.text(5);
  s.user_agent = row.text(6);
  if (auto method = parse_auth_method(row.text(7))) {
    s.auth_method = *method;
  } else {
    row.mark_damaged();
  }
  s.attributes = row.text(8);
  s.created_at = row.time(9);
  s.last_activity = row.time(10);
  record.expires_at = row.time(11);
  s.absolute_expires_at = row.time(12);
  s.idle_timeout = Duration{row.integer(13)};
  auto hash = from_hex(row.text(14));
  if (hash && hash->size() == record.refresh_hash.size()) {
    std::memcpy(record.refresh_hash.data(), hash->data(), hash->size());
  } else {
    row.mark_damaged();
  }
  record.refresh_expires_at = row.time(15);
  record.active = row.integer(16) != 0;
  record.invalidated_at = row.optional_time(17);
  if (auto reason = row.optional_text(18)) {
    record.invalidation_reason = parse_reason(*reason);
    if (!record.invalidation_reason) row.mark_damaged();
  }
  return record;
}

template <class T, class Read>
Result<std::vector<T>> collect(Statement& stmt, Read read) {
  std::vector<T> out;
  for (;;) {
    auto row = stmt.step();
    if (!row) return row.error();
    if (!*row) return out;
    out.push_back(read(stmt));
    if (stmt.damaged()) return damaged_row_error();
  }
}

Result<void> apply_change(Connection& c, const SessionCreated& change) {
  // ON CONFLICT DO NOTHING: a batch delivered twice (the outbox is at-least-once) changes nothing.
  auto stmt = c.prepare(
      "INSERT INTO user_sessions (id, user_id, role, device_info, ip_address, last_ip, user_agent, "
      "auth_method, attributes, created_at, last_activity, expires_at, absolute_expires_at, "
      "idle_timeout_ms, refresh_token_hash, refresh_expires_at, is_active) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, 1) "
      "ON CONFLICT (id) DO NOTHING");
  if (!stmt) return stmt.error();
  const Session& s = change.session;
  stmt->bind(1, s.id.to_string())
      .bind(2, s.user_id)
      .bind(3, s.role)
      .bind(4, s.device_info)
      .bind(5, s.ip_address)
      .bind(6, s.last_ip)
      .bind(7, s.user_agent)
      .bind(8, auth_method_name(s.auth_method))
      .bind(9, s.attributes)
      .bind(10, s.created_at)
      .bind(11, s.last_activity)
      .bind(12, s.expires_at())
      .bind(13, s.absolute_expires_at)
      .bind(14, std::int64_t{s.idle_timeout.count()})
      .bind(15, to_hex(change.refresh_hash))
      .bind(16, change.refresh_expires_at);
  return stmt->run();
}

Result<void> apply_change(Connection& c, const SessionRotated& change) {
  // The refresh hash always becomes the rotation's, but activity never moves back: a batched
  // ActivityTouched written earlier may carry a later time than this rotation. The SET expressions
  // all see the row as it was before the update.
  auto stmt = c.prepare(
      "UPDATE user_sessions SET refresh_token_hash = ?2, refresh_expires_at = ?3, "
      "last_ip = CASE WHEN ?4 >= last_activity THEN ?6 ELSE last_ip END, "
      "last_activity = max(last_activity, ?4), expires_at = max(expires_at, ?5) "
      "WHERE id = ?1 AND is_active = 1");
  if (!stmt) return stmt.error();
  stmt->bind(1, change.id.to_string())
      .bind(2, to_hex(change.refresh_hash))
      .bind(3, change.refresh_expires_at)
      .bind(4, change.last_activity)
      .bind(5, change.expires_at)
      .bind(6, change.last_ip);
  return stmt->run();
}

Result<void> apply_change(Connection& c, const SessionEnded& change) {
  // The first end wins: a later one keeps the first time and reason.
  auto stmt = c.prepare(
      "UPDATE user_sessions SET is_active = 0, invalidated_at = ?2, invalidation_reason = ?3 "
      "WHERE id = ?1 AND is_active = 1");
  if (!stmt) return stmt.error();
  stmt->bind(1, change.id.to_string()).bind(2, change.at).bind(3, reason_name(change.reason));
  return stmt->run();
}

Result<void> apply_change(Connection& c, const ActivityTouched& change) {
  // expires_at only grows with last_activity; max() keeps a record from moving back.
  auto stmt = c.prepare(
      "UPDATE user_sessions SET last_activity = ?2, expires_at = max(expires_at, ?3), last_ip = ?4 "
      "WHERE id = ?1 AND is_active = 1 AND last_activity < ?2");
  if (!stmt) return stmt.error();
  stmt->bind(1, change.id.to_string())
      .bind(2, change.last_activity)
      .bind(3, change.expires_at)
      .bind(4, change.last_ip);
  return stmt->run();
}

// Writes the event, and queues it for webhook delivery when it asks to be and was not stored
// before.
Result<void> insert_event(Connection& c, const Event& event) {
  // ON CONFLICT (uid) rather than INSERT OR IGNORE, which would also swallow NOT NULL failures.
  auto stmt = c.prepare(
      "INSERT INTO session_events (uid, at, type, user_id, session_id, ip_address, detail) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (uid) DO NOTHING");
  if (!stmt) return stmt.error();
  stmt->bind(1, event.uid)
      .bind(2, event.at)
      .bind(3, event.type)
      .bind(4, event.user_id)
      .bind(6, event.ip_address)
      .bind(7, event.detail);
  if (event.session_id) {
    stmt->bind(5, event.session_id->to_string());
  } else {
    stmt->bind_null(5);
  }
  if (auto r = stmt->run(); !r) return r;
  // changes() is 0 when the uid was already stored (DO NOTHING), and last_insert_rowid() then still
  // names an earlier row.
  if (!event.notify || c.changes() == 0) return {};
  auto queue = c.prepare("INSERT INTO webhook_queue (event_id) VALUES (?1)");
  if (!queue) return queue.error();
  queue->bind(1, c.last_insert_rowid());
  return queue->run();
}

#define SESSIOND_EVENT_COLUMNS "id, uid, at, type, user_id, session_id, ip_address, detail"

Event read_event(Statement& row) {
  Event event;
  event.id = row.integer(0);
  event.uid = row.text(1);
  event.at = row.time(2);
  event.type = row.text(3);
  if (!row.is_null(4)) event.user_id = row.integer(4);
  if (auto text = row.optional_text(5)) {
    event.session_id = SessionId::parse(*text);
    if (!event.session_id) row.mark_damaged();
  }
  event.ip_address = row.text(6);
  event.detail = row.text(7);
  return event;
}

Result<std::map<std::string, std::int64_t>> count_live_by(Connection& c, std::string_view sql,
                                                          TimePoint now) {
  auto stmt = c.prepare(sql);
  if (!stmt) return stmt.error();
  stmt->bind(1, now);
  std::map<std::string, std::int64_t> counts;
  for (;;) {
    auto row = stmt->step();
    if (!row) return row.error();
    if (!*row) return counts;
    counts[stmt->text(0)] = stmt->integer(1);
  }
}

}  // namespace

struct SqliteDatabase::Impl {
  std::mutex write_mutex;
  std::unique_ptr<Connection> writer;  // guarded by write_mutex

  std::mutex readers_mutex;
  std::condition_variable reader_returned;
  std::vector<std::unique_ptr<Connection>> idle_readers;  // guarded by readers_mutex
  bool has_readers = false;  // false for ":memory:": every call then goes to the writer

  template <class F>
  auto write(F&& f) {
    std::lock_guard lock(write_mutex);
    return f(*writer);
  }

  // Runs `f` on an idle reader connection, waiting for one when all are busy.
  template <class F>
  auto read(F&& f) {
    if (!has_readers) return write(std::forward<F>(f));
    struct Lease {
      Impl& impl;
      std::unique_ptr<Connection> connection;
      ~Lease() {
        {
          std::lock_guard lock(impl.readers_mutex);
          impl.idle_readers.push_back(std::move(connection));
        }
        impl.reader_returned.notify_one();
      }
    };
    std::unique_lock lock(readers_mutex);
    reader_returned.wait(lock, [&] { return !idle_readers.empty(); });
    Lease lease{*this, std::move(idle_readers.back())};
    idle_readers.pop_back();
    lock.unlock();
    return f(*lease.connection);
  }
};

SqliteDatabase::SqliteDatabase(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SqliteDatabase::~SqliteDatabase() = default;

Result<std::unique_ptr<SqliteDatabase>> SqliteDatabase::open(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  auto writer = Connection::open(path, Connection::Mode::writer);
  if (!writer) return writer.error();
  impl->writer = std::move(*writer);
  // Separate connections to ":memory:" would be separate databases.
  impl->has_readers = path != kMemoryPath;
  if (impl->has_readers) {
    impl->idle_readers.reserve(kReaders);  // so returning a lease never allocates
    for (int i = 0; i < kReaders; ++i) {
      auto reader = Connection::open(path, Connection::Mode::reader);
      if (!reader) return reader.error();
      impl->idle_readers.push_back(std::move(*reader));
    }
  }
  return std::unique_ptr<SqliteDatabase>(new SqliteDatabase(std::move(impl)));
}

Result<int> SqliteDatabase::migrate() {
  return impl_->write([](Connection& c) -> Result<int> {
    if (auto r = c.exec(std::string(migrations_table_sql(Dialect::sqlite))); !r) return r.error();
    for (const Migration& migration : migrations()) {
      Transaction tx(c);
      if (auto r = tx.begin_immediate(); !r) return r.error();
      // Checked inside the write transaction: another process may have migrated meanwhile.
      auto applied = c.prepare("SELECT 1 FROM schema_migrations WHERE version = ?1");
      if (!applied) return applied.error();
      applied->bind(1, std::int64_t{migration.version});
      auto row = applied->step();
      if (!row) return row.error();
      if (*row) continue;
      if (auto r = c.exec(std::string(migration.sqlite)); !r) return r.error();
      auto record =
          c.prepare("INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)");
      if (!record) return record.error();
      record->bind(1, std::int64_t{migration.version}).bind(2, SystemClock().now());
      if (auto r = record->run(); !r) return r.error();
      if (auto r = tx.commit(); !r) return r.error();
    }
    auto version = c.prepare("SELECT coalesce(max(version), 0) FROM schema_migrations");
    if (!version) return version.error();
    auto row = version->step();
    if (!row) return row.error();
    auto current = static_cast<int>(version->integer(0));
    if (current > latest_schema_version()) {
      return Error(Errc::internal, "the database schema is newer than this sessiond");
    }
    return current;
  });
}

Result<User> SqliteDatabase::create_user(const NewUser& user, TimePoint now) {
  return impl_->write([&](Connection& c) -> Result<User> {
    auto stmt = c.prepare(
        "INSERT INTO users (email, mobile_number, role, password_hash, attributes, disabled, "
        "created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?6)");
    if (!stmt) return stmt.error();
    stmt->bind(1, user.email)
        .bind(2, user.mobile_number)
        .bind(3, user.role)
        .bind(4, user.password_hash)
        .bind(5, user.attributes)
        .bind(6, now);
    if (auto r = stmt->run(); !r) {
      if (r.error().code == Errc::conflict) {
        // SQLite names the column: "UNIQUE constraint failed: users.email".
        const auto& message = stmt->failure_message();
        if (message.find("users.email") != std::string::npos) {
          return Error(Errc::conflict, "email is taken");
        }
        if (message.find("users.mobile_number") != std::string::npos) {
          return Error(Errc::conflict, "mobile_number is taken");
        }
      }
      return r.error();
    }
    User created;
    created.id = c.last_insert_rowid();
    created.email = user.email;
    created.mobile_number = user.mobile_number;
    created.role = user.role;
    created.password_hash = user.password_hash;
    created.attributes = user.attributes;
    created.created_at = now;
    created.updated_at = now;
    return created;
  });
}

Result<std::optional<User>> SqliteDatabase::find_user(UserId id) {
  return impl_->read([&](Connection& c) { return query_user_by_id(c, id); });
}

Result<std::optional<User>> SqliteDatabase::find_user_by_email(std::string_view email) {
  return impl_->read([&](Connection& c) {
    return query_user(c, "SELECT " SESSIOND_USER_COLUMNS " FROM users WHERE email = ?1",
                      [&](Statement& s) { s.bind(1, email); });
  });
}

Result<std::optional<User>> SqliteDatabase::find_user_by_mobile(std::string_view mobile_number) {
  return impl_->read([&](Connection& c) {
    return query_user(c, "SELECT " SESSIOND_USER_COLUMNS " FROM users WHERE mobile_number = ?1",
                      [&](Statement& s) { s.bind(1, mobile_number); });
  });
}

Result<User> SqliteDatabase::update_user(UserId id, const UserPatch& patch, TimePoint now) {
  // At most 16 distinct statements (one per combination of fields), each cached once.
  std::string sql = "UPDATE users SET ";
  if (patch.role) sql += "role = ?3, ";
  if (patch.disabled) sql += "disabled = ?4, ";
  if (patch.password_hash) sql += "password_hash = ?5, ";
  if (patch.attributes) sql += "attributes = ?6, ";
  sql += "updated_at = ?2 WHERE id = ?1";
  return impl_->write([&](Connection& c) -> Result<User> {
    Transaction tx(c);
    if (auto r = tx.begin_immediate(); !r) return r.error();
    {
      auto stmt = c.prepare(sql);
      if (!stmt) return stmt.error();
      stmt->bind(1, id).bind(2, now);
      if (patch.role) stmt->bind(3, *patch.role);
      if (patch.disabled) stmt->bind(4, std::int64_t{*patch.disabled ? 1 : 0});
      if (patch.password_hash) stmt->bind(5, *patch.password_hash);
      if (patch.attributes) stmt->bind(6, *patch.attributes);
      if (auto r = stmt->run(); !r) return r.error();
    }
    if (c.changes() == 0) return Error(Errc::not_found, "no such user");
    auto user = query_user_by_id(c, id);
    if (!user) return user.error();
    if (!*user) return Error(Errc::not_found, "no such user");
    if (auto r = tx.commit(); !r) return r.error();
    return std::move(**user);
  });
}

Result<void> SqliteDatabase::apply(const ChangeBatch& batch) {
  if (batch.changes.empty() && batch.events.empty()) return {};
  return impl_->write([&](Connection& c) -> Result<void> {
    Transaction tx(c);
    if (auto r = tx.begin_immediate(); !r) return r.error();
    for (const auto& change : batch.changes) {
      auto r = std::visit([&](const auto& ch) { return apply_change(c, ch); }, change);
      if (!r) return r.error();
    }
    for (const auto& event : batch.events) {
      if (auto r = insert_event(c, event); !r) return r.error();
    }
    return tx.commit();
  });
}

Result<std::vector<SessionRecord>> SqliteDatabase::load_live_sessions() {
  return impl_->read([](Connection& c) -> Result<std::vector<SessionRecord>> {
    auto stmt = c.prepare("SELECT " SESSIOND_SESSION_COLUMNS
                          " FROM user_sessions WHERE is_active = 1 ORDER BY created_at, id");
    if (!stmt) return stmt.error();
    return collect<SessionRecord>(*stmt, read_session);
  });
}

Result<std::vector<SessionRecord>> SqliteDatabase::load_ended_since(TimePoint since) {
  return impl_->read([&](Connection& c) -> Result<std::vector<SessionRecord>> {
    auto stmt = c.prepare("SELECT " SESSIOND_SESSION_COLUMNS
                          " FROM user_sessions WHERE is_active = 0 AND invalidated_at >= ?1 "
                          "ORDER BY invalidated_at, id");
    if (!stmt) return stmt.error();
    stmt->bind(1, since);
    return collect<SessionRecord>(*stmt, read_session);
  });
}

Result<std::optional<SessionRecord>> SqliteDatabase::find_session(SessionId id) {
  return impl_->read([&](Connection& c) -> Result<std::optional<SessionRecord>> {
    auto stmt = c.prepare("SELECT " SESSIOND_SESSION_COLUMNS " FROM user_sessions WHERE id = ?1");
    if (!stmt) return stmt.error();
    stmt->bind(1, id.to_string());
    auto rows = collect<SessionRecord>(*stmt, read_session);
    if (!rows) return rows.error();
    if (rows->empty()) return std::optional<SessionRecord>();
    return std::optional<SessionRecord>(std::move(rows->front()));
  });
}

Result<std::vector<Event>> SqliteDatabase::list_events(const EventFilter& filter) {
  // At most 16 distinct statements (one per combination of filters), each cached once.
  std::string sql = "SELECT " SESSIOND_EVENT_COLUMNS " FROM session_events WHERE 1 = 1";
  if (filter.user_id) sql += " AND user_id = ?1";
  if (filter.session_id) sql += " AND session_id = ?2";
  if (filter.type) sql += " AND type = ?3";
  if (filter.since) sql += " AND at >= ?4";
  sql += " ORDER BY id DESC LIMIT ?5";
  return impl_->read([&](Connection& c) -> Result<std::vector<Event>> {
    auto stmt = c.prepare(sql);
    if (!stmt) return stmt.error();
    if (filter.user_id) stmt->bind(1, *filter.user_id);
    if (filter.session_id) stmt->bind(2, filter.session_id->to_string());
    if (filter.type) stmt->bind(3, *filter.type);
    if (filter.since) stmt->bind(4, *filter.since);
    stmt->bind(5, std::int64_t{std::clamp(filter.limit, 1, 1000)});
    return collect<Event>(*stmt, read_event);
  });
}

Result<Stats> SqliteDatabase::stats(TimePoint now) {
  return impl_->read([&](Connection& c) -> Result<Stats> {
    Transaction tx(c);  // one snapshot for the three queries
    if (auto r = tx.begin_read(); !r) return r.error();
    Stats stats;
    auto by_role = count_live_by(c,
                                 "SELECT role, count(*) FROM user_sessions "
                                 "WHERE is_active = 1 AND expires_at > ?1 GROUP BY role",
                                 now);
    if (!by_role) return by_role.error();
    stats.live_by_role = std::move(*by_role);
    auto by_device = count_live_by(c,
                                   "SELECT device_info, count(*) FROM user_sessions "
                                   "WHERE is_active = 1 AND expires_at > ?1 GROUP BY device_info",
                                   now);
    if (!by_device) return by_device.error();
    stats.live_by_device = std::move(*by_device);
    {
      auto stmt = c.prepare(
          "SELECT "
          "coalesce(sum(type = 'login_succeeded' AND at >= ?1), 0), "
          "coalesce(sum(type = 'login_succeeded'), 0), "
          "coalesce(sum(type = 'login_failed' AND at >= ?1), 0), "
          "coalesce(sum(type = 'login_failed'), 0) "
          "FROM session_events WHERE type IN ('login_succeeded', 'login_failed') AND at >= ?2");
      if (!stmt) return stmt.error();
      stmt->bind(1, now - std::chrono::hours{1}).bind(2, now - std::chrono::hours{24});
      auto row = stmt->step();
      if (!row) return row.error();
      stats.sign_ins_last_hour = stmt->integer(0);
      stats.sign_ins_last_day = stmt->integer(1);
      stats.failures_last_hour = stmt->integer(2);
      stats.failures_last_day = stmt->integer(3);
    }
    if (auto r = tx.commit(); !r) return r.error();
    return stats;
  });
}

Result<std::vector<Event>> SqliteDatabase::webhook_queue_head(int limit) {
  if (limit <= 0) return std::vector<Event>();
  return impl_->read([&](Connection& c) -> Result<std::vector<Event>> {
    auto stmt = c.prepare("SELECT " SESSIOND_EVENT_COLUMNS
                          " FROM session_events WHERE id IN "
                          "(SELECT event_id FROM webhook_queue ORDER BY event_id LIMIT ?1) "
                          "ORDER BY id");
    if (!stmt) return stmt.error();
    stmt->bind(1, std::int64_t{limit});
    return collect<Event>(*stmt, read_event);
  });
}

Result<void> SqliteDatabase::webhook_dequeue(const std::vector<std::int64_t>& event_ids) {
  if (event_ids.empty()) return {};
  return impl_->write([&](Connection& c) -> Result<void> {
    Transaction tx(c);
    if (auto r = tx.begin_immediate(); !r) return r.error();
    for (std::int64_t id : event_ids) {
      auto stmt = c.prepare("DELETE FROM webhook_queue WHERE event_id = ?1");
      if (!stmt) return stmt.error();
      stmt->bind(1, id);
      if (auto r = stmt->run(); !r) return r.error();
    }
    return tx.commit();
  });
}

Result<std::vector<SessionRecord>> SqliteDatabase::recent_sessions(UserId user,
                                                                   TimePoint active_since,
                                                                   TimePoint created_before) {
  return impl_->read([&](Connection& c) -> Result<std::vector<SessionRecord>> {
    auto stmt = c.prepare("SELECT " SESSIOND_SESSION_COLUMNS
                          " FROM user_sessions WHERE user_id = ?1 AND last_activity >= ?2 "
                          "AND created_at < ?3 ORDER BY created_at, id");
    if (!stmt) return stmt.error();
    stmt->bind(1, user).bind(2, active_since).bind(3, created_before);
    return collect<SessionRecord>(*stmt, read_session);
  });
}

Result<void> SqliteDatabase::ping() {
  // Reads the schema from the file, so a vanished or unreadable file answers an error.
  return impl_->read([](Connection& c) -> Result<void> {
    auto stmt = c.prepare("SELECT count(*) FROM sqlite_schema");
    if (!stmt) return stmt.error();
    auto row = stmt->step();
    if (!row) return row.error();
    return {};
  });
}

#undef SESSIOND_USER_COLUMNS
#undef SESSIOND_SESSION_COLUMNS
#undef SESSIOND_EVENT_COLUMNS

}  // namespace sessiond::db
