// The Redis client against real redis-servers: the shared one from SESSIOND_TEST_REDIS_URL for
// ordinary traffic (keys under a per-test prefix), and private ones for tests that kill, restart,
// block or reconfigure a server.
#include "store/redis/redis_client.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "redis/redis_test_support.hpp"

namespace sessiond::store::redis {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test_support::PrivateRedis;
using testing::pause;
using testing::run;
using testing::url_of;
using Clock = std::chrono::steady_clock;
using Args = std::vector<std::string>;

asio::awaitable<Result<Reply>> call(RedisClient* client, Args args) {
  co_return co_await client->command(std::move(args));
}

// Calls PING until it answers PONG or `limit` passes; true when it answered.
asio::awaitable<bool> ping_until_ready(RedisClient* client, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    Args ping{"PING"};
    const auto reply = co_await client->command(std::move(ping));
    if (reply && reply->type == Reply::Type::status && reply->str == "PONG") co_return true;
    co_await pause(20ms);
  }
  co_return false;
}

// Stores the outcome of one call where the test can look at it later.
using Slot = std::shared_ptr<std::optional<Result<Reply>>>;
asio::awaitable<void> call_into(RedisClient* client, Args args, Slot slot) {
  *slot = co_await client->command(std::move(args));
}

// Polls INFO clients on `observer` until `blocked` clients are blocked (BLPOP) or 5 s pass.
asio::awaitable<bool> wait_blocked_clients(RedisClient* observer, int blocked) {
  const std::string wanted = "blocked_clients:" + std::to_string(blocked) + "\r\n";
  const auto deadline = Clock::now() + 5s;
  while (Clock::now() < deadline) {
    Args info{"INFO", "clients"};
    const auto reply = co_await observer->command(std::move(info));
    if (reply && reply->str.find(wanted) != std::string::npos) co_return true;
    co_await pause(5ms);
  }
  co_return false;
}

// Polls until every slot holds an outcome or `limit` passes.
asio::awaitable<bool> wait_all(std::vector<Slot> slots, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  for (;;) {
    bool all = true;
    for (const auto& slot : slots) all = all && slot->has_value();
    if (all) co_return true;
    if (Clock::now() >= deadline) co_return false;
    co_await pause(2ms);
  }
}

bool is_unavailable(const Result<Reply>& result) {
  return !result && result.error().code == Errc::store_unavailable;
}

std::int64_t ms_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

class RedisClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto text = testing::shared_server_url();
    ASSERT_TRUE(text) << testing::kUrlVariable
                      << " is not set. The Redis tests need a running redis-server: `make test` "
                         "starts one, or run `redis-server --port 6390 --save '' --daemonize yes` "
                         "and set "
                      << testing::kUrlVariable << "=redis://127.0.0.1:6390";
    auto parsed = RedisUrl::parse(*text);
    ASSERT_TRUE(parsed) << parsed.error().detail;
    url_ = *parsed;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    prefix_ = std::string("sessiond-test:") + info->name() + ":" + std::to_string(::getpid()) + ":";
  }

  std::string key(std::string_view name) const { return prefix_ + std::string(name); }

  RedisUrl url_;
  std::string prefix_;
};

