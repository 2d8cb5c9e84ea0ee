// Routes a request by method and path pattern ("/api/v1/sessions/{session_id}") to a handler.
// A path that matches with another method answers 405 with Allow; no match answers 404.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "http/message.hpp"

namespace sessiond::http {

using Handler = std::function<boost::asio::awaitable<Response>(Request&)>;

class Router {
 public:
  // Patterns are literal segments and {name} segments. Not thread-safe: add routes before serving.
  void add(Method method, const std::string& pattern, Handler handler);

  struct Match {
    const Handler* handler = nullptr;      // null: no route (allowed empty) or wrong method
    std::string allowed;                   // "GET, DELETE" when the path exists with other methods
    const std::string* pattern = nullptr;  // the route's pattern, for metrics labels
  };
  // Every route's pattern; the pointers stay valid once routes are added.
  std::vector<const std::string*> patterns() const;

  // Thread-safe once built. Fills request.params on a match.
  Match match(Request& request) const;

 private:
  struct Route {
    std::string pattern;
    std::vector<std::string> segments;
    std::vector<std::pair<Method, Handler>> handlers;
  };
  Route& route_for(const std::string& pattern);
  std::unordered_map<std::string, std::size_t> exact_;  // literal paths -> route index
  std::vector<Route> routes_;
};

}  // namespace sessiond::http
