// The Database on PostgreSQL 15 (database.url = "postgresql://..."), through libpq: a small pool of
// blocking connections, versioned migrations under an advisory lock, every value sent and read in
// binary form.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "db/database.hpp"

namespace sessiond::db {

struct PostgresOptions {
  // Anything libpq accepts: "postgresql://user:password@host:port/dbname?sslmode=require" (or
  // postgres://), or "host=... dbname=..." pairs. What it leaves out comes from the PG* environment
  // (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGPASSFILE, PGSSLMODE, ...), as in psql.
  std::string url;
  // Connections opened at most; calls beyond that wait for one to be returned. They are opened on
  // demand: one at open(), the others when calls overlap.
  int pool_size = 4;
  // Used unless the URL or PGCONNECT_TIMEOUT says otherwise (whole seconds, at least 2).
  Duration connect_timeout{std::chrono::seconds{5}};
  // Used unless the server already sets one for the role or database, or PGOPTIONS does.
  Duration statement_timeout{std::chrono::seconds{30}};
  // application_name in pg_stat_activity, unless the URL or PGAPPNAME names one.
  std::string application_name = "sessiond";
};

// Every member may be called concurrently; each call borrows one connection for its duration. A
// call never blocks for ever: connecting is bounded by the connect timeout, statements by the
// statement timeout, a silent peer by TCP keepalives.
//
// When a call finds its connection lost (a server restart, a failover, a terminated backend) it
// answers database_unavailable; the pool then reconnects every connection opened before the loss
// on its next use, so the next call works as soon as the server answers again. Calls are never
// retried here: a write whose answer was lost may have been committed, and the caller (the outbox
// writer, the job loop) knows whether repeating it is safe.
class PostgresDatabase final : public Database {
 public:
  // Checks the URL and opens the first connection. Does not migrate. Errors: invalid_request for a
  // URL libpq cannot parse (the message does not repeat it: it may hold a password),
  // database_unavailable with libpq's reason when the server cannot be reached or refuses us.
  static Result<std::unique_ptr<PostgresDatabase>> open(PostgresOptions options);
  ~PostgresDatabase() override;

  // Takes pg_advisory_xact_lock(kMigrationLockKey) around reading the version and applying each
  // migration, so that several nodes starting at once apply each migration exactly once.
  Result<int> migrate() override;
  Result<User> create_user(const NewUser& user, TimePoint now) override;
  Result<std::optional<User>> find_user(UserId id) override;
  Result<std::optional<User>> find_user_by_email(std::string_view email) override;
  Result<std::optional<User>> find_user_by_mobile(std::string_view mobile_number) override;
  Result<User> update_user(UserId id, const UserPatch& patch, TimePoint now) override;
  Result<void> apply(const ChangeBatch& batch) override;
  Result<std::vector<SessionRecord>> load_live_sessions() override;
  Result<std::vector<SessionRecord>> load_ended_since(TimePoint since) override;
  Result<std::optional<SessionRecord>> find_session(SessionId id) override;
  Result<std::vector<Event>> list_events(const EventFilter& filter) override;
  Result<Stats> stats(TimePoint now) override;
  Result<std::vector<Event>> webhook_queue_head(int limit) override;
  Result<void> webhook_dequeue(const std::vector<std::int64_t>& event_ids) override;
  Result<std::vector<SessionRecord>> recent_sessions(UserId user, TimePoint active_since,
                                                     TimePoint created_before) override;
  Result<void> ping() override;

  // The advisory lock key migrate() takes: the bytes of "sessiond" as a big-endian int64.
  static constexpr std::int64_t kMigrationLockKey = 0x73657373696f6e64;

 private:
  struct Impl;
  explicit PostgresDatabase(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sessiond::db
