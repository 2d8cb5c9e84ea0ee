#include "db/migrations.hpp"

#include <array>

namespace sessiond::db {

namespace {

// SQLite tables are STRICT so a value of the wrong type is refused as PostgreSQL would refuse it.
// users.id is AUTOINCREMENT: an id that once named a user (in tokens, logs, events) is never
// handed to another one. session_events carries no foreign keys: the audit trail must accept every
// event (a failed sign-in of an unknown user, an event delivered before its session row).
constexpr std::string_view kV1Sqlite = R"sql(
CREATE TABLE users (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  email         TEXT UNIQUE,
  mobile_number TEXT UNIQUE,
  role          TEXT NOT NULL,
  password_hash TEXT,
  attributes    TEXT NOT NULL DEFAULT '{}',
  disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
  created_at    TEXT NOT NULL,
  updated_at    TEXT NOT NULL
) STRICT;

CREATE TABLE user_sessions (
  id                  TEXT PRIMARY KEY CHECK (length(id) = 36),
  user_id             INTEGER NOT NULL REFERENCES users (id),
  role                TEXT NOT NULL,
  device_info         TEXT NOT NULL,
  ip_address          TEXT NOT NULL CHECK (length(ip_address) <= 45),
  last_ip             TEXT NOT NULL CHECK (length(last_ip) <= 45),
  user_agent          TEXT NOT NULL,
  auth_method         TEXT NOT NULL,
  attributes          TEXT NOT NULL DEFAULT '{}',
  created_at          TEXT NOT NULL,
  last_activity       TEXT NOT NULL,
  expires_at          TEXT NOT NULL,
  absolute_expires_at TEXT NOT NULL,
  idle_timeout_ms     INTEGER NOT NULL,
  refresh_token_hash  TEXT NOT NULL,
  refresh_expires_at  TEXT NOT NULL,
  is_active           INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
  invalidated_at      TEXT,
  invalidation_reason TEXT
) STRICT;
CREATE INDEX user_sessions_user_id ON user_sessions (user_id);
CREATE INDEX user_sessions_expires_at ON user_sessions (expires_at);
CREATE INDEX user_sessions_is_active ON user_sessions (is_active);

CREATE TABLE session_events (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  uid        TEXT NOT NULL UNIQUE,
  at         TEXT NOT NULL,
  type       TEXT NOT NULL,
  user_id    INTEGER,
  session_id TEXT,
  ip_address TEXT NOT NULL DEFAULT '',
  detail     TEXT NOT NULL DEFAULT '{}'
) STRICT;
CREATE INDEX session_events_user_id ON session_events (user_id, id);
CREATE INDEX session_events_session_id ON session_events (session_id);
CREATE INDEX session_events_type_at ON session_events (type, at);
CREATE INDEX session_events_at ON session_events (at);
)sql";

// The same tables in PostgreSQL's own types: bigserial ids, uuid session ids, timestamptz,
// boolean, varchar(45) addresses. attributes and detail are json rather than jsonb: json keeps the
// text exactly as written (validated), as SQLite's TEXT does, so a value reads back byte for byte
// on both databases (jsonb would reorder keys and respace them); nothing queries inside them. The
// unique constraints are named because create_user tells a taken email from a taken mobile number
// by the constraint's name.
constexpr std::string_view kV1Postgres = R"sql(
CREATE TABLE users (
  id            bigserial PRIMARY KEY,
  email         text CONSTRAINT users_email_key UNIQUE,
  mobile_number text CONSTRAINT users_mobile_number_key UNIQUE,
  role          text NOT NULL,
  password_hash text,
  attributes    json NOT NULL DEFAULT '{}',
  disabled      boolean NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL,
  updated_at    timestamptz NOT NULL
);

CREATE TABLE user_sessions (
  id                  uuid PRIMARY KEY,
  user_id             bigint NOT NULL REFERENCES users (id),
  role                text NOT NULL,
  device_info         text NOT NULL,
  ip_address          varchar(45) NOT NULL,
  last_ip             varchar(45) NOT NULL,
  user_agent          text NOT NULL,
  auth_method         text NOT NULL,
  attributes          json NOT NULL DEFAULT '{}',
  created_at          timestamptz NOT NULL,
  last_activity       timestamptz NOT NULL,
  expires_at          timestamptz NOT NULL,
  absolute_expires_at timestamptz NOT NULL,
  idle_timeout_ms     bigint NOT NULL,
  refresh_token_hash  text NOT NULL,
  refresh_expires_at  timestamptz NOT NULL,
  is_active           boolean NOT NULL DEFAULT true,
  invalidated_at      timestamptz,
  invalidation_reason text
);
CREATE INDEX user_sessions_user_id ON user_sessions (user_id);
CREATE INDEX user_sessions_expires_at ON user_sessions (expires_at);
CREATE INDEX user_sessions_is_active ON user_sessions (is_active);

CREATE TABLE session_events (
  id         bigserial PRIMARY KEY,
  uid        text NOT NULL CONSTRAINT session_events_uid_key UNIQUE,
  at         timestamptz NOT NULL,
  type       text NOT NULL,
  user_id    bigint,
  session_id uuid,
  ip_address text NOT NULL DEFAULT '',
  detail     json NOT NULL DEFAULT '{}'
);
CREATE INDEX session_events_user_id ON session_events (user_id, id);
CREATE INDEX session_events_session_id ON session_events (session_id);
CREATE INDEX session_events_type_at ON session_events (type, at);
CREATE INDEX session_events_at ON session_events (at);
)sql";

// Webhook delivery (SPEC §6): apply() queues an event it stores with notify set, in the same
// transaction; the sender reads the queue in event id order and deletes what it delivered. The
// queue holds ids only: the event is read from session_events, which is never deleted from.
// recent_sessions (session.new_device) looks up a user's sessions by last_activity: the index lets
// it read only the recent ones of a user with a long history.
constexpr std::string_view kV2Sqlite = R"sql(
CREATE TABLE webhook_queue (
  event_id INTEGER PRIMARY KEY REFERENCES session_events (id)
) STRICT;
CREATE INDEX user_sessions_user_id_last_activity ON user_sessions (user_id, last_activity);
)sql";

constexpr std::string_view kV2Postgres = R"sql(
CREATE TABLE webhook_queue (
  event_id bigint PRIMARY KEY REFERENCES session_events (id)
);
CREATE INDEX user_sessions_user_id_last_activity ON user_sessions (user_id, last_activity);
)sql";

constexpr std::array kMigrations{
    Migration{1, "users, user_sessions, session_events", kV1Sqlite, kV1Postgres},
    Migration{2, "webhook_queue; user_sessions (user_id, last_activity)", kV2Sqlite, kV2Postgres},
};

}  // namespace

std::span<const Migration> migrations() { return kMigrations; }

int latest_schema_version() { return kMigrations.back().version; }

std::string_view migrations_table_sql(Dialect dialect) {
  if (dialect == Dialect::sqlite) {
    return "CREATE TABLE IF NOT EXISTS schema_migrations ("
           "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL) STRICT";
  }
  return "CREATE TABLE IF NOT EXISTS schema_migrations ("
         "version integer PRIMARY KEY, applied_at timestamptz NOT NULL)";
}

}  // namespace sessiond::db
