// Private to the Redis client: RESP2 encoding and parsing through hiredis, behind RAII handles.
// No hiredis header leaks out of this pair of files.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/redis/redis_client.hpp"

struct redisReader;
struct redisReply;

namespace sessiond::store::redis::detail {

struct ReaderDeleter {
  void operator()(redisReader* reader) const noexcept;
};
struct ReplyDeleter {
  void operator()(redisReply* reply) const noexcept;
};
using ReaderHandle = std::unique_ptr<redisReader, ReaderDeleter>;
using ReplyHandle = std::unique_ptr<redisReply, ReplyDeleter>;

// Appends the RESP encoding of one command (a non-empty argument list) to `out`. False only when
// hiredis cannot allocate; `out` is then unchanged.
bool append_command(std::string& out, const std::vector<std::string>& args);

// A stream of replies parsed from the bytes of one connection. Not thread-safe.
class ReplyParser {
 public:
  enum class Status { reply, incomplete, protocol_error };

  ReplyParser();

  // False on a protocol error (the connection can no longer be trusted).
  bool feed(std::string_view bytes);
  // The next complete reply, if the bytes fed so far hold one.
  Status next(Reply& out);

 private:
  ReaderHandle reader_;
};

}  // namespace sessiond::store::redis::detail
