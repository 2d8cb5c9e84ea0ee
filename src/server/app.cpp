#include "server/app.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <optional>
#include <thread>

#include "core/crypto.hpp"
#include "core/jwt.hpp"
#include "db/postgres/postgres_database.hpp"
#include "db/sqlite/sqlite_database.hpp"
#include "http/api.hpp"
#include "http/outbound.hpp"
#include "http/server.hpp"
#include "server/config_loader.hpp"
#include "service/otp_sender.hpp"
#include "service/session_service.hpp"
#include "service/webhooks.hpp"
#include "store/memory/memory_session_store.hpp"
#include "store/redis/redis_session_store.hpp"

namespace sessiond::server {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

struct StartError {
  int status;
  std::string message;
};

// Creates the data directory 0700 when missing.
void ensure_data_dir(const std::string& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec))
      throw StartError{kExitBadConfig, "data_dir: " + dir + " is not a directory"};
    return;
  }
  fs::create_directories(dir, ec);
  if (ec) throw StartError{kExitBadConfig, "data_dir: cannot create " + dir + ": " + ec.message()};
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
}

// Writes a new secret file 0600 atomically (temporary file, then rename).
void write_secret_file(const std::string& path, const std::string& content, const char* key) {
  std::error_code ec;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) throw StartError{kExitBadConfig, std::string(key) + ": cannot write " + path};
    ::chmod(tmp.c_str(), 0600);
    out << content;
    if (!out.flush()) throw StartError{kExitBadConfig, std::string(key) + ": cannot write " + path};
  }
  fs::rename(tmp, path, ec);
  if (ec) throw StartError{kExitBadConfig, std::string(key) + ": cannot write " + path};
  spdlog::info("generated {} ({})", path, key);
}

// Reads a secret file, or, when it is the default path and missing, generates it 0600 with
// `generate`. `one_line`: the secret is the first line (keys); otherwise the whole file (PEM).
template <class Generate>
std::string load_or_create_secret(const std::string& path, bool configured, const char* key,
                                  bool one_line, Generate generate) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    if (configured) throw StartError{kExitBadConfig, std::string(key) + ": cannot read " + path};
    std::string secret = generate();
    write_secret_file(path, one_line ? secret + "\n" : secret, key);
    return secret;
  }
  std::ifstream in(path);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in && !in.eof())
    throw StartError{kExitBadConfig, std::string(key) + ": cannot read " + path};
  if (one_line) {
    content = content.substr(0, content.find('\n'));
    while (!content.empty() && (content.back() == '\r' || content.back() == ' '))
      content.pop_back();
    if (content.size() < 32) {
      throw StartError{kExitBadConfig,
                       std::string(key) + ": " + path + " holds fewer than 32 characters"};
    }
  }
  return content;
}

// `pepper` receives a key derived from the signing key: every node that shares the signing key
// derives the same one (for the hashes of one-time codes and rate-limit subjects).
JwtCodec load_jwt_codec(const Config& config, Random& random, std::string& pepper) {
  const auto algorithm = parse_jwt_algorithm(config.tokens.algorithm);
  if (!algorithm) throw StartError{kExitBadConfig, "tokens.algorithm: unknown algorithm"};
  const bool hs256 = *algorithm == JwtAlgorithm::HS256;
  std::string key = load_or_create_secret(
      effective_signing_key_file(config), !config.tokens.signing_key_file.empty(),
      "tokens.signing_key_file", hs256, [&]() -> std::string {
        if (hs256) return random_secret(random, 32);
        auto pem = generate_jwt_private_key_pem(*algorithm);
        if (!pem)
          throw StartError{kExitFailure, "cannot generate a signing key: " + pem.error().detail};
        return *pem;
      });
  pepper = to_hex(hmac_sha256(key, "sessiond pepper v1"));
  auto codec =
      JwtCodec::create(*algorithm, std::move(key), config.tokens.issuer, config.tokens.audience);
  if (!codec) {
    throw StartError{kExitBadConfig, "tokens.signing_key_file: " +
                                         effective_signing_key_file(config) + " is not a key for " +
                                         config.tokens.algorithm + ": " + codec.error().detail};
  }
  return std::move(*codec);
}

