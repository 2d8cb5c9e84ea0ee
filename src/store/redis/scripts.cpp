#include "store/redis/scripts.hpp"

#include <string>

// Keys of one user (prefix P = "<p>:{u<id>}:"):
//   P s:<sid>    the session: a MessagePack array (cmsgpack; one string value, because a hash
//                with a user agent or a sealed successor over 64 bytes leaves Redis's compact
//                listpack encoding and takes 2-3 times the memory). Positions: see R below.
//                Live: the Session fields, the current refresh hash (hex) and, for the latest
//                rotation within its grace, its predecessor, successor, sealed successor, time and
//                grace end. Ended (a tombstone): reason and end time; `ep` while an expiry found on
//                the request path waits for collect_expired to report it (the session fields
//                stay until then; otherwise they are dropped).
//   P idx        sorted set of live session ids, scored by created_at.
//   P rt:<hex>   "<sid>|<expires ms>|<predecessor hex>": one refresh hash, current or rotated out
//                (kept for reuse detection); the predecessors chain them newest to oldest.
// TTLs are relative to the request's `now` (PX / PEXPIRE, never PEXPIREAT): the times are the
// caller's clock, and a node's clock never makes Redis drop a key early.
//
// Lua numbers are doubles: Unix ms are exact integers in them; cmsgpack stores them as integers,
// and string.format('%d') writes them as text (tostring would give "1.8e+12").
//
// To read a session by hand:
//   redis-cli EVAL "return cjson.encode(cmsgpack.unpack(redis.call('GET', KEYS[1])))" 1 <key>

namespace sessiond::store::redis {
namespace {

constexpr const char* kPrelude = R"lua(
local P = ARGV[1]
local NOW = tonumber(ARGV[2])
local TTL = tonumber(ARGV[3])
local IDX = P .. 'idx'
-- Positions in a session record. 1-11 are what session_reply returns.
local R = {r = 1, a = 2, m = 3, d = 4, ip = 5, li = 6, ua = 7, c = 8, la = 9, ax = 10, it = 11,
           rt = 12, gp = 13, gs = 14, gb = 15, gr = 16, gu = 17, e = 18, ea = 19, ep = 20}
local SIZE = 20

local function ms(n) return string.format('%d', n) end
local function skey(sid) return P .. 's:' .. sid end
local function rkey(hex) return P .. 'rt:' .. hex end

-- Absent positions hold false: a nil would make cmsgpack write a map instead of an array.
local function blank()
  local rec = {}
  for i = 1, SIZE do rec[i] = false end
  return rec
end

-- nil when there is no such key; else the record (rec[R.e] set once the session ended).
local function read(k)
  local v = redis.call('GET', k)
  if not v then return nil end
  return cmsgpack.unpack(v)
end

-- life: ms from NOW; nil keeps the key's TTL.
local function write(k, rec, life)
  if life then
    redis.call('SET', k, cmsgpack.pack(rec), 'PX', ms(math.max(life, 1)))
  else
    redis.call('SET', k, cmsgpack.pack(rec), 'KEEPTTL')
  end
end

local function deadline(rec) return math.min(rec[R.la] + rec[R.it], rec[R.ax]) end

-- The session as the C++ side decodes it: {sid, r, a, m, d, ip, li, ua, c, la, ax, it}.
local function session_reply(sid, rec)
  local v = {sid}
  for i = 1, 11 do v[i + 1] = rec[i] end
  return v
end

-- A tombstone answers its reason for TTL after the end, then nothing.
local function tombstone_reason(rec)
  if rec[R.ea] and NOW < rec[R.ea] + TTL then return rec[R.e] end
  return nil
end

-- The session ended at NOW: every refresh hash of its chain answers `ended` as long as its
-- tombstone does (one that expired earlier keeps its own, shorter, life).
local function retire_chain(hex)
  while hex and hex ~= '' do
    local key = rkey(hex)
    local v = redis.call('GET', key)
    if not v then return end
    local x, prev = string.match(v, '^[^|]*|(%d+)|(%x*)$')
    if not x then return end
    local left = math.min(tonumber(x), NOW) - NOW + TTL
    if left > 0 then
      redis.call('PEXPIRE', key, ms(left))
    else
      redis.call('DEL', key)
    end
    hex = prev
  end
end

-- Turns the live session `rec` in k into a tombstone. `pending`: an expiry found outside
-- collect_expired, which keeps the fields so that collect_expired can report it once.
local function end_session(sid, k, rec, reason, pending)
  local t = blank()
  if pending then
    for i = 1, 11 do t[i] = rec[i] end
    t[R.ep] = 1
  end
  t[R.e] = reason
  t[R.ea] = NOW
  write(k, t, TTL)
  redis.call('ZREM', IDX, sid)
  if rec[R.rt] then retire_chain(rec[R.rt]) end
end

-- Moves last_activity (when it moved at least a second) and last_ip, drops a grace that is over,
-- and writes the record when anything changed (`dirty`: the caller changed it too). Returns 1
-- when the activity changed (for collect_activity).
local function touch(k, rec, ip, dirty)
  local changed, moved = 0, false
  if NOW - rec[R.la] >= 1000 then
    rec[R.la] = NOW
    changed, moved = 1, true
  end
  if ip ~= '' and rec[R.li] ~= ip then
    rec[R.li] = ip
    changed = 1
  end
  if rec[R.gu] and NOW >= rec[R.gu] then
    for i = R.gp, R.gu do rec[i] = false end
    dirty = true
  end
  if moved then
    write(k, rec, deadline(rec) - NOW + TTL)
  elseif changed == 1 or dirty then
    write(k, rec, nil)
  end
  return changed
end
)lua";

// KEYS[1] = P idx, KEYS[2] = P s:<sid>. ARGV[4] sid, [5] max sessions (0: no limit, for
// restore), [6] on_limit, [7] refresh hash ('' for none), [8] its expiry, [9..19] the fields
// r a m d ip li ua c la ax it. NOW is the creation time.
// Reply: {0, expired sids} when denied; {1, expired sids, evicted sessions}. Expired sids are
// sessions found past their deadline and ended (reported later by collect_expired).
constexpr const char* kCreate = R"lua(
local sid, max, policy, rt = ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7]
local k = KEYS[2]
if redis.call('EXISTS', k) == 1 then return redis.error_reply('ERR duplicate session id') end
if rt ~= '' and redis.call('EXISTS', rkey(rt)) == 1 then
  return redis.error_reply('ERR duplicate refresh-token hash')
