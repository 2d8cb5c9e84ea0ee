// Creates N sessions (default 1,000,000; 5 per user, realistic field sizes) in the memory store
// and prints the resident memory they added, per session.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "core/crypto.hpp"
#include "store/memory/memory_session_store.hpp"

namespace {

long resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * 4096;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sessiond;
  const long n = argc > 1 ? std::atol(argv[1]) : 1'000'000;
  init_crypto();
  SodiumRandom random;
  store::MemorySessionStore store;
  boost::asio::io_context io;
  const RolePolicy policy{std::chrono::hours(24), std::chrono::hours(24 * 30), 5,
                          OnLimit::evict_oldest};
  const TimePoint now = SystemClock().now();
  const std::string agents[] = {
      "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
      "Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/131.0.0.0 Safari/537.36",
      "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/131.0.0.0 Mobile Safari/537.36"};
  const std::string devices[] = {"iPhone · Safari", "Windows · Chrome", "Android · Chrome"};

  const long before = resident_bytes();
  auto fut = boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        for (long i = 0; i < n; ++i) {
          store::CreateRequest req;
          req.session = make_session(SessionId::generate(random), 1 + i / 5, "GUEST", policy, now);
          req.session.user_agent = agents[i % 3];
          req.session.device_info = devices[i % 3];
          req.session.ip_address = "203.0.113." + std::to_string(i % 250);
          req.session.last_ip = req.session.ip_address;
          req.session.attributes = "{}";
          req.session.auth_method = AuthMethod::password;
          random.fill(req.refresh_hash);
          req.refresh_expires_at = now + std::chrono::hours(24 * 30);
          req.max_sessions = 5;
          auto created = co_await store.create(std::move(req));
          if (!created) std::abort();
        }
      },
      boost::asio::use_future);
  io.run();
  fut.get();
  const long after = resident_bytes();
  const double per_session = static_cast<double>(after - before) / static_cast<double>(n);
  std::printf("%ld sessions, RSS +%.1f MiB, %.0f bytes per live session\n", n,
              static_cast<double>(after - before) / (1024.0 * 1024.0), per_session);
  return 0;
}
