#include "store/redis/scripts.hpp"

#include <string>

// Layout (p = the configured prefix, "sd" by default). Memory per session is what decides it:
// every Redis key costs ~100 bytes before its name and value, so a user's things share one hash.
//
//   p:{u<id>}   hash, the user's sessions. Fields (S = the 16 bytes of a session id, T = the first
//               16 bytes of a refresh token's SHA-256):
//     s<S>      the session: a MessagePack array (cmsgpack), positions in R below. Live: the
//               Session fields, the current refresh hash T and, for the latest rotation within
//               its grace, its predecessor T, the successor's full hash, the sealed successor,
//               the time and the grace end. Ended (a tombstone): reason, end time and the refresh
//               hash chain's head; `ep` while an expiry found on the request path waits for
//               collect_expired to report it (the Session fields stay until then).
//     r<T>      one refresh hash, current or rotated out (kept for reuse detection): S, then its
//               expiry (Unix ms in 9 base-36 digits), then the T of its predecessor ('' for the
//               first): the chain from a session's current hash back to its first.
//     i         the S of every live session, concatenated.
//     t         the S of every tombstone, concatenated (for their removal).
//               TTL: at least until the end of everything it holds (absolute end of its
//               sessions plus the tombstone lifetime); collect_expired removes what ended
//               earlier, and the whole key once the user has no session or tombstone left.
//   p:exp       sorted set of user ids, scored by when collect_expired should look at the user
//               next: the earliest deadline of a live session, the end of a tombstone, or now for
//               an expiry waiting to be reported.
//   p:own:<xxx> hash S -> user id of every live session, for owner_of; 4096 of them, by the first
//               12 bits of S (three hex digits), so that each stays a small listpack (~25 bytes
//               a session instead of ~70 in one big hash).
//   p:live      the number of live sessions (created and not ended yet), for live_count.
//   p:outbox    (when the store's outbox is on) a stream: one entry per change to a session,
//               added by the script that makes the change (SPEC §6), read by the consumer group
//               "writers" and deleted once in the database. Fields: k (c created, r rotated,
//               e ended), u (user id), s (session id), r (the record: after the change for c and
//               r, before it for e), t (Unix ms), ip (of the request, '' for none), and h (full
//               refresh hash) and y (its expiry) for c and r, x (reason) for e. No TTL: it is
//               a queue, emptied by the writers.
// These carry the TTL of the longest session they were written for; p:exp and p:own:* empty out
// as sessions end (Redis deletes an empty key). The scripts touch them with the user's hash, so
// the layout needs a single Redis (or a Redis Cluster with every key in one slot).
//
//   p:rl:<key>     sorted set, one rate limit's sliding-window log: a member per hit, scored by
//                  its time (Unix ms); members are "<ms>-<n>", n counting the hits of that same
//                  ms, so that hits of one ms stay distinct. Hits past their window are removed
//                  when the key is next checked. TTL: the window after the latest hit.
//   p:otp:<key>    hash, the one-time code waiting for <key>: h (the keyed hash of the code), a
//                  (attempts left), x (expiry, Unix ms). TTL: until x; deleted when used or burned.
//   p:lease:<name> string "<until, Unix ms>:<holder>": who holds the lease and until when (by the
//                  callers' clocks). TTL: the lease's.
// The callers' `now` decides (a hit's window, a code's expiry, a lease's end), like everywhere
// else; a TTL only lets Redis drop what is over (counted from each write, as for the users' keys).
// One rate_limit call touches the keys of all its limits: on a Redis Cluster they would have to
// share a slot too.
//
// Lua numbers are doubles: Unix ms are exact integers in them; cmsgpack stores them as integers,
// and string.format('%d') writes them as text (tostring would give "1.8e+12").
//
// To read a session by hand (the field name is binary: use the hex of the session id):
//   redis-cli EVAL "return cjson.encode(cmsgpack.unpack(redis.call('HGET', KEYS[1], 's' ..
//   ARGV[1]:gsub('..', function(h) return string.char(tonumber(h, 16)) end))))" 1 'sd:{u42}' <hex>

