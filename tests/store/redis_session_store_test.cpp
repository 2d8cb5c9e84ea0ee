// What the Redis store promises beyond the contract suite (which runs against it too): the key
// layout and TTLs, one script call per operation, recovery from an empty script cache, the limit
// held across nodes, expiries reported once whichever node collects, failing closed, the
// configuration check, and the outbox. Needs SESSIOND_TEST_REDIS_URL (make test sets it); some
// tests start a redis-server of their own, for server-wide statistics or configuration.
#include "store/redis/redis_session_store.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/crypto.hpp"
#include "store/redis/redis_client.hpp"
#include "store/store_test_support.hpp"
#include "support/private_redis.hpp"

namespace sessiond::store::testing {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using redis::Reply;

constexpr Duration kIdle = 1h;
constexpr Duration kAbsolute = 24h;
constexpr Duration kRefreshTtl = 12h;
constexpr Duration kTombstoneTtl = 1h;
const std::string kIp = "198.51.100.7";

// --- harness ---

redis::RedisUrl shared_url() {
  const char* url = std::getenv("SESSIOND_TEST_REDIS_URL");
  if (url == nullptr || *url == '\0') {
    throw std::runtime_error(
        "SESSIOND_TEST_REDIS_URL is not set: the Redis store tests need a redis-server (make test "
        "starts one)");
  }
  return redis::RedisUrl::parse(url).value();
}

std::string unique_prefix() {
  std::random_device random;
  std::string prefix = "sdtest-";
  for (int i = 0; i < 16; ++i) prefix.push_back("0123456789abcdef"[random() % 16]);
  return prefix;
}

// Runs `task` on `io` until it finishes, then stops `io` (a Redis connection keeps a read pending
// on it). Throws when it takes longer than 30 s: a hang.
template <class T>
T run_on(asio::io_context& io, asio::awaitable<T> task) {
  auto value = std::make_shared<std::optional<T>>();
  auto failure = std::make_shared<std::exception_ptr>();
  io.restart();
  asio::co_spawn(io, std::move(task), [value, failure, &io](std::exception_ptr e, T v) {
    *failure = e;
    if (!e) value->emplace(std::move(v));
    io.stop();
  });
  io.run_for(30s);
  if (*failure) std::rethrow_exception(*failure);
  if (!value->has_value()) throw std::runtime_error("the task did not finish within 30 s");
  return std::move(**value);
}

// The store's options: the default ones but for the prefix and the tombstone lifetime, and the
// outbox turned on when `outbox` (left at its default otherwise).
RedisStoreOptions options_for(const std::string& prefix, bool outbox) {
  RedisStoreOptions options;
  options.prefix = prefix;
  options.tombstone_ttl = kTombstoneTtl;
  if (outbox) options.outbox = true;
  return options;
}

// One sessiond node: its io_context, its Redis client and its store (with the outbox when
// `outbox`).
struct Node {
  Node(redis::RedisUrl url, const std::string& prefix, bool outbox = false)
      : client(std::make_shared<redis::RedisClient>(std::move(url))),
        store(client, options_for(prefix, outbox)) {}

  template <class T>
  T run(asio::awaitable<T> task) {
    return run_on(io, std::move(task));
  }
  Reply command(std::vector<std::string> args) {
    return run(client->command(std::move(args))).value();
  }

  asio::io_context io;
  std::shared_ptr<redis::RedisClient> client;
  RedisSessionStore store;
};

// A redis-server of the test's own (tests/support), for server-wide statistics and configuration.
using test_support::free_port;
using test_support::PrivateRedis;

redis::RedisUrl url_of(const PrivateRedis& server) {
  redis::RedisUrl url;
  url.port = server.port();
  return url;
}

// Deterministic bytes, so that a sealed successor's ciphertext is the same in every run.
class CountingRandom final : public Random {
 public:
  void fill(std::span<std::uint8_t> out) override {
    for (auto& b : out) b = next_++;
  }

 private:
  std::uint8_t next_ = 1;
};

// --- sessions ---

SessionId new_id() {
  static std::atomic<std::uint64_t> counter{1'000'000};
  return test_session_id(++counter);
}

Session session_for(UserId user, TimePoint now) {
  Session s;
  s.id = new_id();
  s.user_id = user;
  s.role = "GUEST";
  s.attributes = R"({"hotel_id":7})";
  s.auth_method = AuthMethod::otp;
  s.device_info = "iPhone · Safari";
  s.ip_address = kIp;
  s.last_ip = kIp;
  s.user_agent = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)";
  s.created_at = now;
  s.last_activity = now;
  s.absolute_expires_at = now + kAbsolute;
  s.idle_timeout = kIdle;
  return s;
}

CreateRequest create_request(const Session& s, const TokenHash& refresh, int max = 5,
                             OnLimit on_limit = OnLimit::evict_oldest) {
  CreateRequest request;
  request.session = s;
  request.refresh_hash = refresh;
  request.refresh_expires_at = s.created_at + kRefreshTtl;
  request.max_sessions = max;
  request.on_limit = on_limit;
  return request;
}

TokenHash token_hash(const Session& s) { return sha256("rt_" + s.id.to_string()); }

RotateRequest rotate_request(UserId user, const TokenHash& presented, const TokenHash& successor,
                             TimePoint now) {
  RotateRequest request;
  request.user = user;
  request.presented = presented;
  request.successor = successor;
  request.sealed_successor = "sealed";
  request.successor_expires_at = now + kRefreshTtl;
  request.now = now;
  request.ip = kIp;
  return request;
}

std::set<SessionId> ids_of(const std::vector<Session>& sessions) {
  std::set<SessionId> ids;
  for (const Session& s : sessions) ids.insert(s.id);
  return ids;
}

// Every key under `prefix`.
std::vector<std::string> keys_of(Node& node, const std::string& prefix) {
  std::vector<std::string> keys;
  std::string cursor = "0";
  do {
    Reply page = node.command({"SCAN", cursor, "MATCH", prefix + ":*", "COUNT", "1000"});
    cursor = page.elements.at(0).str;
    for (const Reply& k : page.elements.at(1).elements) keys.push_back(k.str);
  } while (cursor != "0");
  return keys;
}

// A key's whole content as text: a string's value, a hash's fields and values, a sorted set's
// members and scores.
std::string content_of(Node& node, const std::string& key) {
  const std::string type = node.command({"TYPE", key}).str;
  Reply content;
  if (type == "string") {
    content = node.command({"GET", key});
  } else if (type == "hash") {
    content = node.command({"HGETALL", key});
  } else if (type == "zset") {
    content = node.command({"ZRANGE", key, "0", "-1", "WITHSCORES"});
  } else {
    ADD_FAILURE() << key << " is a " << type;
  }
  std::string text = content.str;
  for (const Reply& e : content.elements) text += "\n" + e.str;
  return text;
}

std::int64_t evalsha_calls(Node& node) {
  const std::string stats = node.command({"INFO", "commandstats"}).str;
  std::smatch match;
  if (!std::regex_search(stats, match, std::regex("cmdstat_evalsha:calls=(\\d+)"))) return 0;
  return std::stoll(match[1]);
}

// --- key layout ---

std::string raw(std::span<const std::uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}
// The owner bucket of a session: "<prefix>:own:" and the first three hex digits of its id.
std::string own_key(const std::string& prefix, const SessionId& id) {
  return prefix + ":own:" + to_hex(id.bytes).substr(0, 3);
}