TEST_F(RedisClientTest, RepliesOfEveryType) {
  asio::io_context io;
  RedisClient client(url_);
  const auto set = run(io, call(&client, Args{"SET", key("k"), "value", "PX", "60000"}));
  ASSERT_TRUE(set) << set.error().detail;
  EXPECT_EQ(set->type, Reply::Type::status);
  EXPECT_EQ(set->str, "OK");

  const auto get = run(io, call(&client, Args{"GET", key("k")}));
  ASSERT_TRUE(get);
  EXPECT_EQ(get->type, Reply::Type::string);
  EXPECT_EQ(get->str, "value");

  const auto missing = run(io, call(&client, Args{"GET", key("missing")}));
  ASSERT_TRUE(missing);
  EXPECT_TRUE(missing->is_nil());

  const auto incr = run(io, call(&client, Args{"INCRBY", key("n"), "41"}));
  ASSERT_TRUE(incr);
  EXPECT_EQ(incr->type, Reply::Type::integer);
  EXPECT_EQ(incr->integer, 41);

  ASSERT_TRUE(run(io, call(&client, Args{"RPUSH", key("list"), "a", "", "c"})));
  const auto range = run(io, call(&client, Args{"LRANGE", key("list"), "0", "-1"}));
  ASSERT_TRUE(range);
  ASSERT_EQ(range->type, Reply::Type::array);
  ASSERT_EQ(range->elements.size(), 3u);
  EXPECT_EQ(range->elements[0].str, "a");
  EXPECT_EQ(range->elements[1].type, Reply::Type::string);
  EXPECT_EQ(range->elements[1].str, "");
  EXPECT_EQ(range->elements[2].str, "c");

  const auto empty = run(io, call(&client, Args{"LRANGE", key("none"), "0", "-1"}));
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->type, Reply::Type::array);
  EXPECT_TRUE(empty->elements.empty());

  const auto wrong_type = run(io, call(&client, Args{"INCR", key("list")}));
  ASSERT_TRUE(wrong_type) << "an error reply is a Reply, not an Error";
  EXPECT_TRUE(wrong_type->is_error());
  EXPECT_TRUE(wrong_type->str.starts_with("WRONGTYPE")) << wrong_type->str;

  const auto unknown = run(io, call(&client, Args{"NOSUCHCOMMAND"}));
  ASSERT_TRUE(unknown);
  EXPECT_TRUE(unknown->is_error());
  EXPECT_TRUE(unknown->str.starts_with("ERR")) << unknown->str;

  const auto nested = run(io, call(&client, Args{"EVAL", "return {1, {'x', false}, 'y'}", "0"}));
  ASSERT_TRUE(nested);
  ASSERT_EQ(nested->type, Reply::Type::array);
  ASSERT_EQ(nested->elements.size(), 3u);
  EXPECT_EQ(nested->elements[0].integer, 1);
  ASSERT_EQ(nested->elements[1].type, Reply::Type::array);
  EXPECT_EQ(nested->elements[1].elements[0].str, "x");
  EXPECT_TRUE(nested->elements[1].elements[1].is_nil());
  EXPECT_EQ(nested->elements[2].str, "y");

  const auto empty_command = run(io, call(&client, Args{}));
  ASSERT_FALSE(empty_command);
  EXPECT_EQ(empty_command.error().code, Errc::internal);
  ASSERT_TRUE(run(io, call(&client, Args{"DEL", key("k"), key("n"), key("list")})));
}

TEST_F(RedisClientTest, ValuesAndKeysAreBinarySafe) {
  asio::io_context io;
  RedisClient client(url_);
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  bytes += "\r\n$3\r\n*1\r\n";  // RESP framing inside a value must not confuse the parser
  const std::string binary_key = key(std::string("bin\0\r\n", 6));

  const auto set = run(io, call(&client, Args{"SET", binary_key, bytes, "PX", "60000"}));
  ASSERT_TRUE(set);
  EXPECT_EQ(set->str, "OK");
  const auto get = run(io, call(&client, Args{"GET", binary_key}));
  ASSERT_TRUE(get);
  ASSERT_EQ(get->type, Reply::Type::string);
  EXPECT_EQ(get->str, bytes);
  EXPECT_EQ(get->str.size(), 256u + 10u);

  const std::string large(1 << 20, '\xAB');  // spans many reads
  ASSERT_TRUE(run(io, call(&client, Args{"SET", key("large"), large, "PX", "60000"})));
  const auto large_get = run(io, call(&client, Args{"GET", key("large")}));
  ASSERT_TRUE(large_get);
  EXPECT_EQ(large_get->str, large);
  ASSERT_TRUE(run(io, call(&client, Args{"DEL", binary_key, key("large")})));
}

