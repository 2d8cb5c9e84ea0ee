// The HTTP/1.1 server: one io_context and one thread per core, an acceptor on each (SO_REUSEPORT),
// one coroutine per connection. Enforces the limits of SPEC §8: headers over 16 KiB get 431,
// bodies over max_body 413, idle and slow connections are closed after a timeout.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <string>

#include "core/error.hpp"
#include "core/time.hpp"
#include "http/message.hpp"
#include "http/net.hpp"

namespace sessiond::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  int threads = 1;
  std::uint64_t max_body = 64 * 1024;
  std::size_t max_header = 16 * 1024;
  Duration idle_timeout{std::chrono::seconds{30}};
  Duration request_timeout{std::chrono::seconds{10}};
  std::size_t max_connections = 10'000;
};

using RequestHandler = std::function<boost::asio::awaitable<Response>(Request&)>;

class HttpServer {
 public:
  HttpServer(ServerOptions options, RequestHandler handler, TrustedProxies proxies);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds every acceptor; returns the bound port (useful with port 0). Error: invalid_request
  // with the reason (address in use, bad address).
  Result<std::uint16_t> bind();
  // Starts the accept loops and one thread per io_context. Returns at once.
  void start();
  // The first io_context, for background jobs and signals.
  boost::asio::io_context& main_context();
  // Stops accepting, closes idle connections, lets requests in flight finish (up to `grace`),
  // then closes what is left. Blocks the calling thread, which must not be an io thread.
  void drain(Duration grace);
  // Stops the io_contexts and joins their threads.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sessiond::http
