#include "postgres_test_support.hpp"

#include <stdio.h>
#include <sys/wait.h>

#include <cstdlib>
#include <random>
#include <stdexcept>

namespace sessiond::db::testing {

namespace {

std::string quote_conninfo_value(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "'";
}

std::string random_name() {
  std::random_device random;
  constexpr char kHex[] = "0123456789abcdef";
  std::string name = "sdtest_";
  for (int i = 0; i < 16; ++i) name.push_back(kHex[random() % 16]);
  return name;
}

// Quoted for a shell command line: the paths are our own temporary directories.
std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  return out + "'";
}

}  // namespace

std::string test_database_url() {
  const char* url = std::getenv("SESSIOND_TEST_DATABASE_URL");
  if (url == nullptr || *url == '\0') {
    throw std::runtime_error(
        "SESSIOND_TEST_DATABASE_URL is not set: the PostgreSQL tests need a PostgreSQL 15 server "
        "on which they may create databases (make test starts one; or source "
        "scripts/private-postgres.sh, run private_postgres_start DIR and export "
        "SESSIOND_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:PORT/postgres)");
  }
  return url;
}

std::string with_database(const std::string& conninfo, const std::string& dbname) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  if (options == nullptr) {
    std::string message = error == nullptr ? "out of memory" : error;
    PQfreemem(error);
    throw std::runtime_error("cannot parse the test database URL: " + message);
  }
  std::string out;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr || std::string_view(o->keyword) == "dbname") continue;
    out += std::string(o->keyword) + "=" + quote_conninfo_value(o->val) + " ";
  }
  PQconninfoFree(options);
  return out + "dbname=" + quote_conninfo_value(dbname);
}

TestConnection::TestConnection(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str())) {
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn_);
    PQfinish(conn_);
    throw std::runtime_error("cannot connect to the test database: " + message);
  }
}

TestConnection::~TestConnection() { PQfinish(conn_); }

std::vector<std::vector<std::optional<std::string>>> TestConnection::exec(const std::string& sql) {
  PGresult* result = PQexec(conn_, sql.c_str());
  const auto status = PQresultStatus(result);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    std::string message = PQerrorMessage(conn_);
    PQclear(result);
    throw std::runtime_error("test SQL failed: " + sql + ": " + message);
  }
  std::vector<std::vector<std::optional<std::string>>> rows;
  for (int r = 0; r < PQntuples(result); ++r) {
    auto& row = rows.emplace_back();
    for (int c = 0; c < PQnfields(result); ++c) {
      if (PQgetisnull(result, r, c)) {
        row.emplace_back();
      } else {
        row.emplace_back(PQgetvalue(result, r, c));
      }
    }
  }
  PQclear(result);
  return rows;
}

std::string TestConnection::value(const std::string& sql) {
  auto rows = exec(sql);
  if (rows.size() != 1 || rows[0].size() != 1 || !rows[0][0]) {
    throw std::runtime_error("test SQL did not answer one value: " + sql);
  }
  return *rows[0][0];
}

ScratchDatabase::ScratchDatabase()
    : admin_url_(test_database_url()),
      name_(random_name()),
      conninfo_(with_database(admin_url_, name_)) {
  TestConnection admin(admin_url_);
  // template0: nobody is ever connected to it, and it holds nothing an operator added.
  admin.exec("CREATE DATABASE " + name_ + " TEMPLATE template0 ENCODING 'UTF8'");
}

ScratchDatabase::~ScratchDatabase() {
  try {
    TestConnection admin(admin_url_);
    admin.exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (const std::exception&) {
    // The server went away with it: the throwaway cluster is removed as a whole.
  }
}

int ScratchDatabase::terminate_connections() {
  TestConnection admin(admin_url_);
  return std::stoi(
      admin.value("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                  "WHERE datname = '" +
                  name_ + "' AND pid <> pg_backend_pid()"));
}

PrivatePostgres::PrivatePostgres() { start(); }

PrivatePostgres::~PrivatePostgres() {
  try {
    stop();
  } catch (const std::exception&) {
    // Nothing more to do: the directory goes with dir_.
  }
}

std::string PrivatePostgres::run(const std::string& function) {
  const std::string script = std::string(SESSIOND_SOURCE_DIR) + "/scripts/private-postgres.sh";
  const std::string command = "bash -c 'source \"$0\" && " + function + " \"$1\"' " +
                              shell_quote(script) + " " + shell_quote(dir_.path().string()) +
                              " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("cannot run " + script);
  std::string output;
  char buffer[512];
  while (fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
  const int status = pclose(pipe);
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error(function + " failed: " + output);
  }
  return output;
}

void PrivatePostgres::start() {
  std::string output = run("private_postgres_start");
  const auto at = output.rfind("postgresql://");
  if (at == std::string::npos) throw std::runtime_error("private_postgres_start: " + output);
  url_ = output.substr(at, output.find('\n', at) - at);
  running_ = true;
}

void PrivatePostgres::stop() {
  if (!running_) return;
  run("private_postgres_stop");
  running_ = false;
}

}  // namespace sessiond::db::testing
