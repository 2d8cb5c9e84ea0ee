#include "store/redis/redis_session_store.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <exception>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "store/redis/detail/record.hpp"
#include "store/redis/scripts.hpp"

// The key layout and the scripts are in scripts.cpp. Verify reads the session with one HGET and
// decodes it here (detail/record.hpp); only a session whose activity must move (a second or more
// since the last write, or a new IP) or whose time ran out goes through the validate script.

namespace sessiond::store {
namespace {

using redis::RedisClient;
using redis::Reply;
using redis::Script;

constexpr int kCollectRounds = 8;
constexpr Duration kMinLife{1};
// The validate script moves last_activity only when it moved this much (like the memory store).
constexpr Duration kTouchEvery{std::chrono::seconds{1}};

std::string ms(TimePoint t) { return std::to_string(to_unix_ms(t)); }
std::string ms(Duration d) { return std::to_string(d.count()); }

Error unexpected_reply() { return Error(Errc::internal, "unexpected reply from Redis"); }

// Redis answers these while it cannot serve (starting, failing over, out of memory, a read-only
// replica): the store is unavailable, not broken.
Error from_error_reply(const Reply& reply) {
  static constexpr std::string_view kUnavailable[] = {"LOADING",    "BUSY",        "MASTERDOWN",
                                                      "READONLY",   "CLUSTERDOWN", "TRYAGAIN",
                                                      "NOREPLICAS", "MISCONF",     "OOM"};
  for (std::string_view prefix : kUnavailable) {
    if (reply.str.starts_with(prefix)) {
      return Error(Errc::store_unavailable, "Redis cannot serve requests now");
    }
  }
  return Error(Errc::internal, "unexpected error reply from Redis");
}

bool is_noscript(const Reply& reply) {
  return reply.is_error() && reply.str.starts_with("NOSCRIPT");
}

// --- encoding of ids and hashes, decoding of replies ---

std::string raw(std::span<const std::uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}
std::string raw(const SessionId& id) { return raw(id.bytes); }
// A refresh hash in Redis: its first 16 bytes (the token itself is 256 random bits).
std::string short_hash(const TokenHash& h) { return raw(std::span(h).first(16)); }

std::optional<std::int64_t> as_int(const Reply& r) {
  if (r.type == Reply::Type::integer) return r.integer;
  if (r.type != Reply::Type::string && r.type != Reply::Type::status) return std::nullopt;
  std::int64_t value = 0;
  const char* end = r.str.data() + r.str.size();
  auto [ptr, ec] = std::from_chars(r.str.data(), end, value);
  if (ec != std::errc{} || ptr != end) return std::nullopt;
  return value;
}

// Strings, and nil (Lua false) as "".
std::string as_text(const Reply& r) {
  return r.type == Reply::Type::string || r.type == Reply::Type::status ? r.str : std::string();
}

bool is_array(const Reply& r, std::size_t min_size) {
  return r.type == Reply::Type::array && r.elements.size() >= min_size;
}

std::optional<SessionId> as_session_id(const Reply& r) {
  SessionId id;
  if (r.type != Reply::Type::string || r.str.size() != id.bytes.size()) return std::nullopt;
  std::memcpy(id.bytes.data(), r.str.data(), id.bytes.size());
  return id;
}

std::optional<TokenHash> as_hash(const Reply& r) {
  TokenHash h{};
  if (r.type != Reply::Type::string || r.str.size() != h.size()) return std::nullopt;
  std::memcpy(h.data(), r.str.data(), h.size());
  return h;
}

// A live session (or a pending expiry's fields) from its id and record.
std::optional<Session> decode_session(const SessionId& id, const Reply& packed, UserId user) {
  if (packed.type != Reply::Type::string) return std::nullopt;
  auto record = redis::detail::decode_record(packed.str, id, user);
  if (!record || !record->has_session) return std::nullopt;
  return std::move(record->session);
}
std::optional<Session> decode_session(const Reply& sid, const Reply& packed, UserId user) {
  auto id = as_session_id(sid);
  if (!id) return std::nullopt;
  return decode_session(*id, packed, user);
}

// {sid, record} pairs, flattened.
Result<std::vector<Session>> decode_sessions(const Reply& r, UserId user) {
  if (r.type != Reply::Type::array || r.elements.size() % 2 != 0) return unexpected_reply();
  std::vector<Session> out;
  out.reserve(r.elements.size() / 2);
  for (std::size_t i = 0; i < r.elements.size(); i += 2) {
    auto s = decode_session(r.elements[i], r.elements[i + 1], user);
    if (!s) return unexpected_reply();
    out.push_back(std::move(*s));
  }
  return out;
}

Result<std::vector<SessionId>> decode_ids(const Reply& r) {
  if (r.type != Reply::Type::array) return unexpected_reply();
  std::vector<SessionId> out;
  for (const Reply& e : r.elements) {
    auto id = as_session_id(e);
    if (!id) return unexpected_reply();
    out.push_back(*id);
  }
  return out;
}

std::vector<SessionId> ids_of(const std::vector<Session>& sessions) {
  std::vector<SessionId> ids;
  ids.reserve(sessions.size());
  for (const Session& s : sessions) ids.push_back(s.id);
  return ids;
}

// The fields of a new session, in the order the create script takes them (ARGV[9..19]).
void append_session_fields(std::vector<std::string>& args, const Session& s) {
  args.push_back(s.role);
  args.push_back(s.attributes);
  args.emplace_back(auth_method_name(s.auth_method));
  args.push_back(s.device_info);
  args.push_back(s.ip_address);
  args.push_back(s.last_ip.empty() ? s.ip_address : s.last_ip);
  args.push_back(s.user_agent);
  args.push_back(ms(s.created_at));
  args.push_back(ms(s.last_activity));
  args.push_back(ms(s.absolute_expires_at));
  args.push_back(ms(s.idle_timeout));
}

std::optional<UserId> parse_user(std::string_view text) {
  UserId user = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), user);
  if (ec != std::errc{} || ptr != text.data() + text.size() || user <= 0) return std::nullopt;
  return user;
}

