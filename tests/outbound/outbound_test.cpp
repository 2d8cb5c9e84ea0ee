// BeastOutbound against loopback servers of the test's own: a Beast server on 127.0.0.1, port 0,
// on its own thread, plain or TLS with a throwaway self-signed certificate made here with OpenSSL.
#include "http/outbound.hpp"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cctype>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/temp_dir.hpp"

namespace sessiond::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using asio::awaitable;
using asio::ip::tcp;
using service::OutboundRequest;
using service::OutboundResponse;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

// ---- A throwaway self-signed certificate ----------------------------------------------------

struct Certificate {
  std::string cert_pem;
  std::string key_pem;
};

template <class T, void (*Free)(T*)>
struct Freer {
  void operator()(T* p) const { Free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Freer<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Freer<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Freer<BIO, BIO_free_all>>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, Freer<X509_EXTENSION, X509_EXTENSION_free>>;

void require(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("OpenSSL: ") + what);
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(size));
}

// `subject_alt_names` in OpenSSL's config syntax: "DNS:localhost,IP:127.0.0.1".
Certificate make_certificate(const std::string& common_name, const std::string& subject_alt_names) {
  static std::atomic<long> serial{1};
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  require(key != nullptr, "EC key generation");
  X509Ptr cert(X509_new());
  require(cert != nullptr, "X509_new");
  require(X509_set_version(cert.get(), 2) == 1, "X509_set_version");
  require(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++) == 1, "serial");
  require(X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr, "notBefore");
  require(X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600) != nullptr, "notAfter");
  require(X509_set_pubkey(cert.get(), key.get()) == 1, "X509_set_pubkey");
  X509_NAME* name = X509_get_subject_name(cert.get());
  require(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                     reinterpret_cast<const unsigned char*>(common_name.c_str()),
                                     -1, -1, 0) == 1,
          "subject");
  require(X509_set_issuer_name(cert.get(), name) == 1, "issuer");
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, cert.get(), cert.get(), nullptr, nullptr, 0);
  const std::pair<int, std::string> extensions[] = {
      {NID_basic_constraints, "critical,CA:TRUE"},
      {NID_subject_key_identifier, "hash"},
      {NID_subject_alt_name, subject_alt_names},
  };
  for (const auto& [nid, value] : extensions) {
    ExtensionPtr extension(X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str()));
    require(extension != nullptr, "extension");
    require(X509_add_ext(cert.get(), extension.get(), -1) == 1, "X509_add_ext");
  }
  require(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0, "X509_sign");

  Certificate out;
  BioPtr cert_bio(BIO_new(BIO_s_mem()));
  require(PEM_write_bio_X509(cert_bio.get(), cert.get()) == 1, "PEM_write_bio_X509");
  out.cert_pem = bio_text(cert_bio.get());
  BioPtr key_bio(BIO_new(BIO_s_mem()));
  require(PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr,
                                   nullptr) == 1,
          "PEM_write_bio_PrivateKey");
  out.key_pem = bio_text(key_bio.get());
  return out;
}

std::shared_ptr<ssl::context> server_tls(const Certificate& certificate) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  context->use_certificate_chain(asio::buffer(certificate.cert_pem));
  context->use_private_key(asio::buffer(certificate.key_pem), ssl::context::pem);
  return context;
}

// ---- The loopback server --------------------------------------------------------------------

