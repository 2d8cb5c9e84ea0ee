// sessionctl's HTTP/1.1 client: one keep-alive connection to one server, over TCP or TLS (OpenSSL:
// the certificate chain and the host name are verified), with a deadline on every step. Beast
// lives in http_client.cpp alone; this header is plain. Not thread-safe: one per thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/failure.hpp"
#include "cli/server_url.hpp"

namespace sessiond::cli {

struct HttpOptions {
  std::chrono::milliseconds timeout{std::chrono::seconds{10}};  // for each request, all steps
  std::string ca_file;     // a PEM file of CA certificates trusted besides the system's
  std::string user_agent;  // sessiond shows "sessionctl/..." agents as device "CLI"
};

struct HttpResponse {
  int status = 0;
  std::string content_type;
  std::string retry_after;
  std::string body;
};

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

class HttpClient {
 public:
  HttpClient(ServerUrl server, HttpOptions options);
  ~HttpClient();
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;

  // Sends one request to the server's base path + `target` ("/api/v1/me") and reads the answer,
  // opening (or reopening) the connection as needed. Failure (unreachable) when the server
  // cannot be reached: name resolution, refused, timeout, TLS (an untrusted certificate), a
  // connection closed without an answer; (usage) when --cacert cannot be read.
  Outcome<HttpResponse> send(std::string_view method, std::string_view target,
                             const HttpHeaders& headers, std::string_view body);

  const ServerUrl& server() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sessiond::cli