asio::awaitable<void> incr_into(RedisClient* client, std::string counter,
                                std::shared_ptr<std::vector<std::int64_t>> results,
                                std::size_t index) {
  Args incr{"INCR", std::move(counter)};
  const auto reply = co_await client->command(std::move(incr));
  (*results)[index] = reply && reply->type == Reply::Type::integer ? reply->integer : -1;
}

TEST_F(RedisClientTest, ConcurrentCommandsPipelineAndAnswerInOrder) {
  asio::io_context io;
  RedisClient client(url_);
  constexpr std::size_t kCalls = 1000;
  auto results = std::make_shared<std::vector<std::int64_t>>(kCalls, 0);
  const std::string counter = key("counter");
  ASSERT_TRUE(run(io, call(&client, Args{"DEL", counter})));
  const auto commands_before = client.commands_written();
  const auto writes_before = client.writes();

  // Coroutines start in the order they were spawned and each queues its INCR before the next
  // starts, so the i-th must read i + 1 if replies reach their waiters in order.
  std::vector<asio::awaitable<void>> calls;
  for (std::size_t i = 0; i < kCalls; ++i) calls.push_back(incr_into(&client, counter, results, i));
  testing::run_all(io, std::move(calls));
  for (std::size_t i = 0; i < kCalls; ++i) {
    ASSERT_EQ((*results)[i], static_cast<std::int64_t>(i + 1)) << "call " << i;
  }
  const auto commands = client.commands_written() - commands_before;
  const auto writes = client.writes() - writes_before;
  ASSERT_GT(writes, 0u);
  EXPECT_EQ(commands, kCalls);
  EXPECT_GT(commands, writes) << "1000 concurrent commands went out one per write";
  std::cout << "[ pipelining ] " << commands << " commands in " << writes << " writes ("
            << static_cast<double>(commands) / static_cast<double>(writes) << " per write)\n";
  ASSERT_TRUE(run(io, call(&client, Args{"DEL", counter})));
}

asio::awaitable<void> get_loop(RedisClient* client, std::string key, std::string value, int n,
                               std::shared_ptr<int> correct) {
  for (int i = 0; i < n; ++i) {
    Args get{"GET", key};
    const auto reply = co_await client->command(std::move(get));
    *correct += reply && reply->str == value;
  }
}

TEST_F(RedisClientTest, SustainedConcurrentCallsShareWrites) {
  asio::io_context io;
  RedisClient client(url_);
  constexpr int kWorkers = 64;
  constexpr int kCallsEach = 50;
  ASSERT_TRUE(run(io, call(&client, Args{"SET", key("k"), "v", "PX", "60000"})));
  const auto commands_before = client.commands_written();
  const auto writes_before = client.writes();
  auto correct = std::make_shared<int>(0);
  std::vector<asio::awaitable<void>> workers;
  for (int i = 0; i < kWorkers; ++i) {
    workers.push_back(get_loop(&client, key("k"), "v", kCallsEach, correct));
  }
  testing::run_all(io, std::move(workers));
  EXPECT_EQ(*correct, kWorkers * kCallsEach);
  const auto commands = client.commands_written() - commands_before;
  const auto writes = client.writes() - writes_before;
  EXPECT_EQ(commands, static_cast<std::uint64_t>(kWorkers * kCallsEach));
  EXPECT_GT(commands, writes);
  std::cout << "[ pipelining ] " << kWorkers << " coroutines x " << kCallsEach
            << " GETs: " << commands << " commands in " << writes << " writes ("
            << static_cast<double>(commands) / static_cast<double>(writes) << " per write)\n";
}