namespace sessiond::store::redis {
namespace {

constexpr const char* kPrelude = R"lua(
local H, EXP, LIVE = KEYS[1], KEYS[2], KEYS[3]
local P = string.sub(EXP, 1, -4)
local NOW = tonumber(ARGV[1])
local TTL = tonumber(ARGV[2])
local UID = ARGV[3]
-- Every call passes the request's address last (for the outbox); KEYS[4] is the outbox, if any.
local IP = ARGV[#ARGV]
local OUT = KEYS[4]
-- Positions in a session record. 1-11 are the Session fields (li: false when it equals ip).
local R = {r = 1, a = 2, m = 3, d = 4, ip = 5, li = 6, ua = 7, c = 8, la = 9, ax = 10, it = 11,
           rt = 12, gp = 13, gs = 14, gb = 15, gr = 16, gu = 17, e = 18, ea = 19, ep = 20}
local SIZE = 20

local function ms(n) return string.format('%d', n) end

-- Absent positions hold false: a nil would make cmsgpack write a map instead of an array.
local function blank()
  local rec = {}
  for i = 1, SIZE do rec[i] = false end
  return rec
end

-- The record and its packed form, or nil when there is no such session.
local function read(sid)
  local v = redis.call('HGET', H, 's' .. sid)
  if not v then return nil end
  return cmsgpack.unpack(v), v
end

-- Returns the packed record.
local function write(sid, rec)
  local v = cmsgpack.pack(rec)
  redis.call('HSET', H, 's' .. sid, v)
  return v
end

local function deadline(rec) return math.min(rec[R.la] + rec[R.it], rec[R.ax]) end
local function last_ip(rec) return rec[R.li] or rec[R.ip] end

-- The key lives at least until t (Unix ms).
local function keep_until(key, t)
  local life = math.max(t - NOW, 1)
  if redis.call('PTTL', key) < life then redis.call('PEXPIRE', key, ms(life)) end
end

-- Adds a change to the outbox (when there is one). `extra`: more field-value pairs.
local function outbox(kind, sid, packed, extra)
  if not OUT then return end
  local entry = {'XADD', OUT, '*', 'k', kind, 'u', UID, 's', sid, 'r', packed, 't', ms(NOW),
                 'ip', IP}
  for _, v in ipairs(extra) do entry[#entry + 1] = v end
  redis.call(unpack(entry))
end

-- collect_expired looks at the user at t at the latest.
local function schedule(t) redis.call('ZADD', EXP, 'LT', ms(t), UID) end

-- Session id lists (fields i and t): 16 bytes each.
local function ids(field)
  local v = redis.call('HGET', H, field)
  local out = {}
  if v then
    for i = 1, #v, 16 do out[#out + 1] = string.sub(v, i, i + 15) end
  end
  return out
end
local function add_id(field, sid)
  redis.call('HSET', H, field, (redis.call('HGET', H, field) or '') .. sid)
end
local function remove_id(field, sid)
  local kept = {}
  for _, other in ipairs(ids(field)) do
    if other ~= sid then kept[#kept + 1] = other end
  end
  if #kept == 0 then
    redis.call('HDEL', H, field)
  else
    redis.call('HSET', H, field, table.concat(kept))
  end
end

-- The owner bucket of a session id: its first 12 bits.
local function own_key(sid)
  return P .. 'own:' .. string.format('%03x', string.byte(sid, 1) * 16 +
                                               math.floor(string.byte(sid, 2) / 16))
end

-- A refresh entry: session id, expiry (Unix ms in 9 base-36 digits), predecessor.
local DIGITS = '0123456789abcdefghijklmnopqrstuvwxyz'
local function refresh_entry(sid, expires, predecessor)
  local text = ''
  for _ = 1, 9 do
    local d = expires % 36
    text = string.sub(DIGITS, d + 1, d + 1) .. text
    expires = (expires - d) / 36
  end
  return sid .. text .. predecessor
end
local function parse_refresh(v)
  return string.sub(v, 1, 16), tonumber(string.sub(v, 17, 25), 36), string.sub(v, 26)
end

-- A tombstone answers its reason for TTL after the end, then nothing.
local function tombstone_reason(rec)
  if NOW < rec[R.ea] + TTL then return rec[R.e] end
  return nil
end

-- Turns the live session `rec` into a tombstone. `pending`: an expiry found outside
-- collect_expired, which keeps the fields so that collect_expired can report it once.
local function end_session(sid, rec, reason, pending)
  if not pending then outbox('e', sid, cmsgpack.pack(rec), {'x', reason}) end
  local t = blank()
  if pending then
    for i = 1, 11 do t[i] = rec[i] end
    t[R.ep] = 1
  end
  t[R.e], t[R.ea], t[R.rt] = reason, NOW, rec[R.rt]
  write(sid, t)
  remove_id('i', sid)
  add_id('t', sid)
  redis.call('HDEL', own_key(sid), sid)
  if redis.call('EXISTS', LIVE) == 1 then redis.call('DECR', LIVE) end
  keep_until(H, NOW + TTL)
  if pending then schedule(NOW) else schedule(NOW + TTL) end
end

-- Moves last_activity (when it moved at least a second) and last_ip, drops a grace that is over,
-- and writes the record when anything changed (`dirty`: the caller changed it too). Returns 1
-- when the activity changed (for collect_activity), and the packed record.
local function touch(sid, rec, packed, ip, dirty)
  local changed = 0
  if NOW - rec[R.la] >= 1000 then
    rec[R.la] = NOW
    changed = 1
  end
  if ip ~= '' and last_ip(rec) ~= ip then
    if ip == rec[R.ip] then rec[R.li] = false else rec[R.li] = ip end
    changed = 1
  end
  if rec[R.gu] and NOW >= rec[R.gu] then
    for i = R.gp, R.gu do rec[i] = false end
    dirty = true
  end
  if changed == 1 or dirty then packed = write(sid, rec) end
  return changed, packed
end
)lua";

// ARGV[4] sid, [5] max sessions (0: no limit, for restore), [6] on_limit, [7] refresh hash (''
// for none), [8] its expiry, [9..19] the fields r a m d ip li ua c la ax it, [20] the full
// refresh hash (for the outbox). NOW is the creation
// time. Reply: {0, expired sids} when denied; {1, expired sids, evicted {sid, record} pairs
// flattened}. Expired sids are sessions found past their deadline and ended (reported later by
// collect_expired).
constexpr const char* kCreate = R"lua(
local sid, max, policy, rt = ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7]
local own = own_key(sid)
if redis.call('HEXISTS', H, 's' .. sid) == 1 or redis.call('HEXISTS', own, sid) == 1 then
  return redis.error_reply('ERR duplicate session id')
end
if rt ~= '' and redis.call('HEXISTS', H, 'r' .. rt) == 1 then
  return redis.error_reply('ERR duplicate refresh-token hash')
end
local expired, live = {}, {}
if max > 0 then
  for _, other in ipairs(ids('i')) do
    local rec, v = read(other)
    if not rec or rec[R.e] then
      remove_id('i', other)
    elseif NOW >= deadline(rec) then
      end_session(other, rec, 'expired', true)
      expired[#expired + 1] = other
    else
      live[#live + 1] = {other, rec, v}
    end
  end
  if policy == 'deny' and #live >= max then return {0, expired} end
end
local evicted = {}
local order = R.c
if policy == 'evict_lru' then order = R.la end
while max > 0 and #live >= max do
  local vi = 1
  for i = 2, #live do
    if live[i][2][order] < live[vi][2][order] then vi = i end
  end
  local victim = table.remove(live, vi)
  evicted[#evicted + 1] = victim[1]
  evicted[#evicted + 1] = victim[3]
  end_session(victim[1], victim[2], 'max_sessions_exceeded', false)
end
local rec = blank()
for i = 1, 7 do rec[i] = ARGV[8 + i] end
for i = 8, 11 do rec[i] = tonumber(ARGV[8 + i]) end
if rec[R.li] == rec[R.ip] then rec[R.li] = false end
if rt ~= '' then
  rec[R.rt] = rt
  redis.call('HSET', H, 'r' .. rt, refresh_entry(sid, tonumber(ARGV[8]), ''))
end
outbox('c', sid, write(sid, rec), {'h', ARGV[20], 'y', ARGV[8]})
add_id('i', sid)
redis.call('HSET', own, sid, UID)
redis.call('INCR', LIVE)
keep_until(H, rec[R.ax] + TTL)
keep_until(own, rec[R.ax])
keep_until(LIVE, rec[R.ax] + TTL)
schedule(deadline(rec))
keep_until(EXP, rec[R.ax] + TTL)
return {1, expired, evicted}
)lua";

// ARGV[4] sid, [5] ip.
// Reply: {0} unknown; {1, reason} ended; {2} ended now as expired; {3, record, changed}.
constexpr const char* kValidate = R"lua(
local sid = ARGV[4]
local rec, packed = read(sid)
if not rec then return {0} end
if rec[R.e] then
  local reason = tombstone_reason(rec)
  if reason then return {1, reason} end
  return {0}
end
if NOW >= deadline(rec) then
  end_session(sid, rec, 'expired', true)
  return {2}
end
local changed
changed, packed = touch(sid, rec, packed, ARGV[5], false)
return {3, packed, changed}
)lua";

// ARGV[4] presented T, [5] successor T, [6] successor's full hash, [7] sealed successor,
// [8] successor expiry, [9] grace (ms), [10] refresh_per_session count (0: none), [11] its
// window (ms); the ip last.
// Reply: {0} unknown; {1, reason} ended; {2, sid} ended now as expired;
// {3, sid, record, changed} rotated; {4, sid, record, changed, successor hash, sealed,
// rotated_at} grace; {5, sid, record} reuse (the session was ended); {6, retry after (ms)} the
// session's refresh limit is full (nothing changed). The limit's log is <p>:rl:refresh:<sid>, a
// sorted set of hit times like rate_limit's.
constexpr const char* kRotate = R"lua(
local presented, successor, grace = ARGV[4], ARGV[5], tonumber(ARGV[9])
local limit, window = tonumber(ARGV[10]), tonumber(ARGV[11])
-- Counts one refresh of the session; the wait (ms) when its limit is full.
local function limited(sid)
  if limit < 1 then return nil end
  local key = P .. 'rl:refresh:' .. sid
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ms(NOW - window))
  local held = redis.call('ZCARD', key)
  if held >= limit then
    local hit = redis.call('ZRANGE', key, held - limit, held - limit, 'WITHSCORES')
    return math.max(tonumber(hit[2]) + window - NOW, 1)
  end
  local same_ms = redis.call('ZCOUNT', key, ms(NOW), ms(NOW))
  redis.call('ZADD', key, ms(NOW), ms(NOW) .. '-' .. same_ms)
  redis.call('PEXPIRE', key, ms(window))
  return nil
end
local entry = redis.call('HGET', H, 'r' .. presented)
if not entry then return {0} end
local sid, x = parse_refresh(entry)
local rec, packed = read(sid)
if not rec or not x then return {0} end
if rec[R.e] then
  -- Each hash of an ended session answers as long as the tombstone does, or less when the
  -- token expired before the session ended.
  if NOW >= math.min(x, rec[R.ea]) + TTL then return {0} end
  return {1, rec[R.e]}
end
if NOW >= deadline(rec) then
  end_session(sid, rec, 'expired', true)
  return {2, sid}
end
if NOW >= x then return {0} end
local in_grace = rec[R.gp] == presented and NOW - rec[R.gr] < grace and NOW < rec[R.gu]
if rec[R.rt] == presented or in_grace then
  local wait = limited(sid)
  if wait then return {6, wait} end
end
local changed
if rec[R.rt] == presented then
  if redis.call('HEXISTS', H, 'r' .. successor) == 1 then
    return redis.error_reply('ERR duplicate refresh-token hash')
  end
  redis.call('HSET', H, 'r' .. successor, refresh_entry(sid, tonumber(ARGV[8]), presented))
  rec[R.rt] = successor
  rec[R.gp], rec[R.gs], rec[R.gb] = presented, ARGV[6], ARGV[7]
  rec[R.gr], rec[R.gu] = NOW, NOW + grace
  changed, packed = touch(sid, rec, packed, IP, true)
  outbox('r', sid, packed, {'h', ARGV[6], 'y', ARGV[8]})
  return {3, sid, packed, changed}
end
if in_grace then
  changed, packed = touch(sid, rec, packed, IP, false)
  return {4, sid, packed, changed, rec[R.gs], rec[R.gb], ms(rec[R.gr])}
end
end_session(sid, rec, 'refresh_token_reuse', false)
return {5, sid, packed}
)lua";

// ARGV[4] sid, [5] reason.
// Reply: {0} not a live session; {1, record} ended now; {2} found past its deadline: ended as
// expired (not by this reason).
constexpr const char* kRevoke = R"lua(
local sid = ARGV[4]
local rec, packed = read(sid)
if not rec or rec[R.e] then return {0} end
if NOW >= deadline(rec) then
  end_session(sid, rec, 'expired', true)
  return {2}
end
end_session(sid, rec, ARGV[5], false)
return {1, packed}
)lua";

// ARGV[4] reason, [5] the session id to keep ('' for none).
// Reply: {ended {sid, record} pairs flattened, expired sids}.
constexpr const char* kRevokeAll = R"lua(
local ended, expired = {}, {}
for _, sid in ipairs(ids('i')) do
  local rec, packed = read(sid)
  if not rec or rec[R.e] then
    remove_id('i', sid)
  elseif NOW >= deadline(rec) then
    end_session(sid, rec, 'expired', true)
    expired[#expired + 1] = sid
  elseif sid ~= ARGV[5] then
    end_session(sid, rec, ARGV[4], false)
    ended[#ended + 1] = sid
    ended[#ended + 1] = packed
  end
end
return {ended, expired}
)lua";

// Reply: the live sessions as {sid, record} pairs, flattened (unordered). Read only.
constexpr const char* kList = R"lua(
local out = {}
for _, sid in ipairs(ids('i')) do
  local rec, packed = read(sid)
  if rec and not rec[R.e] and NOW < deadline(rec) then
    out[#out + 1] = sid
    out[#out + 1] = packed
  end
end
return out
)lua";

// collect_expired's step for one user. ARGV[4] the most sessions to report.
// Ends (reason expired) the live sessions past their deadline, reports the expiries found earlier
// on the request path, removes tombstones (and their refresh hashes) whose lifetime is over, and
// schedules the user's next look (or drops the user from p:exp, and its hash, when nothing is
// left). Reply: the reported sessions as {sid, record} pairs, flattened.
constexpr const char* kCollect = R"lua(
local room = tonumber(ARGV[4])
local out = {}
local next_at = nil
local function look_at(t)
  if not next_at or t < next_at then next_at = t end
end
local function report(sid, packed)
  out[#out + 1] = sid
  out[#out + 1] = packed
  room = room - 1
end
for _, sid in ipairs(ids('i')) do
  local rec, packed = read(sid)
  if not rec or rec[R.e] then
    remove_id('i', sid)
  elseif NOW < deadline(rec) then
    look_at(deadline(rec))
  elseif room > 0 then
    end_session(sid, rec, 'expired', false)
    report(sid, packed)
  else
    look_at(NOW)
  end
end
for _, sid in ipairs(ids('t')) do
  local rec = read(sid)
  if rec and rec[R.ep] then
    if room > 0 then
      local fields = blank()
      for i = 1, 11 do fields[i] = rec[i] end
      local packed = cmsgpack.pack(fields)
      outbox('e', sid, packed, {'x', 'expired'})
      report(sid, packed)
      for i = 1, 11 do rec[i] = false end
      rec[R.ep] = false
      write(sid, rec)
    else
      look_at(NOW)
    end
  end
  if not rec then
    remove_id('t', sid)
  elseif not rec[R.ep] and NOW >= rec[R.ea] + TTL then
    local hash = rec[R.rt]
    while hash and hash ~= '' do
      local entry = redis.call('HGET', H, 'r' .. hash)
      redis.call('HDEL', H, 'r' .. hash)
      if not entry then break end
      local _, _, predecessor = parse_refresh(entry)
      hash = predecessor
    end
    redis.call('HDEL', H, 's' .. sid)
    remove_id('t', sid)
  else
    look_at(rec[R.ea] + TTL)
  end
end
if next_at then
  redis.call('ZADD', EXP, ms(next_at), UID)
else
  redis.call('ZREM', EXP, UID)
  redis.call('DEL', H)
end
return out
)lua";

// ARGV[4] sid, [5] reason, [6] the session's last refresh hash T ('' for none). NOW is the time
// it ended. Reply: 1.
constexpr const char* kRestoreTombstone = R"lua(
local sid, rt = ARGV[4], ARGV[6]
if redis.call('HEXISTS', H, 's' .. sid) == 0 then
  local t = blank()
  t[R.e], t[R.ea] = ARGV[5], NOW
  if rt ~= '' then
    t[R.rt] = rt
    if redis.call('HEXISTS', H, 'r' .. rt) == 0 then
      redis.call('HSET', H, 'r' .. rt, refresh_entry(sid, NOW, ''))
    end
  end
  write(sid, t)
  add_id('t', sid)
  keep_until(H, NOW + TTL)
  schedule(NOW + TTL)
  keep_until(EXP, NOW + TTL)
end
return 1
)lua";

Script with_prelude(const char* body) { return make_script(std::string(kPrelude) + body); }

// KEYS: the limits' logs (p:rl:<key>). ARGV[1] now, [2] '1' to count a hit, '0' to only check;
// then for the i-th key, [1 + 2i] its count and [2 + 2i] its window (ms).
// Reply: {1} allowed (and counted); {0, index of the full limit (from 0), retry after (ms)}.
// Every limit is checked before any hit is counted: a refusal counts nothing.
constexpr const char* kRateLimit = R"lua(
local NOW = tonumber(ARGV[1])
local counting = ARGV[2] == '1'
local function ms(n) return string.format('%d', n) end
-- A key named twice in one call needs room for each of its hits.
local pending = {}
for i, key in ipairs(KEYS) do
  local limit, window = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  -- A hit counts while NOW < its time + window.
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ms(NOW - window))
  local held = redis.call('ZCARD', key)
  local earlier = pending[key] or 0
  if held + earlier >= limit then
    -- Room comes when the hit that leaves limit - earlier - 1 newer ones stops counting.
    local leaving = held + earlier - limit
    local wait = window
    if leaving < held then
      local hit = redis.call('ZRANGE', key, leaving, leaving, 'WITHSCORES')
      wait = tonumber(hit[2]) + window - NOW
    end
    return {0, i - 1, math.max(wait, 1)}
  end
  if counting then pending[key] = earlier + 1 end
end
if counting then
  for i, key in ipairs(KEYS) do
    local window = tonumber(ARGV[2 + 2 * i])
    local same_ms = redis.call('ZCOUNT', key, ms(NOW), ms(NOW))
    redis.call('ZADD', key, ms(NOW), ms(NOW) .. '-' .. same_ms)
    local latest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
    redis.call('PEXPIRE', key, ms(math.max(tonumber(latest[2]) + window - NOW, 1)))
  end
end
return {1}
)lua";

// KEYS: the limits' logs. Removes the latest hit of each (a log left empty goes). Reply: 1.
constexpr const char* kRateRefund = R"lua(
for _, key in ipairs(KEYS) do redis.call('ZPOPMAX', key) end
return 1
)lua";

// KEYS[1] p:otp:<key>. ARGV[1] now, [2] the code's hash, [3] its expiry (Unix ms), [4] attempts.
// Reply: 1.
constexpr const char* kOtpPut = R"lua(
local NOW, expires = tonumber(ARGV[1]), tonumber(ARGV[3])
redis.call('DEL', KEYS[1])
if NOW < expires then
  redis.call('HSET', KEYS[1], 'h', ARGV[2], 'a', ARGV[4], 'x', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], string.format('%d', expires - NOW))
end
return 1
)lua";