TEST(RedisSessionStore, KeysHoldNoTokenAndLiveNoLongerThanWhatTheyHold) {
  init_crypto();
  const std::string prefix = unique_prefix();
  Node node(shared_url(), prefix);
  const UserId user = 42;
  CountingRandom random;

  const std::string first = new_refresh_token(random, user);
  Session s = session_for(user, kT0);
  ASSERT_TRUE(node.run(node.store.create(create_request(s, sha256(first)))));
  const std::string second = new_refresh_token(random, user);
  RotateRequest rotate =
      rotate_request(*refresh_token_user(first), sha256(first), sha256(second), kT0 + 1min);
  rotate.sealed_successor = seal_successor(random, first, second);
  ASSERT_EQ(node.run(node.store.rotate_refresh(rotate)).value().kind, Rotation::rotated);
  // Within the grace the sealed successor is held: it is in the scan below.
  const std::string gone_token = new_refresh_token(random, user);
  Session gone = session_for(user, kT0 + 1min);
  ASSERT_TRUE(node.run(node.store.create(create_request(gone, sha256(gone_token)))));
  ASSERT_TRUE(node.run(node.store.revoke(user, gone.id, EndReason::logout, kT0 + 2min)).value());
  ASSERT_EQ(node.run(node.store.validate_and_touch(user, s.id, kT0 + 3min, kIp)).value().found,
            Found::alive);

  const std::string user_key = prefix + ":{u42}";
  const std::map<std::string, Duration> longest{
      // key -> the longest it may live (from the write that set it; the writes' `now` is the
      // clock): the user's hash until the end of its longest session plus the tombstone lifetime,
      // the schedule and the counter as long, the owner bucket of the live session until its end.
      // The revoked session's bucket emptied out and is gone.
      {user_key, kAbsolute + 1min + kTombstoneTtl},
      {prefix + ":exp", kAbsolute + 1min + kTombstoneTtl},
      {prefix + ":live", kAbsolute + 1min + kTombstoneTtl},
      {own_key(prefix, s.id), kAbsolute},
  };
  std::set<std::string> expected;
  for (const auto& [key, life] : longest) expected.insert(key);
  const std::vector<std::string> keys = keys_of(node, prefix);
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()), expected);
  if (own_key(prefix, s.id) == own_key(prefix, gone.id)) {
    EXPECT_EQ(node.command({"HEXISTS", own_key(prefix, gone.id), raw(gone.id.bytes)}).integer, 0);
  }

  // The user's hash: both sessions (one a tombstone), the three refresh hashes by their first 16
  // bytes, and the lists of live sessions and tombstones.
  auto short_hash = [](const std::string& token) {
    const TokenHash h = sha256(token);
    return raw(std::span(h).first(16));
  };
  const std::set<std::string> fields{"s" + raw(s.id.bytes),
                                     "s" + raw(gone.id.bytes),
                                     "r" + short_hash(first),
                                     "r" + short_hash(second),
                                     "r" + short_hash(gone_token),
                                     "i",
                                     "t"};
  Reply names = node.command({"HKEYS", user_key});
  std::set<std::string> found;
  for (const Reply& f : names.elements) found.insert(f.str);
  EXPECT_EQ(found, fields);
  EXPECT_EQ(node.command({"HGET", user_key, "i"}).str, raw(s.id.bytes));
  EXPECT_EQ(node.command({"HGET", user_key, "t"}).str, raw(gone.id.bytes));

  for (const auto& [key, life] : longest) {
    SCOPED_TRACE(key);
    const std::int64_t pttl = node.command({"PTTL", key}).integer;
    EXPECT_GT(pttl, 0) << "every key has a TTL";
    EXPECT_LE(pttl, life.count());
    EXPECT_GT(pttl, life.count() - 5 * 60'000) << "and not much shorter either";
    const std::string content = content_of(node, key);
    for (const std::string& text : {key, content}) {
      EXPECT_EQ(text.find("rt_"), std::string::npos) << "a token in Redis";
      for (const std::string& token : {first, second, gone_token}) {
        EXPECT_EQ(text.find(token.substr(3, 43)), std::string::npos) << "a token in Redis";
      }
    }
  }
}

TEST(RedisSessionStore, AUsersKeysGoOnceTheLastTombstoneIsOver) {
  const std::string prefix = unique_prefix();
  Node node(shared_url(), prefix);
  Session s = session_for(1, kT0);
  ASSERT_TRUE(node.run(node.store.create(create_request(s, token_hash(s)))));
  ASSERT_TRUE(node.run(node.store.rotate_refresh(
      rotate_request(1, token_hash(s), sha256("rt_second"), kT0 + 1min))));
  ASSERT_EQ(node.command({"HEXISTS", own_key(prefix, s.id), raw(s.id.bytes)}).integer, 1);
  EXPECT_EQ(node.run(node.store.live_count()).value(), 1u);
  EXPECT_EQ(node.run(node.store.owner_of(s.id, kT0 + 2min)).value(), std::optional<UserId>{1});

  ASSERT_TRUE(node.run(node.store.revoke(1, s.id, EndReason::logout, kT0 + 2min)).value());
  EXPECT_EQ(node.command({"EXISTS", own_key(prefix, s.id)}).integer, 0);
  EXPECT_EQ(node.run(node.store.live_count()).value(), 0u);
  EXPECT_EQ(node.run(node.store.owner_of(s.id, kT0 + 3min)).value(), std::nullopt);
  // The user stays in the schedule until its tombstone is over: first at the session's deadline
  // as it was scheduled (a look that finds nothing to end), then at the tombstone's end.
  const TimePoint over = kT0 + 2min + kTombstoneTtl;
  EXPECT_TRUE(node.run(node.store.collect_expired(kT0 + kIdle, 10)).value().empty());
  EXPECT_EQ(node.command({"ZSCORE", prefix + ":exp", "1"}).str, std::to_string(to_unix_ms(over)));
  EXPECT_TRUE(node.run(node.store.collect_expired(over - 1ms, 10)).value().empty());
  EXPECT_EQ(node.command({"EXISTS", prefix + ":{u1}"}).integer, 1);

  EXPECT_TRUE(node.run(node.store.collect_expired(over, 10)).value().empty());
  EXPECT_EQ(node.command({"EXISTS", prefix + ":{u1}"}).integer, 0);
  EXPECT_EQ(node.command({"ZCARD", prefix + ":exp"}).integer, 0);
  EXPECT_EQ(node.run(node.store.validate_and_touch(1, s.id, over, kIp)).value().found,
            Found::unknown);
}

TEST(RedisSessionStore, RateLimitCodeAndLeaseKeysLiveNoLongerThanWhatTheyHold) {
  const std::string prefix = unique_prefix();
  Node node(shared_url(), prefix);
  const std::vector<RateKey> limits{{"otp_send_per_number:abc", RateLimit{3, 10min}},
                                    {"otp_send_per_ip:203.0.113.5", RateLimit{30, 1h}}};
  ASSERT_TRUE(node.run(node.store.rate_limit(limits, kT0)).value().allowed);
  ASSERT_TRUE(node.run(node.store.rate_limit(limits, kT0 + 1min)).value().allowed);
  ASSERT_TRUE(node.run(node.store.rate_limit(limits, kT0 + 1min)).value().allowed);
  // A refusal and a check count nothing and leave the TTLs as they are.
  ASSERT_FALSE(node.run(node.store.rate_limit(limits, kT0 + 2min)).value().allowed);
  ASSERT_FALSE(node.run(node.store.rate_limit(limits, kT0 + 2min, false)).value().allowed);
  ASSERT_TRUE(node.run(node.store.otp_put("+15550100", "code-hash", kT0 + 5min, 5, kT0)));
  ASSERT_EQ(node.run(node.store.otp_check("+15550100", "wrong-hash", kT0 + 1min)).value(),
            OtpCheck::wrong);
  ASSERT_TRUE(node.run(node.store.lease_acquire("webhooks", "node-a", 30s, kT0)).value());

  const std::string number_key = prefix + ":rl:otp_send_per_number:abc";
  const std::string ip_key = prefix + ":rl:otp_send_per_ip:203.0.113.5";
  const std::string otp_key = prefix + ":otp:+15550100";
  const std::string lease_key = prefix + ":lease:webhooks";
  // key -> the longest it may live: a limit's log the window after its latest hit, a code until
  // its expiry, a lease its ttl (each counted from the write that set it).
  const std::map<std::string, Duration> longest{
      {number_key, 10min}, {ip_key, 1h}, {otp_key, 5min}, {lease_key, 30s}};
  std::set<std::string> expected;
  for (const auto& [key, life] : longest) expected.insert(key);
  const std::vector<std::string> keys = keys_of(node, prefix);
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()), expected);
  for (const auto& [key, life] : longest) {
    SCOPED_TRACE(key);
    const std::int64_t pttl = node.command({"PTTL", key}).integer;
    EXPECT_GT(pttl, 0) << "every key has a TTL";
    EXPECT_LE(pttl, life.count());
    EXPECT_GT(pttl, life.count() - 5'000) << "and not much shorter either";
  }

  // The log: one member per hit, distinct within one millisecond, scored by its time.
  const std::string t0 = std::to_string(to_unix_ms(kT0));
  const std::string t1 = std::to_string(to_unix_ms(kT0 + 1min));
  EXPECT_EQ(content_of(node, number_key),
            "\n" + t0 + "-0\n" + t0 + "\n" + t1 + "-0\n" + t1 + "\n" + t1 + "-1\n" + t1);
  Reply code = node.command({"HGETALL", otp_key});
  std::map<std::string, std::string> fields;
  for (std::size_t i = 0; i + 1 < code.elements.size(); i += 2) {
    fields[code.elements[i].str] = code.elements[i + 1].str;
  }
  EXPECT_EQ(fields,
            (std::map<std::string, std::string>{
                {"h", "code-hash"}, {"a", "4"}, {"x", std::to_string(to_unix_ms(kT0 + 5min))}}));
  EXPECT_EQ(node.command({"GET", lease_key}).str,
            std::to_string(to_unix_ms(kT0 + 30s)) + ":node-a");

  // What is over goes: the hits past their window when the key is next checked, a used code, a
  // released lease.
  ASSERT_TRUE(node.run(node.store.rate_limit(limits, kT0 + 11min, false)).value().allowed);
  EXPECT_EQ(node.command({"EXISTS", number_key}).integer, 0);
  EXPECT_EQ(node.command({"EXISTS", ip_key}).integer, 1);
  ASSERT_EQ(node.run(node.store.otp_check("+15550100", "code-hash", kT0 + 2min)).value(),
            OtpCheck::accepted);
  EXPECT_EQ(node.command({"EXISTS", otp_key}).integer, 0);
  ASSERT_TRUE(node.run(node.store.lease_release("webhooks", "node-a")));
  EXPECT_EQ(node.command({"EXISTS", lease_key}).integer, 0);
}