end
local expired, live = {}, {}
if max > 0 then
  for _, other in ipairs(redis.call('ZRANGE', IDX, 0, -1)) do
    local ok = skey(other)
    local rec = read(ok)
    if not rec or rec[R.e] then
      redis.call('ZREM', IDX, other)
    elseif NOW >= deadline(rec) then
      end_session(other, ok, rec, 'expired', true)
      expired[#expired + 1] = other
    else
      live[#live + 1] = {other, rec}
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
  evicted[#evicted + 1] = session_reply(victim[1], victim[2])
  end_session(victim[1], skey(victim[1]), victim[2], 'max_sessions_exceeded', false)
end
local rec = blank()
for i = 1, 7 do rec[i] = ARGV[8 + i] end
for i = 8, 11 do rec[i] = tonumber(ARGV[8 + i]) end
if rt ~= '' then rec[R.rt] = rt end
write(k, rec, deadline(rec) - NOW + TTL)
redis.call('ZADD', IDX, ARGV[16], sid)
local idx_life = math.max(rec[R.ax] - NOW, 1)
if redis.call('PTTL', IDX) < idx_life then redis.call('PEXPIRE', IDX, ms(idx_life)) end
if rt ~= '' then
  local life = math.max(tonumber(ARGV[8]) - NOW + TTL, 1)
  redis.call('SET', rkey(rt), sid .. '|' .. ARGV[8] .. '|', 'PX', ms(life))
end
return {1, expired, evicted}
)lua";

// KEYS[1] = P s:<sid>. ARGV[4] sid, [5] ip.
// Reply: {0} unknown; {1, reason} ended; {2} ended now as expired; {3, session, changed}.
constexpr const char* kValidate = R"lua(
local k, sid = KEYS[1], ARGV[4]
local rec = read(k)
if not rec then return {0} end
if rec[R.e] then
  local reason = tombstone_reason(rec)
  if reason then return {1, reason} end
  return {0}
end
if NOW >= deadline(rec) then
  end_session(sid, k, rec, 'expired', true)
  return {2}
end
local changed = touch(k, rec, ARGV[5], false)
return {3, session_reply(sid, rec), changed}
)lua";

// KEYS[1] = P rt:<presented>, KEYS[2] = P rt:<successor>. ARGV[4] presented hex, [5] successor
// hex, [6] sealed successor, [7] successor expiry, [8] grace (ms), [9] ip.
// Reply: {0} unknown; {1, reason} ended; {2, sid} ended now as expired;
// {3, session, changed} rotated; {4, session, changed, successor hex, sealed, rotated_at} grace;
// {5, session} reuse (the session was ended).
constexpr const char* kRotate = R"lua(
local v = redis.call('GET', KEYS[1])
if not v then return {0} end
local sid, x = string.match(v, '^([^|]+)|(%d+)|')
if not sid then return redis.error_reply('ERR malformed refresh entry') end
local k = skey(sid)
local rec = read(k)
if not rec then return {0} end
if rec[R.e] then
  local reason = tombstone_reason(rec)
  if reason then return {1, reason} end
  return {0}
end
if NOW >= deadline(rec) then
  end_session(sid, k, rec, 'expired', true)
  return {2, sid}
end
if NOW >= tonumber(x) then return {0} end
local presented, successor, grace = ARGV[4], ARGV[5], tonumber(ARGV[8])
if rec[R.rt] == presented then
  if redis.call('EXISTS', KEYS[2]) == 1 then
    return redis.error_reply('ERR duplicate refresh-token hash')
  end
  local life = math.max(tonumber(ARGV[7]) - NOW + TTL, 1)
  redis.call('SET', KEYS[2], sid .. '|' .. ARGV[7] .. '|' .. presented, 'PX', ms(life))
  rec[R.rt] = successor
  rec[R.gp], rec[R.gs], rec[R.gb] = presented, successor, ARGV[6]
  rec[R.gr], rec[R.gu] = NOW, NOW + grace
  local changed = touch(k, rec, ARGV[9], true)
  return {3, session_reply(sid, rec), changed}
end
if rec[R.gp] == presented and NOW - rec[R.gr] < grace and NOW < rec[R.gu] then
  local changed = touch(k, rec, ARGV[9], false)
  return {4, session_reply(sid, rec), changed, rec[R.gs], rec[R.gb], ms(rec[R.gr])}
end
end_session(sid, k, rec, 'refresh_token_reuse', false)
return {5, session_reply(sid, rec)}
)lua";