std::vector<std::string> evalsha_command(const Script& script, const std::vector<std::string>& keys,
                                         const std::vector<std::string>& args) {
  std::vector<std::string> command{"EVALSHA", script.sha1, std::to_string(keys.size())};
  command.insert(command.end(), keys.begin(), keys.end());
  command.insert(command.end(), args.begin(), args.end());
  return command;
}

// --- the outbox ---

constexpr const char* kWriters = "writers";  // the consumer group of every node's writer

// KEYS[1] the lease, ARGV[1] the consumer, ARGV[2] its lifetime (ms). 1 when the consumer holds
// the lease (taken now or renewed), 0 when another does.
const Script& lease_script() {
  static const Script script = redis::make_script(R"lua(
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
)lua");
  return script;
}

// KEYS[1] the lease, ARGV[1] the consumer.
const Script& release_script() {
  static const Script script = redis::make_script(R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
)lua");
  return script;
}

// A stream id "<ms>-<seq>", for ordering.
std::pair<std::uint64_t, std::uint64_t> stream_order(std::string_view id) {
  std::pair<std::uint64_t, std::uint64_t> out{0, 0};
  const auto dash = id.find('-');
  std::from_chars(id.data(), id.data() + std::min(dash, id.size()), out.first);
  if (dash != std::string_view::npos) {
    std::from_chars(id.data() + dash + 1, id.data() + id.size(), out.second);
  }
  return out;
}

// One outbox entry's fields (see scripts.cpp) as a StoreChange; nullopt when malformed.
std::optional<StoreChange> decode_change(const Reply& fields) {
  if (fields.type != Reply::Type::array || fields.elements.size() % 2 != 0) return std::nullopt;
  std::unordered_map<std::string_view, const Reply*> f;
  for (std::size_t i = 0; i < fields.elements.size(); i += 2) {
    f.emplace(fields.elements[i].str, &fields.elements[i + 1]);
  }
  auto field = [&](std::string_view name) -> const Reply* {
    const auto it = f.find(name);
    return it == f.end() ? nullptr : it->second;
  };
  const Reply* kind = field("k");
  const Reply* user_text = field("u");
  const Reply* sid = field("s");
  const Reply* packed = field("r");
  const Reply* at = field("t");
  if (kind == nullptr || user_text == nullptr || sid == nullptr || packed == nullptr ||
      at == nullptr) {
    return std::nullopt;
  }
  const auto user = parse_user(as_text(*user_text));
  const auto id = as_session_id(*sid);
  const auto at_ms = as_int(*at);
  if (!user || !id || !at_ms || packed->type != Reply::Type::string) return std::nullopt;
  auto record = redis::detail::decode_record(packed->str, *id, *user);
  if (!record || !record->has_session) return std::nullopt;

  StoreChange change;
  change.session = std::move(record->session);
  change.at = from_unix_ms(*at_ms);
  if (const Reply* ip = field("ip")) change.ip = as_text(*ip);
  const std::string& k = kind->str;
  if (k == "c" || k == "r") {
    change.kind = k == "c" ? StoreChange::Kind::created : StoreChange::Kind::rotated;
    const Reply* hash = field("h");
    const Reply* expiry = field("y");
    auto h = hash != nullptr ? as_hash(*hash) : std::nullopt;
    auto y = expiry != nullptr ? as_int(*expiry) : std::nullopt;
    if (!h || !y) return std::nullopt;
    change.refresh_hash = *h;
    change.refresh_expires_at = std::min(from_unix_ms(*y), change.session.absolute_expires_at);
    return change;
  }
  if (k == "e") {
    const Reply* why = field("x");
    auto reason = why != nullptr ? parse_reason(as_text(*why)) : std::nullopt;
    if (!reason) return std::nullopt;
    change.kind = StoreChange::Kind::ended;
    change.reason = *reason;
    // An expiry happened at the deadline, whenever it was noticed; the address is the session's.
    if (*reason == EndReason::expired) {
      change.at = change.session.expires_at();
      if (change.ip.empty()) change.ip = change.session.last_ip;
    }
    return change;
  }
  return std::nullopt;
}

// Appends the entries of an XREADGROUP reply ({{stream, {{id, fields}...}}}, or nil) or of
// XAUTOCLAIM's second element ({{id, fields}...}). Entries deleted meanwhile have nil fields:
// they come with no change, to be acknowledged.
bool append_entries(const Reply& list, std::vector<OutboxEntry>& out) {
  if (list.type != Reply::Type::array) return false;
  for (const Reply& e : list.elements) {
    if (!is_array(e, 2) || e.elements[0].type != Reply::Type::string) return false;
    OutboxEntry entry;
    entry.id = e.elements[0].str;
    if (!e.elements[1].is_nil()) entry.change = decode_change(e.elements[1]);
    out.push_back(std::move(entry));
  }
  return true;
}
bool append_read(const Reply& reply, std::vector<OutboxEntry>& out) {
  if (reply.is_nil()) return true;
  if (reply.type != Reply::Type::array) return false;
  for (const Reply& stream : reply.elements) {
    if (!is_array(stream, 2) || !append_entries(stream.elements[1], out)) return false;
  }
  return true;
}

}  // namespace

