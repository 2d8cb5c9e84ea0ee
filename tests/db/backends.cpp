// The databases the contract suite runs against: SQLite (label unit) and PostgreSQL (label
// postgres: the server named by SESSIOND_TEST_DATABASE_URL).
#include <stdexcept>

#include "database_contract.hpp"
#include "db/postgres/postgres_database.hpp"
#include "db/sqlite/sqlite_database.hpp"
#include "postgres_test_support.hpp"
#include "support/temp_dir.hpp"

namespace sessiond::db::testing {

using test_support::TempDir;
namespace {

// A database file in a fresh temporary directory, removed with it.
class SqliteBackend final : public DatabaseBackend {
 public:
  std::unique_ptr<Database> make() override {
    auto db = reopen();
    if (auto version = db->migrate(); !version) {
      throw std::runtime_error("migrate failed: " + version.error().detail);
    }
    return db;
  }

  std::unique_ptr<Database> reopen() override {
    auto db = SqliteDatabase::open(path_);
    if (!db) throw std::runtime_error("open failed: " + db.error().detail);
    return std::move(*db);
  }

 private:
  TempDir dir_;
  std::string path_ = (dir_.path() / "sessiond.db").string();
};

// A scratch database of the test's own on the test server, dropped with the backend. Unset
// SESSIOND_TEST_DATABASE_URL throws from the constructor: the test fails and says why.
class PostgresBackend final : public DatabaseBackend {
 public:
  std::unique_ptr<Database> make() override {
    auto db = reopen();
    if (auto version = db->migrate(); !version) {
      throw std::runtime_error("migrate failed: " + version.error().detail);
    }
    return db;
  }

  std::unique_ptr<Database> reopen() override {
    PostgresOptions options;
    options.url = scratch_.conninfo();
    auto db = PostgresDatabase::open(std::move(options));
    if (!db) throw std::runtime_error("open failed: " + db.error().detail);
    return std::move(*db);
  }

 private:
  ScratchDatabase scratch_;
};

std::vector<BackendFactory> database_backends() {
  return {
      {"sqlite", [] { return std::make_unique<SqliteBackend>(); }},
      {"postgres", [] { return std::make_unique<PostgresBackend>(); }},
  };
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Databases, DatabaseContract, ::testing::ValuesIn(database_backends()),
                         [](const auto& info) { return info.param.name; });

}  // namespace sessiond::db::testing
