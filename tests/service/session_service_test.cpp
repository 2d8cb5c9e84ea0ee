// SessionService on the real memory store and a real (in-memory) SQLite database, with a fake
// clock: write-through, what happens when the database refuses a write, expiry and activity
// reaching the database, and the refresh grace answer.
#include "service/session_service.hpp"

#include <gtest/gtest.h>
#include <sodium.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <exception>
#include <optional>

#include "core/password.hpp"
#include "db/sqlite/sqlite_database.hpp"
#include "service/webhooks.hpp"
#include "store/memory/memory_session_store.hpp"

namespace sessiond::service {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// The real database, whose writes can be made to fail (a full disk, a lost connection).
class FailingDatabase final : public db::Database {
 public:
  explicit FailingDatabase(std::unique_ptr<db::Database> real) : real_(std::move(real)) {}
  std::atomic<bool> fail_writes{false};

  Result<int> migrate() override { return real_->migrate(); }
  Result<db::User> create_user(const db::NewUser& u, TimePoint now) override {
    return real_->create_user(u, now);
  }
  Result<std::optional<db::User>> find_user(UserId id) override { return real_->find_user(id); }
  Result<std::optional<db::User>> find_user_by_email(std::string_view e) override {
    return real_->find_user_by_email(e);
  }
  Result<std::optional<db::User>> find_user_by_mobile(std::string_view m) override {
    return real_->find_user_by_mobile(m);
  }
  Result<db::User> update_user(UserId id, const db::UserPatch& p, TimePoint now) override {
    return real_->update_user(id, p, now);
  }
  Result<void> apply(const db::ChangeBatch& batch) override {
    if (fail_writes) return Error(Errc::database_unavailable, "disk full");
    return real_->apply(batch);
  }
  Result<std::vector<db::SessionRecord>> load_live_sessions() override {
    return real_->load_live_sessions();
  }
  Result<std::vector<db::SessionRecord>> load_ended_since(TimePoint since) override {
    return real_->load_ended_since(since);
  }
  Result<std::optional<db::SessionRecord>> find_session(SessionId id) override {
    return real_->find_session(id);
  }
  Result<std::vector<db::Event>> list_events(const db::EventFilter& f) override {
    return real_->list_events(f);
  }
  Result<db::Stats> stats(TimePoint now) override { return real_->stats(now); }
  Result<std::vector<db::Event>> webhook_queue_head(int limit) override {
    return real_->webhook_queue_head(limit);
  }
  Result<void> webhook_dequeue(const std::vector<std::int64_t>& event_ids) override {
    return real_->webhook_dequeue(event_ids);
  }
  Result<std::vector<db::SessionRecord>> recent_sessions(UserId user, TimePoint active_since,
                                                         TimePoint created_before) override {
    return real_->recent_sessions(user, active_since, created_before);
  }
  Result<void> ping() override { return real_->ping(); }

 private:
  std::unique_ptr<db::Database> real_;
};

constexpr std::string_view kPassword = "correct horse battery";

// Keeps the messages instead of sending them; `fail` makes it refuse.
class RecordingSender final : public OtpSender {
 public:
  asio::awaitable<Result<void>> send(OtpMessage message) override {
    if (fail) co_return Error(Errc::upstream_unavailable, "gateway down");
    sent.push_back(std::move(message));
    co_return Result<void>{};
  }
  std::vector<OtpMessage> sent;
  bool fail = false;
};

// Answers each POST with the next status of `statuses` (200 once they run out), recording them.
class ScriptedOutbound final : public Outbound {
 public:
  asio::awaitable<Result<OutboundResponse>> post(OutboundRequest request) override {
    requests.push_back(request);
    int status = 200;
    if (!statuses.empty()) {
      status = statuses.front();
      statuses.erase(statuses.begin());
    }
    if (status == 0) co_return Error(Errc::upstream_unavailable, "refused");
    co_return OutboundResponse{status, {}};
  }
  std::vector<OutboundRequest> requests;
  std::vector<int> statuses;  // 0: the connection fails
};

class SessionServiceTest : public ::testing::Test {
 protected:
  SessionServiceTest() {
    init_crypto();
    config_.roles.set("SHORT", RolePolicy{10min, 2h, 2, OnLimit::evict_oldest});
    auto sqlite = db::SqliteDatabase::open(":memory:");
    EXPECT_TRUE(sqlite);
    database_ = std::make_unique<FailingDatabase>(std::move(*sqlite));
    EXPECT_TRUE(database_->migrate());
    service_ = std::make_unique<SessionService>(ServiceDeps{config_, clock_, random_, jwt_, store_,
                                                            *database_, db_workers_, hash_workers_,
                                                            "k", sender_, "pepper"});
  }