std::unique_ptr<db::Database> open_database(const Config& config) {
  const std::string url = effective_database_url(config);
  std::unique_ptr<db::Database> database;
  std::string kind;
  if (url.starts_with("sqlite://")) {
    auto db = db::SqliteDatabase::open(url.substr(9));
    if (!db) throw StartError{kExitFailure, "database.url: " + db.error().detail};
    database = std::move(*db);
    kind = "sqlite";
  } else if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
    // The URL goes to libpq as it is; what it leaves out comes from the PG* environment.
    db::PostgresOptions options;
    options.url = url;
    auto db = db::PostgresDatabase::open(std::move(options));
    if (!db) {
      const int status = db.error().code == Errc::invalid_request ? kExitBadConfig : kExitFailure;
      throw StartError{status, "database.url: " + db.error().detail};
    }
    database = std::move(*db);
    kind = "postgresql";
  } else {
    throw StartError{kExitBadConfig,
                     "database.url: expected sqlite://PATH, postgresql://... or postgres://..."};
  }
  auto version = database->migrate();
  if (!version) {
    throw StartError{kExitFailure, "database migration failed: " + version.error().detail};
  }
  spdlog::info("database {} schema version {}", kind, *version);
  return database;
}

// "sqlite", "postgresql": the URL's scheme, for the log (the rest may hold a password).
std::string database_scheme(const Config& config) {
  const std::string url = effective_database_url(config);
  return url.substr(0, url.find("://"));
}

// A tombstone answers for at least access_ttl: as long as an access token of the session lives.
Duration tombstone_ttl(const Config& config) {
  return std::max<Duration>(config.tokens.access_ttl + std::chrono::minutes(1),
                            std::chrono::hours(1));
}

// The memory store, rebuilt from the database: a restart loses no acknowledged session.
std::unique_ptr<store::SessionStore> open_memory_store(const Config& config, db::Database& database,
                                                       const Clock& clock) {
  store::MemoryStoreOptions options;
  options.tombstone_ttl = tombstone_ttl(config);
  auto store = std::make_unique<store::MemorySessionStore>(options);
  auto live = database.load_live_sessions();
  auto ended = database.load_ended_since(clock.now() - options.tombstone_ttl);
  if (!live || !ended) throw StartError{kExitFailure, "cannot read sessions from the database"};
  std::vector<store::RestoredSession> sessions;
  sessions.reserve(live->size());
  for (auto& r : *live) {
    sessions.push_back({std::move(r.session), r.refresh_hash, r.refresh_expires_at});
  }
  std::vector<store::RestoredTombstone> tombstones;
  for (auto& r : *ended) {
    tombstones.push_back({r.session.id, r.session.user_id,
                          r.invalidation_reason.value_or(EndReason::expired),
                          r.invalidated_at.value_or(clock.now()), r.refresh_hash});
  }
  spdlog::info("restored {} live session(s) and {} recently ended", sessions.size(),
               tombstones.size());
  if (auto restored = store->restore(std::move(sessions), std::move(tombstones)); !restored) {
    throw StartError{kExitFailure, "cannot restore sessions: " + restored.error().detail};
  }
  return store;
}

// The Redis store: live state is Redis's, nothing is restored. Redis being down at start is not
// fatal: requests fail closed (503) until it answers, and sessiond recovers by itself.
std::unique_ptr<store::SessionStore> open_redis_store(const Config& config) {
  auto url = store::redis::RedisUrl::parse(config.store_url);
  if (!url) throw StartError{kExitBadConfig, "store.url: " + url.error().detail};
  auto client = std::make_shared<store::redis::RedisClient>(*url);
  store::RedisStoreOptions options;
  options.tombstone_ttl = tombstone_ttl(config);
  options.outbox = true;  // every session change reaches the database through the outbox
  auto store = std::make_unique<store::RedisSessionStore>(client, options);

  // Check the Redis configuration once now (SPEC §7) on a private io_context; its connection
  // closes with it.
  asio::io_context io;
  std::optional<Result<std::vector<std::string>>> checked;
  asio::co_spawn(io, store->check_configuration(),
                 [&](std::exception_ptr, Result<std::vector<std::string>> r) {
                   checked = std::move(r);
                   io.stop();
                 });
  io.run_for(std::chrono::seconds(3));
  if (!checked || !*checked) {
    spdlog::warn(
        "redis at {}:{} does not answer yet: requests that need it answer 503 until it does",
        url->host, url->port);
  } else {
    for (const auto& warning : **checked) spdlog::warn("redis: {}", warning);
    spdlog::info("store redis at {}:{} db {}", url->host, url->port, url->db);
  }
  return store;
}

std::unique_ptr<store::SessionStore> open_store(const Config& config, db::Database& database,
                                                const Clock& clock) {
  if (config.store_url.starts_with("memory://")) return open_memory_store(config, database, clock);
  if (config.store_url.starts_with("redis://")) return open_redis_store(config);
  throw StartError{kExitBadConfig, "store.url: expected memory:// or redis://"};
}