// --- calls per operation ---

TEST(RedisSessionStore, EachOperationIsOneRoundTripAndVerifyUsuallyNoScript) {
  PrivateRedis server;  // its own: INFO commandstats counts every client of the server
  Node node(url_of(server), "sd");
  // Load every script once (the first call of each meets NOSCRIPT).
  Session warm = session_for(9, kT0);
  ASSERT_TRUE(node.run(node.store.create(create_request(warm, token_hash(warm)))));
  ASSERT_TRUE(node.run(node.store.validate_and_touch(9, warm.id, kT0 + 1s, kIp)));
  ASSERT_TRUE(node.run(node.store.rotate_refresh(
      rotate_request(9, token_hash(warm), sha256("rt_warm2"), kT0 + 2s))));
  ASSERT_TRUE(node.run(node.store.list(9, kT0 + 3s)));
  ASSERT_TRUE(node.run(node.store.revoke(9, warm.id, EndReason::logout, kT0 + 4s)));
  ASSERT_TRUE(node.run(node.store.revoke_all(9, std::nullopt, EndReason::logout, kT0 + 5s)));

  Session s = session_for(1, kT0);
  Session other = session_for(1, kT0);
  struct Step {
    std::string name;
    std::function<bool()> call;
    int scripts;  // EVALSHA calls
    int writes;   // socket writes (round trips)
  };
  const std::vector<Step> steps{
      {"create",
       [&] { return node.run(node.store.create(create_request(s, token_hash(s)))).has_value(); }, 1,
       1},
      {"create another",
       [&] {
         return node.run(node.store.create(create_request(other, token_hash(other)))).has_value();
       },
       1, 1},
      {"validate, activity to move",
       [&] {
         return node.run(node.store.validate_and_touch(1, s.id, kT0 + 5s, kIp)).value().found ==
                Found::alive;
       },
       1, 2},
      {"validate within the second",
       [&] {
         return node.run(node.store.validate_and_touch(1, s.id, kT0 + 5s + 900ms, kIp))
                    .value()
                    .found == Found::alive;
       },
       0, 1},
      {"validate from a new address",
       [&] {
         return node.run(node.store.validate_and_touch(1, s.id, kT0 + 5s + 950ms, "192.0.2.1"))
                    .value()
                    .found == Found::alive;
       },
       1, 2},
      {"rotate",
       [&] {
         return node
             .run(node.store.rotate_refresh(
                 rotate_request(1, token_hash(s), sha256("rt_next"), kT0 + 6s)))
             .has_value();
       },
       1, 1},
      {"list", [&] { return node.run(node.store.list(1, kT0 + 7s)).has_value(); }, 1, 1},
      {"owner of",
       [&] { return node.run(node.store.owner_of(other.id, kT0 + 7s)).value().has_value(); }, 0, 2},
      {"revoke",
       [&] {
         return node.run(node.store.revoke(1, other.id, EndReason::logout, kT0 + 8s)).has_value();
       },
       1, 1},
      {"validate an ended session",
       [&] {
         return node.run(node.store.validate_and_touch(1, other.id, kT0 + 8s, kIp)).value().found ==
                Found::ended;
       },
       0, 1},
      {"revoke all",
       [&] {
         return node
             .run(node.store.revoke_all(1, std::nullopt, EndReason::revoked_by_admin, kT0 + 9s))
             .has_value();
       },
       1, 1},
  };
  for (const Step& step : steps) {
    SCOPED_TRACE(step.name);
    const std::int64_t before = evalsha_calls(node);
    const std::uint64_t writes_before = node.client->writes();
    ASSERT_TRUE(step.call());
    const std::uint64_t writes = node.client->writes() - writes_before;
    // INFO commandstats is itself a write of the client: not counted above.
    EXPECT_EQ(evalsha_calls(node) - before, step.scripts);
    EXPECT_EQ(writes, static_cast<std::uint64_t>(step.writes));
  }
  EXPECT_EQ(node.command({"INFO", "commandstats"}).str.find("cmdstat_eval:"), std::string::npos);
}

TEST(RedisSessionStore, RateLimitCodeAndLeaseCallsAreOneScriptCallEach) {
  PrivateRedis server;  // its own: INFO commandstats counts every client of the server
  Node node(url_of(server), "sd");
  const std::vector<RateKey> limits{{"a", RateLimit{5, 1min}}, {"b", RateLimit{5, 1min}}};
  const std::vector<std::pair<std::string, std::function<bool()>>> calls{
      {"rate_limit", [&] { return node.run(node.store.rate_limit(limits, kT0)).has_value(); }},
      {"rate_limit without counting",
       [&] { return node.run(node.store.rate_limit(limits, kT0, false)).has_value(); }},
      {"otp_put",
       [&] { return node.run(node.store.otp_put("k", "h", kT0 + 5min, 5, kT0)).has_value(); }},
      {"otp_check", [&] { return node.run(node.store.otp_check("k", "x", kT0)).has_value(); }},
      {"lease_acquire",
       [&] { return node.run(node.store.lease_acquire("l", "me", 30s, kT0)).has_value(); }},
      {"lease_release", [&] { return node.run(node.store.lease_release("l", "me")).has_value(); }},
  };
  for (const auto& [name, call] : calls) ASSERT_TRUE(call()) << name;  // loads the scripts
  for (const auto& [name, call] : calls) {
    SCOPED_TRACE(name);
    const std::int64_t before = evalsha_calls(node);
    const std::uint64_t writes_before = node.client->writes();
    ASSERT_TRUE(call());
    EXPECT_EQ(node.client->writes() - writes_before, 1u);
    EXPECT_EQ(evalsha_calls(node) - before, 1);
  }
  // After a restart or failover the cache is empty: the scripts are loaded again.
  ASSERT_EQ(node.command({"SCRIPT", "FLUSH"}).str, "OK");
  for (const auto& [name, call] : calls) EXPECT_TRUE(call()) << name;
}

TEST(RedisSessionStore, ScriptsAreLoadedAgainAfterTheCacheIsFlushed) {
  PrivateRedis server;
  Node node(url_of(server), "sd");
  Session a = session_for(1, kT0);
  ASSERT_TRUE(node.run(node.store.create(create_request(a, token_hash(a)))));

  // SCRIPT FLUSH before each call: a restarted or failed-over Redis has an empty cache.
  auto flush = [&] { ASSERT_EQ(node.command({"SCRIPT", "FLUSH"}).str, "OK"); };
  flush();
  EXPECT_EQ(node.run(node.store.validate_and_touch(1, a.id, kT0 + 1min, kIp)).value().found,
            Found::alive);
  flush();
  Session b = session_for(1, kT0 + 2min);
  EXPECT_TRUE(
      node.run(node.store.create(create_request(b, token_hash(b), 1))).value().evicted.size() == 1);
  flush();
  EXPECT_EQ(node.run(node.store.rotate_refresh(
                         rotate_request(1, token_hash(b), sha256("rt_b2"), kT0 + 3min)))
                .value()
                .kind,
            Rotation::rotated);
  flush();
  EXPECT_EQ(ids_of(node.run(node.store.list(1, kT0 + 4min)).value()), std::set<SessionId>{b.id});
  flush();
  EXPECT_EQ(ids_of(node.run(node.store.collect_expired(kT0 + 3min + kIdle, 100)).value()),
            std::set<SessionId>{b.id});
  flush();
  Session c = session_for(2, kT0);
  ASSERT_TRUE(node.run(node.store.create(create_request(c, token_hash(c)))));
  flush();
  EXPECT_TRUE(node.run(node.store.revoke(2, c.id, EndReason::logout, kT0 + 1min)).value());
  flush();
  EXPECT_TRUE(node.run(node.store.revoke_all(2, std::nullopt, EndReason::logout, kT0 + 2min))
                  .value()
                  .empty());
}

// --- many nodes ---

// Runs `make(i)` for i in [0, n) concurrently on the node's io_context (one connection: they
// pipeline) and returns the results.
template <class T, class Make>
std::vector<Result<T>> run_concurrently(Node& node, int n, Make make) {
  std::vector<std::optional<Result<T>>> results(static_cast<std::size_t>(n));
  int remaining = n;
  node.io.restart();
  for (int i = 0; i < n; ++i) {
    asio::co_spawn(node.io, make(i), [&, i](std::exception_ptr e, Result<T> r) {
      if (!e) results[static_cast<std::size_t>(i)].emplace(std::move(r));
      if (--remaining == 0) node.io.stop();
    });
  }
  node.io.run_for(30s);
  std::vector<Result<T>> out;
  for (auto& r : results) {
    if (!r) throw std::runtime_error("a call did not finish");
    out.push_back(std::move(*r));
  }
  return out;
}