TEST_F(RedisClientTest, PipelineReturnsRepliesInOrder) {
  asio::io_context io;
  RedisClient client(url_);
  std::vector<Args> commands{{"SET", key("p"), "1", "PX", "60000"},
                             {"INCR", key("p")},
                             {"LPUSH", key("p"), "x"},
                             {"GET", key("p")},
                             {"DEL", key("p")}};
  const auto replies = run(io, client.pipeline(std::move(commands)));
  ASSERT_TRUE(replies) << replies.error().detail;
  ASSERT_EQ(replies->size(), 5u);
  EXPECT_EQ((*replies)[0].str, "OK");
  EXPECT_EQ((*replies)[1].integer, 2);
  EXPECT_TRUE((*replies)[2].is_error());
  EXPECT_EQ((*replies)[3].str, "2");
  EXPECT_EQ((*replies)[4].integer, 1);

  const auto none = run(io, client.pipeline({}));
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

struct ThreadOutcome {
  std::int64_t first_client_id = -1;
  std::int64_t second_client_id = -1;
  int correct = 0;
};

asio::awaitable<void> set_then_get(RedisClient* client, std::string key, std::string value,
                                   std::shared_ptr<int> correct) {
  Args set{"SET", key, value, "PX", "60000"};
  const auto stored = co_await client->command(std::move(set));
  Args get{"GET", key};
  const auto read = co_await client->command(std::move(get));
  *correct += stored && read && read->str == value;
}

TEST_F(RedisClientTest, EachIoContextHasItsOwnConnection) {
  RedisClient client(url_);
  constexpr int kCalls = 300;
  auto work = [&](int thread_index) {
    ThreadOutcome outcome;
    asio::io_context io(1);
    const auto first = run(io, call(&client, Args{"CLIENT", "ID"}));
    if (first) outcome.first_client_id = first->integer;
    auto correct = std::make_shared<int>(0);
    std::vector<asio::awaitable<void>> calls;
    for (int i = 0; i < kCalls; ++i) {
      const std::string suffix = std::to_string(thread_index) + ":" + std::to_string(i);
      calls.push_back(set_then_get(&client, key("t" + suffix), "v" + suffix, correct));
    }
    testing::run_all(io, std::move(calls));
    outcome.correct = *correct;
    const auto second = run(io, call(&client, Args{"CLIENT", "ID"}));
    if (second) outcome.second_client_id = second->integer;
    return outcome;
  };
  ThreadOutcome a;
  ThreadOutcome b;
  std::thread first([&] { a = work(1); });
  std::thread second([&] { b = work(2); });
  first.join();
  second.join();
  EXPECT_EQ(a.correct, kCalls);
  EXPECT_EQ(b.correct, kCalls);
  EXPECT_GT(a.first_client_id, 0);
  EXPECT_EQ(a.first_client_id, a.second_client_id) << "one io_context keeps its connection";
  EXPECT_EQ(b.first_client_id, b.second_client_id);
  EXPECT_NE(a.first_client_id, b.first_client_id) << "two io_contexts never share a connection";
}

TEST_F(RedisClientTest, EvalReturnsScriptRepliesAndErrors) {
  asio::io_context io;
  RedisClient client(url_);
  const Script echo = make_script("return {KEYS[1], ARGV[1], #ARGV}");
  const auto reply = run(io, client.eval(echo, {key("a")}, {"x", "y"}));
  ASSERT_TRUE(reply) << reply.error().detail;
  ASSERT_EQ(reply->type, Reply::Type::array);
  ASSERT_EQ(reply->elements.size(), 3u);
  EXPECT_EQ(reply->elements[0].str, key("a"));
  EXPECT_EQ(reply->elements[1].str, "x");
  EXPECT_EQ(reply->elements[2].integer, 2);

  const Script incr = make_script("return redis.call('INCR', KEYS[1])");
  ASSERT_TRUE(run(io, call(&client, Args{"SET", key("s"), "not a number", "PX", "60000"})));
  const auto runtime_error = run(io, client.eval(incr, {key("s")}, {}));
  ASSERT_TRUE(runtime_error);
  EXPECT_TRUE(runtime_error->is_error());

  const auto syntax_error = run(io, client.eval(make_script("return +"), {}, {}));
  ASSERT_TRUE(syntax_error);
  EXPECT_TRUE(syntax_error->is_error());
  EXPECT_FALSE(syntax_error->str.starts_with("NOSCRIPT")) << syntax_error->str;
}

// ---- private servers ----

TEST(RedisClientPrivateServer, ReloadsScriptsAfterNoscript) {
  PrivateRedis server;
  asio::io_context io;
  RedisClient client(url_of(server));
  const Script script = make_script("return ARGV[1] .. ':' .. KEYS[1]");

  const auto loaded = run(io, call(&client, Args{"SCRIPT", "LOAD", script.source}));
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->str, script.sha1) << "make_script's SHA-1 is the one Redis uses";
  ASSERT_TRUE(run(io, call(&client, Args{"SCRIPT", "FLUSH"})));

  const auto first = run(io, client.eval(script, {"k"}, {"a"}));
  ASSERT_TRUE(first) << first.error().detail;
  EXPECT_EQ(first->str, "a:k");

  ASSERT_TRUE(run(io, call(&client, Args{"SCRIPT", "FLUSH"})));
  const auto exists = run(io, call(&client, Args{"SCRIPT", "EXISTS", script.sha1}));
  ASSERT_TRUE(exists);
  ASSERT_EQ(exists->elements.size(), 1u);
  EXPECT_EQ(exists->elements[0].integer, 0);

  const auto again = run(io, client.eval(script, {"k"}, {"b"}));
  ASSERT_TRUE(again) << again.error().detail;
  EXPECT_EQ(again->str, "b:k");
}