struct Received {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

struct Reply {
  int status = 200;
  std::string body;
  bool chunked = false;
};

enum class Behaviour {
  answer,                   // answers every request, keeps the connection open
  close_after_answer,       // answers, then closes the connection (no "Connection: close")
  close_on_second_request,  // on each connection: answers the first, closes on the second
  close_without_answer,     // reads the request, closes
  never_answer,             // reads the request, holds the connection, says nothing
  answer_garbage,           // answers bytes that are not HTTP
};

Reply echo(const Received& r) { return Reply{200, "echo:" + r.body}; }

class LoopbackServer {
 public:
  explicit LoopbackServer(Behaviour behaviour = Behaviour::answer,
                          std::function<Reply(const Received&)> handler = echo,
                          std::shared_ptr<ssl::context> tls = nullptr)
      : behaviour_(behaviour), handler_(std::move(handler)), tls_(std::move(tls)), acceptor_(io_) {
    const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(io_, accept_loop(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;
  ~LoopbackServer() {
    io_.stop();
    thread_.join();
  }

  std::uint16_t port() const { return port_; }
  std::string url(const std::string& path = "/hook") const {
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + path;
  }
  int connections() const { return connections_.load(); }
  std::vector<Received> received() const {
    std::lock_guard lock(mutex_);
    return received_;
  }

 private:
  awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(kUseTuple);
      if (ec) co_return;
      ++connections_;
      asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
    }
  }

  awaitable<void> serve(tcp::socket socket) {
    beast::flat_buffer buffer;
    if (!tls_) {
      beast::tcp_stream stream(std::move(socket));
      co_await session(stream, buffer);
      co_return;
    }
    beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), *tls_);
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, kUseTuple);
    if (ec) co_return;
    co_await session(stream, buffer);
  }

  template <class Stream>
  awaitable<void> session(Stream& stream, beast::flat_buffer& buffer) {
    for (int n = 1;; ++n) {
      bhttp::request<bhttp::string_body> request;
      auto [ec, bytes] = co_await bhttp::async_read(stream, buffer, request, kUseTuple);
      if (ec) co_return;
      Received r{
          std::string(request.method_string()), std::string(request.target()), {}, request.body()};
      for (const auto& field : request) {
        std::string name(field.name_string());
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        r.headers[name] = std::string(field.value());
      }
      {
        std::lock_guard lock(mutex_);
        received_.push_back(r);
      }
      switch (behaviour_) {
        case Behaviour::close_without_answer: co_return;
        case Behaviour::close_on_second_request:
          if (n == 2) co_return;
          break;
        case Behaviour::never_answer: {
          asio::steady_timer forever(stream.get_executor(), std::chrono::hours(1));
          co_await forever.async_wait(kUseTuple);
          co_return;
        }
        case Behaviour::answer_garbage: {
          const std::string garbage = "NOT HTTP AT ALL\r\n\r\n";
          co_await asio::async_write(stream, asio::buffer(garbage), kUseTuple);
          co_return;
        }
        default: break;
      }
      const Reply reply = handler_(r);
      bhttp::response<bhttp::string_body> response(static_cast<bhttp::status>(reply.status), 11);
      response.set(bhttp::field::content_type, "text/plain");
      response.body() = reply.body;
      if (reply.chunked) {
        response.chunked(true);
      } else {
        response.prepare_payload();
      }
      response.keep_alive(request.keep_alive());
      auto [write_ec, written] = co_await bhttp::async_write(stream, response, kUseTuple);
      if (write_ec || !request.keep_alive() || behaviour_ == Behaviour::close_after_answer) {
        co_return;
      }
    }
  }

  Behaviour behaviour_;
  std::function<Reply(const Received&)> handler_;
  std::shared_ptr<ssl::context> tls_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<int> connections_{0};
  mutable std::mutex mutex_;
  std::vector<Received> received_;
};

// ---- Driving the client ---------------------------------------------------------------------

OutboundRequest request_to(std::string url, std::string body = "{}") {
  OutboundRequest request;
  request.url = std::move(url);
  request.body = std::move(body);
  return request;
}

// Runs one call to completion on `io` (this thread).
Result<OutboundResponse> call(asio::io_context& io, BeastOutbound& client,
                              OutboundRequest request) {
  auto future = asio::co_spawn(io, client.post(std::move(request)), asio::use_future);
  io.restart();
  io.run();
  return future.get();
}

std::uint16_t refused_port() {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();  // closed on return: nobody listens there
}

// ---- Plain HTTP -----------------------------------------------------------------------------

