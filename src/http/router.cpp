#include "http/router.hpp"

#include <string_view>

namespace sessiond::http {

std::string_view method_name(Method m) {
  switch (m) {
    case Method::get: return "GET";
    case Method::head: return "HEAD";
    case Method::post: return "POST";
    case Method::put: return "PUT";
    case Method::patch: return "PATCH";
    case Method::del: return "DELETE";
    case Method::options: return "OPTIONS";
    case Method::other: return "OTHER";
  }
  return "OTHER";
}

namespace {
std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < path.size()) {
    if (path[pos] == '/') {
      ++pos;
      continue;
    }
    auto next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    out.emplace_back(path.substr(pos, next - pos));
    pos = next;
  }
  return out;
}
bool is_param(const std::string& segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}
}  // namespace

Router::Route& Router::route_for(const std::string& pattern) {
  for (auto& r : routes_) {
    if (r.pattern == pattern) return r;
  }
  Route r;
  r.pattern = pattern;
  r.segments = split_path(pattern);
  bool literal = true;
  for (const auto& s : r.segments) literal = literal && !is_param(s);
  routes_.push_back(std::move(r));
  if (literal) exact_[pattern] = routes_.size() - 1;
  return routes_.back();
}

void Router::add(Method method, const std::string& pattern, Handler handler) {
  route_for(pattern).handlers.emplace_back(method, std::move(handler));
}

std::vector<const std::string*> Router::patterns() const {
  std::vector<const std::string*> out;
  for (const auto& r : routes_) out.push_back(&r.pattern);
  return out;
}

Router::Match Router::match(Request& request) const {
  const Route* found = nullptr;
  if (auto it = exact_.find(request.path); it != exact_.end()) {
    found = &routes_[it->second];
  } else {
    auto segments = split_path(request.path);
    for (const auto& r : routes_) {
      if (r.segments.size() != segments.size()) continue;
      bool ok = true;
      for (std::size_t i = 0; i < segments.size() && ok; ++i) {
        ok = is_param(r.segments[i]) || r.segments[i] == segments[i];
      }
      if (!ok) continue;
      // Literal routes win over parameterised ones of the same shape.
      found = &r;
      for (std::size_t i = 0; i < segments.size(); ++i) {
        if (is_param(r.segments[i])) {
          request.params[r.segments[i].substr(1, r.segments[i].size() - 2)] = segments[i];
        }
      }
      break;
    }
  }
  Match m;
  if (found == nullptr) return m;
  m.pattern = &found->pattern;
  const Method wanted = request.method == Method::head ? Method::get : request.method;
  for (const auto& [method, handler] : found->handlers) {
    if (method == wanted) {
      m.handler = &handler;
      return m;
    }
  }
  for (const auto& [method, handler] : found->handlers) {
    if (!m.allowed.empty()) m.allowed += ", ";
    m.allowed += method_name(method);
  }
  return m;
}

}  // namespace sessiond::http