TEST(RedisClientPrivateServer, AuthenticatesAndSelectsTheDatabase) {
  PrivateRedis server({"--requirepass", "door-pw"});
  asio::io_context io;
  RedisClient admin(url_of(server, "", "door-pw", 3));
  ASSERT_TRUE(run(io, ping_until_ready(&admin, 2s)));
  const auto info = run(io, call(&admin, Args{"CLIENT", "INFO"}));
  ASSERT_TRUE(info);
  EXPECT_NE(info->str.find(" db=3 "), std::string::npos) << info->str;
  ASSERT_TRUE(run(io, call(&admin, Args{"SET", "where", "db3"})));

  const auto acl = run(
      io, call(&admin, Args{"ACL", "SETUSER", "alice", "on", ">alice-pw", "~*", "&*", "+@all"}));
  ASSERT_TRUE(acl);
  ASSERT_FALSE(acl->is_error()) << acl->str;
  RedisClient alice(url_of(server, "alice", "alice-pw", 5));
  const auto whoami = run(io, call(&alice, Args{"ACL", "WHOAMI"}));
  ASSERT_TRUE(whoami) << whoami.error().detail;
  EXPECT_EQ(whoami->str, "alice");
  const auto alice_info = run(io, call(&alice, Args{"CLIENT", "INFO"}));
  ASSERT_TRUE(alice_info);
  EXPECT_NE(alice_info->str.find(" db=5 "), std::string::npos) << alice_info->str;
  const auto elsewhere = run(io, call(&alice, Args{"GET", "where"}));
  ASSERT_TRUE(elsewhere);
  EXPECT_TRUE(elsewhere->is_nil()) << "database 5 does not see database 3's keys";
}

TEST(RedisClientPrivateServer, WrongCredentialsFailWithStoreUnavailable) {
  PrivateRedis server({"--requirepass", "door-pw"});
  asio::io_context io;

  RedisClient wrong(url_of(server, "", "Wr0ngHorse", 0));
  const auto denied = run(io, call(&wrong, Args{"PING"}));
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().code, Errc::store_unavailable);
  EXPECT_NE(denied.error().detail.find("AUTH"), std::string::npos) << denied.error().detail;
  EXPECT_EQ(denied.error().detail.find("Wr0ngHorse"), std::string::npos);

  RedisClient bad_db(url_of(server, "", "door-pw", 999));
  const auto no_db = run(io, call(&bad_db, Args{"PING"}));
  ASSERT_FALSE(no_db);
  EXPECT_EQ(no_db.error().code, Errc::store_unavailable);
  EXPECT_NE(no_db.error().detail.find("SELECT"), std::string::npos) << no_db.error().detail;

  RedisClient anonymous(url_of(server));
  const auto noauth = run(io, call(&anonymous, Args{"GET", "k"}));
  ASSERT_TRUE(noauth) << "without AUTH the server answers each command with an error reply";
  EXPECT_TRUE(noauth->is_error());
  EXPECT_TRUE(noauth->str.starts_with("NOAUTH")) << noauth->str;
}