TEST(BeastOutbound, ReturnsStatusAndBodyWhateverTheStatus) {
  LoopbackServer server(Behaviour::answer, [](const Received& r) {
    if (r.target == "/fail") return Reply{500, "gateway broke"};
    if (r.target == "/missing") return Reply{404, ""};
    return Reply{200, "sent"};
  });
  asio::io_context io;
  BeastOutbound client;

  auto ok = call(io, client, request_to(server.url("/send")));
  ASSERT_TRUE(ok) << ok.error().detail;
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body, "sent");

  auto failed = call(io, client, request_to(server.url("/fail")));
  ASSERT_TRUE(failed) << failed.error().detail;
  EXPECT_EQ(failed->status, 500);
  EXPECT_EQ(failed->body, "gateway broke");

  auto missing = call(io, client, request_to(server.url("/missing")));
  ASSERT_TRUE(missing) << missing.error().detail;
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->body, "");
}

TEST(BeastOutbound, SendsHeadersAndBodyAsGiven) {
  LoopbackServer server;
  asio::io_context io;
  BeastOutbound client;
  const std::string body = std::string("{\"text\":\"h\xC3\xA9llo\",\"zero\":\"") + '\0' + "\"}";
  OutboundRequest request = request_to(server.url("/hooks/sms?to=%2B33600000000&x=1"), body);
  request.content_type = "application/json; charset=utf-8";
  request.headers = {{"X-Signature", "sha256=abc"}, {"Authorization", "Bearer t0ken"}};

  auto answer = call(io, client, request);
  ASSERT_TRUE(answer) << answer.error().detail;
  EXPECT_EQ(answer->body, "echo:" + body);

  const auto received = server.received();
  ASSERT_EQ(received.size(), 1u);
  const Received& r = received.front();
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/hooks/sms?to=%2B33600000000&x=1");
  EXPECT_EQ(r.body, body);
  EXPECT_EQ(r.headers.at("host"), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(r.headers.at("content-type"), "application/json; charset=utf-8");
  EXPECT_EQ(r.headers.at("content-length"), std::to_string(body.size()));
  EXPECT_EQ(r.headers.at("user-agent"), "sessiond");
  EXPECT_EQ(r.headers.at("x-signature"), "sha256=abc");
  EXPECT_EQ(r.headers.at("authorization"), "Bearer t0ken");
}

TEST(BeastOutbound, SendsSlashWhenTheUrlHasNoPathAndAnEmptyBody) {
  LoopbackServer server;
  asio::io_context io;
  BeastOutbound client;
  auto answer =
      call(io, client, request_to("http://127.0.0.1:" + std::to_string(server.port()), ""));
  ASSERT_TRUE(answer) << answer.error().detail;
  const auto received = server.received();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received.front().target, "/");
  EXPECT_EQ(received.front().headers.at("content-length"), "0");
}

TEST(BeastOutbound, ResolvesHostNames) {
  LoopbackServer server;
  asio::io_context io;
  BeastOutbound client;
  auto answer =
      call(io, client, request_to("http://localhost:" + std::to_string(server.port()) + "/x"));
  ASSERT_TRUE(answer) << answer.error().detail;
  EXPECT_EQ(answer->status, 200);
  EXPECT_EQ(server.received().at(0).headers.at("host"),
            "localhost:" + std::to_string(server.port()));
}

TEST(BeastOutbound, ReadsChunkedAnswers) {
  LoopbackServer server(Behaviour::answer, [](const Received&) {
    return Reply{201, std::string(5000, 'c'), true};
  });
  asio::io_context io;
  BeastOutbound client;
  for (int i = 0; i < 2; ++i) {
    auto answer = call(io, client, request_to(server.url()));
    ASSERT_TRUE(answer) << answer.error().detail;
    EXPECT_EQ(answer->status, 201);
    EXPECT_EQ(answer->body, std::string(5000, 'c'));
  }
  EXPECT_EQ(server.connections(), 1);
}