TEST(RedisSessionStore, ConcurrentCreatesOnTwoNodesNeverExceedTheLimit) {
  for (OnLimit on_limit : {OnLimit::evict_oldest, OnLimit::evict_lru, OnLimit::deny}) {
    SCOPED_TRACE(on_limit_name(on_limit));
    const std::string prefix = unique_prefix();
    Node a(shared_url(), prefix);
    Node b(shared_url(), prefix);
    constexpr int kPerNode = 20;
    std::vector<Session> sessions;
    for (int i = 0; i < 2 * kPerNode; ++i) sessions.push_back(session_for(1, kT0 + 1ms * i));

    std::atomic<std::size_t> evicted{0};
    std::atomic<int> created{0};
    std::atomic<int> refused{0};
    auto node_thread = [&](Node& node, int first) {
      auto results = run_concurrently<CreateOutcome>(node, kPerNode, [&](int i) {
        const Session& s = sessions[static_cast<std::size_t>(first + i)];
        return node.store.create(create_request(s, token_hash(s), 2, on_limit));
      });
      for (const auto& r : results) {
        if (r) {
          ++created;
          evicted += r->evicted.size();
        } else if (r.error().code == Errc::session_limit) {
          ++refused;
        }
      }
    };
    std::thread on_a(node_thread, std::ref(a), 0);
    std::thread on_b(node_thread, std::ref(b), kPerNode);
    on_a.join();
    on_b.join();

    if (on_limit == OnLimit::deny) {
      EXPECT_EQ(created.load(), 2);
      EXPECT_EQ(refused.load(), 2 * kPerNode - 2);
    } else {
      EXPECT_EQ(created.load(), 2 * kPerNode);
      EXPECT_EQ(evicted.load(), std::size_t{2 * kPerNode - 2});
    }
    EXPECT_EQ(a.run(a.store.list(1, kT0 + 1s)).value().size(), 2u);
    EXPECT_EQ(b.run(b.store.live_count()).value(), 2u);
  }
}

TEST(RedisSessionStore, ConcurrentRateLimitCallsOnTwoNodesAllowExactlyTheLimit) {
  const std::string prefix = unique_prefix();
  Node a(shared_url(), prefix);
  Node b(shared_url(), prefix);
  constexpr int kPerNode = 20;
  std::atomic<int> allowed{0};
  std::atomic<int> failed{0};
  auto node_thread = [&](Node& node) {
    auto results = run_concurrently<RateDecision>(node, kPerNode, [&](int) {
      std::vector<RateKey> keys{{"login_per_ip:198.51.100.7", RateLimit{5, 15min}},
                                {"login_per_account:42", RateLimit{10, 15min}}};
      return node.store.rate_limit(std::move(keys), kT0);
    });
    for (const auto& r : results) {
      if (!r) ++failed;
      if (r && r->allowed) ++allowed;
    }
  };
  std::thread on_a(node_thread, std::ref(a));
  std::thread on_b(node_thread, std::ref(b));
  on_a.join();
  on_b.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(allowed.load(), 5);
  // Only the allowed calls counted on the account's limit: it has room for 5 more.
  EXPECT_EQ(a.command({"ZCARD", prefix + ":rl:login_per_account:42"}).integer, 5);
}

TEST(RedisSessionStore, AnExpiryFoundOnARequestIsReportedOnceByWhicheverNodeCollects) {
  const std::string prefix = unique_prefix();
  Node a(shared_url(), prefix);
  Node b(shared_url(), prefix);
  Session s = session_for(1, kT0);
  ASSERT_TRUE(a.run(a.store.create(create_request(s, token_hash(s)))));
  ASSERT_EQ(a.run(a.store.validate_and_touch(1, s.id, kT0 + kIdle, kIp)).value().found,
            Found::ended);
  EXPECT_EQ(b.run(b.store.live_count()).value(), 0u);
  auto reported = b.run(b.store.collect_expired(kT0 + kIdle, 10)).value();
  ASSERT_EQ(ids_of(reported), std::set<SessionId>{s.id});
  EXPECT_EQ(reported[0].user_id, 1);
  EXPECT_EQ(reported[0].user_agent, s.user_agent);
  EXPECT_TRUE(a.run(a.store.collect_expired(kT0 + kIdle + 1min, 10)).value().empty());
  EXPECT_TRUE(b.run(b.store.collect_expired(kT0 + kIdle + 1min, 10)).value().empty());
  // The tombstone still says why.
  Lookup l = b.run(b.store.validate_and_touch(1, s.id, kT0 + kIdle + 2min, kIp)).value();
  EXPECT_EQ(l.found, Found::ended);
  EXPECT_EQ(l.reason, EndReason::expired);
}

TEST(RedisSessionStore, ConcurrentCollectorsReportEachExpiryOnce) {
  const std::string prefix = unique_prefix();
  Node a(shared_url(), prefix);
  Node b(shared_url(), prefix);
  constexpr int kSessions = 60;
  std::set<SessionId> created;
  for (int i = 0; i < kSessions; ++i) {
    Session s = session_for(100 + i, kT0);
    ASSERT_TRUE(a.run(a.store.create(create_request(s, token_hash(s)))));
    created.insert(s.id);
    // A third of them end on the request path first (reported later, by either node).
    if (i % 3 == 0) {
      ASSERT_EQ(
          a.run(a.store.validate_and_touch(100 + i, s.id, kT0 + 2 * kIdle, kIp)).value().found,
          Found::ended);
    }
  }
  std::vector<Session> from_a;
  std::vector<Session> from_b;
  auto collect = [](Node& node, std::vector<Session>& out) {
    for (int round = 0; round < 10; ++round) {
      auto got = node.run(node.store.collect_expired(kT0 + 2 * kIdle, 7)).value();
      out.insert(out.end(), got.begin(), got.end());
    }
  };
  std::thread on_a(collect, std::ref(a), std::ref(from_a));
  std::thread on_b(collect, std::ref(b), std::ref(from_b));
  on_a.join();
  on_b.join();
  std::multiset<SessionId> all;
  for (const Session& s : from_a) all.insert(s.id);
  for (const Session& s : from_b) all.insert(s.id);
  EXPECT_EQ(all.size(), created.size()) << "each once";
  EXPECT_EQ(std::set<SessionId>(all.begin(), all.end()), created);
  EXPECT_EQ(a.run(a.store.live_count()).value(), 0u);
}

TEST(RedisSessionStore, EachNodeReportsTheActivityItSaw) {
  const std::string prefix = unique_prefix();
  Node a(shared_url(), prefix);
  Node b(shared_url(), prefix);
  Session s = session_for(1, kT0);
  ASSERT_TRUE(a.run(a.store.create(create_request(s, token_hash(s)))));
  ASSERT_EQ(a.run(a.store.validate_and_touch(1, s.id, kT0 + 5s, "203.0.113.1")).value().found,
            Found::alive);
  EXPECT_TRUE(b.run(b.store.collect_activity(10)).value().empty());
  auto changes = a.run(a.store.collect_activity(10)).value();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].last_activity, kT0 + 5s);
  EXPECT_EQ(changes[0].last_ip, "203.0.113.1");
  EXPECT_EQ(changes[0].expires_at, kT0 + 5s + kIdle);
  // A touch on B is B's to report; B sees A's touch in the session.
  Lookup l = b.run(b.store.validate_and_touch(1, s.id, kT0 + 9s, "203.0.113.1")).value();
  EXPECT_EQ(l.session.last_activity, kT0 + 9s);
  EXPECT_EQ(b.run(b.store.collect_activity(10)).value().size(), 1u);
  EXPECT_TRUE(a.run(a.store.collect_activity(10)).value().empty());
}

TEST(RedisSessionStore, RotationLooksOnlyUnderTheUserTheTokenNames) {
  Node node(shared_url(), unique_prefix());
  Session s = session_for(1, kT0);
  ASSERT_TRUE(node.run(node.store.create(create_request(s, token_hash(s)))));
  for (UserId user : {0, 2, -1}) {
    SCOPED_TRACE(user);
    EXPECT_EQ(node.run(node.store.rotate_refresh(
                           rotate_request(user, token_hash(s), sha256("rt_x"), kT0 + 1min)))
                  .value()
                  .kind,
              Rotation::unknown);
  }
  EXPECT_EQ(node.run(node.store.rotate_refresh(
                         rotate_request(1, token_hash(s), sha256("rt_x"), kT0 + 1min)))
                .value()
                .kind,
            Rotation::rotated);
}

// --- memory ---

std::int64_t used_memory(Node& node) {
  const std::string info = node.command({"INFO", "memory"}).str;
  std::smatch match;
  if (!std::regex_search(info, match, std::regex("used_memory:(\\d+)"))) return 0;
  return std::stoll(match[1]);
}

