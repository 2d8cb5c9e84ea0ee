// Creates N sessions (default 100,000; 5 per user, the field sizes of bench/store_memory) directly
// through RedisSessionStore on the Redis at URL, CONCURRENCY creates in flight at a time (they
// pipeline on the client's connection), and prints how many it created and how long it took.
// bench/run.sh reads Redis's INFO memory before and after it.
//   Usage: redis_sessions redis://127.0.0.1:PORT [N] [CONCURRENCY] [FIRST_USER]
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>

#include "core/crypto.hpp"
#include "store/redis/redis_client.hpp"
#include "store/redis/redis_session_store.hpp"

namespace {

using namespace sessiond;

const std::string kAgents[] = {
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"};
const std::string kDevices[] = {"iPhone · Safari", "Windows · Chrome", "Android · Chrome"};

struct Job {
  store::RedisSessionStore* store = nullptr;
  SodiumRandom* random = nullptr;
  RolePolicy policy;
  TimePoint now;
  long n = 0;
  long first_user = 1;
  long next = 0;  // next session index to create (one thread: no lock)
  long failed = 0;
  std::string first_error;
};

// One of CONCURRENCY workers: takes the next index until all N are created.
boost::asio::awaitable<void> worker(Job& job) {
  for (long i = job.next++; i < job.n; i = job.next++) {
    store::CreateRequest req;
    req.session = make_session(SessionId::generate(*job.random), job.first_user + i / 5, "GUEST",
                               job.policy, job.now);
    req.session.user_agent = kAgents[i % 3];
    req.session.device_info = kDevices[i % 3];
    req.session.ip_address = "203.0.113." + std::to_string(i % 250);
    req.session.last_ip = req.session.ip_address;
    req.session.attributes = "{}";
    req.session.auth_method = AuthMethod::password;
    job.random->fill(req.refresh_hash);
    req.refresh_expires_at = job.now + std::chrono::hours(24 * 30);
    req.max_sessions = 5;
    auto created = co_await job.store->create(std::move(req));
    if (!created) {
      if (job.failed++ == 0) job.first_error = created.error().detail;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s redis://HOST:PORT [N] [CONCURRENCY] [FIRST_USER]\n", argv[0]);
    return 2;
  }
  const long n = argc > 2 ? std::atol(argv[2]) : 100'000;
  const long concurrency = argc > 3 ? std::atol(argv[3]) : 32;
  const long first_user = argc > 4 ? std::atol(argv[4]) : 1'000'000;
  auto url = store::redis::RedisUrl::parse(argv[1]);
  if (!url) {
    std::fprintf(stderr, "redis_sessions: %s\n", url.error().detail.c_str());
    return 2;
  }
  init_crypto();
  SodiumRandom random;
  auto client = std::make_shared<store::redis::RedisClient>(*url);
  store::RedisSessionStore store(client);
  boost::asio::io_context io;

  Job job;
  job.store = &store;
  job.random = &random;
  job.policy =
      RolePolicy{std::chrono::hours(24), std::chrono::hours(24 * 30), 5, OnLimit::evict_oldest};
  job.now = SystemClock().now();
  job.n = n;
  job.first_user = first_user;

  // An open Redis connection keeps io.run() from returning: the last worker to finish stops it.
  long running = concurrency;
  const auto start = std::chrono::steady_clock::now();
  for (long w = 0; w < concurrency; ++w) {
    boost::asio::co_spawn(io, worker(job), [&](std::exception_ptr e) {
      if (e) {
        job.failed++;
        if (job.first_error.empty()) job.first_error = "exception in a worker";
      }
      if (--running == 0) io.stop();
    });
  }
  io.run();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  client->stop();
  if (job.failed != 0) {
    std::fprintf(stderr, "redis_sessions: %ld creates failed (first: %s)\n", job.failed,
                 job.first_error.c_str());
    return 1;
  }
  std::printf("%ld sessions created in %.1f s (%.0f/s)\n", n, seconds,
              static_cast<double>(n) / seconds);
  return 0;
}