  // Runs one coroutine of the service to its end on this thread's io_context.
  template <class T>
  T run(asio::awaitable<T> task) {
    std::optional<T> out;
    std::exception_ptr failure;
    asio::co_spawn(io_, std::move(task), [&](std::exception_ptr e, T value) {
      failure = e;
      out.emplace(std::move(value));
      io_.stop();
    });
    auto guard = asio::make_work_guard(io_);
    io_.restart();
    io_.run();
    if (failure) std::rethrow_exception(failure);
    return std::move(*out);
  }
  void run(asio::awaitable<void> task) {
    std::exception_ptr failure;
    asio::co_spawn(io_, std::move(task), [&](std::exception_ptr e) {
      failure = e;
      io_.stop();
    });
    auto guard = asio::make_work_guard(io_);
    io_.restart();
    io_.run();
    if (failure) std::rethrow_exception(failure);
  }

  UserId add_user(const std::string& email, const std::string& role = "SHORT") {
    CreateUserRequest r;
    r.email = email;
    r.password = std::string(kPassword);
    r.role = role;
    auto user = run(service_->create_user(std::move(r), {}));
    EXPECT_TRUE(user) << user.error().detail;
    return user ? user->id : 0;
  }

  Result<TokenResponse> login(const std::string& email) {
    return run(service_->login_password(email, std::string(kPassword),
                                        ClientInfo{"203.0.113.5", "curl/8.5.0"}));
  }

  std::optional<db::SessionRecord> record_of(SessionId id) {
    auto r = database_->find_session(id);
    EXPECT_TRUE(r);
    return r ? *r : std::nullopt;
  }

  std::size_t events_of_type(const std::string& type) {
    db::EventFilter f;
    f.type = type;
    f.limit = 1000;
    auto events = database_->list_events(f);
    EXPECT_TRUE(events);
    return events ? events->size() : 0;
  }

