// Private to the Redis store: the session record as the scripts store it (a MessagePack array
// written by Redis's cmsgpack; positions documented in scripts.cpp), decoded in C++ so that
// verify can read a session with a plain HGET instead of a script.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/session.hpp"
#include "core/time.hpp"

namespace sessiond::store::redis::detail {

struct Record {
  Session session;  // the Session fields; empty for a tombstone that keeps none
  bool has_session = false;
  std::optional<EndReason> ended;  // set for a tombstone
  TimePoint ended_at;
};

// Decodes a record; nullopt when the bytes are not a record this code wrote. `id` and `user` fill
// the Session fields the record does not hold.
std::optional<Record> decode_record(std::string_view packed, const SessionId& id, UserId user);

}  // namespace sessiond::store::redis::detail