TEST(BeastOutbound, KeepsTheFirst64KiBOfLongerBodies) {
  const std::string long_body = [] {
    std::string s;
    for (int i = 0; s.size() < 200 * 1024; ++i) s += std::to_string(i) + ",";
    return s;
  }();
  LoopbackServer server(Behaviour::answer, [&](const Received& r) {
    if (r.target == "/exact") return Reply{200, std::string(64 * 1024, 'e')};
    return Reply{200, long_body, r.target == "/chunked"};
  });
  asio::io_context io;
  BeastOutbound client;

  for (const char* path : {"/long", "/chunked"}) {
    auto answer = call(io, client, request_to(server.url(path)));
    ASSERT_TRUE(answer) << path << ": " << answer.error().detail;
    EXPECT_EQ(answer->body, long_body.substr(0, 64 * 1024)) << path;
  }
  // A cut answer leaves its connection unread: it is closed, the next call opens another.
  EXPECT_EQ(server.connections(), 2);

  auto exact = call(io, client, request_to(server.url("/exact")));
  ASSERT_TRUE(exact) << exact.error().detail;
  EXPECT_EQ(exact->body, std::string(64 * 1024, 'e'));
  auto after = call(io, client, request_to(server.url("/exact")));
  ASSERT_TRUE(after) << after.error().detail;
  EXPECT_EQ(server.connections(), 3);  // a body of exactly 64 KiB is whole: the connection stays
}

TEST(BeastOutbound, ReusesOneConnectionForSequentialCalls) {
  LoopbackServer server;
  asio::io_context io;
  BeastOutbound client;
  for (int i = 0; i < 5; ++i) {
    auto answer = call(io, client, request_to(server.url(), "call " + std::to_string(i)));
    ASSERT_TRUE(answer) << answer.error().detail;
    EXPECT_EQ(answer->body, "echo:call " + std::to_string(i));
  }
  EXPECT_EQ(server.connections(), 1);
  EXPECT_EQ(server.received().size(), 5u);
}

TEST(BeastOutbound, WorksWithAServerThatClosesIdleConnections) {
  LoopbackServer server(Behaviour::close_after_answer);
  asio::io_context io;
  BeastOutbound client;
  for (int i = 0; i < 4; ++i) {
    auto answer = call(io, client, request_to(server.url(), std::to_string(i)));
    ASSERT_TRUE(answer) << answer.error().detail;
    EXPECT_EQ(answer->body, "echo:" + std::to_string(i));
  }
  EXPECT_EQ(server.connections(), 4);
  EXPECT_EQ(server.received().size(), 4u);
}

TEST(BeastOutbound, RetriesOnceOnANewConnectionWhenAReusedOneClosesBeforeAnswering) {
  LoopbackServer server(Behaviour::close_on_second_request);
  asio::io_context io;
  BeastOutbound client;
  auto first = call(io, client, request_to(server.url(), "first"));
  ASSERT_TRUE(first) << first.error().detail;
  auto second = call(io, client, request_to(server.url(), "second"));
  ASSERT_TRUE(second) << second.error().detail;
  EXPECT_EQ(second->body, "echo:second");
  EXPECT_EQ(server.connections(), 2);
  // The server read "second" on the kept-alive connection, closed it, then got it again.
  EXPECT_EQ(server.received().size(), 3u);
}

TEST(BeastOutbound, ConnectionClosedWithoutAnswerIsUpstreamUnavailable) {
  LoopbackServer server(Behaviour::close_without_answer);
  asio::io_context io;
  BeastOutbound client;
  OutboundRequest request = request_to(server.url("/p?token=secret-query"), "secret-body");
  request.headers = {{"X-Token", "secret-header"}};
  auto answer = call(io, client, request);
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error().code, Errc::upstream_unavailable);
  EXPECT_EQ(answer.error().detail.find("secret"), std::string::npos) << answer.error().detail;
  EXPECT_EQ(server.connections(), 1);  // a fresh connection is not retried
}

TEST(BeastOutbound, MalformedAnswerIsUpstreamUnavailable) {
  LoopbackServer server(Behaviour::answer_garbage);
  asio::io_context io;
  BeastOutbound client;
  auto answer = call(io, client, request_to(server.url()));
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error().code, Errc::upstream_unavailable);
}

