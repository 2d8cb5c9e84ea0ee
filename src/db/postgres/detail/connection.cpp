#include "db/postgres/detail/connection.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace sessiond::db::postgres::detail {

namespace {

// timestamptz in binary is microseconds since 2000-01-01 00:00:00 UTC (integer datetimes, the only
// kind since PostgreSQL 10).
constexpr std::int64_t kPostgresEpochMs = 946'684'800'000;

// A dead peer that never closes the connection (a partition, a host that lost power) is noticed by
// TCP keepalives while a call waits for an answer, and by the user timeout while data it sent goes
// unacknowledged: no call waits on it for ever.
constexpr const char* kKeepalivesIdleS = "5";
constexpr const char* kKeepalivesIntervalS = "2";
constexpr const char* kKeepalivesCount = "3";
constexpr const char* kTcpUserTimeoutMs = "10000";

void put_be(std::string& out, std::uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

std::uint64_t get_be(std::string_view in) {
  std::uint64_t value = 0;
  for (char c : in) value = (value << 8) | static_cast<std::uint8_t>(c);
  return value;
}

// The first line of a libpq message: the reason; the lines after it are hints.
std::string first_line(const char* message) {
  std::string text = message == nullptr ? "" : message;
  text = text.substr(0, text.find('\n'));
  while (!text.empty() && (text.back() == ' ' || text.back() == '\r')) text.pop_back();
  return text.empty() ? "no reason given" : text;
}

Error unavailable(std::string detail) {
  return Error(Errc::database_unavailable, std::move(detail));
}

}  // namespace

Error to_error(const PGresult* result, const PGconn* conn) {
  if (conn == nullptr || PQstatus(conn) != CONNECTION_OK) {
    return unavailable("database connection lost");
  }
  const char* field = result == nullptr ? nullptr : PQresultErrorField(result, PG_DIAG_SQLSTATE);
  // No result or no SQLSTATE: libpq failed on its side (out of memory, a broken socket it has not
  // yet reported through the connection status).
  if (field == nullptr) return unavailable("database did not answer");
  const std::string_view state(field);
  const std::string_view klass = state.substr(0, 2);
  if (state == "23505") return Error(Errc::conflict, "a unique value is taken");
  if (state == "23503") return Error(Errc::conflict, "a referenced record does not exist");
  if (klass == "08") return unavailable("database connection failed");
  if (state == "57P01" || state == "57P02" || state == "57P03") {
    return unavailable("database is shutting down or starting");
  }
  if (state == "57014") return unavailable("database statement timed out");
  if (state == "55P03") return unavailable("database lock not available");
  if (state == "40001" || state == "40P01") return unavailable("database transaction conflict");
  if (state == "25006") return unavailable("database is read-only");
  if (klass == "53") return unavailable("database is out of resources");
  if (klass == "58") return unavailable("database I/O error");
  if (klass == "28") return unavailable("database access denied");
  // Data the database refuses (a constraint, a value it cannot store): the same data would be
  // refused again, unlike the failures above.
  if (klass == "23") return Error(Errc::conflict, "database constraint failed");
  if (klass == "22") return Error(Errc::invalid_request, "the database refused a value");
  return Error(Errc::internal, "database error");
}

Error damaged_row_error() { return Error(Errc::internal, "database row cannot be read"); }

// ---- Params

Params& Params::push(Oid type, std::string bytes) {
  types_.push_back(type);
  lengths_.push_back(static_cast<int>(bytes.size()));
  values_.push_back(std::move(bytes));
  null_.push_back(false);
  formats_.push_back(1);
  return *this;
}

Params& Params::add(std::int64_t value) { return push(oid::kInt8, encode_int8(value)); }

Params& Params::add(bool value) { return push(oid::kBool, std::string(1, value ? '\1' : '\0')); }

Params& Params::add(std::string_view text) { return push(oid::kText, std::string(text)); }

// json's binary form is its text (jsonb's would carry a version byte first).
Params& Params::add_json(std::string_view json) { return push(oid::kJson, std::string(json)); }

Params& Params::add(TimePoint value) { return push(oid::kTimestamptz, encode_timestamptz(value)); }

Params& Params::add(const SessionId& id) { return push(oid::kUuid, encode_uuid(id)); }

Params& Params::add(const std::optional<std::string>& text) {
  return text ? add(std::string_view(*text)) : add_null(oid::kText);
}

Params& Params::add(const std::optional<std::int64_t>& value) {
  return value ? add(*value) : add_null(oid::kInt8);
}

Params& Params::add_null(Oid type) {
  push(type, {});
  null_.back() = true;
  lengths_.back() = 0;
  return *this;
}

// array_recv's format: dimensions, a has-nulls flag, the element type, then per dimension its size
// and lower bound, then each element as a length (-1 for NULL) and its binary value.
Params& Params::add_array(Oid element_type, Oid array_type, std::span<const std::string> elements,
                          const std::vector<bool>& null) {
  std::string out;
  std::size_t total = 20;
  for (const auto& e : elements) total += 4 + e.size();
  out.reserve(total);
  const bool has_null = std::find(null.begin(), null.end(), true) != null.end();
  put_be(out, 1, 4);
  put_be(out, has_null ? 1 : 0, 4);
  put_be(out, element_type, 4);
  put_be(out, elements.size(), 4);
  put_be(out, 1, 4);
  for (std::size_t i = 0; i < elements.size(); ++i) {
    if (i < null.size() && null[i]) {
      put_be(out, 0xffffffffu, 4);
      continue;
    }
    put_be(out, elements[i].size(), 4);
    out += elements[i];
  }
  return push(array_type, std::move(out));
}

std::vector<const char*> Params::values() const {
  std::vector<const char*> out;
  out.reserve(values_.size());
  for (std::size_t i = 0; i < values_.size(); ++i) {
    out.push_back(null_[i] ? nullptr : values_[i].data());
  }
  return out;
}

std::string encode_int8(std::int64_t value) {
  std::string out;
  put_be(out, static_cast<std::uint64_t>(value), 8);
  return out;
}

std::string encode_timestamptz(TimePoint value) {
  return encode_int8((to_unix_ms(value) - kPostgresEpochMs) * 1000);
}

std::string encode_uuid(const SessionId& id) {
  return std::string(reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size());
}

// ---- Rows

std::int64_t Rows::affected() const {
  const char* tuples = PQcmdTuples(result_.get());
  return tuples == nullptr || *tuples == '\0' ? 0 : std::strtoll(tuples, nullptr, 10);
}

std::string_view Rows::bytes(int row, int column) const {
  return {PQgetvalue(result_.get(), row, column),
          static_cast<std::size_t>(PQgetlength(result_.get(), row, column))};
}

std::int64_t Rows::int8(int row, int column) {
  auto b = bytes(row, column);
  // Sign-extends int2 and int4 as well (count(*) is int8, schema_migrations.version int4).
  switch (b.size()) {
    case 8: return static_cast<std::int64_t>(get_be(b));
    case 4: return static_cast<std::int32_t>(get_be(b));
    case 2: return static_cast<std::int16_t>(get_be(b));
    default: damaged_ = true; return 0;
  }
}

bool Rows::boolean(int row, int column) {
  auto b = bytes(row, column);
  if (b.size() != 1) {
    damaged_ = true;
    return false;
  }
  return b[0] != 0;
}

std::string Rows::text(int row, int column) const { return std::string(bytes(row, column)); }

std::optional<std::string> Rows::optional_text(int row, int column) const {
  if (is_null(row, column)) return std::nullopt;
  return text(row, column);
}

TimePoint Rows::time(int row, int column) {
  auto b = bytes(row, column);
  if (b.size() != 8) {
    damaged_ = true;
    return TimePoint{};
  }
  const auto micros = static_cast<std::int64_t>(get_be(b));
  // 'infinity' and '-infinity' are the extreme int64 values: no time sessiond wrote.
  if (micros == INT64_MAX || micros == INT64_MIN) {
    damaged_ = true;
    return TimePoint{};
  }
  // Floor division: a time written by another client may carry microseconds.
  std::int64_t ms = micros / 1000;
  if (micros % 1000 < 0) --ms;
  return from_unix_ms(ms + kPostgresEpochMs);
}

std::optional<TimePoint> Rows::optional_time(int row, int column) {
  if (is_null(row, column)) return std::nullopt;
  return time(row, column);
}

std::optional<SessionId> Rows::uuid(int row, int column) {
  auto b = bytes(row, column);
  SessionId id;
  if (b.size() != id.bytes.size()) {
    damaged_ = true;
    return std::nullopt;
  }
  std::memcpy(id.bytes.data(), b.data(), b.size());
  return id;
}

// ---- Connection

Result<std::unique_ptr<Connection>> Connection::open(const ConnectionSettings& settings) {
  // Keywords are applied in order and a later one wins, so the defaults come first and the
  // caller's conninfo (expanded from "dbname", expand_dbname = 1) last: the URL overrides them. A
  // default is left out when its PG* variable is set, which would otherwise lose to it.
  const std::string connect_timeout = std::to_string(std::max<std::int64_t>(
      2, std::chrono::duration_cast<std::chrono::seconds>(settings.connect_timeout).count()));
  std::vector<const char*> keys;
  std::vector<const char*> values;
  auto set = [&](const char* key, const char* value) {
    keys.push_back(key);
    values.push_back(value);
  };
  if (std::getenv("PGCONNECT_TIMEOUT") == nullptr) set("connect_timeout", connect_timeout.c_str());
  if (std::getenv("PGCLIENTENCODING") == nullptr) set("client_encoding", "UTF8");
  set("fallback_application_name", settings.application_name.c_str());
  set("keepalives", "1");
  set("keepalives_idle", kKeepalivesIdleS);
  set("keepalives_interval", kKeepalivesIntervalS);
  set("keepalives_count", kKeepalivesCount);
  set("tcp_user_timeout", kTcpUserTimeoutMs);
  set("dbname", settings.conninfo.c_str());
  keys.push_back(nullptr);
  values.push_back(nullptr);

  ConnectionHandle conn(PQconnectdbParams(keys.data(), values.data(), 1));
  if (!conn) return unavailable("cannot connect to PostgreSQL: out of memory");
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return unavailable("cannot connect to PostgreSQL: " + first_line(PQerrorMessage(conn.get())));
  }
  // libpq prints notices ("relation already exists, skipping") to stderr by default; they are not
  // errors, and the db layer does not log.
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  std::unique_ptr<Connection> connection(
      new Connection(std::move(conn), settings.statement_timeout));
  if (auto r = connection->configure(); !r) return r.error();
  return connection;
}

