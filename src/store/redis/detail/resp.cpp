#include "store/redis/detail/resp.hpp"

#include <hiredis/hiredis.h>

#include <new>

namespace sessiond::store::redis::detail {
namespace {

Reply to_reply(const redisReply& reply) {
  Reply out;
  switch (reply.type) {
    case REDIS_REPLY_STRING: out.type = Reply::Type::string; break;
    case REDIS_REPLY_STATUS: out.type = Reply::Type::status; break;
    case REDIS_REPLY_ERROR: out.type = Reply::Type::error; break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::integer;
      out.integer = reply.integer;
      return out;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::array;
      out.elements.reserve(reply.elements);
      for (std::size_t i = 0; i < reply.elements; ++i) {
        out.elements.push_back(to_reply(*reply.element[i]));
      }
      return out;
    default: return out;  // REDIS_REPLY_NIL, and a null array (*-1) which hiredis reports as nil
  }
  out.str.assign(reply.str, reply.len);
  return out;
}

}  // namespace

void ReaderDeleter::operator()(redisReader* reader) const noexcept { redisReaderFree(reader); }

void ReplyDeleter::operator()(redisReply* reply) const noexcept { freeReplyObject(reply); }

bool append_command(std::string& out, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const auto& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  char* encoded = nullptr;
  const int length =
      redisFormatCommandArgv(&encoded, static_cast<int>(args.size()), argv.data(), lengths.data());
  if (length < 0) return false;
  std::unique_ptr<char, decltype(&redisFreeCommand)> owned(encoded, &redisFreeCommand);
  out.append(encoded, static_cast<std::size_t>(length));
  return true;
}

ReplyParser::ReplyParser() : reader_(redisReaderCreate()) {
  if (!reader_) throw std::bad_alloc();
}

bool ReplyParser::feed(std::string_view bytes) {
  return redisReaderFeed(reader_.get(), bytes.data(), bytes.size()) == REDIS_OK;
}

ReplyParser::Status ReplyParser::next(Reply& out) {
  void* raw = nullptr;
  if (redisReaderGetReply(reader_.get(), &raw) != REDIS_OK) return Status::protocol_error;
  if (raw == nullptr) return Status::incomplete;
  const ReplyHandle reply(static_cast<redisReply*>(raw));
  out = to_reply(*reply);
  return Status::reply;
}

}  // namespace sessiond::store::redis::detail