std::pair<std::string, std::uint16_t> split_listen(const std::string& listen) {
  auto colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return {host, static_cast<std::uint16_t>(std::stoi(listen.substr(colon + 1)))};
}

asio::awaitable<void> job_loop(service::SessionService& svc, const Config& config,
                               std::atomic<bool>& stopping) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  const auto tick = std::min<Duration>(std::chrono::seconds(1), config.jobs.cleanup_interval);
  auto last_cleanup = std::chrono::steady_clock::now();
  auto last_flush = last_cleanup;
  while (!stopping) {
    timer.expires_after(tick);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (stopping) break;
    const auto now = std::chrono::steady_clock::now();
    const bool flush = now - last_flush >= config.jobs.activity_flush_interval;
    if (now - last_cleanup >= config.jobs.cleanup_interval || flush) {
      try {
        co_await svc.run_jobs_once(flush);
      } catch (const std::exception& e) {
        spdlog::error("background job failed: {}", e.what());
      }
      last_cleanup = now;
      if (flush) last_flush = now;
    }
  }
}

// The outbox writer (Redis store): moves session changes from the store's outbox into the
// database as they come, and waits out a database or store outage with growing pauses.
asio::awaitable<void> outbox_loop(service::SessionService& svc, std::string consumer,
                                  std::atomic<bool>& stopping) {
  using namespace std::chrono_literals;
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  const Duration idle = 100ms;
  Duration backoff = idle;
  bool failing = false;
  while (!stopping) {
    Result<std::size_t> written = std::size_t{0};
    try {
      written = co_await svc.drain_outbox(consumer);
    } catch (const std::exception& e) {
      written = Error(Errc::internal, e.what());
    }
    Duration pause = idle;
    if (written) {
      if (failing) spdlog::info("outbox: writing to the database again");
      failing = false;
      backoff = idle;
      if (*written > 0) continue;
    } else {
      if (!failing) {
        spdlog::warn(
            "outbox: cannot move session events to the database yet ({}); they wait in "
            "the store and are retried",
            written.error().detail);
      }
      failing = true;
      pause = backoff;
      backoff = std::min<Duration>(backoff * 2, 5s);
    }
    timer.expires_after(pause);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

// Webhook delivery (SPEC §6): one node at a time (a lease in the store) POSTs what the database
// queued, in order; the others stand by and take over when the holder stops renewing.
asio::awaitable<void> webhook_loop(service::WebhookDeliverer& deliverer, store::SessionStore& store,
                                   const Clock& clock, std::string holder,
                                   std::atomic<bool>& stopping) {
  using namespace std::chrono_literals;
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  const Duration lease = 30s;
  bool failing = false;
  while (!stopping) {
    Duration pause = 200ms;
    try {
      auto held = co_await store.lease_acquire("webhooks", holder, lease, clock.now());
      if (held && *held) {
        // One event per lease renewal: a slow receiver (10 s a call) never outlasts the lease.
        auto delivered = co_await deliverer.deliver_some(1);
        if (delivered && *delivered > 0) continue;
        if (!delivered) {
          if (!failing) {
            spdlog::warn("webhooks: cannot read the queue yet ({}); retrying",
                         delivered.error().detail);
          }
          failing = true;
          pause = 1s;
        } else {
          failing = false;
        }
      }
    } catch (const std::exception& e) {
      spdlog::error("webhooks: {}", e.what());
      pause = 1s;
    }
    timer.expires_after(pause);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  (void)co_await store.lease_release("webhooks", holder);
}

// At shutdown: what the outbox still holds (for about a second), then the lease goes.
asio::awaitable<void> outbox_flush(service::SessionService& svc, std::string consumer) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(800);
  while (std::chrono::steady_clock::now() < until) {
    auto written = co_await svc.drain_outbox(consumer);
    if (!written || *written == 0) break;
  }
  (void)co_await svc.release_outbox(consumer);
}

// This node's name in the outbox's consumer group: the host name (for people reading XINFO) and a
// random id kept in <data_dir>/node.id, so that a node restarted after a crash is the same
// consumer: it still holds the writer's lease and takes back at once the entries it had not
// written. Two nodes never share a data directory, so never a name.
std::string outbox_consumer(const Config& config, Random& random) {
  std::array<char, 256> host{};
  if (gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  const std::string id =
      load_or_create_secret((fs::path(config.data_dir) / "node.id").string(), false, "node.id",
                            true, [&] { return random_secret(random, 24); });
  return std::string(host.data()) + "/" + id;
}

}  // namespace

int run_migrate(const Config& config) {
  try {
    ensure_data_dir(config.data_dir);
    auto db = open_database(config);
    return kExitOk;
  } catch (const StartError& e) {
    spdlog::error("{}", e.message);
    return e.status;
  }
}

int run_server(const Config& config) {
  // Signals are taken by sigwait on this thread; the io threads started later inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  try {
    ensure_data_dir(config.data_dir);
    SodiumRandom random;
    SystemClock clock;
    std::string pepper;
    const JwtCodec jwt = load_jwt_codec(config, random, pepper);
    const std::string admin_key = load_or_create_secret(
        effective_admin_key_file(config), !config.admin.api_key_file.empty(), "admin.api_key_file",
        true, [&] { return random_secret(random, 32); });

    auto database = open_database(config);

    std::unique_ptr<store::SessionStore> store = open_store(config, *database, clock);

    auto proxies = http::TrustedProxies::parse(config.server.trusted_proxies);
    if (!proxies)
      throw StartError{kExitBadConfig, "server.trusted_proxies: " + proxies.error().detail};

    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    service::Workers db_workers(2);
    service::Workers hash_workers(cores);
    http::BeastOutbound outbound;
    auto otp_sender = service::make_otp_sender(config.otp.sender, outbound);
    service::SessionService svc(service::ServiceDeps{config, clock, random, jwt, *store, *database,
                                                     db_workers, hash_workers, admin_key,
                                                     *otp_sender, pepper});
    std::optional<service::WebhookDeliverer> webhooks;
    if (!config.webhooks.url.empty()) {
      std::string secret = load_or_create_secret(config.webhooks.secret_file, true,
                                                 "webhooks.secret_file", true, [] { return ""; });
      webhooks.emplace(config.webhooks, std::move(secret), *database, db_workers, outbound, clock);
    }
    http::Metrics metrics;
    http::Api api(config, svc, metrics);

    http::ServerOptions options;
    std::tie(options.host, options.port) = split_listen(config.server.listen);
    options.threads = config.server.threads > 0 ? config.server.threads : static_cast<int>(cores);
    options.max_body = config.server.max_body;
    options.idle_timeout = config.server.idle_timeout;
    options.request_timeout = config.server.request_timeout;
    http::HttpServer server(
        options, [&api](http::Request& r) { return api.handle(r); }, std::move(*proxies));
    auto port = server.bind();
    if (!port) throw StartError{kExitFailure, "server.listen: " + port.error().detail};
    std::atomic<bool> stopping{false};
    asio::co_spawn(server.main_context(), job_loop(svc, config, stopping), asio::detached);
    const std::string consumer = outbox_consumer(config, random);
    if (svc.has_outbox()) {
      asio::co_spawn(server.main_context(), outbox_loop(svc, consumer, stopping), asio::detached);
    }
    std::future<void> webhooks_stopped;
    if (webhooks) {
      webhooks_stopped = asio::co_spawn(server.main_context(),
                                        webhook_loop(*webhooks, *store, clock, consumer, stopping),
                                        asio::use_future);
    }
    server.start();
    // Schemes only: a URL may carry a password, and secrets never reach the log.
    spdlog::info("listening on {}:{} ({} threads, store {}, database {})", options.host, *port,
                 options.threads, config.store_url.substr(0, config.store_url.find("://")),
                 database_scheme(config));

    int signal = 0;
    sigwait(&signals, &signal);
    spdlog::info("received {}: draining", signal == SIGTERM ? "SIGTERM" : "SIGINT");
    api.set_draining();
    // SIGTERM to exit within 10 s (SPEC §8): 7 s of drain, then at most a second each for the
    // audit writer, the outbox and the webhook deliverer.
    server.drain(std::chrono::seconds(7));
    stopping = true;
    asio::co_spawn(server.main_context(), svc.flush(), asio::use_future)
        .wait_for(std::chrono::seconds(1));
    if (svc.has_outbox()) {
      asio::co_spawn(server.main_context(), outbox_flush(svc, consumer), asio::use_future)
          .wait_for(std::chrono::seconds(1));
    }
    if (webhooks_stopped.valid()) webhooks_stopped.wait_for(std::chrono::seconds(1));
    server.stop();
    db_workers.stop();
    hash_workers.stop();
    spdlog::info("stopped");
    return kExitOk;
  } catch (const StartError& e) {
    spdlog::error("{}", e.message);
    return e.status;
  }
}

}  // namespace sessiond::server