  // First, so it is destroyed last: worker threads finish handing results back to it before it
  // goes.
  asio::io_context io_;
  Config config_;
  FakeClock clock_;
  SodiumRandom random_;
  JwtCodec jwt_ = JwtCodec::hs256(std::string(32, 's'), "sessiond", "sessiond").value();
  store::MemorySessionStore store_;
  std::unique_ptr<FailingDatabase> database_;
  RecordingSender sender_;
  Workers db_workers_{1};
  Workers hash_workers_{1};
  std::unique_ptr<SessionService> service_;
};

TEST_F(SessionServiceTest, SignInIsWrittenThroughWithItsEvent) {
  add_user("ada@example.com");
  auto tokens = login("ada@example.com");
  ASSERT_TRUE(tokens) << tokens.error().detail;
  auto row = record_of(tokens->session.id);
  ASSERT_TRUE(row);
  EXPECT_TRUE(row->active);
  EXPECT_EQ(row->refresh_hash, sha256(tokens->refresh_token));
  EXPECT_EQ(row->session.device_info, "Other");
  EXPECT_EQ(events_of_type("login_succeeded"), 1u);
}

TEST_F(SessionServiceTest, SignInIsNotAcknowledgedWhenItsWriteFailsAndIsWrittenLater) {
  add_user("ada@example.com");
  database_->fail_writes = true;
  auto tokens = login("ada@example.com");
  ASSERT_FALSE(tokens);
  EXPECT_EQ(tokens.error().code, Errc::database_unavailable);
  EXPECT_EQ(service_->pending_writes(), 1u);

  database_->fail_writes = false;
  run(service_->run_jobs_once(false));
  EXPECT_EQ(service_->pending_writes(), 0u);
  EXPECT_EQ(events_of_type("login_succeeded"), 1u);
  auto live = database_->load_live_sessions();
  ASSERT_TRUE(live);
  EXPECT_EQ(live->size(), 1u);
}

TEST_F(SessionServiceTest, RevocationTakesEffectAtOnceEvenWhenItsWriteFails) {
  const UserId user = add_user("ada@example.com");
  auto tokens = login("ada@example.com");
  ASSERT_TRUE(tokens);
  database_->fail_writes = true;
  auto revoked =
      run(service_->revoke_session(user, tokens->session.id, EndReason::revoked_by_admin, {}));
  ASSERT_FALSE(revoked);
  EXPECT_EQ(revoked.error().code, Errc::database_unavailable);
  // Never access without the store's word: the session is already ended there.
  auto who = run(service_->authenticate(tokens->access_token, {}));
  ASSERT_FALSE(who);
  EXPECT_EQ(who.error().code, Errc::session_revoked);
  EXPECT_EQ(who.error().reason, EndReason::revoked_by_admin);

  database_->fail_writes = false;
  run(service_->run_jobs_once(false));
  auto row = record_of(tokens->session.id);
  ASSERT_TRUE(row);
  EXPECT_FALSE(row->active);
  EXPECT_EQ(row->invalidation_reason, EndReason::revoked_by_admin);
}

TEST_F(SessionServiceTest, ExpiryReachesTheDatabaseOnceWhoeverNoticesIt) {
  add_user("ada@example.com");
  auto tokens = login("ada@example.com");
  ASSERT_TRUE(tokens);
  clock_.advance(11min);  // idle timeout of SHORT is 10 min
  auto who = run(service_->authenticate(tokens->access_token, {}));
  ASSERT_FALSE(who);
  EXPECT_EQ(who.error().code, Errc::session_expired);
  run(service_->run_jobs_once(false));
  run(service_->run_jobs_once(false));
  auto row = record_of(tokens->session.id);
  ASSERT_TRUE(row);
  EXPECT_FALSE(row->active);
  EXPECT_EQ(row->invalidation_reason, EndReason::expired);
  EXPECT_EQ(events_of_type("session_expired"), 1u);
}

TEST_F(SessionServiceTest, UnnoticedExpiryIsRecordedByTheJobs) {
  add_user("ada@example.com");
  auto tokens = login("ada@example.com");
  ASSERT_TRUE(tokens);
  clock_.advance(11min);
  run(service_->run_jobs_once(false));
  auto row = record_of(tokens->session.id);
  ASSERT_TRUE(row);
  EXPECT_FALSE(row->active);
  EXPECT_EQ(row->invalidation_reason, EndReason::expired);
}

TEST_F(SessionServiceTest, ActivityFlushSlidesTheDatabaseRecord) {
  add_user("ada@example.com");
  auto tokens = login("ada@example.com");
  ASSERT_TRUE(tokens);
  clock_.advance(5min);
  ASSERT_TRUE(run(service_->authenticate(tokens->access_token, {"198.51.100.9", ""})));
  run(service_->run_jobs_once(true));
  auto row = record_of(tokens->session.id);
  ASSERT_TRUE(row);
  EXPECT_EQ(row->session.last_activity, clock_.now());
  EXPECT_EQ(row->session.last_ip, "198.51.100.9");
  EXPECT_EQ(row->expires_at, clock_.now() + 10min);
}

TEST_F(SessionServiceTest, RefreshWithinGraceAnswersTheVerySamePair) {
  add_user("ada@example.com");
  auto first = login("ada@example.com");
  ASSERT_TRUE(first);
  clock_.advance(1min);
  auto a = run(service_->refresh(first->refresh_token, {}));
  ASSERT_TRUE(a) << a.error().detail;
  clock_.advance(3s);
  auto b = run(service_->refresh(first->refresh_token, {}));
  ASSERT_TRUE(b) << b.error().detail;
  EXPECT_EQ(a->refresh_token, b->refresh_token);
  EXPECT_EQ(a->access_token, b->access_token);
  clock_.advance(config_.tokens.refresh_grace);
  auto reuse = run(service_->refresh(first->refresh_token, {}));
  ASSERT_FALSE(reuse);
  EXPECT_EQ(reuse.error().code, Errc::session_revoked);
  EXPECT_EQ(reuse.error().reason, EndReason::refresh_token_reuse);
  EXPECT_EQ(events_of_type("refresh_reuse_detected"), 1u);
}

TEST_F(SessionServiceTest, PasswordChangeEndsTheOtherSessionsOnly) {
  add_user("ada@example.com");
  auto mine = login("ada@example.com");
  auto other = login("ada@example.com");
  ASSERT_TRUE(mine && other);
  auto who = run(service_->authenticate(mine->access_token, {}));
  ASSERT_TRUE(who);
  ASSERT_TRUE(run(
      service_->change_password(*who, std::string(kPassword), "a much longer new password", {})));
  EXPECT_TRUE(run(service_->authenticate(mine->access_token, {})));
  auto gone = run(service_->authenticate(other->access_token, {}));
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().reason, EndReason::password_changed);
  auto user = database_->find_user_by_email("ada@example.com");
  ASSERT_TRUE(user && *user);
  EXPECT_TRUE(verify_password(*(*user)->password_hash, "a much longer new password"));
}

