// What only the SQLite database does: opening files, its pragmas, its on-disk forms, its errors.
#include "db/sqlite/sqlite_database.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>

#include "db/migrations.hpp"
#include "db/sqlite/detail/connection.hpp"
#include "support/temp_dir.hpp"

namespace sessiond::db::testing {

using test_support::TempDir;
namespace {

const TimePoint kT0 = *parse_rfc3339("2026-11-22T10:00:00.123Z");

// A plain sqlite3 connection for looking at the file from outside the driver.
class RawSqlite {
 public:
  explicit RawSqlite(const std::string& path) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    db_.reset(db);
  }

  // The first column of the first row, as text ("" when there is none).
  std::string scalar(const std::string& sql) {
    sqlite3_stmt* raw = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_.get(), sql.c_str(), -1, &raw, nullptr), SQLITE_OK) << sql;
    sqlite::detail::StatementHandle stmt(raw);
    if (sqlite3_step(stmt.get()) != SQLITE_ROW) return {};
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0));
    return text == nullptr ? "" : text;
  }

  void exec(const std::string& sql) {
    EXPECT_EQ(sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sql;
  }

 private:
  sqlite::detail::ConnectionHandle db_;
};

class SqliteDatabaseTest : public ::testing::Test {
 protected:
  std::unique_ptr<SqliteDatabase> open_migrated() {
    auto db = SqliteDatabase::open(path_);
    EXPECT_TRUE(db);
    if (!db) return nullptr;
    EXPECT_TRUE((*db)->migrate());
    return std::move(*db);
  }

  TempDir dir_;
  std::string path_ = (dir_.path() / "sessiond.db").string();
};

TEST_F(SqliteDatabaseTest, OpenInAMissingDirectoryIsDatabaseUnavailableNamingThePath) {
  std::string path = (dir_.path() / "missing" / "sessiond.db").string();
  auto db = SqliteDatabase::open(path);
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code, Errc::database_unavailable);
  EXPECT_NE(db.error().detail.find(path), std::string::npos) << db.error().detail;
}

TEST_F(SqliteDatabaseTest, OpenRefusesAFileThatIsNotADatabase) {
  std::ofstream(path_) << "this is not a database, just some text that is long enough to matter\n"
                       << std::string(4096, 'x');
  auto db = SqliteDatabase::open(path_);
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code, Errc::database_unavailable);
}

