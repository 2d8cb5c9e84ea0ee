#include "store/store_factories.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <utility>

#include "store/memory/memory_session_store.hpp"
#include "store/redis/redis_client.hpp"
#include "store/redis/redis_session_store.hpp"

namespace sessiond::store::testing {
namespace {

namespace asio = boost::asio;

// A RedisSessionStore as the contract suite needs it. The suite drives a store the way the memory
// store allows: each call on a throwaway io_context run until it has no work left (run() in
// store_test_support.hpp), and refresh tokens that name no user. The adapter supplies what the
// server supplies in production:
// - an io thread of the store's own, where every call runs (a Redis connection keeps a read
//   pending on the io_context it serves, so a throwaway io_context would never run out of work);
// - RotateRequest::user, which SessionService reads from the token (refresh_token_user) and the
//   adapter from the creates, rotations and restores it has passed on. A hash it never saw keeps
//   user 0, which the store answers as unknown.
class RedisContractStore final : public SessionStore {
 public:
  RedisContractStore(redis::RedisUrl url, RedisStoreOptions options)
      : client_(std::make_shared<redis::RedisClient>(std::move(url))),
        store_(client_, std::move(options)),
        thread_([this] { io_.run(); }) {}

  ~RedisContractStore() override {
    client_->stop();
    work_.reset();
    io_.stop();
    thread_.join();
  }

  RedisContractStore(const RedisContractStore&) = delete;
  RedisContractStore& operator=(const RedisContractStore&) = delete;

  Task<CreateOutcome> create(CreateRequest request) override {
    remember(request.refresh_hash, request.session.user_id);
    return on_store_thread(store_.create(std::move(request)));
  }
  Task<Lookup> validate_and_touch(UserId user, SessionId id, TimePoint now,
                                  std::string ip) override {
    return on_store_thread(store_.validate_and_touch(user, id, now, std::move(ip)));
  }
  Task<RotateOutcome> rotate_refresh(RotateRequest request) override {
    if (request.user == 0) request.user = user_of(request.presented);
    remember(request.successor, request.user);
    return on_store_thread(store_.rotate_refresh(std::move(request)));
  }
  Task<std::optional<Session>> revoke(UserId user, SessionId id, EndReason reason,
                                      TimePoint now) override {
    return on_store_thread(store_.revoke(user, id, reason, now));
  }
  Task<std::vector<Session>> revoke_all(UserId user, std::optional<SessionId> keep,
                                        EndReason reason, TimePoint now) override {
    return on_store_thread(store_.revoke_all(user, keep, reason, now));
  }
  Task<std::vector<Session>> list(UserId user, TimePoint now) override {
    return on_store_thread(store_.list(user, now));
  }
  Task<std::optional<UserId>> owner_of(SessionId id, TimePoint now) override {
    return on_store_thread(store_.owner_of(id, now));
  }
  Task<std::vector<Session>> collect_expired(TimePoint now, std::size_t max) override {
    return on_store_thread(store_.collect_expired(now, max));
  }
  Task<std::vector<ActivityChange>> collect_activity(std::size_t max) override {
    return on_store_thread(store_.collect_activity(max));
  }
  Task<std::size_t> live_count() override { return on_store_thread(store_.live_count()); }
  Task<void> ping() override { return on_store_thread(store_.ping()); }
  Result<void> restore(std::vector<RestoredSession> sessions,
                       std::vector<RestoredTombstone> tombstones) override {
    for (const RestoredSession& s : sessions) remember(s.refresh_hash, s.session.user_id);
    for (const RestoredTombstone& t : tombstones) remember(t.refresh_hash, t.user_id);
    return store_.restore(std::move(sessions), std::move(tombstones));
  }
  std::vector<std::string> warnings() const override { return store_.warnings(); }

 private:
  template <class T>
  Task<T> on_store_thread(Task<T> task) {
    co_return co_await asio::co_spawn(io_, std::move(task), asio::use_awaitable);
  }

  void remember(const TokenHash& h, UserId user) {
    std::lock_guard lock(mu_);
    users_.insert_or_assign(h, user);
  }
  UserId user_of(const TokenHash& h) {
    std::lock_guard lock(mu_);
    auto it = users_.find(h);
    return it == users_.end() ? 0 : it->second;
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::shared_ptr<redis::RedisClient> client_;
  RedisSessionStore store_;
  std::thread thread_;
  std::mutex mu_;
  std::map<TokenHash, UserId> users_;
};

// Tests share one server (ctest runs them in parallel processes): each store gets its own prefix.
std::string unique_prefix() {
  std::random_device random;
  constexpr char kHex[] = "0123456789abcdef";
  std::string prefix = "sdtest-";
  for (int i = 0; i < 16; ++i) prefix.push_back(kHex[random() % 16]);
  return prefix;
}

std::unique_ptr<SessionStore> make_redis_store() {
  const char* url = std::getenv("SESSIOND_TEST_REDIS_URL");
  // Unset is a failure, not a skip: make test always provides a server.
  if (url == nullptr || *url == '\0') {
    throw std::runtime_error(
        "SESSIOND_TEST_REDIS_URL is not set: the Redis store tests need a redis-server (make test "
        "starts one; or run redis-server and export "
        "SESSIOND_TEST_REDIS_URL=redis://127.0.0.1:PORT)");
  }
  auto parsed = redis::RedisUrl::parse(url);
  if (!parsed) throw std::runtime_error("SESSIOND_TEST_REDIS_URL: " + parsed.error().detail);
  RedisStoreOptions options;
  options.prefix = unique_prefix();
  options.tombstone_ttl = kContractTombstoneTtl;
  return std::make_unique<RedisContractStore>(std::move(*parsed), std::move(options));
}

}  // namespace

const std::vector<StoreFactory>& store_factories() {
  static const std::vector<StoreFactory> factories{
      {"memory",
       [] {
         MemoryStoreOptions options;
         options.tombstone_ttl = kContractTombstoneTtl;
         return std::make_unique<MemorySessionStore>(options);
       }},
      {"redis", make_redis_store},
  };
  return factories;
}

}  // namespace sessiond::store::testing
