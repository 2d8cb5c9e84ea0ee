#include "store/store_factories.hpp"

#include <cstdlib>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>

#include "store/memory/memory_session_store.hpp"
#include "store/redis/redis_client.hpp"
#include "store/redis/redis_session_store.hpp"

namespace sessiond::store::testing {
namespace {

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
  return std::make_unique<RedisSessionStore>(
      std::make_shared<redis::RedisClient>(std::move(*parsed)), std::move(options));
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