struct RedisSessionStore::Impl {
  Impl(std::shared_ptr<RedisClient> c, RedisStoreOptions o)
      : client(std::move(c)),
        options(std::move(o)),
        exp_key(options.prefix + ":exp"),
        live_key(options.prefix + ":live"),
        outbox_key(options.prefix + ":outbox") {
    options.tombstone_ttl = std::max(options.tombstone_ttl, kMinLife);
  }

  std::shared_ptr<RedisClient> client;
  RedisStoreOptions options;
  const redis::SessionScripts& scripts = redis::session_scripts();
  std::string exp_key;
  std::string live_key;
  std::string outbox_key;

  mutable std::mutex mu;  // guards the members below
  std::unordered_map<SessionId, ActivityChange, SessionIdHash> activity;
  std::vector<std::string> warnings;
  bool checked = false;

  // --- keys and arguments ---

  std::string user_key(UserId user) const {
    return options.prefix + ":{u" + std::to_string(user) + "}";
  }
  // KEYS of every script; the outbox is left out when it is off, and for restore (what is
  // restored comes from the database).
  std::vector<std::string> keys(UserId user, bool with_outbox = true) const {
    std::vector<std::string> out{user_key(user), exp_key, live_key};
    if (with_outbox && options.outbox) out.push_back(outbox_key);
    return out;
  }
  // The hash holding the session's owner: one of 4096, by the id's first 12 bits.
  std::string own_key(const SessionId& id) const {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string key = options.prefix + ":own:";
    key.push_back(kHex[id.bytes[0] >> 4U]);
    key.push_back(kHex[id.bytes[0] & 0xFU]);
    key.push_back(kHex[id.bytes[1] >> 4U]);
    return key;
  }
  // ARGV[1..3] of every script.
  std::vector<std::string> args(UserId user, TimePoint now) const {
    return {ms(now), ms(options.tombstone_ttl), std::to_string(user)};
  }

  // --- calls ---

  // One command; a Redis error reply becomes an Error.
  boost::asio::awaitable<Result<Reply>> command(std::vector<std::string> args) {
    Result<Reply> reply = co_await client->command(std::move(args));
    if (reply && reply->is_error()) co_return from_error_reply(*reply);
    co_return reply;
  }

  // One script call on keys of its own (rate limits, codes, leases); a Redis error reply becomes
  // an Error.
  boost::asio::awaitable<Result<Reply>> eval(const Script& script, std::vector<std::string> keys,
                                             std::vector<std::string> argv) {
    Result<Reply> reply = co_await client->eval(script, std::move(keys), std::move(argv));
    if (reply && reply->is_error()) co_return from_error_reply(*reply);
    co_return reply;
  }

  // One script call on `user`'s keys with ARGV = args(user, now) + extra + the request's address
  // (which every script takes last).
  boost::asio::awaitable<Result<Reply>> run(const Script& script, UserId user, TimePoint now,
                                            std::vector<std::string> extra, std::string ip = {},
                                            bool with_outbox = true) {
    std::vector<std::string> argv = args(user, now);
    argv.insert(argv.end(), std::make_move_iterator(extra.begin()),
                std::make_move_iterator(extra.end()));
    argv.push_back(std::move(ip));
    Result<Reply> reply = co_await client->eval(script, keys(user, with_outbox), std::move(argv));
    if (reply && reply->is_error()) co_return from_error_reply(*reply);
    co_return reply;
  }

  // The session record in the user's hash, decoded; nullopt when there is none.
  boost::asio::awaitable<Result<std::optional<redis::detail::Record>>> read(UserId user,
                                                                            const SessionId& id) {
    std::optional<redis::detail::Record> out;
    std::vector<std::string> hget{"HGET", user_key(user), "s" + raw(id)};
    auto reply = co_await command(std::move(hget));
    if (!reply) co_return reply.error();
    if (reply->is_nil()) co_return out;
    if (reply->type != Reply::Type::string) co_return unexpected_reply();
    out = redis::detail::decode_record(reply->str, id, user);
    if (!out) co_return unexpected_reply();
    co_return out;
  }

  // --- activity seen by this node ---

  void record_activity(const Session& s) {
    std::lock_guard lock(mu);
    activity.insert_or_assign(s.id,
                              ActivityChange{s.id, s.last_activity, s.last_ip, s.expires_at()});
  }
  void forget_activity(const std::vector<SessionId>& ids) {
    std::lock_guard lock(mu);
    for (const SessionId& id : ids) activity.erase(id);
  }

  // --- operations shared by the interface and restore ---

  // `restoring`: no limit, and TTLs counted from the session's last activity.
  boost::asio::awaitable<Result<CreateOutcome>> create(CreateRequest request, bool restoring) {
    const Session& s = request.session;
    const UserId user = s.user_id;
    const TimePoint now = restoring ? s.last_activity : s.created_at;
    const bool has_refresh = request.refresh_hash != TokenHash{};
    std::vector<std::string> extra{raw(s.id),
                                   restoring ? "0" : std::to_string(request.max_sessions),
                                   std::string(on_limit_name(request.on_limit)),
                                   has_refresh ? short_hash(request.refresh_hash) : std::string(),
                                   ms(request.refresh_expires_at)};
    append_session_fields(extra, s);
    extra.push_back(raw(request.refresh_hash));
    auto reply =
        co_await run(scripts.create, user, now, std::move(extra), s.ip_address, !restoring);
    if (!reply) co_return reply.error();

    const auto status = is_array(*reply, 2) ? as_int(reply->elements[0]) : std::nullopt;
    if (!status || (*status != 0 && *status != 1)) co_return unexpected_reply();
    auto expired = decode_ids(reply->elements[1]);
    if (!expired) co_return expired.error();
    forget_activity(*expired);
    if (*status == 0) {
      co_return Error(Errc::session_limit, "the user has as many sessions as the role allows");
    }
    if (reply->elements.size() != 3) co_return unexpected_reply();
    auto evicted = decode_sessions(reply->elements[2], user);
    if (!evicted) co_return evicted.error();
    forget_activity(ids_of(*evicted));
    CreateOutcome out;
    out.evicted = std::move(*evicted);
    co_return out;
  }