TEST(RedisSessionStore, MemoryPerLiveSession) {
  PrivateRedis server;  // its own: INFO memory counts the whole server
  Node node(url_of(server), "sd");
  constexpr int kSessions = 20'000;
  constexpr int kBatch = 500;
  const std::string agent =
      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
      "Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
  // Scripts loaded and the server's own structures warm before the first figure.
  Session warm = session_for(1, kT0);
  ASSERT_TRUE(node.run(node.store.create(create_request(warm, token_hash(warm)))));
  const std::int64_t before = used_memory(node);
  for (int first = 0; first < kSessions; first += kBatch) {
    auto results = run_concurrently<CreateOutcome>(node, kBatch, [&](int i) {
      const int n = first + i;
      Session s = session_for(1000 + n, kT0);
      s.attributes = "{}";
      s.user_agent = agent;
      s.ip_address = "10.0." + std::to_string(n / 256 % 256) + "." + std::to_string(n % 256);
      s.last_ip = s.ip_address;
      s.absolute_expires_at = kT0 + 24h * 30;
      s.idle_timeout = 24h;
      CreateRequest request = create_request(s, token_hash(s));
      request.refresh_expires_at = kT0 + 24h * 30;
      return node.store.create(std::move(request));
    });
    for (const auto& r : results) ASSERT_TRUE(r);
  }
  const std::int64_t per_session = (used_memory(node) - before) / kSessions;
  std::printf(
      "redis store: %lld bytes of Redis memory per live session (%d sessions, one per "
      "user, a %zu-byte user agent)\n",
      static_cast<long long>(per_session), kSessions, agent.size());
  EXPECT_EQ(node.run(node.store.live_count()).value(), std::size_t{kSessions + 1});
  // Measured 864 on Redis 7.0 with one session per user (the user's hash is the most of it; 561
  // with five per user, bench/redis_sessions). A key per session and per refresh hash: 1251.
  EXPECT_LT(per_session, 950);
}

// --- failing closed ---

TEST(RedisSessionStore, AnUnreachableServerIsStoreUnavailable) {
  redis::RedisUrl url;
  url.port = free_port();  // nothing listens there
  Node node(url, "sd");
  Session s = session_for(1, kT0);
  auto expect_unavailable = [](const auto& result, const char* what) {
    ASSERT_TRUE(result.has_error()) << what << " answered without Redis";
    EXPECT_EQ(result.error().code, Errc::store_unavailable) << what;
  };
  expect_unavailable(node.run(node.store.create(create_request(s, token_hash(s)))), "create");
  expect_unavailable(node.run(node.store.validate_and_touch(1, s.id, kT0, kIp)), "validate");
  expect_unavailable(
      node.run(node.store.rotate_refresh(rotate_request(1, token_hash(s), sha256("rt_x"), kT0))),
      "rotate");
  expect_unavailable(node.run(node.store.revoke(1, s.id, EndReason::logout, kT0)), "revoke");
  expect_unavailable(node.run(node.store.revoke_all(1, std::nullopt, EndReason::logout, kT0)),
                     "revoke_all");
  expect_unavailable(node.run(node.store.list(1, kT0)), "list");
  expect_unavailable(node.run(node.store.owner_of(s.id, kT0)), "owner_of");
  expect_unavailable(node.run(node.store.collect_expired(kT0, 10)), "collect_expired");
  expect_unavailable(node.run(node.store.live_count()), "live_count");
  expect_unavailable(node.run(node.store.ping()), "ping");
  expect_unavailable(node.run(node.store.check_configuration()), "check_configuration");
  const std::vector<RateKey> limits{{"k", RateLimit{1, 1min}}};
  expect_unavailable(node.run(node.store.rate_limit(limits, kT0)), "rate_limit");
  expect_unavailable(node.run(node.store.otp_put("k", "h", kT0 + 5min, 5, kT0)), "otp_put");
  expect_unavailable(node.run(node.store.otp_check("k", "h", kT0)), "otp_check");
  expect_unavailable(node.run(node.store.lease_acquire("l", "me", 30s, kT0)), "lease_acquire");
  expect_unavailable(node.run(node.store.lease_release("l", "me")), "lease_release");
  Result<void> restored = node.store.restore({{s, token_hash(s), kT0 + kRefreshTtl}}, {});
  expect_unavailable(restored, "restore");
}

// --- the start-up check ---

TEST(RedisSessionStore, ConfigurationCheckWarnsAboutEvictionAndNoPersistence) {
  PrivateRedis server;
  Node node(url_of(server), "sd");
  node.command({"CONFIG", "SET", "maxmemory-policy", "allkeys-lru"});
  node.command({"CONFIG", "SET", "appendonly", "no"});
  node.command({"CONFIG", "SET", "save", ""});
  EXPECT_TRUE(node.store.warnings().empty()) << "nothing before the first check";
  auto warnings = node.run(node.store.check_configuration()).value();
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[0].find("allkeys-lru"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[1].find("persistence is off"), std::string::npos) << warnings[1];
  EXPECT_EQ(node.store.warnings(), warnings);

  node.command({"CONFIG", "SET", "maxmemory-policy", "noeviction"});
  node.command({"CONFIG", "SET", "save", "3600 1"});
  EXPECT_TRUE(node.run(node.store.check_configuration()).value().empty());
  EXPECT_TRUE(node.store.warnings().empty());
  node.command({"CONFIG", "SET", "save", ""});
  node.command({"CONFIG", "SET", "appendonly", "yes"});
  EXPECT_TRUE(node.run(RedisSessionStore::check_configuration(*node.client)).value().empty());
}

TEST(RedisSessionStore, FirstPingRunsTheConfigurationCheck) {
  PrivateRedis server;  // started with --save '' --appendonly no: persistence is off
  Node node(url_of(server), "sd");
  ASSERT_TRUE(node.run(node.store.ping()));
  ASSERT_EQ(node.store.warnings().size(), 1u);
  EXPECT_NE(node.store.warnings()[0].find("persistence is off"), std::string::npos);
}

// --- the outbox ---

// A short claim_after for the tests of the hand-over between consumers: an entry another
// consumer took is claimed once it has been idle this long.
constexpr Duration kClaim = 300ms;
// Longer than any test: nothing is claimed by idleness.
constexpr Duration kNoClaim = 1h;

std::string kind_name(StoreChange::Kind kind) {
  switch (kind) {
    case StoreChange::Kind::created: return "created";
    case StoreChange::Kind::rotated: return "rotated";
    case StoreChange::Kind::ended: return "ended";
  }
  return "?";
}

std::string outbox_key(const std::string& prefix) { return prefix + ":outbox"; }

std::vector<OutboxEntry> take(Node& node, const std::string& consumer,
                              Duration claim_after = kNoClaim, std::size_t max = 100) {
  return node.run(node.store.outbox_take(consumer, max, claim_after)).value();
}

std::vector<std::string> ids_of(const std::vector<OutboxEntry>& entries) {
  std::vector<std::string> ids;
  for (const OutboxEntry& e : entries) ids.push_back(e.id);
  return ids;
}

void ack(Node& node, const std::vector<std::string>& ids) {
  ASSERT_TRUE(node.run(node.store.outbox_ack(ids)));
}

// Every change in the outbox (read by a consumer of its own, which then acknowledges them and
// gives the lease back), oldest first; the outbox is empty afterwards. Checks that the take
// returned every entry of the stream and that each one can be read.
std::vector<StoreChange> drain(Node& node, const std::string& prefix) {
  const std::int64_t length = node.command({"XLEN", outbox_key(prefix)}).integer;
  std::vector<OutboxEntry> entries = take(node, "drain", kNoClaim, 1000);
  EXPECT_EQ(static_cast<std::int64_t>(entries.size()), length) << "an entry was not taken";
  std::vector<StoreChange> changes;
  for (OutboxEntry& e : entries) {
    EXPECT_TRUE(e.change.has_value()) << "entry " << e.id << " cannot be read";
    if (e.change) changes.push_back(std::move(*e.change));
  }
  EXPECT_TRUE(node.run(node.store.outbox_ack(ids_of(entries))));
  EXPECT_TRUE(node.run(node.store.outbox_release("drain")));
  EXPECT_EQ(node.run(node.store.outbox_length()).value(), 0u);
  return changes;
}

// The Session fields a change carries, against the session they should be.
void expect_fields(const Session& got, const Session& want) {
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.user_id, want.user_id);
  EXPECT_EQ(got.role, want.role);
  EXPECT_EQ(got.attributes, want.attributes);
  EXPECT_EQ(auth_method_name(got.auth_method), auth_method_name(want.auth_method));
  EXPECT_EQ(got.device_info, want.device_info);
  EXPECT_EQ(got.ip_address, want.ip_address);
  EXPECT_EQ(got.last_ip, want.last_ip);
  EXPECT_EQ(got.user_agent, want.user_agent);
  EXPECT_EQ(format_rfc3339(got.created_at), format_rfc3339(want.created_at));
  EXPECT_EQ(format_rfc3339(got.last_activity), format_rfc3339(want.last_activity));
  EXPECT_EQ(format_rfc3339(got.absolute_expires_at), format_rfc3339(want.absolute_expires_at));
  EXPECT_EQ(got.idle_timeout, want.idle_timeout);
}

// An `ended` change of `s` (as it was when it ended) for `reason`, at `at`, from `ip`.
void expect_ended(const StoreChange& c, const Session& s, EndReason reason, TimePoint at,
                  const std::string& ip) {
  EXPECT_EQ(kind_name(c.kind), "ended");
  expect_fields(c.session, s);
  EXPECT_EQ(reason_name(c.reason), reason_name(reason));
  EXPECT_EQ(format_rfc3339(c.at), format_rfc3339(at));
  EXPECT_EQ(c.ip, ip);
}