// A statement_timeout set by the operator (for the role, the database, or PGOPTIONS) is kept;
// otherwise ours applies, so that no call waits for ever on a lock or a stuck server.
Result<void> Connection::configure() {
  Params params;
  params.add(std::string_view(std::to_string(statement_timeout_.count())));
  auto r = query_once(
      "SELECT set_config('statement_timeout', $1, false) "
      "WHERE current_setting('statement_timeout') = '0'",
      params);
  if (!r) return r.error();
  return {};
}

Result<void> Connection::reset() {
  prepared_.clear();
  PQreset(conn_.get());
  if (!ok()) return unavailable("cannot connect to PostgreSQL");
  return configure();
}

void Connection::make_idle() noexcept {
  const auto status = PQtransactionStatus(conn_.get());
  if (status == PQTRANS_INTRANS || status == PQTRANS_INERROR) {
    ResultHandle ignored(PQexec(conn_.get(), "ROLLBACK"));
  }
}

Error Connection::fail(const PGresult* result) {
  const char* constraint =
      result == nullptr ? nullptr : PQresultErrorField(result, PG_DIAG_CONSTRAINT_NAME);
  failed_constraint_ = constraint == nullptr ? "" : constraint;
  return to_error(result, conn_.get());
}

Result<Rows> Connection::finish(PGresult* raw) {
  ResultHandle result(raw);
  const auto status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) return fail(result.get());
  failed_constraint_.clear();
  return Rows(std::move(result));
}

