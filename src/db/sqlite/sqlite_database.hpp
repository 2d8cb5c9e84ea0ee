// The embedded Database on SQLite (database.url = "sqlite://PATH"): WAL mode, versioned migrations,
// one writer connection and a small set of reader connections.
#pragma once

#include <memory>
#include <string>

#include "db/database.hpp"

namespace sessiond::db {

class SqliteDatabase final : public Database {
 public:
  // Opens (creating it when missing) the database file. Does not migrate. Error:
  // database_unavailable.
  static Result<std::unique_ptr<SqliteDatabase>> open(const std::string& path);
  ~SqliteDatabase() override;

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

 private:
  struct Impl;
  explicit SqliteDatabase(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sessiond::db
