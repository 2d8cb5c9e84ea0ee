// Private to the SQLite driver: RAII handles, one connection with its statement cache, statements,
// transactions, and the mapping of SQLite result codes to domain errors.
//
// A Connection and the Statements borrowed from it are used by one thread at a time (the caller
// holds a mutex or a lease); they are not thread-safe themselves.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "core/error.hpp"
#include "core/time.hpp"

namespace sessiond::db::sqlite::detail {

struct ConnectionCloser {
  void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
struct StatementFinalizer {
  void operator()(sqlite3_stmt* stmt) const noexcept { sqlite3_finalize(stmt); }
};
using ConnectionHandle = std::unique_ptr<sqlite3, ConnectionCloser>;
using StatementHandle = std::unique_ptr<sqlite3_stmt, StatementFinalizer>;

// Maps an (extended) SQLite result code to a domain error with a short fixed detail: never SQL,
// never a value. Busy, I/O, full disk, cannot open, read-only, damaged file: database_unavailable.
// A unique or foreign-key violation: conflict. Anything else (a bug): internal.
Error to_error(int rc);

// The error for a row that cannot be read back (a damaged value): internal.
Error damaged_row_error();

// A cached prepared statement borrowed for one use: reset and unbound when it goes out of scope.
class Statement {
 public:
  explicit Statement(sqlite3_stmt* stmt) noexcept : stmt_(stmt) {}
  Statement(Statement&& other) noexcept
      : stmt_(std::exchange(other.stmt_, nullptr)),
        bind_rc_(other.bind_rc_),
        damaged_(other.damaged_),
        failure_message_(std::move(other.failure_message_)) {}
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& operator=(Statement&&) = delete;
  ~Statement();

  // Parameters are numbered from 1. A failed bind (a bug) is reported by the next step().
  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, std::string_view value);
  Statement& bind(int index, TimePoint value);
  Statement& bind_null(int index);
  template <class T>
  Statement& bind(int index, const std::optional<T>& value) {
    return value ? bind(index, *value) : bind_null(index);
  }

  // True while a row is available, false when the statement is done.
  Result<bool> step();
  // Runs a statement that returns no rows.
  Result<void> run();

  // Columns are numbered from 0. A value that cannot be parsed marks the row damaged.
  std::int64_t integer(int column) const;
  bool is_null(int column) const;
  std::string text(int column) const;
  std::optional<std::string> optional_text(int column) const;
  TimePoint time(int column);
  std::optional<TimePoint> optional_time(int column);
  bool damaged() const { return damaged_; }
  void mark_damaged() { damaged_ = true; }

  // SQLite's message for the last failed step, to tell which constraint failed. It names tables and
  // columns, never values; still, it stays inside the driver.
  const std::string& failure_message() const { return failure_message_; }

 private:
  sqlite3_stmt* stmt_;
  int bind_rc_ = SQLITE_OK;
  bool damaged_ = false;
  std::string failure_message_;
};

class Connection {
 public:
  enum class Mode { writer, reader };

  // Opens `path` (a writer creates the file) and configures the connection. Errors:
  // database_unavailable with a detail naming the path, for the operator at start.
  static Result<std::unique_ptr<Connection>> open(const std::string& path, Mode mode);

  // A statement prepared once per connection and kept; `sql` is the cache key.
  Result<Statement> prepare(std::string_view sql);
  // One or more statements without parameters (migrations, transaction control).
  Result<void> exec(const std::string& sql);

  std::int64_t last_insert_rowid() const { return sqlite3_last_insert_rowid(db_.get()); }
  int changes() const { return sqlite3_changes(db_.get()); }
  bool in_transaction() const { return sqlite3_get_autocommit(db_.get()) == 0; }
  // Ends an open transaction, ignoring errors (a failed rollback leaves nothing to do).
  void rollback_quietly() noexcept;

 private:
  explicit Connection(ConnectionHandle db) : db_(std::move(db)) {}

  ConnectionHandle db_;
  // Declared after db_: the statements are finalized before the connection closes.
  std::map<std::string, StatementHandle, std::less<>> statements_;
};

// A transaction that rolls back in its destructor unless committed (libpqxx style).
class Transaction {
 public:
  explicit Transaction(Connection& connection) : connection_(connection) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  // BEGIN IMMEDIATE: takes the write lock now, so the transaction never fails half-way on a lock.
  Result<void> begin_immediate();
  // BEGIN (deferred): one consistent snapshot for several reads.
  Result<void> begin_read();
  Result<void> commit();

 private:
  Connection& connection_;
  bool open_ = false;
};

}  // namespace sessiond::db::sqlite::detail
