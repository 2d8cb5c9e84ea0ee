// The Lua scripts of the Redis session store (private to store/redis: only
// redis_session_store.cpp uses them). Each operation on a user's sessions, and each rate-limit,
// one-time-code and lease operation, is one script call: atomic, one round trip.
//
// Every session script takes KEYS = {the user's hash "<p>:{u<id>}", "<p>:exp", "<p>:live"} and
// ARGV[1] = now (Unix ms, the request's time: never Redis TIME), ARGV[2] = the tombstone lifetime
// (ms), ARGV[3] = the user id; scripts.cpp documents the rest of each script's arguments and its
// reply beside its source, and the layout at its top.
#pragma once

#include "store/redis/redis_client.hpp"

namespace sessiond::store::redis {

struct SessionScripts {
  Script create;             // create-with-limit (and restore of a live session: no limit)
  Script validate;           // validate-and-touch, when the read-only fast path cannot answer
  Script rotate;             // refresh-token rotation: rotated / grace / reuse / ended / unknown
  Script revoke;             // end one session
  Script revoke_all;         // end every session of a user but one
  Script list;               // the user's live sessions (read only)
  Script collect;            // collect_expired's step for one user: end what is due, clean up
  Script restore_tombstone;  // restore of an ended session
};

// Built once (sources and SHA-1s); thread-safe.
const SessionScripts& session_scripts();

// Rate limits, one-time codes and leases: keys of their own, outside the users' hashes. These
// take KEYS and ARGV of their own (documented beside each in scripts.cpp); `now` is ARGV[1]
// where they need it.
struct GuardScripts {
  Script rate_limit;     // check every limit of one call and count a hit on each, or nothing
  Script rate_refund;    // take the latest hit of each key back
  Script otp_put;        // keep a code (replacing the one waiting)
  Script otp_check;      // accepted / wrong / burned / none
  Script lease_acquire;  // take or renew a lease
  Script lease_release;  // give it up when held
};

const GuardScripts& guard_scripts();

}  // namespace sessiond::store::redis
