// What only PostgreSQL does: migrations from several nodes at once, lost connections and server
// restarts, timeouts, libpq's URL and PG* environment, the schema's native types. The contract
// suite (database_contract_test.cpp) covers everything both databases do.
#include "db/postgres/postgres_database.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <latch>
#include <thread>
#include <vector>

#include "db/migrations.hpp"
#include "postgres_test_support.hpp"

namespace sessiond::db::testing {
namespace {

using namespace std::chrono_literals;

const TimePoint kT0 = *parse_rfc3339("2026-11-22T10:00:00.123Z");

template <class R>
std::string why(const R& result) {
  if (result) return {};
  return std::string(code_name(result.error().code)) + ": " + result.error().detail;
}

#define ASSERT_OK(expr)                   \
  do {                                    \
    auto result_ = (expr);                \
    ASSERT_TRUE(result_) << why(result_); \
  } while (false)

std::unique_ptr<PostgresDatabase> open_database(const std::string& conninfo,
                                                PostgresOptions options = {}) {
  options.url = conninfo;
  auto db = PostgresDatabase::open(std::move(options));
  if (!db) throw std::runtime_error("open failed: " + why(db));
  return std::move(*db);
}

User add_user(Database& db, const std::string& name) {
  NewUser user;
  user.email = name + "@example.com";
  user.role = "GUEST";
  auto created = db.create_user(user, kT0);
  EXPECT_TRUE(created) << why(created);
  return created ? *created : User{};
}

// Polls `condition` every 10 ms until it holds or `within` has passed.
template <class F>
bool eventually(F condition, std::chrono::milliseconds within = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// A loopback port nothing listens on: bound, read and released.
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

// Connections of the scratch database waiting for a lock (the calls a test has blocked).
int waiting_on_locks(TestConnection& admin, const std::string& database) {
  return std::stoi(admin.value("SELECT count(*) FROM pg_stat_activity WHERE datname = '" +
                               database + "' AND wait_event_type = 'Lock'"));
}

// ---- migrations

TEST(PostgresDatabase, MigrationsFromTwoNodesAtOnceEndAtTheSameVersion) {
  for (int round = 0; round < 3; ++round) {
    ScratchDatabase scratch;
    auto a = open_database(scratch.conninfo());
    auto b = open_database(scratch.conninfo());
    std::latch start(2);
    Result<int> version_a = 0;
    Result<int> version_b = 0;
    std::thread node_a([&] {
      start.arrive_and_wait();
      version_a = a->migrate();
    });
    std::thread node_b([&] {
      start.arrive_and_wait();
      version_b = b->migrate();
    });
    node_a.join();
    node_b.join();
    ASSERT_TRUE(version_a) << why(version_a);
    ASSERT_TRUE(version_b) << why(version_b);
    EXPECT_EQ(*version_a, latest_schema_version());
    EXPECT_EQ(*version_b, latest_schema_version());

    TestConnection check(scratch.conninfo());
    EXPECT_EQ(check.value("SELECT count(*) FROM schema_migrations"),
              std::to_string(latest_schema_version()));
    ASSERT_OK(a->ping());
    add_user(*b, "after-migrate");
  }
}

TEST(PostgresDatabase, MigrateWaitsForTheAdvisoryLock) {
  ScratchDatabase scratch;
  auto db = open_database(scratch.conninfo());
  TestConnection holder(scratch.conninfo());
  holder.exec("BEGIN; SELECT pg_advisory_xact_lock(" +
              std::to_string(PostgresDatabase::kMigrationLockKey) + ")");

  std::atomic<bool> finished{false};
  Result<int> version = 0;
  std::thread node([&] {
    version = db->migrate();
    finished = true;
  });
  TestConnection admin(scratch.conninfo());
  const bool waited = eventually([&] { return waiting_on_locks(admin, scratch.name()) == 1; });
  EXPECT_TRUE(waited) << "migrate did not wait for the advisory lock";
  EXPECT_FALSE(finished.load());
  holder.exec("COMMIT");
  node.join();
  ASSERT_TRUE(version) << why(version);
  EXPECT_EQ(*version, latest_schema_version());
}

TEST(PostgresDatabase, SchemaUsesPostgresTypes) {
  ScratchDatabase scratch;
  auto db = open_database(scratch.conninfo());
  ASSERT_OK(db->migrate());
  TestConnection check(scratch.conninfo());
  auto type_of = [&](const std::string& table, const std::string& column) {
    return check.value(
        "SELECT data_type || coalesce('(' || character_maximum_length || ')', '') "
        "FROM information_schema.columns WHERE table_name = '" +
        table + "' AND column_name = '" + column + "'");
  };
  EXPECT_EQ(type_of("users", "id"), "bigint");
  EXPECT_EQ(type_of("users", "attributes"), "json");
  EXPECT_EQ(type_of("users", "disabled"), "boolean");
  EXPECT_EQ(type_of("users", "created_at"), "timestamp with time zone");
  EXPECT_EQ(type_of("user_sessions", "id"), "uuid");
  EXPECT_EQ(type_of("user_sessions", "ip_address"), "character varying(45)");
  EXPECT_EQ(type_of("user_sessions", "expires_at"), "timestamp with time zone");
  EXPECT_EQ(type_of("user_sessions", "is_active"), "boolean");
  EXPECT_EQ(type_of("session_events", "id"), "bigint");
  EXPECT_EQ(type_of("session_events", "session_id"), "uuid");
  EXPECT_EQ(type_of("session_events", "detail"), "json");
  EXPECT_EQ(check.value("SELECT pg_get_serial_sequence('session_events', 'id') IS NOT NULL"), "t");
  EXPECT_EQ(type_of("webhook_queue", "event_id"), "bigint");
  EXPECT_EQ(check.value("SELECT count(*) FROM pg_indexes WHERE tablename = 'user_sessions' AND "
                        "indexname IN ('user_sessions_user_id', 'user_sessions_expires_at', "
                        "'user_sessions_is_active', 'user_sessions_user_id_last_activity')"),
            "4");
}

// A database written by a build whose schema was version 1 keeps its rows, and gains the queue.
TEST(PostgresDatabase, MigratesAVersion1DatabaseKeepingItsData) {
  ScratchDatabase scratch;
  {
    TestConnection setup(scratch.conninfo());
    setup.exec(std::string(migrations_table_sql(Dialect::postgres)));
    setup.exec(std::string(migrations()[0].postgres));
    setup.exec("INSERT INTO schema_migrations (version, applied_at) VALUES (1, now())");
  }
  auto db = open_database(scratch.conninfo());
  // Written before migrating: nothing here touches what version 2 adds.
  User user = add_user(*db, "ana");
  Session s;
  s.id = *SessionId::parse("0a1b2c3d-0000-4000-8000-000000000001");
  s.user_id = user.id;
  s.role = "GUEST";
  s.created_at = kT0;
  s.last_activity = kT0;
  s.absolute_expires_at = kT0 + 1h;
  s.idle_timeout = 30min;
  Event event;
  event.uid = "before-v2";
  event.type = "session_created";
  event.at = kT0;
  event.user_id = user.id;
  ASSERT_OK(db->apply({{SessionCreated{s, sha256("rt_secret"), kT0}}, {event}}));

  auto version = db->migrate();
  ASSERT_TRUE(version) << why(version);
  EXPECT_EQ(*version, latest_schema_version());
  auto found = db->find_user(user.id);
  ASSERT_TRUE(found && found->has_value());
  EXPECT_EQ((*found)->email, "ana@example.com");
  auto record = db->find_session(s.id);
  ASSERT_TRUE(record && record->has_value());
  EXPECT_EQ((*record)->refresh_hash, sha256("rt_secret"));
  auto recent = db->recent_sessions(user.id, kT0, kT0 + 1s);
  ASSERT_TRUE(recent) << why(recent);
  EXPECT_EQ(recent->size(), 1u);
  auto listed = db->list_events({});
  ASSERT_TRUE(listed) << why(listed);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().uid, "before-v2");
  auto head = db->webhook_queue_head(10);
  ASSERT_TRUE(head) << why(head);
  EXPECT_TRUE(head->empty());

  event.uid = "after-v2";
  event.notify = true;
  ASSERT_OK(db->apply({{}, {event}}));
  head = db->webhook_queue_head(10);
  ASSERT_TRUE(head) << why(head);
  ASSERT_EQ(head->size(), 1u);
  EXPECT_EQ(head->front().uid, "after-v2");
  TestConnection check(scratch.conninfo());
  EXPECT_EQ(check.value("SELECT count(*) FROM schema_migrations"),
            std::to_string(migrations().size()));
}

// ---- connections

TEST(PostgresDatabase, LostConnectionAnswersUnavailableThenTheNextCallWorks) {
  ScratchDatabase scratch;
  auto db = open_database(scratch.conninfo());
  ASSERT_OK(db->migrate());
  User user = add_user(*db, "ana");

  ASSERT_GE(scratch.terminate_connections(), 1);
  auto lost = db->find_user(user.id);
  ASSERT_FALSE(lost);
  EXPECT_EQ(lost.error().code, Errc::database_unavailable);

  auto found = db->find_user(user.id);
  ASSERT_TRUE(found) << why(found);
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->email, user.email);
}

// A restart breaks every pooled connection, but libpq notices only when one is used: after the
// first failed call, the others are renewed before their next use rather than each failing once.
TEST(PostgresDatabase, AfterALostConnectionEveryPooledConnectionIsRenewed) {
  constexpr int kPool = 4;
  ScratchDatabase scratch;
  PostgresOptions options;
  options.pool_size = kPool;
  auto db = open_database(scratch.conninfo(), options);
  ASSERT_OK(db->migrate());
  User user = add_user(*db, "ana");

  // Holds kPool calls at once, each on its own connection, behind a lock the test takes; answers
  // how many succeeded.
  auto concurrent_calls = [&] {
    TestConnection locker(scratch.conninfo());
    locker.exec("BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE");
    std::atomic<int> ok{0};
    std::vector<std::thread> calls;
    for (int i = 0; i < kPool; ++i) {
      calls.emplace_back([&] {
        if (db->find_user(user.id)) ++ok;
      });
    }
    TestConnection admin(scratch.conninfo());
    EXPECT_TRUE(eventually([&] { return waiting_on_locks(admin, scratch.name()) == kPool; }));
    locker.exec("COMMIT");
    for (auto& t : calls) t.join();
    return ok.load();
  };
  ASSERT_EQ(concurrent_calls(), kPool);  // the pool now holds kPool connections

  ASSERT_GE(scratch.terminate_connections(), kPool);
  auto lost = db->ping();
  ASSERT_FALSE(lost);
  EXPECT_EQ(lost.error().code, Errc::database_unavailable);
  EXPECT_EQ(concurrent_calls(), kPool);
}

TEST(PostgresDatabase, StatementTimeoutEndsACallBlockedByALock) {
  ScratchDatabase scratch;
  PostgresOptions options;
  options.statement_timeout = 300ms;
  auto db = open_database(scratch.conninfo(), options);
  ASSERT_OK(db->migrate());
  User user = add_user(*db, "ana");

  TestConnection locker(scratch.conninfo());
  locker.exec("BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE");
  const auto started = std::chrono::steady_clock::now();
  auto blocked = db->find_user(user.id);
  const auto waited = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().code, Errc::database_unavailable);
  EXPECT_GE(waited, 250ms);
  EXPECT_LT(waited, 5s);
  locker.exec("ROLLBACK");
  ASSERT_OK(db->find_user(user.id));
}

