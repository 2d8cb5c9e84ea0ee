#include "store/redis/redis_session_store.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <charconv>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "store/redis/scripts.hpp"

// Keys outside the user's slot, written by plain commands next to the scripts (a script may only
// touch one slot):
//   <p>:exp        sorted set of "<uid>:<sid>", scored by when collect_expired should look at the
//                  session (its deadline when scheduled); score 0: ended as expired on the
//                  request path, not yet reported. Written in the same pipeline as create.
//   <p>:sid:<sid>  the owner's user id, for owner_of. TTL: the session's absolute end.
// Both are indexes that the scripts' answers keep tidy after the fact ("settle"); when such a
// follow-up is lost (Redis went away between the two), they heal: collect_expired drops members
// of sessions that ended or are gone, and owner_of reads the session itself.

namespace sessiond::store {
namespace {

using redis::RedisClient;
using redis::Reply;
using redis::Script;

constexpr std::size_t kSessionFields = 12;  // {sid, r, a, m, d, ip, li, ua, c, la, ax, it}
constexpr int kCollectRounds = 8;
constexpr Duration kMinLife{1};
// Named, not `{}`: g++ 12 miscompiles a braced list inside a co_await expression.
const std::vector<SessionId> kNoIds;

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

// --- decoding of script replies ---

std::optional<std::int64_t> as_int(const Reply& r) {
  if (r.type == Reply::Type::integer) return r.integer;
  if (r.type != Reply::Type::string && r.type != Reply::Type::status) return std::nullopt;
  std::int64_t value = 0;
  const char* end = r.str.data() + r.str.size();
  auto [ptr, ec] = std::from_chars(r.str.data(), end, value);
  if (ec != std::errc{} || ptr != end) return std::nullopt;
  return value;
}

// Strings, and nil (a field the record does not hold: Lua false) as "".
std::string as_text(const Reply& r) {
  return r.type == Reply::Type::string || r.type == Reply::Type::status ? r.str : std::string();
}

bool is_array(const Reply& r, std::size_t min_size) {
  return r.type == Reply::Type::array && r.elements.size() >= min_size;
}

std::optional<TokenHash> as_hash(const Reply& r) {
  auto bytes = from_hex(as_text(r));
  TokenHash h{};
  if (!bytes || bytes->size() != h.size()) return std::nullopt;
  std::copy(bytes->begin(), bytes->end(), h.begin());
  return h;
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

// A session as the scripts return it: {sid, r, a, m, d, ip, li, ua, c, la, ax, it}.
std::optional<Session> decode_session(const Reply& r, UserId user) {
  if (r.type != Reply::Type::array || r.elements.size() != kSessionFields) return std::nullopt;
  const auto& e = r.elements;
  auto id = SessionId::parse(as_text(e[0]));
  auto method = parse_auth_method(as_text(e[3]));
  auto created = as_int(e[8]);
  auto last = as_int(e[9]);
  auto absolute = as_int(e[10]);
  auto idle = as_int(e[11]);
  if (!id || !method || !created || !last || !absolute || !idle) return std::nullopt;
  Session s;
  s.id = *id;
  s.user_id = user;
  s.role = as_text(e[1]);
  s.attributes = as_text(e[2]);
  s.auth_method = *method;
  s.device_info = as_text(e[4]);
  s.ip_address = as_text(e[5]);
  s.last_ip = as_text(e[6]);
  s.user_agent = as_text(e[7]);
  s.created_at = from_unix_ms(*created);
  s.last_activity = from_unix_ms(*last);
  s.absolute_expires_at = from_unix_ms(*absolute);
  s.idle_timeout = Duration{*idle};
  return s;
}

Result<std::vector<Session>> decode_sessions(const Reply& r, UserId user) {
  if (r.type != Reply::Type::array) return unexpected_reply();
  std::vector<Session> out;
  out.reserve(r.elements.size());
  for (const Reply& e : r.elements) {
    auto s = decode_session(e, user);
    if (!s) return unexpected_reply();
    out.push_back(std::move(*s));
  }
  return out;
}

Result<std::vector<SessionId>> decode_ids(const Reply& r) {
  if (r.type != Reply::Type::array) return unexpected_reply();
  std::vector<SessionId> out;
  for (const Reply& e : r.elements) {
    auto id = SessionId::parse(as_text(e));
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

std::string exp_member(UserId user, const SessionId& id) {
  return std::to_string(user) + ":" + id.to_string();
}

std::optional<std::pair<UserId, SessionId>> parse_exp_member(std::string_view member) {
  const auto colon = member.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  UserId user = 0;
  auto [ptr, ec] = std::from_chars(member.data(), member.data() + colon, user);
  if (ec != std::errc{} || ptr != member.data() + colon || user <= 0) return std::nullopt;
  auto id = SessionId::parse(member.substr(colon + 1));
  if (!id) return std::nullopt;
  return std::pair{user, *id};
}

std::vector<std::string> evalsha_command(const Script& script, const std::vector<std::string>& keys,
                                         const std::vector<std::string>& args) {
  std::vector<std::string> command{"EVALSHA", script.sha1, std::to_string(keys.size())};
  command.insert(command.end(), keys.begin(), keys.end());
  command.insert(command.end(), args.begin(), args.end());
  return command;
}

}  // namespace

struct RedisSessionStore::Impl {
  Impl(std::shared_ptr<RedisClient> c, RedisStoreOptions o)
      : client(std::move(c)), options(std::move(o)), exp_key(options.prefix + ":exp") {
    options.tombstone_ttl = std::max(options.tombstone_ttl, kMinLife);
  }

  std::shared_ptr<RedisClient> client;
  RedisStoreOptions options;
  const redis::SessionScripts& scripts = redis::session_scripts();
  std::string exp_key;

  mutable std::mutex mu;  // guards the members below
  std::unordered_map<SessionId, ActivityChange, SessionIdHash> activity;
  std::vector<std::string> warnings;
  bool checked = false;

  // --- keys ---

  std::string user_prefix(UserId user) const {
    return options.prefix + ":{u" + std::to_string(user) + "}:";
  }
  std::string session_key(UserId user, const SessionId& id) const {
    return user_prefix(user) + "s:" + id.to_string();
  }
  std::string idx_key(UserId user) const { return user_prefix(user) + "idx"; }
  std::string refresh_key(UserId user, const TokenHash& h) const {
    return user_prefix(user) + "rt:" + to_hex(h);
  }
  std::string owner_key(const SessionId& id) const {
    return options.prefix + ":sid:" + id.to_string();
  }
  // ARGV[1..3] of every script.
  std::vector<std::string> script_args(UserId user, TimePoint now) const {
    return {user_prefix(user), ms(now), ms(options.tombstone_ttl)};
  }

  // --- calls ---

  // One script call; a Redis error reply becomes an Error.
  boost::asio::awaitable<Result<Reply>> run(const Script& script, std::vector<std::string> keys,
                                            std::vector<std::string> args) {
    Result<Reply> reply = co_await client->eval(script, std::move(keys), std::move(args));
    if (reply && reply->is_error()) co_return from_error_reply(*reply);
    co_return reply;
  }

  // Brings <p>:exp and the owner keys in line with sessions a script ended: `ended` ones leave
  // the schedule, `expired` ones (ended on the request path) wait in it with score 0 until
  // collect_expired reports them. Best effort: see the comment at the top.
  boost::asio::awaitable<void> settle(UserId user, std::vector<SessionId> ended,
                                      std::vector<SessionId> expired) {
    if (ended.empty() && expired.empty()) co_return;
    forget_activity(ended);
    forget_activity(expired);
    std::vector<std::vector<std::string>> commands;
    std::vector<std::string> del{"DEL"};
    if (!ended.empty()) {
      std::vector<std::string> zrem{"ZREM", exp_key};
      for (const SessionId& id : ended) {
        zrem.push_back(exp_member(user, id));
        del.push_back(owner_key(id));
      }
      commands.push_back(std::move(zrem));
    }
    if (!expired.empty()) {
      // XX: a member collect_expired already removed stays removed.
      std::vector<std::string> zadd{"ZADD", exp_key, "XX"};
      for (const SessionId& id : expired) {
        zadd.emplace_back("0");
        zadd.push_back(exp_member(user, id));
        del.push_back(owner_key(id));
      }
      commands.push_back(std::move(zadd));
    }
    commands.push_back(std::move(del));
    (void)co_await client->pipeline(std::move(commands));
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
    const std::string member = exp_member(user, s.id);
    const Duration exp_life =
        std::max(s.absolute_expires_at - now + options.tombstone_ttl, kMinLife);
    const Duration owner_life = std::max(s.absolute_expires_at - now, kMinLife);
    const bool has_refresh = request.refresh_hash != TokenHash{};

    std::vector<std::string> keys{idx_key(user), session_key(user, s.id)};
    std::vector<std::string> args = script_args(user, now);
    args.push_back(s.id.to_string());
    args.push_back(restoring ? "0" : std::to_string(request.max_sessions));
    args.emplace_back(on_limit_name(request.on_limit));
    args.push_back(has_refresh ? to_hex(request.refresh_hash) : std::string());
    args.push_back(ms(request.refresh_expires_at));
    append_session_fields(args, s);

    // The schedule and owner entries go first: an eviction by a concurrent create, and its
    // follow-up, can then only come after them.
    std::vector<std::vector<std::string>> commands;
    commands.push_back({"ZADD", exp_key, ms(s.expires_at()), member});
    commands.push_back({"PEXPIRE", exp_key, ms(exp_life), "NX"});
    commands.push_back({"PEXPIRE", exp_key, ms(exp_life), "GT"});
    commands.push_back({"SET", owner_key(s.id), std::to_string(user), "PX", ms(owner_life)});
    commands.push_back(evalsha_command(scripts.create, keys, args));
    const std::size_t count = commands.size();
    auto replies = co_await client->pipeline(std::move(commands));
    if (!replies) co_return replies.error();
    if (replies->size() != count) co_return unexpected_reply();
    Reply reply = std::move(replies->back());
    if (is_noscript(reply)) {
      auto again = co_await run(scripts.create, std::move(keys), std::move(args));
      if (!again) co_return again.error();
      reply = std::move(*again);
    } else if (reply.is_error()) {
      co_return from_error_reply(reply);
    }

    const auto status = is_array(reply, 2) ? as_int(reply.elements[0]) : std::nullopt;
    if (!status || (*status != 0 && *status != 1)) co_return unexpected_reply();
    auto expired = decode_ids(reply.elements[1]);
    if (!expired) co_return expired.error();
    if (*status == 0) {
      const std::vector<SessionId> refused{s.id};
      co_await settle(user, refused, *expired);
      co_return Error(Errc::session_limit, "the user has as many sessions as the role allows");
    }
    if (reply.elements.size() != 3) co_return unexpected_reply();
    auto evicted = decode_sessions(reply.elements[2], user);
    if (!evicted) co_return evicted.error();
    co_await settle(user, ids_of(*evicted), *expired);
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
      std::vector<std::string> keys{session_key(t.user_id, t.id)};
      std::vector<std::string> args = script_args(t.user_id, t.ended_at);
      args.push_back(t.id.to_string());
      args.emplace_back(reason_name(t.reason));
      args.push_back(t.refresh_hash != TokenHash{} ? to_hex(t.refresh_hash) : std::string());
      auto reply = co_await run(scripts.restore_tombstone, std::move(keys), std::move(args));
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
      auto due = co_await client->command(std::move(range));
      if (!due) co_return due.error();
      if (due->is_error()) co_return from_error_reply(*due);
      if (due->type != Reply::Type::array) co_return unexpected_reply();
      if (due->elements.empty()) break;

      // Each member is checked by the expire script on its user's slot; the calls go out in one
      // write.
      std::vector<std::string> done;    // members to remove from the schedule
      std::vector<SessionId> done_ids;  // their sessions, whose owner keys go too
      std::vector<std::pair<UserId, SessionId>> checks;
      std::vector<std::string> check_members;
      std::vector<std::vector<std::string>> commands;
      for (const Reply& m : due->elements) {
        const std::string member = as_text(m);
        auto parsed = parse_exp_member(member);
        if (!parsed) {
          done.push_back(member);
          continue;
        }
        std::vector<std::string> keys{session_key(parsed->first, parsed->second)};
        std::vector<std::string> args = script_args(parsed->first, now);
        args.push_back(parsed->second.to_string());
        commands.push_back(evalsha_command(scripts.expire, keys, args));
        checks.push_back(*parsed);
        check_members.push_back(member);
      }
      std::vector<Reply> replies;
      if (!commands.empty()) {
        auto sent = co_await client->pipeline(std::move(commands));
        if (!sent) co_return sent.error();
        if (sent->size() != checks.size()) co_return unexpected_reply();
        replies = std::move(*sent);
      }

      std::vector<std::string> rescore{"ZADD", exp_key, "XX"};
      for (std::size_t i = 0; i < checks.size(); ++i) {
        const auto& [user, id] = checks[i];
        Reply reply = std::move(replies[i]);
        if (is_noscript(reply)) {
          std::vector<std::string> keys{session_key(user, id)};
          std::vector<std::string> args = script_args(user, now);
          args.push_back(id.to_string());
          auto again = co_await run(scripts.expire, std::move(keys), std::move(args));
          if (!again) co_return again.error();
          reply = std::move(*again);
        } else if (reply.is_error()) {
          co_return from_error_reply(reply);
        }
        const auto status = is_array(reply, 1) ? as_int(reply.elements[0]) : std::nullopt;
        if (!status || *status < 0 || *status > 3 || (*status != 0 && reply.elements.size() != 2)) {
          co_return unexpected_reply();
        }
        if (*status == 3) {
          auto deadline = as_int(reply.elements[1]);
          if (!deadline) co_return unexpected_reply();
          rescore.push_back(std::to_string(*deadline));
          rescore.push_back(check_members[i]);
          continue;
        }
        done.push_back(check_members[i]);
        done_ids.push_back(id);
        if (*status == 0) continue;
        auto session = decode_session(reply.elements[1], user);
        if (!session) co_return unexpected_reply();
        forget_activity({session->id});
        out.push_back(std::move(*session));
      }

      std::vector<std::vector<std::string>> follow_up;
      if (!done.empty()) {
        std::vector<std::string> zrem{"ZREM", exp_key};
        zrem.insert(zrem.end(), done.begin(), done.end());
        follow_up.push_back(std::move(zrem));
        std::vector<std::string> del{"DEL"};
        for (const SessionId& id : done_ids) del.push_back(owner_key(id));
        if (del.size() > 1) follow_up.push_back(std::move(del));
      }
      if (rescore.size() > 3) follow_up.push_back(std::move(rescore));
      // The sessions are ended already: a lost follow-up only leaves members that the next
      // call drops.
      if (!follow_up.empty()) (void)co_await client->pipeline(std::move(follow_up));
      if (due->elements.size() < want) break;
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
  std::vector<std::string> keys{impl_->session_key(user, id)};
  std::vector<std::string> args = impl_->script_args(user, now);
  args.push_back(id.to_string());
  args.push_back(std::move(ip));
  auto reply = co_await impl_->run(impl_->scripts.validate, std::move(keys), std::move(args));
  if (!reply) co_return reply.error();
  const auto status = is_array(*reply, 1) ? as_int(reply->elements[0]) : std::nullopt;
  if (!status) co_return unexpected_reply();
  Lookup out;
  switch (*status) {
    case 0: co_return out;
    case 1: {
      auto reason =
          reply->elements.size() == 2 ? parse_reason(as_text(reply->elements[1])) : std::nullopt;
      if (!reason) co_return unexpected_reply();
      out.found = Found::ended;
      out.reason = *reason;
      co_return out;
    }
    case 2: {
      const std::vector<SessionId> expired{id};
      co_await impl_->settle(user, kNoIds, expired);
      out.found = Found::ended;
      out.reason = EndReason::expired;
      co_return out;
    }
    case 3: {
      if (reply->elements.size() != 3) co_return unexpected_reply();
      auto session = decode_session(reply->elements[1], user);
      if (!session) co_return unexpected_reply();
      if (as_int(reply->elements[2]).value_or(0) != 0) impl_->record_activity(*session);
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
  std::vector<std::string> keys{impl_->refresh_key(user, request.presented),
                                impl_->refresh_key(user, request.successor)};
  std::vector<std::string> args = impl_->script_args(user, request.now);
  args.push_back(to_hex(request.presented));
  args.push_back(to_hex(request.successor));
  args.push_back(request.sealed_successor);
  args.push_back(ms(request.successor_expires_at));
  args.push_back(ms(request.grace));
  args.push_back(request.ip);
  auto reply = co_await impl_->run(impl_->scripts.rotate, std::move(keys), std::move(args));
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
      auto id = e.size() == 2 ? SessionId::parse(as_text(e[1])) : std::nullopt;
      if (!id) co_return unexpected_reply();
      const std::vector<SessionId> expired{*id};
      co_await impl_->settle(user, kNoIds, expired);
      out.kind = Rotation::ended;
      out.reason = EndReason::expired;
      co_return out;
    }
    case 3: {
      auto session = e.size() == 3 ? decode_session(e[1], user) : std::nullopt;
      if (!session) co_return unexpected_reply();
      if (as_int(e[2]).value_or(0) != 0) impl_->record_activity(*session);
      out.kind = Rotation::rotated;
      out.session = std::move(*session);
      out.rotated_at = request.now;
      out.successor = request.successor;
      out.sealed_successor = std::move(request.sealed_successor);
      co_return out;
    }
    case 4: {
      auto session = e.size() == 6 ? decode_session(e[1], user) : std::nullopt;
      auto successor = e.size() == 6 ? as_hash(e[3]) : std::nullopt;
      auto rotated_at = e.size() == 6 ? as_int(e[5]) : std::nullopt;
      if (!session || !successor || !rotated_at) co_return unexpected_reply();
      if (as_int(e[2]).value_or(0) != 0) impl_->record_activity(*session);
      out.kind = Rotation::grace;
      out.session = std::move(*session);
      out.successor = *successor;
      out.sealed_successor = as_text(e[4]);
      out.rotated_at = from_unix_ms(*rotated_at);
      co_return out;
    }
    case 5: {
      auto session = e.size() == 2 ? decode_session(e[1], user) : std::nullopt;
      if (!session) co_return unexpected_reply();
      const std::vector<SessionId> ended{session->id};
      co_await impl_->settle(user, ended, kNoIds);
      out.kind = Rotation::reuse;
      out.reason = EndReason::refresh_token_reuse;
      out.session = std::move(*session);
      co_return out;
    }
    default: co_return unexpected_reply();
  }
}

Task<std::optional<Session>> RedisSessionStore::revoke(UserId user, SessionId id, EndReason reason,
                                                       TimePoint now) {
  std::vector<std::string> keys{impl_->session_key(user, id)};
  std::vector<std::string> args = impl_->script_args(user, now);
  args.push_back(id.to_string());
  args.emplace_back(reason_name(reason));
  auto reply = co_await impl_->run(impl_->scripts.revoke, std::move(keys), std::move(args));
  if (!reply) co_return reply.error();
  const auto status = is_array(*reply, 1) ? as_int(reply->elements[0]) : std::nullopt;
  if (!status) co_return unexpected_reply();
  std::optional<Session> out;
  const std::vector<SessionId> ids{id};
  switch (*status) {
    case 0: co_return out;
    case 1: {
      auto session =
          reply->elements.size() == 2 ? decode_session(reply->elements[1], user) : std::nullopt;
      if (!session) co_return unexpected_reply();
      co_await impl_->settle(user, ids, kNoIds);
      out = std::move(session);
      co_return out;
    }
    case 2: co_await impl_->settle(user, kNoIds, ids); co_return out;
    default: co_return unexpected_reply();
  }
}

Task<std::vector<Session>> RedisSessionStore::revoke_all(UserId user, std::optional<SessionId> keep,
                                                         EndReason reason, TimePoint now) {
  std::vector<std::string> keys{impl_->idx_key(user)};
  std::vector<std::string> args = impl_->script_args(user, now);
  args.emplace_back(reason_name(reason));
  args.push_back(keep ? keep->to_string() : std::string());
  auto reply = co_await impl_->run(impl_->scripts.revoke_all, std::move(keys), std::move(args));
  if (!reply) co_return reply.error();
  if (!is_array(*reply, 2)) co_return unexpected_reply();
  auto ended = decode_sessions(reply->elements[0], user);
  if (!ended) co_return ended.error();
  auto expired = decode_ids(reply->elements[1]);
  if (!expired) co_return expired.error();
  co_await impl_->settle(user, ids_of(*ended), *expired);
  co_return std::move(*ended);
}

Task<std::vector<Session>> RedisSessionStore::list(UserId user, TimePoint now) {
  std::vector<std::string> keys{impl_->idx_key(user)};
  auto reply =
      co_await impl_->run(impl_->scripts.list, std::move(keys), impl_->script_args(user, now));
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
  std::vector<std::string> get{"GET", impl_->owner_key(id)};
  auto owner = co_await impl_->client->command(std::move(get));
  if (!owner) co_return owner.error();
  if (owner->is_error()) co_return from_error_reply(*owner);
  if (owner->is_nil()) co_return out;
  const auto user = as_int(*owner);
  if (!user || *user <= 0) co_return unexpected_reply();

  // The owner key may outlive its session's end: ask the session itself.
  std::vector<std::string> keys{impl_->session_key(*user, id)};
  auto alive =
      co_await impl_->run(impl_->scripts.alive, std::move(keys), impl_->script_args(*user, now));
  if (!alive) co_return alive.error();
  const auto answer = as_int(*alive);
  if (!answer) co_return unexpected_reply();
  if (*answer == 1) out = *user;
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

Task<std::size_t> RedisSessionStore::live_count() {
  // Score 0 marks sessions that already ended (waiting to be reported): they do not count.
  std::vector<std::string> count{"ZCOUNT", impl_->exp_key, "1", "+inf"};
  auto reply = co_await impl_->client->command(std::move(count));
  if (!reply) co_return reply.error();
  if (reply->is_error()) co_return from_error_reply(*reply);
  const auto n = as_int(*reply);
  if (!n || *n < 0) co_return unexpected_reply();
  co_return static_cast<std::size_t>(*n);
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
