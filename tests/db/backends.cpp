// The databases the contract suite runs against. PostgreSQL joins this list when its driver lands.
#include <stdexcept>

#include "database_contract.hpp"
#include "db/sqlite/sqlite_database.hpp"
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

std::vector<BackendFactory> database_backends() {
  return {
      {"sqlite", [] { return std::make_unique<SqliteBackend>(); }},
  };
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Databases, DatabaseContract, ::testing::ValuesIn(database_backends()),
                         [](const auto& info) { return info.param.name; });

}  // namespace sessiond::db::testing