TEST(Normalize, EmailsAndMobileNumbers) {
  EXPECT_EQ(normalize_email("  Ada@Example.COM "), "ada@example.com");
  EXPECT_EQ(normalize_email("no-at-sign"), "");
  EXPECT_EQ(normalize_email("a@b@c"), "");
  EXPECT_EQ(normalize_email("@example.com"), "");
  EXPECT_EQ(normalize_mobile("+44 20 7946 0958"), "+442079460958");
  EXPECT_EQ(normalize_mobile("(415) 555-0100 12"), "+415555010012");
  EXPECT_EQ(normalize_mobile("12345"), "");
  EXPECT_EQ(normalize_mobile("+1-800-FLOWERS"), "");
}

TEST_F(SessionServiceTest, OtpCodeIsUniformDigitsOfTheConfiguredLengthAndWorksOnce) {
  config_.otp.length = 8;
  const ClientInfo client{"203.0.113.9", "curl/8.5.0"};
  auto ttl = run(service_->otp_send("+15550100400", client));
  ASSERT_TRUE(ttl) << ttl.error().detail;
  EXPECT_EQ(*ttl, config_.otp.ttl);
  ASSERT_EQ(sender_.sent.size(), 1u);
  const std::string code = sender_.sent[0].code;
  EXPECT_EQ(code.size(), 8u);
  EXPECT_TRUE(std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; }));
  auto tokens = run(service_->otp_verify("+1 555 010 0400", code, client));
  ASSERT_TRUE(tokens) << tokens.error().detail;
  EXPECT_EQ(tokens->user.mobile_number, "+15550100400");
  EXPECT_EQ(tokens->user.role, config_.roles.default_role());
  EXPECT_EQ(tokens->session.auth_method, AuthMethod::otp);
  auto again = run(service_->otp_verify("+15550100400", code, client));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::invalid_otp);
  EXPECT_EQ(events_of_type("user_created"), 1u);
}

