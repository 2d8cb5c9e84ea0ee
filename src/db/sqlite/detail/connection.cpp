#include "db/sqlite/detail/connection.hpp"

namespace sessiond::db::sqlite::detail {

namespace {

// Waits for a lock held by another process (sessiond migrate, a backup, the sqlite3 shell); inside
// one process the writer mutex already serialises writes.
constexpr int kBusyTimeoutMs = 5000;

Error open_error(const std::string& path, int rc) {
  return Error(Errc::database_unavailable,
               "cannot open the SQLite database " + path + ": " + sqlite3_errstr(rc));
}

}  // namespace

Error to_error(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return Error(Errc::database_unavailable, "database is busy");
    case SQLITE_IOERR: return Error(Errc::database_unavailable, "database I/O error");
    case SQLITE_FULL: return Error(Errc::database_unavailable, "database disk is full");
    case SQLITE_CANTOPEN: return Error(Errc::database_unavailable, "cannot open the database");
    case SQLITE_READONLY: return Error(Errc::database_unavailable, "database is read-only");
    case SQLITE_PERM:
    case SQLITE_AUTH: return Error(Errc::database_unavailable, "database access denied");
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return Error(Errc::database_unavailable, "database file is damaged");
    case SQLITE_PROTOCOL:
    case SQLITE_NOLFS: return Error(Errc::database_unavailable, "database locking failed");
    case SQLITE_CONSTRAINT:
      switch (rc) {
        case SQLITE_CONSTRAINT_UNIQUE:
        case SQLITE_CONSTRAINT_PRIMARYKEY: return Error(Errc::conflict, "a unique value is taken");
        case SQLITE_CONSTRAINT_FOREIGNKEY:
          return Error(Errc::conflict, "a referenced record does not exist");
        default: return Error(Errc::internal, "database constraint failed");
      }
    case SQLITE_NOMEM: return Error(Errc::internal, "database out of memory");
    default: return Error(Errc::internal, "database error");
  }
}

Error damaged_row_error() { return Error(Errc::internal, "database row cannot be read"); }

Statement::~Statement() {
  if (stmt_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

Statement& Statement::bind(int index, std::int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Statement& Statement::bind(int index, std::string_view value) {
  int rc =
      sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Statement& Statement::bind(int index, TimePoint value) {
  return bind(index, std::string_view(format_rfc3339(value)));
}

Statement& Statement::bind_null(int index) {
  int rc = sqlite3_bind_null(stmt_, index);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Result<bool> Statement::step() {
  if (bind_rc_ != SQLITE_OK) return to_error(bind_rc_);
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  failure_message_ = sqlite3_errmsg(sqlite3_db_handle(stmt_));
  return to_error(rc);
}

Result<void> Statement::run() {
  for (;;) {
    auto row = step();
    if (!row) return row.error();
    if (!*row) return {};
  }
}

std::int64_t Statement::integer(int column) const { return sqlite3_column_int64(stmt_, column); }

bool Statement::is_null(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

std::string Statement::text(int column) const {
  // sqlite3_column_text before sqlite3_column_bytes, as SQLite documents.
  const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  if (data == nullptr) return {};
  return std::string(data, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)));
}

std::optional<std::string> Statement::optional_text(int column) const {
  if (is_null(column)) return std::nullopt;
  return text(column);
}

TimePoint Statement::time(int column) {
  auto parsed = parse_rfc3339(text(column));
  if (!parsed) {
    damaged_ = true;
    return TimePoint{};
  }
  return *parsed;
}

std::optional<TimePoint> Statement::optional_time(int column) {
  if (is_null(column)) return std::nullopt;
  return time(column);
}

Result<std::unique_ptr<Connection>> Connection::open(const std::string& path, Mode mode) {
  // NOMUTEX: SQLite's own per-connection mutex is redundant, each connection is used by one thread
  // at a time. A reader never creates the file: the writer has opened it first.
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  if (mode == Mode::writer) flags |= SQLITE_OPEN_CREATE;
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  ConnectionHandle db(raw);  // allocated even when the open fails
  if (rc != SQLITE_OK) return open_error(path, rc);
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);

  std::unique_ptr<Connection> connection(new Connection(std::move(db)));
  if (mode == Mode::writer) {
    // The first statement reads the file: a file that is not a database fails here.
    auto journal = connection->prepare("PRAGMA journal_mode = WAL");
    auto row = journal ? journal->step() : Result<bool>(journal.error());
    if (!row) return open_error(path, sqlite3_extended_errcode(connection->db_.get()));
    auto journal_mode = *row ? journal->text(0) : std::string();
    if (journal_mode != "wal" && journal_mode != "memory") {
      return Error(Errc::database_unavailable,
                   "cannot use the SQLite database " + path + ": WAL journal mode is unavailable");
    }
  }
  // synchronous = FULL: WAL with NORMAL survives a process kill (the WAL is in the OS page cache)
  // but may lose the last commits in a power loss or OS crash; FULL syncs the WAL at every commit,
  // so a session, revocation or event acknowledged to a client survives both. Writes are one
  // transaction per request (activity touches are batched), so the cost is one fsync per request.
  const char* pragmas = mode == Mode::writer
                            ? "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"
                            : "PRAGMA foreign_keys = ON; PRAGMA query_only = ON;";
  if (auto r = connection->exec(pragmas); !r) {
    return Error(Errc::database_unavailable, "cannot configure the SQLite database " + path);
  }
  return connection;
}

Result<Statement> Connection::prepare(std::string_view sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    StatementHandle stmt(raw);
    if (rc != SQLITE_OK) return to_error(rc);
    it = statements_.emplace(std::string(sql), std::move(stmt)).first;
  }
  return Statement(it->second.get());
}

Result<void> Connection::exec(const std::string& sql) {
  int rc = sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return to_error(rc);
  return {};
}

void Connection::rollback_quietly() noexcept {
  sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
}

Transaction::~Transaction() {
  if (open_ && connection_.in_transaction()) connection_.rollback_quietly();
}

Result<void> Transaction::begin_immediate() {
  auto begin = connection_.prepare("BEGIN IMMEDIATE");
  if (!begin) return begin.error();
  if (auto r = begin->run(); !r) return r.error();
  open_ = true;
  return {};
}

Result<void> Transaction::begin_read() {
  auto begin = connection_.prepare("BEGIN");
  if (!begin) return begin.error();
  if (auto r = begin->run(); !r) return r.error();
  open_ = true;
  return {};
}

Result<void> Transaction::commit() {
  auto commit = connection_.prepare("COMMIT");
  if (!commit) return commit.error();
  // A failed COMMIT may leave the transaction open: the destructor rolls it back.
  if (auto r = commit->run(); !r) return r.error();
  open_ = false;
  return {};
}

}  // namespace sessiond::db::sqlite::detail
