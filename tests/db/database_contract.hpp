// The database contract suite: one set of tests that every Database implementation must pass, so
// SQLite can never drift from PostgreSQL. Backends are listed in backends.cpp: adding one there
// runs every contract test against it without editing the tests.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "db/database.hpp"

namespace sessiond::db::testing {

// One database under test, owning what it needs (a temporary directory, a scratch database) and
// removing it when destroyed.
class DatabaseBackend {
 public:
  virtual ~DatabaseBackend() = default;
  // Opens the backend's database (empty the first time) and migrates it.
  virtual std::unique_ptr<Database> make() = 0;
  // Opens the same database again, without migrating: for reopen and durability tests.
  virtual std::unique_ptr<Database> reopen() = 0;
};

struct BackendFactory {
  std::string name;  // the test name suffix: "sqlite"
  // A fresh backend per test; nullptr when it cannot run here (the test is skipped).
  std::function<std::unique_ptr<DatabaseBackend>()> make;
};

inline void PrintTo(const BackendFactory& factory, std::ostream* os) { *os << factory.name; }

class DatabaseContract : public ::testing::TestWithParam<BackendFactory> {
 protected:
  void SetUp() override {
    backend_ = GetParam().make();
    if (!backend_) GTEST_SKIP() << GetParam().name << " is not available here";
    db_ = backend_->make();
  }
  void TearDown() override {
    db_.reset();
    backend_.reset();
  }

  std::unique_ptr<DatabaseBackend> backend_;
  std::unique_ptr<Database> db_;
};

}  // namespace sessiond::db::testing
