// Micro-benchmarks of the verify hot path. Run: ./build/bench/micro_bench
#include <benchmark/benchmark.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "core/crypto.hpp"
#include "core/jwt.hpp"
#include "store/memory/memory_session_store.hpp"

namespace {

using namespace sessiond;

const JwtCodec& codec() {
  static JwtCodec c = JwtCodec::hs256(std::string(32, 'k'), "sessiond", "sessiond").value();
  return c;
}

AccessClaims sample_claims(Random& random) {
  AccessClaims claims;
  claims.sub = 42;
  claims.sid = SessionId::generate(random);
  claims.role = "GUEST";
  claims.iat = SystemClock().now();
  claims.exp = claims.iat + std::chrono::hours(1);
  claims.jti = "abcdefghijklmnop";
  return claims;
}

void BM_JwtSign(benchmark::State& state) {
  SodiumRandom random;
  auto claims = sample_claims(random);
  for (auto _ : state) benchmark::DoNotOptimize(codec().sign(claims));
}
BENCHMARK(BM_JwtSign);

void BM_JwtVerify(benchmark::State& state) {
  SodiumRandom random;
  const std::string token = codec().sign(sample_claims(random));
  const TimePoint now = SystemClock().now();
  for (auto _ : state) benchmark::DoNotOptimize(codec().verify(token, now));
}
BENCHMARK(BM_JwtVerify);

void BM_StoreValidateAndTouch(benchmark::State& state) {
  init_crypto();
  SodiumRandom random;
  store::MemorySessionStore store;
  boost::asio::io_context io;
  const TimePoint now = SystemClock().now();
  const RolePolicy policy{std::chrono::hours(24), std::chrono::hours(24 * 30), 5,
                          OnLimit::evict_oldest};
  const Session s = make_session(SessionId::generate(random), 7, "GUEST", policy, now);
  store::CreateRequest req;
  req.session = s;
  req.refresh_expires_at = now + std::chrono::hours(1);
  boost::asio::co_spawn(io, store.create(req), boost::asio::detached);
  io.run();
  for (auto _ : state) {
    io.restart();
    boost::asio::co_spawn(io, store.validate_and_touch(7, s.id, now, "127.0.0.1"),
                          boost::asio::detached);
    io.run();
  }
}
BENCHMARK(BM_StoreValidateAndTouch);

}  // namespace