  boost::asio::awaitable<Result<void>> restore_all(std::vector<RestoredSession> sessions,
                                                   std::vector<RestoredTombstone> tombstones) {
    for (RestoredSession& restored : sessions) {
      CreateRequest request;
      request.session = std::move(restored.session);
      request.refresh_hash = restored.refresh_hash;
      request.refresh_expires_at = restored.refresh_expires_at;
      auto created = co_await create(std::move(request), true);
      if (!created) co_return created.error();
    }
    for (const RestoredTombstone& t : tombstones) {
      std::vector<std::string> extra{
          raw(t.id), std::string(reason_name(t.reason)),
          t.refresh_hash != TokenHash{} ? short_hash(t.refresh_hash) : std::string()};
      auto reply = co_await run(scripts.restore_tombstone, t.user_id, t.ended_at, std::move(extra),
                                {}, false);
      if (!reply) co_return reply.error();
    }
    Result<void> done = boost::system::in_place_value;
    co_return done;
  }

  boost::asio::awaitable<Result<std::vector<Session>>> collect_expired(TimePoint now,
                                                                       std::size_t max) {
    std::vector<Session> out;
    for (int round = 0; round < kCollectRounds && out.size() < max; ++round) {
      const std::size_t want = max - out.size();
      std::vector<std::string> range{"ZRANGEBYSCORE",     exp_key, "-inf", ms(now), "LIMIT", "0",
                                     std::to_string(want)};
      auto due = co_await command(std::move(range));
      if (!due) co_return due.error();
      if (due->type != Reply::Type::array) co_return unexpected_reply();
      if (due->elements.empty()) break;

      // Each due user gets an equal share of what is left to report (at least one): a user with
      // more left over is scheduled at `now` again and comes back in the next round. The calls go
      // out in one write.
      const std::size_t share = want / due->elements.size();
      std::vector<UserId> users;
      std::vector<std::string> malformed;
      std::vector<std::vector<std::string>> commands;
      for (const Reply& m : due->elements) {
        auto user = parse_user(as_text(m));
        if (!user) {
          malformed.push_back(as_text(m));
          continue;
        }
        std::vector<std::string> argv = args(*user, now);
        argv.push_back(std::to_string(share));
        argv.emplace_back();  // no request address
        commands.push_back(evalsha_command(scripts.collect, keys(*user), argv));
        users.push_back(*user);
      }
      if (!malformed.empty()) {
        std::vector<std::string> zrem{"ZREM", exp_key};
        zrem.insert(zrem.end(), malformed.begin(), malformed.end());
        auto removed = co_await command(std::move(zrem));
        if (!removed) co_return removed.error();
      }
      if (commands.empty()) continue;
      auto replies = co_await client->pipeline(std::move(commands));
      if (!replies) co_return replies.error();
      if (replies->size() != users.size()) co_return unexpected_reply();
      for (std::size_t i = 0; i < users.size(); ++i) {
        Reply reply = std::move((*replies)[i]);
        if (is_noscript(reply)) {
          std::vector<std::string> extra{std::to_string(share)};
          auto again = co_await run(scripts.collect, users[i], now, std::move(extra));
          if (!again) co_return again.error();
          reply = std::move(*again);
        } else if (reply.is_error()) {
          co_return from_error_reply(reply);
        }
        auto sessions = decode_sessions(reply, users[i]);
        if (!sessions) co_return sessions.error();
        forget_activity(ids_of(*sessions));
        for (Session& s : *sessions) out.push_back(std::move(s));
      }
    }
    co_return out;
  }
};

RedisSessionStore::RedisSessionStore(std::shared_ptr<redis::RedisClient> client,
                                     RedisStoreOptions options)
    : impl_(std::make_unique<Impl>(std::move(client), std::move(options))) {}

RedisSessionStore::~RedisSessionStore() = default;

Task<CreateOutcome> RedisSessionStore::create(CreateRequest request) {
  if (request.max_sessions < 1) {
    co_return Error(Errc::invalid_request, "max_sessions must be at least 1");
  }
  co_return co_await impl_->create(std::move(request), false);
}