TEST(RedisSessionStore, OutboxGetsTheCreatedSession) {
  const std::string prefix = unique_prefix();
  Node node(shared_url(), prefix, true);
  EXPECT_TRUE(node.store.has_outbox());
  Session s = session_for(7, kT0);
  s.ip_address = "203.0.113.5";
  s.last_ip = s.ip_address;
  const TokenHash refresh = token_hash(s);
  ASSERT_TRUE(node.run(node.store.create(create_request(s, refresh))));
  EXPECT_EQ(node.run(node.store.outbox_length()).value(), 1u);

  const std::vector<StoreChange> changes = drain(node, prefix);
  ASSERT_EQ(changes.size(), 1u);
  const StoreChange& c = changes[0];
  EXPECT_EQ(kind_name(c.kind), "created");
  expect_fields(c.session, s);
  EXPECT_EQ(to_hex(c.refresh_hash), to_hex(refresh)) << "the whole 32-byte hash";
  EXPECT_EQ(format_rfc3339(c.refresh_expires_at), format_rfc3339(kT0 + kRefreshTtl));
  EXPECT_EQ(format_rfc3339(c.at), format_rfc3339(kT0));
  EXPECT_EQ(c.ip, "203.0.113.5");
}

TEST(RedisSessionStore, OutboxGetsAnEvictionBeforeTheCreateThatCausedIt) {
  const std::string prefix = unique_prefix();
  Node node(shared_url(), prefix, true);
  Session old = session_for(7, kT0);
  ASSERT_TRUE(node.run(node.store.create(create_request(old, token_hash(old), 1))));
  ASSERT_EQ(drain(node, prefix).size(), 1u);

  Session s = session_for(7, kT0 + 1min);
  s.ip_address = "203.0.113.9";
  s.last_ip = s.ip_address;
  auto created = node.run(node.store.create(create_request(s, token_hash(s), 1))).value();
  ASSERT_EQ(ids_of(created.evicted), std::set<SessionId>{old.id});

  const std::vector<StoreChange> changes = drain(node, prefix);
  ASSERT_EQ(changes.size(), 2u);
  expect_ended(changes[0], old, EndReason::max_sessions_exceeded, kT0 + 1min, "203.0.113.9");
  EXPECT_EQ(kind_name(changes[1].kind), "created");
  expect_fields(changes[1].session, s);
  EXPECT_EQ(to_hex(changes[1].refresh_hash), to_hex(token_hash(s)));
}

TEST(RedisSessionStore, OutboxGetsRotationsAndReuseButNotTheGraceAnswer) {
  const std::string prefix = unique_prefix();
  Node node(shared_url(), prefix, true);
  Session s = session_for(7, kT0);
  ASSERT_TRUE(node.run(node.store.create(create_request(s, token_hash(s)))));
  ASSERT_EQ(drain(node, prefix).size(), 1u);

  const TokenHash successor = sha256("rt_outbox_successor");
  RotateRequest rotate = rotate_request(7, token_hash(s), successor, kT0 + 1min);
  rotate.ip = "192.0.2.44";
  ASSERT_EQ(node.run(node.store.rotate_refresh(rotate)).value().kind, Rotation::rotated);
  std::vector<StoreChange> changes = drain(node, prefix);
  ASSERT_EQ(changes.size(), 1u);
  Session after = s;
  after.last_activity = kT0 + 1min;
  after.last_ip = "192.0.2.44";
  EXPECT_EQ(kind_name(changes[0].kind), "rotated");
  expect_fields(changes[0].session, after);
  EXPECT_EQ(to_hex(changes[0].refresh_hash), to_hex(successor));
  EXPECT_EQ(format_rfc3339(changes[0].refresh_expires_at),
            format_rfc3339(kT0 + 1min + kRefreshTtl));
  EXPECT_EQ(format_rfc3339(changes[0].at), format_rfc3339(kT0 + 1min));
  EXPECT_EQ(changes[0].ip, "192.0.2.44");

  // The old token again within the grace: the same answer, no change (the touch it makes is
  // activity, not an outbox entry).
  RotateRequest again =
      rotate_request(7, token_hash(s), sha256("rt_outbox_other"), kT0 + 1min + 5s);
  again.ip = "192.0.2.45";
  ASSERT_EQ(node.run(node.store.rotate_refresh(again)).value().kind, Rotation::grace);
  EXPECT_EQ(node.run(node.store.outbox_length()).value(), 0u);
  EXPECT_TRUE(drain(node, prefix).empty());

  // After the grace: reuse, the session ends.
  RotateRequest reuse = rotate_request(7, token_hash(s), sha256("rt_outbox_third"), kT0 + 2min);
  reuse.ip = "192.0.2.66";
  ASSERT_EQ(node.run(node.store.rotate_refresh(reuse)).value().kind, Rotation::reuse);
  changes = drain(node, prefix);
  ASSERT_EQ(changes.size(), 1u);
  after.last_activity = kT0 + 1min + 5s;
  after.last_ip = "192.0.2.45";
  expect_ended(changes[0], after, EndReason::refresh_token_reuse, kT0 + 2min, "192.0.2.66");

  // The ended session answers `ended` from now on, with no new entry.
  ASSERT_EQ(node.run(node.store.rotate_refresh(reuse)).value().kind, Rotation::ended);
  EXPECT_TRUE(drain(node, prefix).empty());
}

TEST(RedisSessionStore, OutboxGetsRevocationsWithTheirReasonAndAddress) {
  const std::string prefix = unique_prefix();
  Node node(shared_url(), prefix, true);
  Session a = session_for(7, kT0);
  Session b = session_for(7, kT0 + 1s);
  Session c = session_for(7, kT0 + 2s);
  for (const Session& s : {a, b, c}) {
    ASSERT_TRUE(node.run(node.store.create(create_request(s, token_hash(s)))));
  }
  ASSERT_EQ(drain(node, prefix).size(), 3u);

  ASSERT_TRUE(
      node.run(node.store.revoke(7, a.id, EndReason::logout, kT0 + 1min, "192.0.2.1")).value());
  std::vector<StoreChange> changes = drain(node, prefix);
  ASSERT_EQ(changes.size(), 1u);
  expect_ended(changes[0], a, EndReason::logout, kT0 + 1min, "192.0.2.1");

  // Nothing to end: nothing enqueued.
  EXPECT_FALSE(
      node.run(node.store.revoke(7, a.id, EndReason::logout, kT0 + 2min, "192.0.2.1")).value());
  EXPECT_FALSE(
      node.run(node.store.revoke(8, b.id, EndReason::logout, kT0 + 2min, "192.0.2.1")).value());
  EXPECT_TRUE(drain(node, prefix).empty());

  ASSERT_EQ(ids_of(node.run(node.store.revoke_all(7, b.id, EndReason::revoked_others, kT0 + 3min,
                                                  "192.0.2.2"))
                       .value()),
            std::set<SessionId>{c.id});
  changes = drain(node, prefix);
  ASSERT_EQ(changes.size(), 1u);
  expect_ended(changes[0], c, EndReason::revoked_others, kT0 + 3min, "192.0.2.2");

  ASSERT_EQ(ids_of(node.run(node.store.revoke_all(7, std::nullopt, EndReason::revoked_by_admin,
                                                  kT0 + 4min, "192.0.2.3"))
                       .value()),
            std::set<SessionId>{b.id});
  changes = drain(node, prefix);
  ASSERT_EQ(changes.size(), 1u);
  expect_ended(changes[0], b, EndReason::revoked_by_admin, kT0 + 4min, "192.0.2.3");

  EXPECT_TRUE(
      node.run(node.store.revoke_all(7, std::nullopt, EndReason::logout, kT0 + 5min, "192.0.2.4"))
          .value()
          .empty());
  EXPECT_TRUE(drain(node, prefix).empty());
}