TEST(PostgresDatabase, UnreachableServerAnswersUnavailable) {
  PostgresOptions options;
  options.url = "postgresql://postgres@127.0.0.1:" + std::to_string(closed_port()) + "/postgres";
  options.connect_timeout = 2s;
  const auto started = std::chrono::steady_clock::now();
  auto db = PostgresDatabase::open(options);
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code, Errc::database_unavailable);
  EXPECT_NE(db.error().detail.find("cannot connect to PostgreSQL"), std::string::npos)
      << db.error().detail;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
}

// libpq's own message for a bad percent-encoding repeats the token: here, the password.
TEST(PostgresDatabase, MalformedUrlIsInvalidWithoutRepeatingIt) {
  PostgresOptions options;
  options.url = "postgresql://sessiond:s3cret%zz@db.internal/sessiond";
  auto db = PostgresDatabase::open(options);
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code, Errc::invalid_request);
  EXPECT_EQ(db.error().detail.find("s3cret"), std::string::npos) << db.error().detail;

  options.url = "postgresql://sessiond:s3cret@127.0.0.1:notaport/sessiond";
  db = PostgresDatabase::open(options);
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code, Errc::database_unavailable);
  EXPECT_NE(db.error().detail.find("port"), std::string::npos) << db.error().detail;
  EXPECT_EQ(db.error().detail.find("s3cret"), std::string::npos) << db.error().detail;
}