TEST_F(SessionServiceTest, OtpExpiresWithTheClock) {
  const ClientInfo client{"203.0.113.9", ""};
  ASSERT_TRUE(run(service_->otp_send("+15550100401", client)));
  clock_.advance(config_.otp.ttl);
  auto late = run(service_->otp_verify("+15550100401", sender_.sent.at(0).code, client));
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, Errc::invalid_otp);
}

TEST_F(SessionServiceTest, FailingSenderAnswersUpstreamUnavailable) {
  sender_.fail = true;
  auto sent = run(service_->otp_send("+15550100402", {"203.0.113.9", ""}));
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error().code, Errc::upstream_unavailable);
}

TEST_F(SessionServiceTest, RateLimitRefusalCarriesRetryAfterAndIsAudited) {
  config_.rate_limits.otp_send_per_number = RateLimit{2, 10min};
  const ClientInfo client{"203.0.113.9", ""};
  ASSERT_TRUE(run(service_->otp_send("+15550100403", client)));
  clock_.advance(1min);
  ASSERT_TRUE(run(service_->otp_send("+15550100403", client)));
  auto refused = run(service_->otp_send("+15550100403", client));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::rate_limited);
  EXPECT_EQ(refused.error().retry_after_seconds, 9 * 60) << "the first send frees its place";
  EXPECT_EQ(events_of_type("rate_limited"), 1u);
  EXPECT_EQ(sender_.sent.size(), 2u);
  clock_.advance(9min);
  EXPECT_TRUE(run(service_->otp_send("+15550100403", client)));
}

TEST_F(SessionServiceTest, SignInUpgradesAnOldPasswordHash) {
  const UserId id = add_user("ada@example.com");
  std::string weak(crypto_pwhash_STRBYTES, '\0');
  ASSERT_EQ(
      crypto_pwhash_str_alg(weak.data(), kPassword.data(), kPassword.size(),
                            crypto_pwhash_argon2id_OPSLIMIT_MIN,
                            crypto_pwhash_argon2id_MEMLIMIT_MIN, crypto_pwhash_ALG_ARGON2ID13),
      0);
  weak.resize(weak.find('\0'));
  db::UserPatch patch;
  patch.password_hash = weak;
  ASSERT_TRUE(database_->update_user(id, patch, clock_.now()));
  ASSERT_TRUE(login("ada@example.com"));
  auto user = database_->find_user(id);
  ASSERT_TRUE(user && *user && (*user)->password_hash);
  EXPECT_NE(*(*user)->password_hash, weak);
  EXPECT_FALSE(password_needs_rehash(*(*user)->password_hash));
  EXPECT_TRUE(login("ada@example.com")) << "the upgraded hash checks the same password";
}

TEST(WebhookEvents, MarkedOnlyForConfiguredEventsWhenAUrlIsSet) {
  WebhooksConfig config;
  db::ChangeBatch batch;
  for (const char* type : {"login_succeeded", "session_refreshed", "logout", "session_expired",
                           "refresh_reuse_detected", "session_evicted"}) {
    db::Event e;
    e.type = type;
    batch.events.push_back(e);
  }
  mark_webhook_events(batch, config);
  EXPECT_TRUE(std::none_of(batch.events.begin(), batch.events.end(), [](const db::Event& e) {
    return e.notify;
  })) << "no url, no queue";
  config.url = "http://127.0.0.1:9/hooks";
  config.events = {"session.revoked"};
  mark_webhook_events(batch, config);
  std::vector<bool> marked;
  for (const auto& e : batch.events) marked.push_back(e.notify);
  EXPECT_EQ(marked, (std::vector<bool>{false, false, true, false, false, true}));
}

