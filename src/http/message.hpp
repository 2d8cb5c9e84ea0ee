// Transport-neutral request and response types: the Beast server fills a Request and writes a
// Response, so handlers compile without Beast.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sessiond::http {

enum class Method { get, head, post, put, patch, del, options, other };

std::string_view method_name(Method m);

struct Request {
  Method method = Method::get;
  std::string path;   // decoded path, without the query
  std::string query;  // raw query string, without '?'
  std::string body;
  // The headers handlers use, copied once.
  std::string authorization;
  std::string cookie;
  std::string user_agent;
  std::string content_type;
  std::string csrf_token;     // X-CSRF-Token
  std::string forwarded_for;  // X-Forwarded-For
  std::string peer_ip;        // the TCP peer
  std::string client_ip;      // peer, or from X-Forwarded-For when the peer is trusted
  std::map<std::string, std::string, std::less<>> params;  // path parameters of the route
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  void set_header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
};

}  // namespace sessiond::http