// What the URL leaves out comes from PGHOST, PGPORT, PGUSER, PGDATABASE..., as in psql.
TEST(PostgresDatabase, PgEnvironmentFillsWhatTheUrlLeavesOut) {
  ScratchDatabase scratch;
  TestConnection admin(scratch.conninfo());
  const auto host = admin.value("SELECT coalesce(inet_server_addr()::text, '')");
  const auto port = admin.value("SELECT current_setting('port')");
  const auto user = admin.value("SELECT current_user");
  struct Env {
    std::vector<std::string> names;
    void set(const std::string& name, const std::string& value) {
      ::setenv(name.c_str(), value.c_str(), 1);
      names.push_back(name);
    }
    ~Env() {
      for (const auto& n : names) ::unsetenv(n.c_str());
    }
  } env;
  ASSERT_FALSE(host.empty()) << "the test server must be reached over TCP";
  env.set("PGHOST", host.substr(0, host.find('/')));
  env.set("PGPORT", port);
  env.set("PGUSER", user);
  env.set("PGDATABASE", scratch.name());
  env.set("PGAPPNAME", "sessiond-env-test");

  auto db = open_database("postgresql://");
  ASSERT_OK(db->migrate());
  add_user(*db, "ana");
  EXPECT_EQ(admin.value("SELECT count(*) FROM users"), "1");
  EXPECT_EQ(admin.value("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                        "'sessiond-env-test' AND datname = '" +
                        scratch.name() + "'"),
            "1");
}