// KEYS[1] p:otp:<key>. ARGV[1] now, [2] the hash of the code presented.
// Reply: 0 none, 1 accepted, 2 wrong, 3 burned. HSET keeps the key's TTL.
constexpr const char* kOtpCheck = R"lua(
local v = redis.call('HMGET', KEYS[1], 'h', 'a', 'x')
if not v[1] then return 0 end
if tonumber(ARGV[1]) >= tonumber(v[3]) then
  redis.call('DEL', KEYS[1])
  return 0
end
if v[1] == ARGV[2] then
  redis.call('DEL', KEYS[1])
  return 1
end
local left = tonumber(v[2]) - 1
if left <= 0 then
  redis.call('DEL', KEYS[1])
  return 3
end
redis.call('HSET', KEYS[1], 'a', left)
return 2
)lua";

// KEYS[1] p:lease:<name>. ARGV[1] now, [2] holder, [3] ttl (ms). Reply: 1 held (taken or
// renewed), 0 another holder's lease runs.
constexpr const char* kLeaseAcquire = R"lua(
local NOW = tonumber(ARGV[1])
local v = redis.call('GET', KEYS[1])
if v then
  local sep = string.find(v, ':', 1, true)
  local ends = sep and tonumber(string.sub(v, 1, sep - 1))
  if ends and NOW < ends and string.sub(v, sep + 1) ~= ARGV[2] then return 0 end
end
redis.call('SET', KEYS[1], string.format('%d', NOW + tonumber(ARGV[3])) .. ':' .. ARGV[2], 'PX',
           ARGV[3])
return 1
)lua";

// KEYS[1] p:lease:<name>. ARGV[1] holder. Reply: 1.
constexpr const char* kLeaseRelease = R"lua(
local v = redis.call('GET', KEYS[1])
local sep = v and string.find(v, ':', 1, true)
if sep and string.sub(v, sep + 1) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
)lua";

}  // namespace

const SessionScripts& session_scripts() {
  static const SessionScripts scripts{
      with_prelude(kCreate),  with_prelude(kValidate),         with_prelude(kRotate),
      with_prelude(kRevoke),  with_prelude(kRevokeAll),        with_prelude(kList),
      with_prelude(kCollect), with_prelude(kRestoreTombstone),
  };
  return scripts;
}

const GuardScripts& guard_scripts() {
  static const GuardScripts scripts{
      make_script(kRateLimit), make_script(kRateRefund),   make_script(kOtpPut),
      make_script(kOtpCheck),  make_script(kLeaseAcquire), make_script(kLeaseRelease),
  };
  return scripts;
}

}  // namespace sessiond::store::redis
