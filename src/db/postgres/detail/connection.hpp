// Private to the PostgreSQL driver: RAII handles for libpq, one connection with its cache of
// prepared statements, parameters and rows in libpq's binary format, transactions, and the mapping
// of SQLSTATEs to domain errors.
//
// A Connection is used by one thread at a time (the caller holds a lease from the pool); it is not
// thread-safe itself. libpq is: separate connections may be used from separate threads.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/crypto.hpp"
#include "core/error.hpp"
#include "core/time.hpp"

namespace sessiond::db::postgres::detail {

struct ConnectionCloser {
  void operator()(PGconn* conn) const noexcept { PQfinish(conn); }
};
struct ResultClearer {
  void operator()(PGresult* result) const noexcept { PQclear(result); }
};
using ConnectionHandle = std::unique_ptr<PGconn, ConnectionCloser>;
using ResultHandle = std::unique_ptr<PGresult, ResultClearer>;

// Type OIDs of the built-in types the driver sends and reads (pg_type.dat; stable across versions).
namespace oid {
inline constexpr Oid kBool = 16;
inline constexpr Oid kInt8 = 20;
inline constexpr Oid kText = 25;
inline constexpr Oid kJson = 114;
inline constexpr Oid kJsonArray = 199;
inline constexpr Oid kInt8Array = 1016;
inline constexpr Oid kTextArray = 1009;
inline constexpr Oid kTimestamptz = 1184;
inline constexpr Oid kTimestamptzArray = 1185;
inline constexpr Oid kUuid = 2950;
inline constexpr Oid kUuidArray = 2951;
}  // namespace oid

// Maps a failed result (or none, when libpq could not even send) to a domain error with a short
// fixed detail: never SQL, never a value. A lost connection, a server shutting down, a statement
// or lock timeout, too many connections, a read-only server: database_unavailable. A unique or
// foreign-key violation: conflict. Anything else (a bug): internal.
Error to_error(const PGresult* result, const PGconn* conn);

// The error for a row that cannot be read back (a value of an unexpected type or size): internal.
Error damaged_row_error();

// Parameters of one statement, every one in binary format (so no value is ever formatted into
// SQL text or parsed back from it).
class Params {
 public:
  Params& add(std::int64_t value);
  Params& add(bool value);
  Params& add(std::string_view text);                                    // text or varchar
  Params& add(const char* text) { return add(std::string_view(text)); }  // not bool
  Params& add_json(std::string_view json);
  Params& add(TimePoint value);      // timestamptz
  Params& add(const SessionId& id);  // uuid
  Params& add(const std::optional<std::string>& text);
  Params& add(const std::optional<std::int64_t>& value);
  Params& add_null(Oid type);

  // A one-dimensional array (for unnest) of elements already in binary form; `null` marks the
  // elements that are NULL (none when it is empty).
  Params& add_array(Oid element_type, Oid array_type, std::span<const std::string> elements,
                    const std::vector<bool>& null = {});

  int size() const { return static_cast<int>(types_.size()); }
  const Oid* types() const { return types_.data(); }
  // Pointers into the parameters: valid while this object lives and is not changed.
  std::vector<const char*> values() const;
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  Params& push(Oid type, std::string bytes);

  std::vector<Oid> types_;
  std::vector<std::string> values_;
  std::vector<bool> null_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
};

// Encoders of single values in the binary format, for array elements.
std::string encode_int8(std::int64_t value);
std::string encode_timestamptz(TimePoint value);
std::string encode_uuid(const SessionId& id);

// The rows of a successful statement, read in libpq's binary format. A value of the wrong size
// marks the rows damaged (the caller then answers damaged_row_error()).
class Rows {
 public:
  explicit Rows(ResultHandle result) : result_(std::move(result)) {}

  int size() const { return PQntuples(result_.get()); }
  // Rows changed by an INSERT, UPDATE or DELETE.
  std::int64_t affected() const;

  bool is_null(int row, int column) const { return PQgetisnull(result_.get(), row, column) != 0; }
  std::int64_t int8(int row, int column);
  bool boolean(int row, int column);
  std::string text(int row, int column) const;
  std::optional<std::string> optional_text(int row, int column) const;
  TimePoint time(int row, int column);
  std::optional<TimePoint> optional_time(int row, int column);
  std::optional<SessionId> uuid(int row, int column);

  bool damaged() const { return damaged_; }
  void mark_damaged() { damaged_ = true; }

 private:
  std::string_view bytes(int row, int column) const;

  ResultHandle result_;
  bool damaged_ = false;
};

// Connection settings. `conninfo` is anything libpq's PQconnectdb accepts (a postgresql:// URL or
// key=value pairs); what it leaves out comes from the PG* environment, then from these defaults.
struct ConnectionSettings {
  std::string conninfo;
  Duration connect_timeout{std::chrono::seconds{5}};
  Duration statement_timeout{std::chrono::seconds{30}};
  std::string application_name = "sessiond";
};

class Connection {
 public:
  // Connects. Error database_unavailable with libpq's reason (which names the server, never the
  // password), for the operator.
  static Result<std::unique_ptr<Connection>> open(const ConnectionSettings& settings);

  // True while libpq considers the connection usable (it notices a loss only when it uses it).
  bool ok() const { return PQstatus(conn_.get()) == CONNECTION_OK; }
  // Reconnects with the same settings (blocking up to the connect timeout) and forgets the
  // prepared statements, which lived on the server session that is gone.
  Result<void> reset();
  // Leaves a transaction a failed call left open, so the next borrower starts clean.
  void make_idle() noexcept;

  // Runs `sql` as a statement prepared once per connection (`sql` is the cache key), with binary
  // parameters and binary results.
  Result<Rows> query(std::string_view sql, const Params& params);
  // Runs `sql` once without preparing it: for statements whose text varies.
  Result<Rows> query_once(const std::string& sql, const Params& params);
  // One or more statements without parameters (migrations, transaction control); answers the
  // command tag of the last one ("COMMIT", or "ROLLBACK" when COMMIT found a failed transaction).
  Result<std::string> exec(const std::string& sql);

  // The constraint a failed statement violated ("users_email_key"), empty when none: to tell which
  // unique value is taken. It names the schema's objects, never values.
  const std::string& failed_constraint() const { return failed_constraint_; }

 private:
  Connection(ConnectionHandle conn, Duration statement_timeout)
      : conn_(std::move(conn)), statement_timeout_(statement_timeout) {}
  Result<void> configure();
  Result<Rows> finish(PGresult* raw);
  Error fail(const PGresult* result);

  ConnectionHandle conn_;
  Duration statement_timeout_;
  std::string failed_constraint_;
  std::map<std::string, std::string, std::less<>> prepared_;  // SQL -> statement name
};

// A transaction that rolls back in its destructor unless committed (libpqxx style).
class Transaction {
 public:
  explicit Transaction(Connection& connection) : connection_(connection) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  // BEGIN (read committed), or with `mode` such as "ISOLATION LEVEL REPEATABLE READ READ ONLY".
  Result<void> begin(std::string_view mode = {});
  Result<void> commit();

 private:
  Connection& connection_;
  bool open_ = false;
};

}  // namespace sessiond::db::postgres::detail
