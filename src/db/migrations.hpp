// The versioned schema (SPEC §6), one list for every database: version N means the same tables,
// columns and indexes in SQLite and PostgreSQL, each written in its own dialect.
//
// Rules: versions are 1, 2, 3, ... with no gaps; a released migration is never edited (append a new
// one); each migration runs in one transaction together with its row in schema_migrations.
// Timestamps are TEXT in the fixed RFC 3339 form of format_rfc3339 in SQLite (it sorts as text) and
// timestamptz in PostgreSQL; booleans are INTEGER 0/1 in SQLite; JSON is TEXT in SQLite and json
// (the text as written, validated) in PostgreSQL; session ids are TEXT in SQLite and uuid in
// PostgreSQL; refresh_token_hash is the lower-case hex SHA-256, never a token.
#pragma once

#include <span>
#include <string_view>

namespace sessiond::db {

enum class Dialect { sqlite, postgres };

struct Migration {
  int version = 0;
  std::string_view description;
  std::string_view sqlite;    // one or more statements
  std::string_view postgres;  // the same change for PostgreSQL 15

  std::string_view sql(Dialect dialect) const {
    return dialect == Dialect::sqlite ? sqlite : postgres;
  }
};

// Every migration, in version order.
std::span<const Migration> migrations();

// The version a fully migrated database has.
int latest_schema_version();

// Creates schema_migrations(version, applied_at) when it is missing; run before the migrations.
std::string_view migrations_table_sql(Dialect dialect);

}  // namespace sessiond::db