Task<Lookup> RedisSessionStore::validate_and_touch(UserId user, SessionId id, TimePoint now,
                                                   std::string ip) {
  Lookup out;
  // The fast path: one HGET answers every request that changes nothing.
  auto record = co_await impl_->read(user, id);
  if (!record) co_return record.error();
  if (!*record) co_return out;
  if ((*record)->ended) {
    if (now < (*record)->ended_at + impl_->options.tombstone_ttl) {
      out.found = Found::ended;
      out.reason = *(*record)->ended;
    }
    co_return out;
  }
  const Session& seen = (*record)->session;
  if (now < seen.expires_at() && now - seen.last_activity < kTouchEvery &&
      (ip.empty() || ip == seen.last_ip)) {
    out.found = Found::alive;
    out.session = std::move((*record)->session);
    co_return out;
  }

  std::vector<std::string> extra{raw(id), ip};
  auto reply =
      co_await impl_->run(impl_->scripts.validate, user, now, std::move(extra), std::move(ip));
  if (!reply) co_return reply.error();
  const auto status = is_array(*reply, 1) ? as_int(reply->elements[0]) : std::nullopt;
  if (!status) co_return unexpected_reply();
  const auto& e = reply->elements;
  switch (*status) {
    case 0: co_return out;
    case 1: {
      auto reason = e.size() == 2 ? parse_reason(as_text(e[1])) : std::nullopt;
      if (!reason) co_return unexpected_reply();
      out.found = Found::ended;
      out.reason = *reason;
      co_return out;
    }
    case 2:
      impl_->forget_activity({id});
      out.found = Found::ended;
      out.reason = EndReason::expired;
      co_return out;
    case 3: {
      auto session = e.size() == 3 ? decode_session(id, e[1], user) : std::nullopt;
      if (!session) co_return unexpected_reply();
      if (as_int(e[2]).value_or(0) != 0) impl_->record_activity(*session);
      out.found = Found::alive;
      out.session = std::move(*session);
      co_return out;
    }
    default: co_return unexpected_reply();
  }
}

Task<RotateOutcome> RedisSessionStore::rotate_refresh(RotateRequest request) {
  RotateOutcome out;
  // The token names no user (or one that is not a user): there are no keys to look in.
  if (request.user <= 0) co_return out;
  const UserId user = request.user;
  std::vector<std::string> extra{short_hash(request.presented),
                                 short_hash(request.successor),
                                 raw(request.successor),
                                 request.sealed_successor,
                                 ms(request.successor_expires_at),
                                 ms(request.grace),
                                 std::to_string(request.limit.count),
                                 ms(request.limit.window)};
  auto reply =
      co_await impl_->run(impl_->scripts.rotate, user, request.now, std::move(extra), request.ip);
  if (!reply) co_return reply.error();
  const auto status = is_array(*reply, 1) ? as_int(reply->elements[0]) : std::nullopt;
  if (!status) co_return unexpected_reply();
  const auto& e = reply->elements;
  switch (*status) {
    case 0: co_return out;
    case 1: {
      auto reason = e.size() == 2 ? parse_reason(as_text(e[1])) : std::nullopt;
      if (!reason) co_return unexpected_reply();
      out.kind = Rotation::ended;
      out.reason = *reason;
      co_return out;
    }
    case 2: {
      auto id = e.size() == 2 ? as_session_id(e[1]) : std::nullopt;
      if (!id) co_return unexpected_reply();
      impl_->forget_activity({*id});
      out.kind = Rotation::ended;
      out.reason = EndReason::expired;
      co_return out;
    }
    case 3: {
      auto session = e.size() == 4 ? decode_session(e[1], e[2], user) : std::nullopt;
      if (!session) co_return unexpected_reply();
      if (as_int(e[3]).value_or(0) != 0) impl_->record_activity(*session);
      out.kind = Rotation::rotated;
      out.session = std::move(*session);
      out.rotated_at = request.now;
      out.successor = request.successor;
      out.sealed_successor = std::move(request.sealed_successor);
      co_return out;
    }
    case 4: {
      const bool shaped = e.size() == 7;
      auto session = shaped ? decode_session(e[1], e[2], user) : std::nullopt;
      auto successor = shaped ? as_hash(e[4]) : std::nullopt;
      auto rotated_at = shaped ? as_int(e[6]) : std::nullopt;
      if (!session || !successor || !rotated_at) co_return unexpected_reply();
      if (as_int(e[3]).value_or(0) != 0) impl_->record_activity(*session);
      out.kind = Rotation::grace;
      out.session = std::move(*session);
      out.successor = *successor;
      out.sealed_successor = as_text(e[5]);
      out.rotated_at = from_unix_ms(*rotated_at);
      co_return out;
    }
    case 5: {
      auto session = e.size() == 3 ? decode_session(e[1], e[2], user) : std::nullopt;
      if (!session) co_return unexpected_reply();
      impl_->forget_activity({session->id});
      out.kind = Rotation::reuse;
      out.reason = EndReason::refresh_token_reuse;
      out.session = std::move(*session);
      co_return out;
    }
    case 6: {
      auto wait = e.size() == 2 ? as_int(e[1]) : std::nullopt;
      if (!wait) co_return unexpected_reply();
      out.kind = Rotation::rate_limited;
      out.retry_after = Duration{std::max<std::int64_t>(*wait, 1)};
      co_return out;
    }
    default: co_return unexpected_reply();
  }
}

Task<std::optional<Session>> RedisSessionStore::revoke(UserId user, SessionId id, EndReason reason,
                                                       TimePoint now, std::string ip) {
  std::vector<std::string> extra{raw(id), std::string(reason_name(reason))};
  auto reply =
      co_await impl_->run(impl_->scripts.revoke, user, now, std::move(extra), std::move(ip));
  if (!reply) co_return reply.error();
  const auto status = is_array(*reply, 1) ? as_int(reply->elements[0]) : std::nullopt;
  if (!status) co_return unexpected_reply();
  std::optional<Session> out;
  switch (*status) {
    case 0: co_return out;
    case 1: {
      auto session =
          reply->elements.size() == 2 ? decode_session(id, reply->elements[1], user) : std::nullopt;
      if (!session) co_return unexpected_reply();
      impl_->forget_activity({id});
      out = std::move(session);
      co_return out;
    }
    case 2: impl_->forget_activity({id}); co_return out;
    default: co_return unexpected_reply();
  }
}