// KEYS[1] = P s:<sid>. ARGV[4] sid, [5] reason.
// Reply: {0} not a live session; {1, session} ended now; {2} found past its deadline: ended as
// expired (not by this reason).
constexpr const char* kRevoke = R"lua(
local k, sid = KEYS[1], ARGV[4]
local rec = read(k)
if not rec or rec[R.e] then return {0} end
if NOW >= deadline(rec) then
  end_session(sid, k, rec, 'expired', true)
  return {2}
end
end_session(sid, k, rec, ARGV[5], false)
return {1, session_reply(sid, rec)}
)lua";

// KEYS[1] = P idx. ARGV[4] reason, [5] the session id to keep ('' for none).
// Reply: {ended sessions, expired sids}.
constexpr const char* kRevokeAll = R"lua(
local ended, expired = {}, {}
for _, sid in ipairs(redis.call('ZRANGE', IDX, 0, -1)) do
  local k = skey(sid)
  local rec = read(k)
  if not rec or rec[R.e] then
    redis.call('ZREM', IDX, sid)
  elseif NOW >= deadline(rec) then
    end_session(sid, k, rec, 'expired', true)
    expired[#expired + 1] = sid
  elseif sid ~= ARGV[5] then
    end_session(sid, k, rec, ARGV[4], false)
    ended[#ended + 1] = session_reply(sid, rec)
  end
end
return {ended, expired}
)lua";

// KEYS[1] = P idx. Reply: the live sessions (unordered).
constexpr const char* kList = R"lua(
local out = {}
for _, sid in ipairs(redis.call('ZRANGE', IDX, 0, -1)) do
  local rec = read(skey(sid))
  if rec and not rec[R.e] and NOW < deadline(rec) then out[#out + 1] = session_reply(sid, rec) end
end
return out
)lua";

// KEYS[1] = P s:<sid>. Reply: 1 when the session is alive at NOW, else 0. Read only.
constexpr const char* kAlive = R"lua(
local rec = read(KEYS[1])
if rec and not rec[R.e] and NOW < deadline(rec) then return 1 end
return 0
)lua";

// KEYS[1] = P s:<sid>. ARGV[4] sid.
// Reply: {0} nothing to report (gone, or ended otherwise); {1, session} ended now as expired;
// {2, session} ended as expired earlier on the request path, reported now (once);
// {3, deadline} alive: check again at its deadline.
constexpr const char* kExpire = R"lua(
local k, sid = KEYS[1], ARGV[4]
local rec = read(k)
if not rec then return {0} end
if rec[R.e] then
  if not rec[R.ep] then return {0} end
  local reported = session_reply(sid, rec)
  for i = 1, 11 do rec[i] = false end
  rec[R.ep] = false
  write(k, rec, nil)
  return {2, reported}
end
if NOW >= deadline(rec) then
  end_session(sid, k, rec, 'expired', false)
  return {1, session_reply(sid, rec)}
end
return {3, ms(deadline(rec))}
)lua";

// KEYS[1] = P s:<sid>. ARGV[4] sid, [5] reason, [6] the session's last refresh hash ('' for
// none). NOW is the time it ended. Reply: 1.
constexpr const char* kRestoreTombstone = R"lua(
local k, sid, rt = KEYS[1], ARGV[4], ARGV[6]
if redis.call('EXISTS', k) == 0 then
  local t = blank()
  t[R.e], t[R.ea] = ARGV[5], NOW
  write(k, t, TTL)
end
if rt ~= '' and redis.call('EXISTS', rkey(rt)) == 0 then
  redis.call('SET', rkey(rt), sid .. '|' .. ms(NOW) .. '|', 'PX', ms(TTL))
end
return 1
)lua";

Script with_prelude(const char* body) { return make_script(std::string(kPrelude) + body); }

}  // namespace

const SessionScripts& session_scripts() {
  static const SessionScripts scripts{
      with_prelude(kCreate), with_prelude(kValidate),  with_prelude(kRotate),
      with_prelude(kRevoke), with_prelude(kRevokeAll), with_prelude(kList),
      with_prelude(kAlive),  with_prelude(kExpire),    with_prelude(kRestoreTombstone),
  };
  return scripts;
}

}  // namespace sessiond::store::redis
