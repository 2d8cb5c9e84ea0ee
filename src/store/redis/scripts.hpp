// The Lua scripts of the Redis session store (private to store/redis: only
// redis_session_store.cpp uses them). Each operation on a user's sessions is one script call on
// the user's hash slot: atomic, one round trip, Redis Cluster-safe (every key it touches carries
// the user's `{u<id>}` tag).
//
// Every script takes ARGV[1] = the user's key prefix "<p>:{u<id>}:", ARGV[2] = now (Unix ms,
// the request's time: never Redis TIME) and ARGV[3] = the tombstone lifetime (ms); scripts.cpp
// documents the rest of each script's arguments and its reply beside its source.
#pragma once

#include "store/redis/redis_client.hpp"

namespace sessiond::store::redis {

struct SessionScripts {
  Script create;             // create-with-limit (and restore of a live session: no limit)
  Script validate;           // validate-and-touch
  Script rotate;             // refresh-token rotation: rotated / grace / reuse / ended / unknown
  Script revoke;             // end one session
  Script revoke_all;         // end every session of a user but one
  Script list;               // the user's live sessions (read only)
  Script alive;              // is one session alive (read only; for owner_of)
  Script expire;             // collect_expired's "end it if it is due" step
  Script restore_tombstone;  // restore of an ended session
};

// Built once (sources and SHA-1s); thread-safe.
const SessionScripts& session_scripts();

}  // namespace sessiond::store::redis