Task<std::vector<Session>> RedisSessionStore::revoke_all(UserId user, std::optional<SessionId> keep,
                                                         EndReason reason, TimePoint now,
                                                         std::string ip) {
  std::vector<std::string> extra{std::string(reason_name(reason)),
                                 keep ? raw(*keep) : std::string()};
  auto reply =
      co_await impl_->run(impl_->scripts.revoke_all, user, now, std::move(extra), std::move(ip));
  if (!reply) co_return reply.error();
  if (!is_array(*reply, 2)) co_return unexpected_reply();
  auto ended = decode_sessions(reply->elements[0], user);
  if (!ended) co_return ended.error();
  auto expired = decode_ids(reply->elements[1]);
  if (!expired) co_return expired.error();
  impl_->forget_activity(ids_of(*ended));
  impl_->forget_activity(*expired);
  co_return std::move(*ended);
}

Task<std::vector<Session>> RedisSessionStore::list(UserId user, TimePoint now) {
  std::vector<std::string> no_extra;
  auto reply = co_await impl_->run(impl_->scripts.list, user, now, std::move(no_extra));
  if (!reply) co_return reply.error();
  auto sessions = decode_sessions(*reply, user);
  if (!sessions) co_return sessions.error();
  std::sort(sessions->begin(), sessions->end(), [](const Session& a, const Session& b) {
    if (a.last_activity != b.last_activity) return a.last_activity > b.last_activity;
    if (a.created_at != b.created_at) return a.created_at > b.created_at;
    return a.id < b.id;
  });
  co_return sessions;
}

Task<std::optional<UserId>> RedisSessionStore::owner_of(SessionId id, TimePoint now) {
  std::optional<UserId> out;
  std::vector<std::string> hget{"HGET", impl_->own_key(id), raw(id)};
  auto owner = co_await impl_->command(std::move(hget));
  if (!owner) co_return owner.error();
  if (owner->is_nil()) co_return out;
  const auto user = parse_user(as_text(*owner));
  if (!user) co_return unexpected_reply();
  // The entry goes when the session ends, not when its time runs out: ask the session itself.
  auto record = co_await impl_->read(*user, id);
  if (!record) co_return record.error();
  if (*record && !(*record)->ended && (*record)->has_session &&
      now < (*record)->session.expires_at()) {
    out = *user;
  }
  co_return out;
}

Task<std::vector<Session>> RedisSessionStore::collect_expired(TimePoint now, std::size_t max) {
  co_return co_await impl_->collect_expired(now, max);
}

Task<std::vector<ActivityChange>> RedisSessionStore::collect_activity(std::size_t max) {
  std::vector<ActivityChange> out;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->activity.begin();
    while (it != impl_->activity.end() && out.size() < max) {
      out.push_back(std::move(it->second));
      it = impl_->activity.erase(it);
    }
  }
  co_return out;
}

bool RedisSessionStore::has_outbox() const { return impl_->options.outbox; }

Task<std::vector<OutboxEntry>> RedisSessionStore::outbox_take(std::string consumer, std::size_t max,
                                                              Duration claim_after) {
  std::vector<OutboxEntry> out;
  if (!impl_->options.outbox) co_return out;
  const std::string& key = impl_->outbox_key;
  {
    std::vector<std::string> keys{key + ":lease"};
    std::vector<std::string> args{consumer, ms(std::max(claim_after, Duration{1000}))};
    auto held = co_await impl_->client->eval(lease_script(), std::move(keys), std::move(args));
    if (!held) co_return held.error();
    if (held->is_error()) co_return from_error_reply(*held);
    if (as_int(*held).value_or(0) != 1) co_return out;
  }
  // Holding the lease, this consumer is the only writer: whatever another consumer took and did
  // not acknowledge is a former holder's (stopped, or too slow to renew), and comes first. So the
  // entries taken are always the oldest unacknowledged ones: claim every pending entry (min-idle
  // 0), read the oldest `max` of them, and read new entries only when none is pending.
  const std::string count = std::to_string(std::max<std::size_t>(max, 1));
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::vector<std::vector<std::string>> commands{
        {"XAUTOCLAIM", key, kWriters, consumer, "0", "0-0", "COUNT", count, "JUSTID"},
        {"XREADGROUP", "GROUP", kWriters, consumer, "COUNT", count, "STREAMS", key, "0"}};
    auto replies = co_await impl_->client->pipeline(std::move(commands));
    if (!replies) co_return replies.error();
    if (replies->size() != 2) co_return unexpected_reply();
    const Reply& claimed = (*replies)[0];
    if (claimed.is_error() && claimed.str.starts_with("NOGROUP") && attempt == 0) {
      // A new stream, or a Redis that lost it: the group starts at the stream's beginning.
      std::vector<std::string> create{"XGROUP", "CREATE", key, kWriters, "0", "MKSTREAM"};
      auto created = co_await impl_->client->command(std::move(create));
      if (!created) co_return created.error();
      if (created->is_error() && !created->str.starts_with("BUSYGROUP")) {
        co_return from_error_reply(*created);
      }
      continue;
    }
    for (const Reply& r : *replies) {
      if (r.is_error()) co_return from_error_reply(r);
    }
    if (!append_read((*replies)[1], out)) co_return unexpected_reply();
    if (out.empty()) {
      std::vector<std::string> fresh{"XREADGROUP", "GROUP",   kWriters, consumer, "COUNT",
                                     count,        "STREAMS", key,      ">"};
      auto reply = co_await impl_->client->command(std::move(fresh));
      if (!reply) co_return reply.error();
      if (reply->is_error()) co_return from_error_reply(*reply);
      if (!append_read(*reply, out)) co_return unexpected_reply();
    }
    break;
  }
  std::sort(out.begin(), out.end(), [](const OutboxEntry& a, const OutboxEntry& b) {
    return stream_order(a.id) < stream_order(b.id);
  });
  co_return out;
}