Result<Rows> Connection::query(std::string_view sql, const Params& params) {
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    std::string name = "sd" + std::to_string(prepared_.size() + 1);
    const std::string text(sql);
    ResultHandle prepared(
        PQprepare(conn_.get(), name.c_str(), text.c_str(), params.size(), params.types()));
    if (!prepared || PQresultStatus(prepared.get()) != PGRES_COMMAND_OK) {
      return fail(prepared.get());
    }
    it = prepared_.emplace(text, std::move(name)).first;
  }
  const auto values = params.values();
  return finish(PQexecPrepared(conn_.get(), it->second.c_str(), params.size(), values.data(),
                               params.lengths(), params.formats(), 1));
}

Result<Rows> Connection::query_once(const std::string& sql, const Params& params) {
  const auto values = params.values();
  return finish(PQexecParams(conn_.get(), sql.c_str(), params.size(), params.types(), values.data(),
                             params.lengths(), params.formats(), 1));
}

Result<std::string> Connection::exec(const std::string& sql) {
  ResultHandle result(PQexec(conn_.get(), sql.c_str()));
  const auto status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) return fail(result.get());
  failed_constraint_.clear();
  return std::string(PQcmdStatus(result.get()));
}

// ---- Transaction

Transaction::~Transaction() {
  if (open_) connection_.make_idle();
}

Result<void> Transaction::begin(std::string_view mode) {
  std::string sql = "BEGIN";
  if (!mode.empty()) sql.append(" ").append(mode);
  if (auto r = connection_.exec(sql); !r) return r.error();
  open_ = true;
  return {};
}

Result<void> Transaction::commit() {
  auto tag = connection_.exec("COMMIT");
  if (!tag) return tag.error();  // the destructor rolls back what is left open
  open_ = false;
  // COMMIT of a transaction that failed earlier answers ROLLBACK, without an error.
  if (*tag != "COMMIT") return Error(Errc::internal, "database transaction was rolled back");
  return {};
}

}  // namespace sessiond::db::postgres::detail