TEST(RedisClientPrivateServer, DeadlineFailsTheCallAndTheClientRecovers) {
  PrivateRedis server({"--enable-debug-command", "yes"});
  asio::io_context io;
  ClientOptions options;
  options.command_timeout = 100ms;
  RedisClient client(url_of(server), options);
  ASSERT_TRUE(run(io, call(&client, Args{"PING"})));

  auto queued_behind = std::make_shared<std::optional<Result<Reply>>>();
  asio::co_spawn(io, call_into(&client, Args{"GET", "k"}, queued_behind), asio::detached);
  const auto start = Clock::now();
  const auto slow = run(io, call(&client, Args{"DEBUG", "SLEEP", "0.5"}));
  const auto elapsed = ms_since(start);
  ASSERT_FALSE(slow);
  EXPECT_EQ(slow.error().code, Errc::store_unavailable);
  EXPECT_GE(elapsed, 90);
  EXPECT_LT(elapsed, 400) << "the call waited past its deadline";

  EXPECT_TRUE(run(io, ping_until_ready(&client, 5s))) << "the client did not recover";
  ASSERT_TRUE(queued_behind->has_value());
  EXPECT_TRUE(is_unavailable(**queued_behind)) << "a call queued behind the slow one is failed";
}

// A call raced against a 50 ms timer: true when the timer won (the call was cancelled).
asio::awaitable<bool> cancelled_by_timer(RedisClient* client, Args args) {
  using namespace asio::experimental::awaitable_operators;
  const auto winner = co_await (client->command(std::move(args)) || pause(50ms));
  co_return winner.index() == 1;
}

TEST(RedisClientPrivateServer, CancelledCallIsDiscardedWithoutAReset) {
  PrivateRedis server({"--enable-debug-command", "yes"});
  asio::io_context io;
  RedisClient client(url_of(server));
  const auto id_before = run(io, call(&client, Args{"CLIENT", "ID"}));
  ASSERT_TRUE(id_before);
  EXPECT_TRUE(run(io, cancelled_by_timer(&client, Args{"DEBUG", "SLEEP", "0.3"})));
  // The late reply to DEBUG SLEEP is discarded; the next reply reaches the next caller.
  const auto id_after = run(io, call(&client, Args{"CLIENT", "ID"}));
  ASSERT_TRUE(id_after) << id_after.error().detail;
  EXPECT_EQ(id_after->integer, id_before->integer) << "the connection was kept";
  const auto echo = run(io, call(&client, Args{"ECHO", "next"}));
  ASSERT_TRUE(echo);
  EXPECT_EQ(echo->str, "next");
}

TEST(RedisClientPrivateServer, DroppedConnectionFailsEveryWaiterAndRecovers) {
  PrivateRedis server;
  asio::io_context io;
  ClientOptions options;
  options.command_timeout = 10s;  // so only the drop can fail the waiters quickly
  options.reconnect_min = 20ms;
  options.reconnect_max = 200ms;
  RedisClient client(url_of(server), options);
  RedisClient observer(url_of(server), options);
  ASSERT_TRUE(run(io, call(&client, Args{"PING"})));

  // One call blocks the connection; the others wait behind it, sent but unanswered.
  std::vector<Slot> slots;
  for (int i = 0; i < 6; ++i) {
    slots.push_back(std::make_shared<std::optional<Result<Reply>>>());
    Args args = i == 0 ? Args{"BLPOP", "never", "0"} : Args{"INCR", "n" + std::to_string(i)};
    asio::co_spawn(io, call_into(&client, std::move(args), slots.back()), asio::detached);
  }
  ASSERT_TRUE(run(io, wait_blocked_clients(&observer, 1)));

  const auto killed = Clock::now();
  server.kill();
  ASSERT_TRUE(run(io, wait_all(slots, 3s))) << "a waiter hung after its connection dropped";
  EXPECT_LT(ms_since(killed), 2000);
  for (const auto& slot : slots) {
    EXPECT_TRUE(is_unavailable(**slot)) << (**slot ? "answered" : (**slot).error().detail);
  }

  const auto down = run(io, call(&client, Args{"PING"}));
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code, Errc::store_unavailable);

  server.start();
  EXPECT_TRUE(run(io, ping_until_ready(&client, 5s))) << "the client did not reconnect by itself";
  EXPECT_TRUE(run(io, ping_until_ready(&observer, 5s)));
}