TEST(PostgresDatabase, TextRoundTripsUnchangedWhateverItHolds) {
  ScratchDatabase scratch;
  auto db = open_database(scratch.conninfo());
  ASSERT_OK(db->migrate());
  NewUser input;
  input.email = "o'brien\\x@example.com";
  input.role = "GUEST";
  input.password_hash = "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA";
  input.attributes = R"({"b": 1,  "a":"ünïcødé \" ' \\", "n":1.50})";
  auto created = db->create_user(input, kT0);
  ASSERT_TRUE(created) << why(created);
  auto found = db->find_user_by_email(*input.email);
  ASSERT_TRUE(found && found->has_value()) << why(found);
  EXPECT_EQ((*found)->attributes, input.attributes);
  EXPECT_EQ((*found)->password_hash, input.password_hash);

  NewUser bad = input;
  bad.email = "other@example.com";
  bad.attributes = "{not json";
  auto refused = db->create_user(bad, kT0);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().code, Errc::database_unavailable);
}

// A real restart of a cluster of the test's own: calls answer database_unavailable while it is
// down, and the same PostgresDatabase works again once it is back, with everything committed
// before.
TEST(PostgresDatabase, ServerRestartAnswersUnavailableThenWorksAgain) {
  PrivatePostgres server;
  PostgresOptions options;
  options.connect_timeout = 2s;
  auto db = open_database(server.url(), options);
  ASSERT_OK(db->migrate());
  User user = add_user(*db, "ana");

  server.stop();
  for (int i = 0; i < 2; ++i) {
    const auto started = std::chrono::steady_clock::now();
    auto down = db->find_user(user.id);
    ASSERT_FALSE(down);
    EXPECT_EQ(down.error().code, Errc::database_unavailable) << down.error().detail;
    EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  }

  server.start();
  auto found = db->find_user(user.id);
  ASSERT_TRUE(found) << why(found);
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->email, user.email);
  add_user(*db, "bob");
}

}  // namespace
}  // namespace sessiond::db::testing