Task<void> RedisSessionStore::outbox_release(std::string consumer) {
  if (!impl_->options.outbox) co_return Result<void>{};
  std::vector<std::string> keys{impl_->outbox_key + ":lease"};
  std::vector<std::string> args{std::move(consumer)};
  auto reply = co_await impl_->client->eval(release_script(), std::move(keys), std::move(args));
  if (!reply) co_return reply.error();
  if (reply->is_error()) co_return from_error_reply(*reply);
  co_return Result<void>{};
}

Task<void> RedisSessionStore::outbox_ack(std::vector<std::string> ids) {
  if (ids.empty()) co_return Result<void>{};
  std::vector<std::string> ack{"XACK", impl_->outbox_key, kWriters};
  std::vector<std::string> del{"XDEL", impl_->outbox_key};
  ack.insert(ack.end(), ids.begin(), ids.end());
  del.insert(del.end(), ids.begin(), ids.end());
  std::vector<std::vector<std::string>> commands;
  commands.push_back(std::move(ack));
  commands.push_back(std::move(del));
  auto replies = co_await impl_->client->pipeline(std::move(commands));
  if (!replies) co_return replies.error();
  for (const Reply& r : *replies) {
    if (r.is_error()) co_return from_error_reply(r);
  }
  co_return Result<void>{};
}

Task<std::size_t> RedisSessionStore::outbox_length() {
  std::vector<std::string> xlen{"XLEN", impl_->outbox_key};
  auto reply = co_await impl_->command(std::move(xlen));
  if (!reply) co_return reply.error();
  const auto n = as_int(*reply);
  if (!n) co_return unexpected_reply();
  co_return static_cast<std::size_t>(std::max<std::int64_t>(*n, 0));
}

Task<RateDecision> RedisSessionStore::rate_limit(std::vector<RateKey> keys, TimePoint now,
                                                 bool count) {
  RateDecision out;
  for (const RateKey& k : keys) {
    if (k.limit.count < 1 || k.limit.window <= Duration::zero()) {
      co_return Error(Errc::invalid_request, "a rate limit needs a count >= 1 and a window > 0");
    }
  }
  if (keys.empty()) co_return out;
  std::vector<std::string> names;
  std::vector<std::string> argv{ms(now), count ? "1" : "0"};
  names.reserve(keys.size());
  argv.reserve(2 + 2 * keys.size());
  for (const RateKey& k : keys) {
    names.push_back(impl_->options.prefix + ":rl:" + k.key);
    argv.push_back(std::to_string(k.limit.count));
    argv.push_back(ms(k.limit.window));
  }
  auto reply =
      co_await impl_->eval(redis::guard_scripts().rate_limit, std::move(names), std::move(argv));
  if (!reply) co_return reply.error();
  const auto allowed = is_array(*reply, 1) ? as_int(reply->elements[0]) : std::nullopt;
  if (allowed == 1) co_return out;
  const auto index =
      allowed == 0 && reply->elements.size() == 3 ? as_int(reply->elements[1]) : std::nullopt;
  const auto wait = index ? as_int(reply->elements[2]) : std::nullopt;
  if (!index || !wait || *index < 0 || static_cast<std::size_t>(*index) >= keys.size()) {
    co_return unexpected_reply();
  }
  out.allowed = false;
  out.refused_by = static_cast<std::size_t>(*index);
  out.retry_after = std::max(Duration{*wait}, Duration{1});
  co_return out;
}

Task<void> RedisSessionStore::rate_refund(std::vector<RateKey> keys, TimePoint now) {
  (void)now;
  if (keys.empty()) co_return Result<void>{};
  std::vector<std::string> names;
  names.reserve(keys.size());
  for (const RateKey& k : keys) names.push_back(impl_->options.prefix + ":rl:" + k.key);
  std::vector<std::string> no_args;
  auto reply = co_await impl_->eval(redis::guard_scripts().rate_refund, std::move(names),
                                    std::move(no_args));
  if (!reply) co_return reply.error();
  co_return Result<void>{};
}

Task<void> RedisSessionStore::otp_put(std::string key, std::string code_hash, TimePoint expires_at,
                                      int max_attempts, TimePoint now) {
  if (max_attempts < 1) co_return Error(Errc::invalid_request, "max_attempts must be at least 1");
  std::vector<std::string> keys{impl_->options.prefix + ":otp:" + key};
  std::vector<std::string> argv{ms(now), std::move(code_hash), ms(expires_at),
                                std::to_string(max_attempts)};
  auto reply =
      co_await impl_->eval(redis::guard_scripts().otp_put, std::move(keys), std::move(argv));
  if (!reply) co_return reply.error();
  co_return Result<void>{};
}

Task<OtpCheck> RedisSessionStore::otp_check(std::string key, std::string code_hash, TimePoint now) {
  std::vector<std::string> keys{impl_->options.prefix + ":otp:" + key};
  std::vector<std::string> argv{ms(now), std::move(code_hash)};
  auto reply =
      co_await impl_->eval(redis::guard_scripts().otp_check, std::move(keys), std::move(argv));
  if (!reply) co_return reply.error();
  switch (as_int(*reply).value_or(-1)) {
    case 0: co_return OtpCheck::none;
    case 1: co_return OtpCheck::accepted;
    case 2: co_return OtpCheck::wrong;
    case 3: co_return OtpCheck::burned;
    default: co_return unexpected_reply();
  }
}