TEST(WebhookEvents, SameNetworkIsSlash24AndSlash64) {
  EXPECT_TRUE(same_network("192.0.2.1", "192.0.2.200"));
  EXPECT_FALSE(same_network("192.0.2.1", "192.0.3.1"));
  EXPECT_TRUE(same_network("2001:db8:1:2::1", "2001:db8:1:2:ffff::9"));
  EXPECT_FALSE(same_network("2001:db8:1:2::1", "2001:db8:1:3::1"));
  EXPECT_FALSE(same_network("192.0.2.1", "2001:db8::1"));
  EXPECT_TRUE(same_network("", ""));
}

TEST_F(SessionServiceTest, WebhooksAreDeliveredInOrderAndRetriedUntilAccepted) {
  config_.webhooks.url = "http://127.0.0.1:9/hooks";
  add_user("ada@example.com");
  ASSERT_TRUE(login("ada@example.com"));
  clock_.advance(1s);
  ASSERT_TRUE(login("ada@example.com"));
  ScriptedOutbound outbound;
  outbound.statuses = {0, 503};  // down, then failing, then up
  WebhookDeliverer deliverer(config_.webhooks, "secret", *database_, db_workers_, outbound, clock_);
  auto first = run(deliverer.deliver_some(100));
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, 0u) << "the first delivery failed: nothing leaves the queue";
  // Within the pause nothing is tried; the deliverer waits.
  EXPECT_EQ(run(deliverer.deliver_some(100)).value(), 0u);
  EXPECT_EQ(outbound.requests.size(), 1u);
  clock_.advance(250ms);
  EXPECT_EQ(run(deliverer.deliver_some(100)).value(), 0u);  // 503
  clock_.advance(499ms);
  EXPECT_EQ(run(deliverer.deliver_some(100)).value(), 0u) << "the pause doubled";
  EXPECT_EQ(outbound.requests.size(), 2u);
  clock_.advance(1ms);
  EXPECT_EQ(run(deliverer.deliver_some(100)).value(), 2u);
  std::vector<std::string> types;
  for (const auto& r : outbound.requests) {
    for (const auto& [name, value] : r.headers) {
      if (name == "X-Sessiond-Event") types.push_back(value);
    }
    EXPECT_EQ(r.url, config_.webhooks.url);
  }
  // created + new_device, retried twice, then created alone (same device and network).
  EXPECT_EQ(types,
            (std::vector<std::string>{"session.created", "session.created", "session.created",
                                      "session.new_device", "session.created"}));
  EXPECT_EQ(outbound.requests[0].body, outbound.requests[2].body) << "a retry is the same event";
  EXPECT_EQ(run(deliverer.deliver_some(100)).value(), 0u) << "the queue is empty";
}

}  // namespace
}  // namespace sessiond::service

// Header values reach PostgreSQL, which refuses text that is not UTF-8: the User-Agent is kept as
// valid UTF-8, cut at a character boundary.
TEST(ValidUtf8, KeepsCharactersAndReplacesWhatIsNotUtf8) {
  using sessiond::service::valid_utf8;
  EXPECT_EQ(valid_utf8("curl/8.0", 512), "curl/8.0");
  EXPECT_EQ(valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", 512),
            "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  EXPECT_EQ(valid_utf8("a\xFF"
                       "b\x80"
                       "c",
                       512),
            "a?b?c");
  EXPECT_EQ(valid_utf8(std::string_view("a\0b", 3), 512), "a?b");
  EXPECT_EQ(valid_utf8("\xC0\xAF", 512), "??") << "overlong";
  EXPECT_EQ(valid_utf8("\xED\xA0\x80", 512), "???") << "a surrogate";
  EXPECT_EQ(valid_utf8("ab\xE2\x82", 512), "ab??") << "a character cut short";
  // "é" is two bytes: a limit inside it ends the text before it.
  EXPECT_EQ(valid_utf8("ab\xC3\xA9", 3), "ab");
  EXPECT_EQ(valid_utf8("abcdef", 4), "abcd");
}