TEST(RedisClientPrivateServer, CallsDuringBackoffFailFast) {
  const auto port = test_support::free_port();
  RedisUrl url;
  url.port = port;
  ClientOptions options;
  options.reconnect_min = 30s;
  options.reconnect_max = 60s;
  asio::io_context io;
  RedisClient client(url, options);

  const auto refused = run(io, call(&client, Args{"PING"}));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::store_unavailable);

  PrivateRedis server({}, port);
  RedisClient fresh(url);
  ASSERT_TRUE(run(io, call(&fresh, Args{"PING"}))) << "the server is up";
  const auto start = Clock::now();
  const auto waiting = run(io, call(&client, Args{"PING"}));
  ASSERT_FALSE(waiting) << "the call should fail fast while backing off";
  EXPECT_EQ(waiting.error().code, Errc::store_unavailable);
  EXPECT_LT(ms_since(start), 100);
}

TEST(RedisClientPrivateServer, UnansweredHandshakeFailsWithinTheConnectTimeout) {
  // A listening socket that never accepts: the TCP connect succeeds, AUTH is never answered.
  asio::io_context io;
  asio::ip::tcp::acceptor silent(io,
                                 asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  RedisUrl url;
  url.port = silent.local_endpoint().port();
  url.password = "pw";
  ClientOptions options;
  options.connect_timeout = 200ms;
  options.command_timeout = 5s;
  RedisClient client(url, options);
  const auto start = Clock::now();
  const auto reply = run(io, call(&client, Args{"PING"}));
  const auto elapsed = ms_since(start);
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().code, Errc::store_unavailable);
  EXPECT_GE(elapsed, 150);
  EXPECT_LT(elapsed, 2000);
}

TEST(RedisClientPrivateServer, StopFailsPendingWaitersFromAnotherThread) {
  PrivateRedis server;
  asio::io_context io;
  ClientOptions options;
  options.command_timeout = 10s;
  RedisClient client(url_of(server), options);
  RedisClient observer(url_of(server));
  ASSERT_TRUE(run(io, call(&client, Args{"PING"})));

  auto blocked = std::make_shared<std::optional<Result<Reply>>>();
  auto behind = std::make_shared<std::optional<Result<Reply>>>();
  asio::co_spawn(io, call_into(&client, Args{"BLPOP", "never", "0"}, blocked), asio::detached);
  asio::co_spawn(io, call_into(&client, Args{"GET", "k"}, behind), asio::detached);
  ASSERT_TRUE(run(io, wait_blocked_clients(&observer, 1)));

  io.restart();
  std::thread runner([&io] { io.run_for(20s); });
  const auto start = Clock::now();
  client.stop();
  observer.stop();
  runner.join();  // returns once nothing is left: both connections closed, both waiters failed
  EXPECT_LT(ms_since(start), 2000);
  ASSERT_TRUE(blocked->has_value());
  ASSERT_TRUE(behind->has_value());
  EXPECT_TRUE(is_unavailable(**blocked));
  EXPECT_TRUE(is_unavailable(**behind));

  const auto after = run(io, call(&client, Args{"PING"}));
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().code, Errc::store_unavailable);
}

}  // namespace
}  // namespace sessiond::store::redis