TEST(RedisSessionStore, OutboxGetsAnExpiryWhenCollectedAtTheDeadline) {
  const std::string prefix = unique_prefix();
  Node node(shared_url(), prefix, true);
  // Six users, one session each with its own deadline; five of the expiries are found on a
  // request first (validate, rotate, revoke, revoke_all, a create of the same user), the last
  // by collect_expired itself.
  std::vector<Session> sessions;
  for (int i = 0; i < 6; ++i) {
    Session s = session_for(10 + i, kT0 + 1min * i);
    s.ip_address = "203.0.113." + std::to_string(10 + i);
    s.last_ip = s.ip_address;
    sessions.push_back(s);
    ASSERT_TRUE(node.run(node.store.create(create_request(s, token_hash(s)))));
  }
  // The last one's activity moves (and so its deadline), from another address.
  ASSERT_EQ(node.run(node.store.validate_and_touch(15, sessions[5].id, kT0 + 20min, "192.0.2.5"))
                .value()
                .found,
            Found::alive);
  sessions[5].last_activity = kT0 + 20min;
  sessions[5].last_ip = "192.0.2.5";
  ASSERT_EQ(drain(node, prefix).size(), 6u);

  const TimePoint late = kT0 + 2 * kIdle;
  Lookup l = node.run(node.store.validate_and_touch(10, sessions[0].id, late, kIp)).value();
  ASSERT_EQ(l.found, Found::ended);
  ASSERT_EQ(l.reason, EndReason::expired);
  RotateOutcome r = node.run(node.store.rotate_refresh(
                                 rotate_request(11, token_hash(sessions[1]), sha256("rt_x"), late)))
                        .value();
  ASSERT_EQ(r.kind, Rotation::ended);
  ASSERT_EQ(r.reason, EndReason::expired);
  ASSERT_FALSE(
      node.run(node.store.revoke(12, sessions[2].id, EndReason::logout, late, kIp)).value());
  ASSERT_TRUE(node.run(node.store.revoke_all(13, std::nullopt, EndReason::logout, late, kIp))
                  .value()
                  .empty());
  Session newer = session_for(14, late);
  ASSERT_TRUE(node.run(node.store.create(create_request(newer, token_hash(newer), 1)))
                  .value()
                  .evicted.empty())
      << "the expired session does not count";
  EXPECT_EQ(node.run(node.store.validate_and_touch(14, sessions[4].id, late, kIp)).value().found,
            Found::ended);
  // Only the create is in the outbox: the expiries wait for collect_expired.
  std::vector<StoreChange> changes = drain(node, prefix);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(kind_name(changes[0].kind), "created");
  EXPECT_EQ(changes[0].session.id, newer.id);

  const TimePoint collected_at = late + 5min;
  EXPECT_EQ(ids_of(node.run(node.store.collect_expired(collected_at, 100)).value()),
            ids_of(sessions));
  changes = drain(node, prefix);
  ASSERT_EQ(changes.size(), sessions.size());
  std::map<SessionId, const StoreChange*> by_id;
  for (const StoreChange& c : changes) by_id[c.session.id] = &c;
  ASSERT_EQ(by_id.size(), sessions.size()) << "one entry per session";
  for (const Session& s : sessions) {
    SCOPED_TRACE(s.user_id);
    ASSERT_TRUE(by_id.contains(s.id));
    // At the deadline, not when it was noticed or collected; from the session's last address.
    expect_ended(*by_id[s.id], s, EndReason::expired, s.expires_at(), s.last_ip);
  }
  EXPECT_EQ(format_rfc3339(sessions[5].expires_at()), format_rfc3339(kT0 + 20min + kIdle));

  // Reported once.
  EXPECT_TRUE(node.run(node.store.collect_expired(collected_at + 1min, 100)).value().empty());
  EXPECT_TRUE(drain(node, prefix).empty());
}

TEST(RedisSessionStore, OutboxGetsNothingFromReadsAndRefusals) {
  const std::string prefix = unique_prefix();
  Node node(shared_url(), prefix, true);
  Session s = session_for(7, kT0);
  ASSERT_TRUE(node.run(node.store.create(create_request(s, token_hash(s), 1, OnLimit::deny))));
  ASSERT_EQ(drain(node, prefix).size(), 1u);
  const std::int64_t evals_before = evalsha_calls(node);

  // Verify without and with a touch (a second later, a new address), list, owner, counts.
  EXPECT_EQ(node.run(node.store.validate_and_touch(7, s.id, kT0 + 500ms, kIp)).value().found,
            Found::alive);
  EXPECT_EQ(node.run(node.store.validate_and_touch(7, s.id, kT0 + 5s, "192.0.2.9")).value().found,
            Found::alive);
  EXPECT_EQ(ids_of(node.run(node.store.list(7, kT0 + 6s)).value()), std::set<SessionId>{s.id});
  EXPECT_EQ(node.run(node.store.owner_of(s.id, kT0 + 7s)).value(), std::optional<UserId>{7});
  EXPECT_EQ(node.run(node.store.live_count()).value(), 1u);
  EXPECT_TRUE(node.run(node.store.collect_expired(kT0 + 8s, 100)).value().empty());
  EXPECT_EQ(node.run(node.store.collect_activity(100)).value().size(), 1u);
  // Refusals and misses: a create over the limit (deny), an unknown token, an unknown session.
  Session refused = session_for(7, kT0 + 9s);
  auto denied =
      node.run(node.store.create(create_request(refused, token_hash(refused), 1, OnLimit::deny)));
  ASSERT_TRUE(denied.has_error());
  EXPECT_EQ(denied.error().code, Errc::session_limit);
  EXPECT_EQ(node.run(node.store.rotate_refresh(
                         rotate_request(7, sha256("rt_unknown"), sha256("rt_y"), kT0 + 10s)))
                .value()
                .kind,
            Rotation::unknown);
  EXPECT_FALSE(node.run(node.store.revoke(7, new_id(), EndReason::logout, kT0 + 11s, kIp)).value());
  EXPECT_TRUE(node.run(node.store.revoke_all(8, std::nullopt, EndReason::logout, kT0 + 12s, kIp))
                  .value()
                  .empty());
  // The scripts did run (the touch, list, collect, create, rotate, revokes) and wrote nothing
  // to the outbox.
  EXPECT_GE(evalsha_calls(node) - evals_before, 6);
  EXPECT_EQ(node.command({"XLEN", outbox_key(prefix)}).integer, 0);
  EXPECT_TRUE(drain(node, prefix).empty());
}

// Creates, evicts, rotates, reuses, revokes, revokes all and lets a session expire (found on a
// request, then collected), on users from `user` on. Returns how many changes that made.
int change_sessions(Node& node, UserId user) {
  Session a = session_for(user, kT0);
  Session b = session_for(user, kT0 + 1s);
  EXPECT_TRUE(node.run(node.store.create(create_request(a, token_hash(a), 1))));  // 1
  EXPECT_EQ(node.run(node.store.create(create_request(b, token_hash(b), 1))).value().evicted.size(),
            1u);  // 3
  EXPECT_EQ(node.run(node.store.rotate_refresh(rotate_request(
                         user, token_hash(b), sha256("rt_b2" + b.id.to_string()), kT0 + 1min)))
                .value()
                .kind,
            Rotation::rotated);  // 4
  EXPECT_EQ(node.run(node.store.rotate_refresh(rotate_request(
                         user, token_hash(b), sha256("rt_b3" + b.id.to_string()), kT0 + 2min)))
                .value()
                .kind,
            Rotation::reuse);  // 5
  Session c = session_for(user + 1, kT0);
  Session d = session_for(user + 1, kT0 + 1s);
  Session e = session_for(user + 1, kT0 + 2s);
  for (const Session& s : {c, d, e}) {
    EXPECT_TRUE(node.run(node.store.create(create_request(s, token_hash(s)))));  // 8
  }
  EXPECT_TRUE(node.run(node.store.revoke(user + 1, c.id, EndReason::logout, kT0 + 1min)).value());
  EXPECT_EQ(node.run(node.store.revoke_all(user + 1, std::nullopt, EndReason::password_changed,
                                           kT0 + 2min))
                .value()
                .size(),
            2u);  // 11
  Session x = session_for(user + 2, kT0);
  EXPECT_TRUE(node.run(node.store.create(create_request(x, token_hash(x)))));  // 12
  EXPECT_EQ(
      node.run(node.store.validate_and_touch(user + 2, x.id, kT0 + 2 * kIdle, kIp)).value().found,
      Found::ended);
  EXPECT_EQ(node.run(node.store.collect_expired(kT0 + 2 * kIdle, 100)).value().size(), 1u);  // 13
  return 13;
}

TEST(RedisSessionStore, OutboxIsOffByDefault) {
  const std::string prefix = unique_prefix();
  Node node(shared_url(), prefix);
  EXPECT_FALSE(node.store.has_outbox());
  change_sessions(node, 1);
  EXPECT_TRUE(take(node, "node-a").empty());
  EXPECT_EQ(node.run(node.store.outbox_length()).value(), 0u);
  EXPECT_EQ(node.command({"EXISTS", outbox_key(prefix)}).integer, 0);
  for (const std::string& key : keys_of(node, prefix)) {
    EXPECT_EQ(key.find(":outbox"), std::string::npos) << key;
  }

  // The same changes on a store with the outbox: every one is there.
  const std::string other = unique_prefix();
  Node with(shared_url(), other, true);
  const int made = change_sessions(with, 1);
  EXPECT_EQ(with.command({"XLEN", outbox_key(other)}).integer, made);
  EXPECT_EQ(with.run(with.store.outbox_length()).value(), static_cast<std::size_t>(made));
}