Task<bool> RedisSessionStore::lease_acquire(std::string name, std::string holder, Duration ttl,
                                            TimePoint now) {
  if (ttl <= Duration::zero()) co_return Error(Errc::invalid_request, "a lease needs a ttl > 0");
  std::vector<std::string> keys{impl_->options.prefix + ":lease:" + name};
  std::vector<std::string> argv{ms(now), std::move(holder), ms(ttl)};
  auto reply =
      co_await impl_->eval(redis::guard_scripts().lease_acquire, std::move(keys), std::move(argv));
  if (!reply) co_return reply.error();
  const auto held = as_int(*reply);
  if (held != 0 && held != 1) co_return unexpected_reply();
  co_return held == 1;
}

Task<void> RedisSessionStore::lease_release(std::string name, std::string holder) {
  std::vector<std::string> keys{impl_->options.prefix + ":lease:" + name};
  std::vector<std::string> argv{std::move(holder)};
  auto reply =
      co_await impl_->eval(redis::guard_scripts().lease_release, std::move(keys), std::move(argv));
  if (!reply) co_return reply.error();
  co_return Result<void>{};
}

Task<std::size_t> RedisSessionStore::live_count() {
  // p:live counts the sessions not ended yet (live ones, and ones past their deadline that
  // collect_expired has not ended).
  std::vector<std::string> get{"GET", impl_->live_key};
  auto reply = co_await impl_->command(std::move(get));
  if (!reply) co_return reply.error();
  if (reply->is_nil()) co_return std::size_t{0};
  const auto n = as_int(*reply);
  if (!n) co_return unexpected_reply();
  co_return static_cast<std::size_t>(std::max<std::int64_t>(*n, 0));
}

Task<void> RedisSessionStore::ping() {
  std::vector<std::string> ping{"PING"};
  auto reply = co_await impl_->client->command(std::move(ping));
  if (!reply) co_return reply.error();
  if (reply->is_error()) co_return from_error_reply(*reply);
  bool checked = false;
  {
    std::lock_guard lock(impl_->mu);
    checked = impl_->checked;
  }
  if (!checked) (void)co_await check_configuration();
  Result<void> reachable = boost::system::in_place_value;
  co_return reachable;
}

Result<void> RedisSessionStore::restore(std::vector<RestoredSession> sessions,
                                        std::vector<RestoredTombstone> tombstones) {
  boost::asio::io_context io;
  std::optional<Result<void>> result;
  std::exception_ptr failure;
  // The connection keeps a read pending on `io`: stop it once the work is done.
  boost::asio::co_spawn(io, impl_->restore_all(std::move(sessions), std::move(tombstones)),
                        [&](const std::exception_ptr& e, Result<void> r) {
                          failure = e;
                          if (!e) result.emplace(std::move(r));
                          io.stop();
                        });
  io.run();
  if (failure) std::rethrow_exception(failure);
  return std::move(*result);
}

std::string RedisSessionStore::metrics_text() const {
  return "# HELP sessiond_redis_commands_written_total Redis commands sent.\n"
         "# TYPE sessiond_redis_commands_written_total counter\n"
         "sessiond_redis_commands_written_total " +
         std::to_string(impl_->client->commands_written()) +
         "\n# HELP sessiond_redis_writes_total Socket writes that carried them.\n"
         "# TYPE sessiond_redis_writes_total counter\n"
         "sessiond_redis_writes_total " +
         std::to_string(impl_->client->writes()) + "\n";
}

std::vector<std::string> RedisSessionStore::warnings() const {
  std::lock_guard lock(impl_->mu);
  return impl_->warnings;
}

Task<std::vector<std::string>> RedisSessionStore::check_configuration() {
  auto found = co_await check_configuration(*impl_->client);
  if (!found) co_return found.error();
  {
    std::lock_guard lock(impl_->mu);
    impl_->warnings = *found;
    impl_->checked = true;
  }
  co_return found;
}

Task<std::vector<std::string>> RedisSessionStore::check_configuration(redis::RedisClient& client) {
  std::vector<std::vector<std::string>> commands{{"CONFIG", "GET", "maxmemory-policy"},
                                                 {"CONFIG", "GET", "appendonly"},
                                                 {"CONFIG", "GET", "save"}};
  auto replies = co_await client.pipeline(std::move(commands));
  if (!replies) co_return replies.error();
  if (replies->size() != 3) co_return unexpected_reply();
  // CONFIG GET answers {name, value}; managed services may refuse the command.
  auto value = [](const Reply& r) -> std::optional<std::string> {
    if (!is_array(r, 2)) return std::nullopt;
    return as_text(r.elements[1]);
  };
  const auto policy = value((*replies)[0]);
  const auto appendonly = value((*replies)[1]);
  const auto save = value((*replies)[2]);
  std::vector<std::string> warnings;
  if (!policy || !appendonly || !save) {
    warnings.emplace_back(
        "could not read the Redis configuration (CONFIG GET refused): make sure "
        "maxmemory-policy is noeviction and that AOF or RDB persistence is on");
    co_return warnings;
  }
  if (*policy != "noeviction") {
    warnings.push_back("Redis maxmemory-policy is " + *policy +
                       ", not noeviction: under memory pressure Redis may silently drop "
                       "sessions and revocations");
  }
  if (*appendonly != "yes" && save->empty()) {
    warnings.emplace_back(
        "Redis persistence is off (appendonly no, save \"\"): a Redis restart loses every "
        "session and revocation");
  }
  co_return warnings;
}

}  // namespace sessiond::store
