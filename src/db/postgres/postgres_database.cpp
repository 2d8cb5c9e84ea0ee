#include "db/postgres/postgres_database.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <set>
#include <utility>

#include "db/migrations.hpp"
#include "db/postgres/detail/connection.hpp"

namespace sessiond::db {

namespace {

using postgres::detail::Connection;
using postgres::detail::ConnectionSettings;
using postgres::detail::damaged_row_error;
using postgres::detail::Params;
using postgres::detail::Rows;
using postgres::detail::Transaction;
namespace oid = postgres::detail::oid;

// A migration may build an index on a large table, and may wait for another node's migration:
// longer than the statement timeout of ordinary calls, still bounded.
constexpr std::string_view kMigrationStatementTimeout = "5min";

// ---- users

// attributes::text: the column is json (kept as written); the cast reads it the same way should an
// operator turn it into jsonb.
#define SESSIOND_USER_COLUMNS                                                               \
  "id, email, mobile_number, role, password_hash, attributes::text, disabled, created_at, " \
  "updated_at"

User read_user(Rows& rows, int i) {
  User user;
  user.id = rows.int8(i, 0);
  user.email = rows.optional_text(i, 1);
  user.mobile_number = rows.optional_text(i, 2);
  user.role = rows.text(i, 3);
  user.password_hash = rows.optional_text(i, 4);
  user.attributes = rows.text(i, 5);
  user.disabled = rows.boolean(i, 6);
  user.created_at = rows.time(i, 7);
  user.updated_at = rows.time(i, 8);
  return user;
}

Result<std::optional<User>> query_user(Connection& c, std::string_view sql, const Params& params) {
  auto rows = c.query(sql, params);
  if (!rows) return rows.error();
  if (rows->size() == 0) return std::optional<User>();
  auto user = read_user(*rows, 0);
  if (rows->damaged()) return damaged_row_error();
  return std::optional<User>(std::move(user));
}

// ---- sessions

#define SESSIOND_SESSION_COLUMNS                                                   \
  "id, user_id, role, device_info, ip_address, last_ip, user_agent, auth_method, " \
  "attributes::text, created_at, last_activity, expires_at, absolute_expires_at, " \
  "idle_timeout_ms, "                                                              \
  "refresh_token_hash, refresh_expires_at, is_active, invalidated_at, invalidation_reason"

SessionRecord read_session(Rows& rows, int i) {
  SessionRecord record;
  Session& s = record.session;
  if (auto id = rows.uuid(i, 0)) s.id = *id;
  s.user_id = rows.int8(i, 1);
  s.role = rows.text(i, 2);
  s.device_info = rows.text(i, 3);
  s.ip_address = rows.text(i, 4);
  s.last_ip = rows.text(i, 5);
  s.user_agent = rows.text(i, 6);
  if (auto method = parse_auth_method(rows.text(i, 7))) {
    s.auth_method = *method;
  } else {
    rows.mark_damaged();
  }
  s.attributes = rows.text(i, 8);
  s.created_at = rows.time(i, 9);
  s.last_activity = rows.time(i, 10);
  record.expires_at = rows.time(i, 11);
  s.absolute_expires_at = rows.time(i, 12);
  s.idle_timeout = Duration{rows.int8(i, 13)};
  auto hash = from_hex(rows.text(i, 14));
  if (hash && hash->size() == record.refresh_hash.size()) {
    std::memcpy(record.refresh_hash.data(), hash->data(), hash->size());
  } else {
    rows.mark_damaged();
  }
  record.refresh_expires_at = rows.time(i, 15);
  record.active = rows.boolean(i, 16);
  record.invalidated_at = rows.optional_time(i, 17);
  if (auto reason = rows.optional_text(i, 18)) {
    record.invalidation_reason = parse_reason(*reason);
    if (!record.invalidation_reason) rows.mark_damaged();
  }
  return record;
}

Result<std::vector<SessionRecord>> collect_sessions(Result<Rows> rows) {
  if (!rows) return rows.error();
  std::vector<SessionRecord> out;
  out.reserve(static_cast<std::size_t>(rows->size()));
  for (int i = 0; i < rows->size(); ++i) out.push_back(read_session(*rows, i));
  if (rows->damaged()) return damaged_row_error();
  return out;
}

Result<void> done(const Result<Rows>& rows) {
  if (!rows) return rows.error();
  return {};
}

// The statements below are the SQLite driver's, in PostgreSQL's dialect: see sqlite_database.cpp
// for why each one is written the way it is.
Result<void> apply_change(Connection& c, const SessionCreated& change) {
  const Session& s = change.session;
  Params p;
  p.add(s.id)
      .add(s.user_id)
      .add(std::string_view(s.role))
      .add(std::string_view(s.device_info))
      .add(std::string_view(s.ip_address))
      .add(std::string_view(s.last_ip))
      .add(std::string_view(s.user_agent))
      .add(auth_method_name(s.auth_method))
      .add_json(s.attributes)
      .add(s.created_at)
      .add(s.last_activity)
      .add(s.expires_at())
      .add(s.absolute_expires_at)
      .add(std::int64_t{s.idle_timeout.count()})
      .add(std::string_view(to_hex(change.refresh_hash)))
      .add(change.refresh_expires_at);
  return done(c.query(
      "INSERT INTO user_sessions (id, user_id, role, device_info, ip_address, last_ip, user_agent, "
      "auth_method, attributes, created_at, last_activity, expires_at, absolute_expires_at, "
      "idle_timeout_ms, refresh_token_hash, refresh_expires_at, is_active) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, true) "
      "ON CONFLICT (id) DO NOTHING",
      p));
}

Result<void> apply_change(Connection& c, const SessionRotated& change) {
  Params p;
  p.add(change.id)
      .add(std::string_view(to_hex(change.refresh_hash)))
      .add(change.refresh_expires_at)
      .add(change.last_activity)
      .add(change.expires_at)
      .add(std::string_view(change.last_ip));
  return done(
      c.query("UPDATE user_sessions SET refresh_token_hash = $2, refresh_expires_at = $3, "
              "last_ip = CASE WHEN $4 >= last_activity THEN $6 ELSE last_ip END, "
              "last_activity = greatest(last_activity, $4), expires_at = greatest(expires_at, $5) "
              "WHERE id = $1 AND is_active",
              p));
}

Result<void> apply_change(Connection& c, const SessionEnded& change) {
  Params p;
  p.add(change.id).add(change.at).add(reason_name(change.reason));
  return done(c.query(
      "UPDATE user_sessions SET is_active = false, invalidated_at = $2, invalidation_reason = $3 "
      "WHERE id = $1 AND is_active",
      p));
}

Result<void> apply_change(Connection& c, const ActivityTouched& change) {
  Params p;
  p.add(change.id)
      .add(change.last_activity)
      .add(change.expires_at)
      .add(std::string_view(change.last_ip));
  return done(
      c.query("UPDATE user_sessions SET last_activity = $2, expires_at = greatest(expires_at, $3), "
              "last_ip = $4 WHERE id = $1 AND is_active AND last_activity < $2",
              p));
}

// Every event of a batch in one statement: the columns as arrays, unnested in order. ORDER BY ord
// assigns ids in the batch's order (list_events is newest first by id), and ON CONFLICT (uid) DO
// NOTHING keeps the first of a uid, within the batch as well as across batches.
#define SESSIOND_INSERT_EVENTS                                                           \
  "INSERT INTO session_events (uid, at, type, user_id, session_id, ip_address, detail) " \
  "SELECT uid, at, type, user_id, session_id, ip_address, detail "                       \
  "FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::int8[], $5::uuid[], "      \
  "$6::text[], $7::json[]) "                                                             \
  "WITH ORDINALITY AS e (uid, at, type, user_id, session_id, ip_address, detail, ord) "  \
  "ORDER BY ord "                                                                        \
  "ON CONFLICT (uid) DO NOTHING"

Result<void> insert_events(Connection& c, const std::vector<Event>& events) {
  const std::size_t n = events.size();
  std::vector<std::string> uid(n), at(n), type(n), user(n), session(n), ip(n), detail(n);
  std::vector<bool> user_null(n), session_null(n);
  // The uids whose stored event is to be queued for webhooks: the first event of a uid in the
  // batch is the one stored, so its notify decides.
  const bool any_notify =
      std::any_of(events.begin(), events.end(), [](const Event& e) { return e.notify; });
  std::vector<std::string> notify;
  std::set<std::string_view> seen;
  for (std::size_t i = 0; i < n; ++i) {
    const Event& e = events[i];
    uid[i] = e.uid;
    at[i] = postgres::detail::encode_timestamptz(e.at);
    type[i] = e.type;
    if (e.user_id) user[i] = postgres::detail::encode_int8(*e.user_id);
    user_null[i] = !e.user_id;
    if (e.session_id) session[i] = postgres::detail::encode_uuid(*e.session_id);
    session_null[i] = !e.session_id;
    ip[i] = e.ip_address;
    detail[i] = e.detail;
    if (any_notify && seen.insert(e.uid).second && e.notify) notify.push_back(e.uid);
  }
  Params p;
  p.add_array(oid::kText, oid::kTextArray, uid)
      .add_array(oid::kTimestamptz, oid::kTimestamptzArray, at)
      .add_array(oid::kText, oid::kTextArray, type)
      .add_array(oid::kInt8, oid::kInt8Array, user, user_null)
      .add_array(oid::kUuid, oid::kUuidArray, session, session_null)
      .add_array(oid::kText, oid::kTextArray, ip)
      .add_array(oid::kJson, oid::kJsonArray, detail);
  if (notify.empty()) return done(c.query(SESSIOND_INSERT_EVENTS, p));
  // RETURNING answers only the rows inserted, not those whose uid was already stored: those are
  // the events to queue, in the same statement (one round trip).
  p.add_array(oid::kText, oid::kTextArray, notify);
  return done(c.query("WITH stored AS (" SESSIOND_INSERT_EVENTS " RETURNING id, uid) "
                      "INSERT INTO webhook_queue (event_id) "
                      "SELECT id FROM stored WHERE uid = ANY ($8::text[])",
                      p));
}

#undef SESSIOND_INSERT_EVENTS

#define SESSIOND_EVENT_COLUMNS "id, uid, at, type, user_id, session_id, ip_address, detail::text"

Event read_event(Rows& rows, int i) {
  Event event;
  event.id = rows.int8(i, 0);
  event.uid = rows.text(i, 1);
  event.at = rows.time(i, 2);
  event.type = rows.text(i, 3);
  if (!rows.is_null(i, 4)) event.user_id = rows.int8(i, 4);
  if (!rows.is_null(i, 5)) event.session_id = rows.uuid(i, 5);
  event.ip_address = rows.text(i, 6);
  event.detail = rows.text(i, 7);
  return event;
}

Result<std::vector<Event>> collect_events(Result<Rows> rows) {
  if (!rows) return rows.error();
  std::vector<Event> out;
  out.reserve(static_cast<std::size_t>(rows->size()));
  for (int i = 0; i < rows->size(); ++i) out.push_back(read_event(*rows, i));
  if (rows->damaged()) return damaged_row_error();
  return out;
}

}  // namespace

// The pool. Connections are opened on demand up to pool_size and kept; a call that finds every one
// busy waits for one to come back (calls are bounded by the timeouts, so the wait is too).
struct PostgresDatabase::Impl {
  struct Pooled {
    std::unique_ptr<Connection> connection;
    std::uint64_t epoch = 0;  // the pool's epoch when it was last (re)connected
  };