TEST(RedisSessionStore, OutboxAckRemovesEntriesAndWhatIsNotAckedIsTakenAgain) {
  const std::string prefix = unique_prefix();
  Node node(shared_url(), prefix, true);
  std::vector<Session> sessions;
  for (int i = 0; i < 3; ++i) {
    sessions.push_back(session_for(20 + i, kT0 + 1s * i));
    ASSERT_TRUE(
        node.run(node.store.create(create_request(sessions.back(), token_hash(sessions.back())))));
  }
  ASSERT_EQ(node.run(node.store.outbox_length()).value(), 3u);

  std::vector<OutboxEntry> first = take(node, "node-a");
  ASSERT_EQ(first.size(), 3u);
  for (std::size_t i = 0; i < first.size(); ++i) {
    ASSERT_TRUE(first[i].change) << "oldest first";
    EXPECT_EQ(first[i].change->session.id, sessions[i].id);
  }
  EXPECT_EQ(node.run(node.store.outbox_length()).value(), 3u) << "taking does not remove";

  ack(node, {first[0].id, first[1].id});
  EXPECT_EQ(node.run(node.store.outbox_length()).value(), 1u);
  EXPECT_EQ(node.command({"XLEN", outbox_key(prefix)}).integer, 1);

  // The same consumer gets the entry it did not acknowledge, and only that one.
  std::vector<OutboxEntry> again = take(node, "node-a");
  EXPECT_EQ(ids_of(again), std::vector<std::string>{first[2].id});
  again = take(node, "node-a");
  EXPECT_EQ(ids_of(again), std::vector<std::string>{first[2].id}) << "until it is acknowledged";

  // A new change comes after it: only once it is acknowledged.
  Session later = session_for(30, kT0 + 1min);
  ASSERT_TRUE(node.run(node.store.create(create_request(later, token_hash(later)))));
  again = take(node, "node-a");
  EXPECT_EQ(ids_of(again), std::vector<std::string>{first[2].id});
  ack(node, ids_of(again));
  again = take(node, "node-a");
  ASSERT_EQ(again.size(), 1u);
  ASSERT_TRUE(again[0].change);
  EXPECT_EQ(again[0].change->session.id, later.id);

  ack(node, ids_of(again));
  EXPECT_EQ(node.run(node.store.outbox_length()).value(), 0u);
  EXPECT_TRUE(take(node, "node-a").empty());
  EXPECT_EQ(node.command({"XPENDING", outbox_key(prefix), "writers"}).elements.at(0).integer, 0);
}

TEST(RedisSessionStore, OutboxGoesToOneConsumerAtATimeAndIsClaimedAfterRelease) {
  const std::string prefix = unique_prefix();
  Node node(shared_url(), prefix, true);
  auto create = [&](UserId user) {
    Session s = session_for(user, kT0);
    EXPECT_TRUE(node.run(node.store.create(create_request(s, token_hash(s)))));
    return s.id;
  };
  auto sessions_of = [](const std::vector<OutboxEntry>& entries) {
    std::vector<SessionId> ids;
    for (const OutboxEntry& e : entries) {
      EXPECT_TRUE(e.change);
      if (e.change) ids.push_back(e.change->session.id);
    }
    return ids;
  };
  const SessionId c1 = create(1);
  const SessionId c2 = create(2);

  std::vector<OutboxEntry> a = take(node, "node-a", kClaim);
  ASSERT_EQ(sessions_of(a), (std::vector<SessionId>{c1, c2}));
  const std::string c2_entry = a[1].id;
  ack(node, {a[0].id});

  // B gets nothing while A holds the lease: neither A's entries nor new ones.
  EXPECT_TRUE(take(node, "node-b", kClaim).empty());
  const SessionId c3 = create(3);
  EXPECT_TRUE(take(node, "node-b", kClaim).empty());
  EXPECT_EQ(node.command({"XPENDING", outbox_key(prefix), "writers", "-", "+", "10", "node-b"})
                .elements.size(),
            0u)
      << "nothing was delivered to B";

  // A takes its unacknowledged entry again, and only that: new entries wait while an older one is
  // unacknowledged. Then A gives the lease up.
  a = take(node, "node-a", kClaim);
  ASSERT_EQ(sessions_of(a), std::vector<SessionId>{c2});
  EXPECT_EQ(a[0].id, c2_entry);
  ASSERT_TRUE(node.run(node.store.outbox_release("node-a")));

  // B takes over at once, oldest first: A's unacknowledged entry before anything newer.
  const SessionId c4 = create(4);
  std::vector<OutboxEntry> b = take(node, "node-b", kClaim);
  ASSERT_EQ(sessions_of(b), std::vector<SessionId>{c2});
  EXPECT_EQ(b[0].id, c2_entry);
  EXPECT_EQ(node.command({"XPENDING", outbox_key(prefix), "writers", "-", "+", "10", "node-a"})
                .elements.size(),
            0u)
      << "A's entries moved to B";
  EXPECT_TRUE(take(node, "node-a", kClaim).empty()) << "B holds the lease now";
  ack(node, ids_of(b));
  b = take(node, "node-b", kClaim);
  ASSERT_EQ(sessions_of(b), (std::vector<SessionId>{c3, c4})) << "oldest first";

  ack(node, ids_of(b));
  EXPECT_EQ(node.run(node.store.outbox_length()).value(), 0u);
  EXPECT_TRUE(take(node, "node-b", kClaim).empty());
  ASSERT_TRUE(node.run(node.store.outbox_release("node-b")));
  EXPECT_TRUE(take(node, "node-a", kClaim).empty());
}

// A consumer with more unacknowledged entries than it takes at once gets the oldest ones again,
// never a newer one past them (an end written before its session's creation would leave the
// database row live for good).
TEST(RedisSessionStore, OutboxNeverSkipsAnUnacknowledgedEntry) {
  Node node(shared_url(), unique_prefix(), true);
  std::vector<SessionId> created;
  for (UserId user = 1; user <= 3; ++user) {
    Session s = session_for(user, kT0);
    ASSERT_TRUE(node.run(node.store.create(create_request(s, token_hash(s)))));
    created.push_back(s.id);
  }
  for (std::size_t i = 0; i < created.size(); ++i) {
    for (int again = 0; again < 2; ++again) {
      const auto taken = take(node, "node-a", kNoClaim, 1);
      ASSERT_EQ(taken.size(), 1u);
      ASSERT_TRUE(taken[0].change);
      EXPECT_EQ(taken[0].change->session.id, created[i]) << "take " << i << "." << again;
      if (again == 1) ack(node, {taken[0].id});
    }
  }
  EXPECT_TRUE(take(node, "node-a", kNoClaim, 1).empty());
}

TEST(RedisSessionStore, OutboxLeaseLapsesWhenItsHolderStopsTaking) {
  const std::string prefix = unique_prefix();
  Node node(shared_url(), prefix, true);
  Session s = session_for(1, kT0);
  ASSERT_TRUE(node.run(node.store.create(create_request(s, token_hash(s)))));
  std::vector<OutboxEntry> a = take(node, "node-a", kClaim);
  ASSERT_EQ(a.size(), 1u);
  // A stops (a crash): no acknowledgement, no release. B gets nothing, new changes neither.
  EXPECT_TRUE(take(node, "node-b", kClaim).empty());
  Session later = session_for(2, kT0);
  ASSERT_TRUE(node.run(node.store.create(create_request(later, token_hash(later)))));
  EXPECT_TRUE(take(node, "node-b", kClaim).empty());
  // A lease lasts claim_after (at least a second).
  std::this_thread::sleep_for(std::max(kClaim, Duration{1s}) + 300ms);
  // B starts with what A left unacknowledged, then the newer change.
  std::vector<OutboxEntry> b = take(node, "node-b", kClaim);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].id, a[0].id);
  ASSERT_TRUE(b[0].change);
  EXPECT_EQ(b[0].change->session.id, s.id);
  EXPECT_TRUE(take(node, "node-a", kClaim).empty()) << "A lost the lease to B";
  ack(node, ids_of(b));
  b = take(node, "node-b", kClaim);
  ASSERT_EQ(b.size(), 1u);
  ASSERT_TRUE(b[0].change);
  EXPECT_EQ(b[0].change->session.id, later.id);
}

TEST(RedisSessionStore, OutboxGetsNothingFromRestore) {
  const std::string prefix = unique_prefix();
  Node node(shared_url(), prefix, true);
  Session s = session_for(7, kT0);
  RestoredTombstone t;
  t.id = new_id();
  t.user_id = 7;
  t.reason = EndReason::logout;
  t.ended_at = kT0;
  t.refresh_hash = sha256("rt_restored_tombstone");
  ASSERT_TRUE(node.store.restore({{s, token_hash(s), kT0 + kRefreshTtl}}, {t}));

  EXPECT_EQ(node.command({"EXISTS", outbox_key(prefix)}).integer, 0);
  EXPECT_EQ(node.run(node.store.outbox_length()).value(), 0u);
  // Restored indeed: the session is alive, the tombstone answers its reason.
  EXPECT_EQ(node.run(node.store.validate_and_touch(7, s.id, kT0 + 1min, kIp)).value().found,
            Found::alive);
  Lookup ended = node.run(node.store.validate_and_touch(7, t.id, kT0 + 1min, kIp)).value();
  EXPECT_EQ(ended.found, Found::ended);
  EXPECT_EQ(ended.reason, EndReason::logout);
  EXPECT_TRUE(drain(node, prefix).empty());

  // The store's outbox is on: a change made afterwards is in it.
  ASSERT_TRUE(node.run(node.store.revoke(7, s.id, EndReason::logout, kT0 + 2min, kIp)).value());
  std::vector<StoreChange> changes = drain(node, prefix);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].session.id, s.id);
}

}  // namespace
}  // namespace sessiond::store::testing