TEST(BeastOutbound, SilentServerIsUpstreamUnavailableAfterTheTimeout) {
  LoopbackServer server(Behaviour::never_answer);
  asio::io_context io;
  BeastOutbound client;
  OutboundRequest request = request_to(server.url());
  request.timeout = milliseconds(300);
  const auto start = steady_clock::now();
  auto answer = call(io, client, request);
  const auto elapsed = steady_clock::now() - start;
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error().code, Errc::upstream_unavailable);
  EXPECT_NE(answer.error().detail.find("no answer within 300 ms"), std::string::npos)
      << answer.error().detail;
  EXPECT_GE(elapsed, milliseconds(280));
  EXPECT_LT(elapsed, milliseconds(2000));
}

TEST(BeastOutbound, RefusedPortIsUpstreamUnavailable) {
  asio::io_context io;
  BeastOutbound client;
  auto answer =
      call(io, client, request_to("http://127.0.0.1:" + std::to_string(refused_port()) + "/"));
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error().code, Errc::upstream_unavailable);
  EXPECT_NE(answer.error().detail.find("connect"), std::string::npos) << answer.error().detail;
}

TEST(BeastOutbound, BadUrlsAreInvalidRequests) {
  asio::io_context io;
  BeastOutbound client;
  for (const char* url :
       {"", "not a url", "/relative/path", "ftp://example.com/file", "mailto:ops@example.com",
        "http://", "http:///path", "http:/x", "https://user:pw@example.com/",
        "http://example.com:0/", "http://example.com:99999/", "http://[::1/",
        "http://exa%20mple.com/", "http://[v1.fe]/"}) {
    auto answer = call(io, client, request_to(url));
    ASSERT_FALSE(answer) << url;
    EXPECT_EQ(answer.error().code, Errc::invalid_request) << url;
  }
}

TEST(BeastOutbound, HeadersThatWouldBreakTheRequestAreInvalidRequests) {
  LoopbackServer server;
  asio::io_context io;
  BeastOutbound client;
  const std::vector<std::pair<std::string, std::string>> bad[] = {
      {{"X-Evil", "a\r\nInjected: yes"}},
      {{"X Space", "v"}},
      {{"", "v"}},
      {{"Content-Length", "1"}},
      {{"transfer-encoding", "chunked"}},
      {{"Host", "other"}},
  };
  for (const auto& headers : bad) {
    OutboundRequest request = request_to(server.url());
    request.headers = headers;
    auto answer = call(io, client, request);
    ASSERT_FALSE(answer) << headers.front().first;
    EXPECT_EQ(answer.error().code, Errc::invalid_request) << headers.front().first;
  }
  EXPECT_EQ(server.connections(), 0);
}

// post_many runs `count` calls in sequence and returns how many came back as they should.
awaitable<int> post_many(BeastOutbound* client, std::string url, std::string tag, int count) {
  int good = 0;
  for (int i = 0; i < count; ++i) {
    const std::string body = tag + "-" + std::to_string(i);
    auto answer = co_await client->post(request_to(url, body));
    if (answer && answer->status == 200 && answer->body == "echo:" + body) ++good;
  }
  co_return good;
}

TEST(BeastOutbound, ConcurrentCallsFromTwoThreads) {
  LoopbackServer server;
  BeastOutbound client;
  constexpr int kCoroutines = 4;
  constexpr int kCalls = 25;
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      asio::io_context io(1);
      std::vector<std::future<int>> results;
      for (int c = 0; c < kCoroutines; ++c) {
        const std::string tag = "t" + std::to_string(t) + "c" + std::to_string(c);
        results.push_back(
            asio::co_spawn(io, post_many(&client, server.url(), tag, kCalls), asio::use_future));
      }
      io.run();
      for (auto& result : results) good += result.get();
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(good.load(), 2 * kCoroutines * kCalls);
  EXPECT_EQ(server.received().size(), static_cast<std::size_t>(2 * kCoroutines * kCalls));
  // Kept alive: at most one connection per coroutine, not one per call.
  EXPECT_LE(server.connections(), 2 * kCoroutines);
}

TEST(BeastOutbound, MissingCaFileThrows) {
  EXPECT_THROW(BeastOutbound("/nonexistent/ca.pem"), std::runtime_error);
}

// ---- HTTPS ----------------------------------------------------------------------------------

