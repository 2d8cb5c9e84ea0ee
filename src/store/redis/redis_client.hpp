// An asynchronous Redis client on our Asio io_contexts. hiredis is used only to encode commands
// (redisFormatCommandArgv) and to parse replies (its reply reader); sockets, pipelining, deadlines
// and reconnection are ours.
//
// One connection per io_context that calls it, created on first use: a call runs on the caller's
// own thread, and concurrent calls from one thread pipeline on its connection by themselves (the
// encoded command is appended to the write buffer and its waiter queued in the same synchronous
// step). Every call has a deadline; a dropped connection fails every waiter with store_unavailable
// (never hangs) and is re-opened with backoff. All member functions may be called concurrently
// from coroutines on any io_context.
//
// An io_context that calls the client must be run by one thread (HttpServer's are: one per
// thread). An open connection keeps a read pending on its io_context, so io_context::run() returns
// only after the io_context or the client is stopped.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/time.hpp"

namespace sessiond::store::redis {

// redis://[user:password@]host:port[/db] (password alone: redis://:password@host:port).
struct RedisUrl {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string user;
  std::string password;
  int db = 0;

  // Error: invalid_request with a detail that never repeats the password.
  static Result<RedisUrl> parse(std::string_view url);
};

// A parsed RESP2 reply.
struct Reply {
  enum class Type { nil, integer, string, status, error, array };
  Type type = Type::nil;
  std::int64_t integer = 0;
  std::string str;  // string, status and error replies
  std::vector<Reply> elements;

  bool is_error() const { return type == Type::error; }
  bool is_nil() const { return type == Type::nil; }
};

struct ClientOptions {
  Duration connect_timeout{std::chrono::seconds{2}};
  Duration command_timeout{std::chrono::seconds{1}};  // deadline of a call
  Duration reconnect_min{std::chrono::milliseconds{50}};
  Duration reconnect_max{std::chrono::seconds{2}};
};

// A Lua script, loaded with SCRIPT LOAD and called with EVALSHA.
struct Script {
  std::string source;
  std::string sha1;  // hex SHA-1 of source, computed by make_script
};
Script make_script(std::string source);

class RedisClient {
 public:
  RedisClient(RedisUrl url, ClientOptions options = {});
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Sends one command on the calling io_context's connection. A Redis error reply is a Reply of
  // type error (not an Error). Error: store_unavailable when the connection is down, drops before
  // the answer, or the deadline passes (the command may still have run), and at once while
  // waiting to reconnect after a failed connect; internal for an empty command. A passed deadline
  // resets the connection (failing the calls in flight on it); a call cancelled by its caller
  // (per-operation cancellation) only has its reply discarded.
  boost::asio::awaitable<Result<Reply>> command(std::vector<std::string> args);

  // Sends several commands in one write and returns their replies in order.
  boost::asio::awaitable<Result<std::vector<Reply>>> pipeline(
      std::vector<std::vector<std::string>> commands);

  // EVALSHA; on NOSCRIPT (after a restart or failover) loads the script and calls it again, within
  // one deadline. A script's own error (or a SCRIPT LOAD error) is a Reply of type error.
  boost::asio::awaitable<Result<Reply>> eval(const Script& script, std::vector<std::string> keys,
                                             std::vector<std::string> args);

  // Closes every connection; waiters fail with store_unavailable, and so does every later call
  // (stopping is final). Returns at once: each connection is closed on its own io_context. Call
  // from any thread. The destructor calls it.
  void stop();

  // Commands handed to sockets and the writes that carried them, over all connections: their
  // ratio is the pipelining achieved. Read from any thread.
  std::uint64_t commands_written() const;
  std::uint64_t writes() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace sessiond::store::redis