TEST_F(SqliteDatabaseTest, UsesWalAndRecordsEachMigration) {
  auto db = open_migrated();
  ASSERT_TRUE(db);
  RawSqlite raw(path_);
  EXPECT_EQ(raw.scalar("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.scalar("SELECT count(*) FROM schema_migrations"),
            std::to_string(migrations().size()));
  EXPECT_EQ(raw.scalar("SELECT max(version) FROM schema_migrations"),
            std::to_string(latest_schema_version()));
  EXPECT_TRUE(parse_rfc3339(raw.scalar("SELECT applied_at FROM schema_migrations")).has_value());
  EXPECT_EQ(raw.scalar("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND "
                       "name = 'webhook_queue'"),
            "1");
  for (const char* index :
       {"user_sessions_user_id", "user_sessions_expires_at", "user_sessions_is_active",
        "user_sessions_user_id_last_activity", "session_events_user_id",
        "session_events_session_id", "session_events_type_at", "session_events_at"}) {
    EXPECT_EQ(raw.scalar(std::string("SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND "
                                     "name = '") +
                         index + "'"),
              "1")
        << index;
  }
}

// A database written by a build whose schema was version 1 keeps its rows, and gains the queue.
TEST_F(SqliteDatabaseTest, MigratesAVersion1DatabaseKeepingItsData) {
  {
    auto created = SqliteDatabase::open(path_);  // creates the file, in WAL mode
    ASSERT_TRUE(created);
  }
  {
    RawSqlite raw(path_);
    raw.exec(std::string(migrations_table_sql(Dialect::sqlite)));
    raw.exec(std::string(migrations()[0].sqlite));
    raw.exec(
        "INSERT INTO schema_migrations (version, applied_at) VALUES (1, '2026-01-01T00:00:00Z')");
  }
  auto db = SqliteDatabase::open(path_);
  ASSERT_TRUE(db);
  // Written before migrating: nothing here touches what version 2 adds.
  NewUser input;
  input.email = "ana@example.com";
  input.role = "GUEST";
  auto user = (*db)->create_user(input, kT0);
  ASSERT_TRUE(user);
  Session s;
  s.id = *SessionId::parse("0a1b2c3d-0000-4000-8000-000000000001");
  s.user_id = user->id;
  s.role = "GUEST";
  s.created_at = kT0;
  s.last_activity = kT0;
  s.absolute_expires_at = kT0 + std::chrono::hours{1};
  s.idle_timeout = std::chrono::minutes{30};
  Event event;
  event.uid = "before-v2";
  event.type = "session_created";
  event.at = kT0;
  event.user_id = user->id;
  ASSERT_TRUE((*db)->apply({{SessionCreated{s, sha256("rt_secret"), kT0}}, {event}}));

  auto version = (*db)->migrate();
  ASSERT_TRUE(version);
  EXPECT_EQ(*version, latest_schema_version());
  auto found = (*db)->find_user(user->id);
  ASSERT_TRUE(found && found->has_value());
  EXPECT_EQ((*found)->email, "ana@example.com");
  auto record = (*db)->find_session(s.id);
  ASSERT_TRUE(record && record->has_value());
  EXPECT_EQ((*record)->refresh_hash, sha256("rt_secret"));
  auto recent = (*db)->recent_sessions(user->id, kT0, kT0 + std::chrono::seconds{1});
  ASSERT_TRUE(recent);
  EXPECT_EQ(recent->size(), 1u);
  auto listed = (*db)->list_events({});
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().uid, "before-v2");
  auto head = (*db)->webhook_queue_head(10);
  ASSERT_TRUE(head);
  EXPECT_TRUE(head->empty());

  event.uid = "after-v2";
  event.notify = true;
  ASSERT_TRUE((*db)->apply({{}, {event}}));
  head = (*db)->webhook_queue_head(10);
  ASSERT_TRUE(head);
  ASSERT_EQ(head->size(), 1u);
  EXPECT_EQ(head->front().uid, "after-v2");
  EXPECT_EQ(RawSqlite(path_).scalar("SELECT count(*) FROM schema_migrations"),
            std::to_string(migrations().size()));
}

TEST_F(SqliteDatabaseTest, MigrationsAreNumberedWithoutGaps) {
  int expected = 1;
  for (const auto& m : migrations()) {
    EXPECT_EQ(m.version, expected++);
    EXPECT_FALSE(m.sql(Dialect::sqlite).empty());
    EXPECT_FALSE(m.sql(Dialect::postgres).empty());
  }
}

TEST_F(SqliteDatabaseTest, StoresFixedFormTimestampsAndTheHexRefreshHash) {
  auto db = open_migrated();
  ASSERT_TRUE(db);
  NewUser input;
  input.email = "ana@example.com";
  input.role = "GUEST";
  auto user = db->create_user(input, kT0);
  ASSERT_TRUE(user);
  Session s;
  s.id = *SessionId::parse("0a1b2c3d-0000-4000-8000-000000000001");
  s.user_id = user->id;
  s.role = "GUEST";
  s.created_at = kT0;
  s.last_activity = kT0;
  s.absolute_expires_at = kT0 + std::chrono::hours{1};
  s.idle_timeout = std::chrono::minutes{30};
  ASSERT_TRUE(db->apply({{SessionCreated{s, sha256("rt_secret"), kT0}}, {}}));

  RawSqlite raw(path_);
  EXPECT_EQ(raw.scalar("SELECT created_at FROM users"), "2026-11-22T10:00:00.123Z");
  EXPECT_EQ(raw.scalar("SELECT expires_at FROM user_sessions"), "2026-11-22T10:30:00.123Z");
  EXPECT_EQ(raw.scalar("SELECT refresh_token_hash FROM user_sessions"),
            to_hex(sha256("rt_secret")));
  EXPECT_EQ(raw.scalar("SELECT id FROM user_sessions"), "0a1b2c3d-0000-4000-8000-000000000001");
}