class BeastOutboundTls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    localhost_ = new Certificate(make_certificate("localhost", "DNS:localhost,IP:127.0.0.1"));
    elsewhere_ = new Certificate(make_certificate("elsewhere", "DNS:elsewhere.invalid"));
  }
  static void TearDownTestSuite() {
    delete localhost_;
    delete elsewhere_;
    localhost_ = elsewhere_ = nullptr;
  }

  static std::string https(std::uint16_t port, const std::string& host = "localhost") {
    return "https://" + host + ":" + std::to_string(port) + "/hook";
  }

  static inline Certificate* localhost_ = nullptr;
  static inline Certificate* elsewhere_ = nullptr;
  test_support::TempDir dir_;
  asio::io_context io_;
};

TEST_F(BeastOutboundTls, TrustsTheServerWithItsCertificateAsCaFile) {
  LoopbackServer server(Behaviour::answer, echo, server_tls(*localhost_));
  BeastOutbound client(dir_.write("ca.pem", localhost_->cert_pem));
  for (const char* host : {"localhost", "127.0.0.1"}) {
    auto answer = call(io_, client, request_to(https(server.port(), host), "over tls"));
    ASSERT_TRUE(answer) << host << ": " << answer.error().detail;
    EXPECT_EQ(answer->status, 200);
    EXPECT_EQ(answer->body, "echo:over tls");
  }
  EXPECT_EQ(server.received().at(0).headers.at("host"),
            "localhost:" + std::to_string(server.port()));
}

TEST_F(BeastOutboundTls, ReusesOneConnectionForSequentialCalls) {
  LoopbackServer server(Behaviour::answer, echo, server_tls(*localhost_));
  BeastOutbound client(dir_.write("ca.pem", localhost_->cert_pem));
  for (int i = 0; i < 4; ++i) {
    auto answer = call(io_, client, request_to(https(server.port()), std::to_string(i)));
    ASSERT_TRUE(answer) << answer.error().detail;
    EXPECT_EQ(answer->body, "echo:" + std::to_string(i));
  }
  EXPECT_EQ(server.connections(), 1);
}

TEST_F(BeastOutboundTls, WorksWithAServerThatClosesIdleConnections) {
  LoopbackServer server(Behaviour::close_after_answer, echo, server_tls(*localhost_));
  BeastOutbound client(dir_.write("ca.pem", localhost_->cert_pem));
  for (int i = 0; i < 3; ++i) {
    auto answer = call(io_, client, request_to(https(server.port()), std::to_string(i)));
    ASSERT_TRUE(answer) << answer.error().detail;
  }
  EXPECT_EQ(server.connections(), 3);
}

TEST_F(BeastOutboundTls, UntrustedCertificateIsUpstreamUnavailable) {
  LoopbackServer server(Behaviour::answer, echo, server_tls(*localhost_));
  BeastOutbound client;  // the system's CAs only
  auto answer = call(io_, client, request_to(https(server.port())));
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error().code, Errc::upstream_unavailable);
  EXPECT_NE(answer.error().detail.find("TLS handshake"), std::string::npos)
      << answer.error().detail;
  EXPECT_TRUE(server.received().empty());
}

TEST_F(BeastOutboundTls, CertificateForAnotherHostIsUpstreamUnavailable) {
  LoopbackServer server(Behaviour::answer, echo, server_tls(*elsewhere_));
  BeastOutbound client(dir_.write("ca.pem", elsewhere_->cert_pem));
  for (const char* host : {"localhost", "127.0.0.1"}) {
    auto answer = call(io_, client, request_to(https(server.port(), host)));
    ASSERT_FALSE(answer) << host;
    EXPECT_EQ(answer.error().code, Errc::upstream_unavailable) << host;
  }
  EXPECT_TRUE(server.received().empty());
}

TEST_F(BeastOutboundTls, PlainHttpServerIsUpstreamUnavailable) {
  LoopbackServer server;
  BeastOutbound client(dir_.write("ca.pem", localhost_->cert_pem));
  OutboundRequest request = request_to(https(server.port()));
  request.timeout = milliseconds(2000);
  auto answer = call(io_, client, request);
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error().code, Errc::upstream_unavailable);
}

}  // namespace
}  // namespace sessiond::http
