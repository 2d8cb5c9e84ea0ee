// What the PostgreSQL tests need besides the driver: the server named by
// SESSIOND_TEST_DATABASE_URL, a scratch database per test on it, a plain libpq connection to look
// at tables and hold locks, and a private cluster of the test's own that it may stop and start.
//
// Tests run in parallel processes against one server, so each one gets its own database
// (CREATE DATABASE with a random name, dropped WITH (FORCE) afterwards): migrations, advisory locks
// and terminated connections of one test never touch another's.
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/temp_dir.hpp"

namespace sessiond::db::testing {

// $SESSIOND_TEST_DATABASE_URL. Unset is a failure, not a skip (make test always provides a
// server): throws with a message that says how to provide one.
std::string test_database_url();

// `conninfo` (a URL or key=value pairs) with its database replaced by `dbname`, as key=value pairs.
std::string with_database(const std::string& conninfo, const std::string& dbname);

// A libpq connection for the tests themselves; every failure throws std::runtime_error.
class TestConnection {
 public:
  explicit TestConnection(const std::string& conninfo);
  ~TestConnection();
  TestConnection(const TestConnection&) = delete;
  TestConnection& operator=(const TestConnection&) = delete;

  // Runs one or more statements; answers the rows of the last one as text (nullopt for NULL).
  std::vector<std::vector<std::optional<std::string>>> exec(const std::string& sql);
  // The single value of a one-row, one-column answer.
  std::string value(const std::string& sql);

 private:
  PGconn* conn_;
};

// A database of the test's own on the test server, created empty and dropped when it goes away.
class ScratchDatabase {
 public:
  ScratchDatabase();
  ~ScratchDatabase();
  ScratchDatabase(const ScratchDatabase&) = delete;
  ScratchDatabase& operator=(const ScratchDatabase&) = delete;

  const std::string& name() const { return name_; }
  // The connection string of the scratch database (for PostgresOptions::url).
  const std::string& conninfo() const { return conninfo_; }
  // Terminates every other connection to the database (pg_terminate_backend), as a server restart
  // or a failover would; answers how many there were.
  int terminate_connections();

 private:
  std::string admin_url_;
  std::string name_;
  std::string conninfo_;
};

// A PostgreSQL cluster of the test's own (scripts/private-postgres.sh) in a temporary directory,
// which the test may stop and start again on the same port and data.
class PrivatePostgres {
 public:
  PrivatePostgres();   // creates and starts it; throws when it cannot
  ~PrivatePostgres();  // stops it and removes the directory
  PrivatePostgres(const PrivatePostgres&) = delete;
  PrivatePostgres& operator=(const PrivatePostgres&) = delete;

  const std::string& url() const { return url_; }  // postgresql://postgres@127.0.0.1:PORT/postgres
  void stop();
  void start();

 private:
  std::string run(const std::string& function);

  test_support::TempDir dir_;
  std::string url_;
  bool running_ = false;
};

}  // namespace sessiond::db::testing