TEST_F(SqliteDatabaseTest, MigrateRefusesASchemaNewerThanThisBuild) {
  open_migrated().reset();
  RawSqlite(path_).exec(
      "INSERT INTO schema_migrations (version, applied_at) VALUES (9999, '2026-01-01T00:00:00Z')");
  auto db = SqliteDatabase::open(path_);
  ASSERT_TRUE(db);
  auto version = (*db)->migrate();
  ASSERT_FALSE(version);
  EXPECT_EQ(version.error().code, Errc::internal);
}

TEST_F(SqliteDatabaseTest, InMemoryDatabaseServesReadsFromItsOnlyConnection) {
  auto db = SqliteDatabase::open(":memory:");
  ASSERT_TRUE(db);
  auto version = (*db)->migrate();
  ASSERT_TRUE(version);
  EXPECT_EQ(*version, latest_schema_version());
  NewUser input;
  input.mobile_number = "+306900000001";
  input.role = "GUEST";
  auto user = (*db)->create_user(input, kT0);
  ASSERT_TRUE(user);
  auto found = (*db)->find_user_by_mobile("+306900000001");
  ASSERT_TRUE(found && found->has_value());
  EXPECT_EQ((*found)->id, user->id);
}

TEST_F(SqliteDatabaseTest, DamagedRowIsInternalError) {
  auto db = open_migrated();
  ASSERT_TRUE(db);
  RawSqlite(path_).exec(
      "INSERT INTO users (email, role, created_at, updated_at) "
      "VALUES ('x@example.com', 'GUEST', 'yesterday', 'yesterday')");
  auto found = db->find_user_by_email("x@example.com");
  ASSERT_FALSE(found);
  EXPECT_EQ(found.error().code, Errc::internal);
}

TEST(SqliteErrors, MapToDomainErrorsWithFixedDetails) {
  using sqlite::detail::to_error;
  EXPECT_EQ(to_error(SQLITE_BUSY).code, Errc::database_unavailable);
  EXPECT_EQ(to_error(SQLITE_BUSY_SNAPSHOT).code, Errc::database_unavailable);
  EXPECT_EQ(to_error(SQLITE_LOCKED).code, Errc::database_unavailable);
  EXPECT_EQ(to_error(SQLITE_IOERR_FSYNC).code, Errc::database_unavailable);
  EXPECT_EQ(to_error(SQLITE_FULL).code, Errc::database_unavailable);
  EXPECT_EQ(to_error(SQLITE_CANTOPEN).code, Errc::database_unavailable);
  EXPECT_EQ(to_error(SQLITE_READONLY).code, Errc::database_unavailable);
  EXPECT_EQ(to_error(SQLITE_CORRUPT).code, Errc::database_unavailable);
  EXPECT_EQ(to_error(SQLITE_NOTADB).code, Errc::database_unavailable);
  EXPECT_EQ(to_error(SQLITE_CONSTRAINT_UNIQUE).code, Errc::conflict);
  EXPECT_EQ(to_error(SQLITE_CONSTRAINT_PRIMARYKEY).code, Errc::conflict);
  EXPECT_EQ(to_error(SQLITE_CONSTRAINT_FOREIGNKEY).code, Errc::conflict);
  EXPECT_EQ(to_error(SQLITE_CONSTRAINT_NOTNULL).code, Errc::internal);
  EXPECT_EQ(to_error(SQLITE_CONSTRAINT_CHECK).code, Errc::internal);
  EXPECT_EQ(to_error(SQLITE_ERROR).code, Errc::internal);
  EXPECT_EQ(to_error(SQLITE_MISUSE).code, Errc::internal);
  EXPECT_FALSE(to_error(SQLITE_IOERR).detail.empty());
}

}  // namespace
}  // namespace sessiond::db::testing