  ConnectionSettings settings;
  int pool_size = 4;

  std::mutex mutex;
  std::condition_variable returned;
  std::vector<Pooled> idle;  // guarded by mutex
  int open = 0;              // connections that exist or are being opened; guarded by mutex
  // Moves on when a call finds its connection lost. A server restart breaks every connection but
  // libpq notices only when one is used: every connection older than the epoch is reconnected
  // before its next use, so one failed call, not one per pooled connection, tells of the restart.
  std::uint64_t epoch = 0;  // guarded by mutex

  // Runs `f(Connection&)`, which answers a Result, on a connection of the pool.
  template <class F>
  auto with_connection(F&& f) -> decltype(f(std::declval<Connection&>())) {
    Pooled lease;
    std::uint64_t current = 0;
    {
      std::unique_lock lock(mutex);
      returned.wait(lock, [&] { return !idle.empty() || open < pool_size; });
      if (!idle.empty()) {
        lease = std::move(idle.back());
        idle.pop_back();
      } else {
        ++open;
      }
      current = epoch;
    }
    struct Return {
      Impl& impl;
      Pooled& lease;
      ~Return() {
        {
          std::lock_guard lock(impl.mutex);
          if (lease.connection) {
            impl.idle.push_back(std::move(lease));
          } else {
            --impl.open;
          }
        }
        impl.returned.notify_one();
      }
    } give_back{*this, lease};

    if (!lease.connection) {
      auto opened = Connection::open(settings);
      if (!opened) return opened.error();
      lease.connection = std::move(*opened);
      lease.epoch = current;
    } else if (!lease.connection->ok() || lease.epoch < current) {
      if (auto r = lease.connection->reset(); !r) return r.error();
      lease.epoch = current;
    }
    auto result = f(*lease.connection);
    if (!lease.connection->ok()) {
      std::lock_guard lock(mutex);
      if (lease.epoch == epoch) ++epoch;
    } else {
      lease.connection->make_idle();
    }
    return result;
  }
};

PostgresDatabase::PostgresDatabase(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PostgresDatabase::~PostgresDatabase() = default;

Result<std::unique_ptr<PostgresDatabase>> PostgresDatabase::open(PostgresOptions options) {
  char* parse_error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(options.url.c_str(), &parse_error);
  PQfreemem(parse_error);
  if (parsed == nullptr) {
    return Error(Errc::invalid_request,
                 "not a PostgreSQL connection URL: expected "
                 "postgresql://[user[:password]@][host][:port][/dbname][?param=value&...]");
  }
  PQconninfoFree(parsed);

  auto impl = std::make_unique<Impl>();
  impl->settings.conninfo = std::move(options.url);
  impl->settings.connect_timeout = options.connect_timeout;
  impl->settings.statement_timeout = options.statement_timeout;
  impl->settings.application_name = std::move(options.application_name);
  impl->pool_size = std::max(1, options.pool_size);
  auto first = Connection::open(impl->settings);
  if (!first) return first.error();
  impl->idle.reserve(static_cast<std::size_t>(impl->pool_size));  // returning never allocates
  impl->idle.push_back({std::move(*first), 0});
  impl->open = 1;
  return std::unique_ptr<PostgresDatabase>(new PostgresDatabase(std::move(impl)));
}

Result<int> PostgresDatabase::migrate() {
  return impl_->with_connection([](Connection& c) -> Result<int> {
    // Each step is a transaction that first takes the advisory lock: another node migrating at the
    // same time waits, then sees the version rows it wrote. The lock is released at commit or
    // rollback, and with the session if the connection drops.
    const std::string lock =
        "SET LOCAL statement_timeout = '" + std::string(kMigrationStatementTimeout) +
        "'; SELECT pg_advisory_xact_lock(" + std::to_string(kMigrationLockKey) + ")";
    {
      Transaction tx(c);
      if (auto r = tx.begin(); !r) return r.error();
      if (auto r = c.exec(lock); !r) return r.error();
      // Under the lock: two concurrent CREATE TABLE IF NOT EXISTS can fail on pg_type's unique
      // index.
      if (auto r = c.exec(std::string(migrations_table_sql(Dialect::postgres))); !r) {
        return r.error();
      }
      if (auto r = tx.commit(); !r) return r.error();
    }
    for (const Migration& migration : migrations()) {
      Transaction tx(c);
      if (auto r = tx.begin(); !r) return r.error();
      if (auto r = c.exec(lock); !r) return r.error();
      Params version;
      version.add(std::int64_t{migration.version});
      auto applied = c.query("SELECT 1 FROM schema_migrations WHERE version = $1", version);
      if (!applied) return applied.error();
      if (applied->size() > 0) continue;
      if (auto r = c.exec(std::string(migration.postgres)); !r) return r.error();
      auto record = c.query(
          "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())", version);
      if (!record) return record.error();
      if (auto r = tx.commit(); !r) return r.error();
    }
    auto rows = c.query("SELECT coalesce(max(version), 0) FROM schema_migrations", Params());
    if (!rows) return rows.error();
    const auto current = static_cast<int>(rows->int8(0, 0));
    if (rows->damaged()) return damaged_row_error();
    if (current > latest_schema_version()) {
      return Error(Errc::internal, "the database schema is newer than this sessiond");
    }
    return current;
  });
}

Result<User> PostgresDatabase::create_user(const NewUser& user, TimePoint now) {
  Params p;
  p.add(user.email)
      .add(user.mobile_number)
      .add(std::string_view(user.role))
      .add(user.password_hash)
      .add_json(user.attributes)
      .add(now);
  return impl_->with_connection([&](Connection& c) -> Result<User> {
    auto rows = c.query(
        "INSERT INTO users (email, mobile_number, role, password_hash, attributes, disabled, "
        "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, false, $6, $6) RETURNING id",
        p);
    if (!rows) {
      if (rows.error().code == Errc::conflict) {
        if (c.failed_constraint() == "users_email_key") {
          return Error(Errc::conflict, "email is taken");
        }
        if (c.failed_constraint() == "users_mobile_number_key") {
          return Error(Errc::conflict, "mobile_number is taken");
        }
      }
      return rows.error();
    }
    User created;
    created.id = rows->int8(0, 0);
    if (rows->damaged()) return damaged_row_error();
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

Result<std::optional<User>> PostgresDatabase::find_user(UserId id) {
  Params p;
  p.add(std::int64_t{id});
  return impl_->with_connection([&](Connection& c) {
    return query_user(c, "SELECT " SESSIOND_USER_COLUMNS " FROM users WHERE id = $1", p);
  });
}

Result<std::optional<User>> PostgresDatabase::find_user_by_email(std::string_view email) {
  Params p;
  p.add(email);
  return impl_->with_connection([&](Connection& c) {
    return query_user(c, "SELECT " SESSIOND_USER_COLUMNS " FROM users WHERE email = $1", p);
  });
}

Result<std::optional<User>> PostgresDatabase::find_user_by_mobile(std::string_view mobile_number) {
  Params p;
  p.add(mobile_number);
  return impl_->with_connection([&](Connection& c) {
    return query_user(c, "SELECT " SESSIOND_USER_COLUMNS " FROM users WHERE mobile_number = $1", p);
  });
}

Result<User> PostgresDatabase::update_user(UserId id, const UserPatch& patch, TimePoint now) {
  // One statement for every patch: a field left out is NULL and keeps its value.
  Params p;
  p.add(std::int64_t{id}).add(now).add(patch.role);
  if (patch.disabled) {
    p.add(*patch.disabled);
  } else {
    p.add_null(oid::kBool);
  }
  p.add(patch.password_hash);
  if (patch.attributes) {
    p.add_json(*patch.attributes);
  } else {
    p.add_null(oid::kJson);
  }
  return impl_->with_connection([&](Connection& c) -> Result<User> {
    auto user = query_user(c,
                           "UPDATE users SET role = coalesce($3, role), "
                           "disabled = coalesce($4, disabled), "
                           "password_hash = coalesce($5, password_hash), "
                           "attributes = coalesce($6, attributes), updated_at = $2 "
                           "WHERE id = $1 RETURNING " SESSIOND_USER_COLUMNS,
                           p);
    if (!user) return user.error();
    if (!*user) return Error(Errc::not_found, "no such user");
    return std::move(**user);
  });
}

Result<void> PostgresDatabase::apply(const ChangeBatch& batch) {
  if (batch.changes.empty() && batch.events.empty()) return {};
  return impl_->with_connection([&](Connection& c) -> Result<void> {
    Transaction tx(c);
    if (auto r = tx.begin(); !r) return r.error();
    for (const auto& change : batch.changes) {
      auto r = std::visit([&](const auto& ch) { return apply_change(c, ch); }, change);
      if (!r) return r.error();
    }
    if (!batch.events.empty()) {
      if (auto r = insert_events(c, batch.events); !r) return r.error();
    }
    return tx.commit();
  });
}

Result<std::vector<SessionRecord>> PostgresDatabase::load_live_sessions() {
  return impl_->with_connection([](Connection& c) {
    return collect_sessions(c.query("SELECT " SESSIOND_SESSION_COLUMNS
                                    " FROM user_sessions WHERE is_active ORDER BY created_at, id",
                                    Params()));
  });
}

Result<std::vector<SessionRecord>> PostgresDatabase::load_ended_since(TimePoint since) {
  Params p;
  p.add(since);
  return impl_->with_connection([&](Connection& c) {
    return collect_sessions(c.query("SELECT " SESSIOND_SESSION_COLUMNS
                                    " FROM user_sessions WHERE NOT is_active AND "
                                    "invalidated_at >= $1 ORDER BY invalidated_at, id",
                                    p));
  });
}

Result<std::optional<SessionRecord>> PostgresDatabase::find_session(SessionId id) {
  Params p;
  p.add(id);
  return impl_->with_connection([&](Connection& c) -> Result<std::optional<SessionRecord>> {
    auto rows = collect_sessions(
        c.query("SELECT " SESSIOND_SESSION_COLUMNS " FROM user_sessions WHERE id = $1", p));
    if (!rows) return rows.error();
    if (rows->empty()) return std::optional<SessionRecord>();
    return std::optional<SessionRecord>(std::move(rows->front()));
  });
}

Result<std::vector<Event>> PostgresDatabase::list_events(const EventFilter& filter) {
  // One statement per combination of filters (at most 16, each prepared once per connection), so
  // that each is planned with the indexes it can use.
  std::string sql = "SELECT " SESSIOND_EVENT_COLUMNS " FROM session_events WHERE true";
  Params p;
  auto next = [&p] { return "$" + std::to_string(p.size()); };
  if (filter.user_id) {
    p.add(std::int64_t{*filter.user_id});
    sql += " AND user_id = " + next();
  }
  if (filter.session_id) {
    p.add(*filter.session_id);
    sql += " AND session_id = " + next();
  }
  if (filter.type) {
    p.add(std::string_view(*filter.type));
    sql += " AND type = " + next();
  }
  if (filter.since) {
    p.add(*filter.since);
    sql += " AND at >= " + next();
  }
  p.add(std::int64_t{std::clamp(filter.limit, 1, 1000)});
  sql += " ORDER BY id DESC LIMIT " + next();
  return impl_->with_connection([&](Connection& c) { return collect_events(c.query(sql, p)); });
}

Result<Stats> PostgresDatabase::stats(TimePoint now) {
  // One statement, so one snapshot: (kind, key, count) rows.
  Params p;
  p.add(now).add(now - std::chrono::hours{1}).add(now - std::chrono::hours{24});
  return impl_->with_connection([&](Connection& c) -> Result<Stats> {
    auto rows = c.query(
        "SELECT 'role', role, count(*) FROM user_sessions "
        "WHERE is_active AND expires_at > $1 GROUP BY role "
        "UNION ALL "
        "SELECT 'device', device_info, count(*) FROM user_sessions "
        "WHERE is_active AND expires_at > $1 GROUP BY device_info "
        "UNION ALL "
        "SELECT v.kind, NULL, v.n FROM ("
        "SELECT count(*) FILTER (WHERE type = 'login_succeeded' AND at >= $2) AS sign_ins_hour, "
        "count(*) FILTER (WHERE type = 'login_succeeded') AS sign_ins_day, "
        "count(*) FILTER (WHERE type = 'login_failed' AND at >= $2) AS failures_hour, "
        "count(*) FILTER (WHERE type = 'login_failed') AS failures_day "
        "FROM session_events "
        "WHERE type IN ('login_succeeded', 'login_failed') AND at >= $3) AS e "
        "CROSS JOIN LATERAL (VALUES ('sign_ins_hour', e.sign_ins_hour), "
        "('sign_ins_day', e.sign_ins_day), ('failures_hour', e.failures_hour), "
        "('failures_day', e.failures_day)) AS v (kind, n)",
        p);
    if (!rows) return rows.error();
    Stats stats;
    for (int i = 0; i < rows->size(); ++i) {
      const std::string kind = rows->text(i, 0);
      const std::int64_t n = rows->int8(i, 2);
      if (kind == "role") {
        stats.live_by_role[rows->text(i, 1)] = n;
      } else if (kind == "device") {
        stats.live_by_device[rows->text(i, 1)] = n;
      } else if (kind == "sign_ins_hour") {
        stats.sign_ins_last_hour = n;
      } else if (kind == "sign_ins_day") {
        stats.sign_ins_last_day = n;
      } else if (kind == "failures_hour") {
        stats.failures_last_hour = n;
      } else if (kind == "failures_day") {
        stats.failures_last_day = n;
      }
    }
    if (rows->damaged()) return damaged_row_error();
    return stats;
  });
}

Result<std::vector<Event>> PostgresDatabase::webhook_queue_head(int limit) {
  if (limit <= 0) return std::vector<Event>();
  Params p;
  p.add(std::int64_t{limit});
  return impl_->with_connection([&](Connection& c) {
    return collect_events(c.query("SELECT " SESSIOND_EVENT_COLUMNS
                                  " FROM session_events WHERE id IN "
                                  "(SELECT event_id FROM webhook_queue ORDER BY event_id LIMIT $1) "
                                  "ORDER BY id",
                                  p));
  });
}

Result<void> PostgresDatabase::webhook_dequeue(const std::vector<std::int64_t>& event_ids) {
  if (event_ids.empty()) return {};
  std::vector<std::string> ids;
  ids.reserve(event_ids.size());
  for (std::int64_t id : event_ids) ids.push_back(postgres::detail::encode_int8(id));
  Params p;
  p.add_array(oid::kInt8, oid::kInt8Array, ids);
  return impl_->with_connection([&](Connection& c) {
    return done(c.query("DELETE FROM webhook_queue WHERE event_id = ANY ($1::int8[])", p));
  });
}

Result<std::vector<SessionRecord>> PostgresDatabase::recent_sessions(UserId user,
                                                                     TimePoint active_since,
                                                                     TimePoint created_before) {
  Params p;
  p.add(std::int64_t{user}).add(active_since).add(created_before);
  return impl_->with_connection([&](Connection& c) {
    return collect_sessions(c.query("SELECT " SESSIOND_SESSION_COLUMNS
                                    " FROM user_sessions WHERE user_id = $1 AND "
                                    "last_activity >= $2 AND created_at < $3 "
                                    "ORDER BY created_at, id",
                                    p));
  });
}

Result<void> PostgresDatabase::ping() {
  return impl_->with_connection([](Connection& c) { return done(c.query("SELECT 1", Params())); });
}

#undef SESSIOND_USER_COLUMNS
#undef SESSIOND_SESSION_COLUMNS
#undef SESSIOND_EVENT_COLUMNS

}  // namespace sessiond::db
