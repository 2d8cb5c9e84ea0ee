#include "core/session.hpp"

#include <algorithm>

namespace sessiond {

std::string_view auth_method_name(AuthMethod m) {
  switch (m) {
    case AuthMethod::otp: return "otp";
    case AuthMethod::password: return "password";
    case AuthMethod::admin: return "admin";
  }
  return "password";
}

std::optional<AuthMethod> parse_auth_method(std::string_view name) {
  if (name == "otp") return AuthMethod::otp;
  if (name == "password") return AuthMethod::password;
  if (name == "admin") return AuthMethod::admin;
  return std::nullopt;
}

std::string_view on_limit_name(OnLimit p) {
  switch (p) {
    case OnLimit::evict_oldest: return "evict_oldest";
    case OnLimit::evict_lru: return "evict_lru";
    case OnLimit::deny: return "deny";
  }
  return "evict_oldest";
}

std::optional<OnLimit> parse_on_limit(std::string_view name) {
  if (name == "evict_oldest") return OnLimit::evict_oldest;
  if (name == "evict_lru") return OnLimit::evict_lru;
  if (name == "deny") return OnLimit::deny;
  return std::nullopt;
}

RoleTable RoleTable::defaults() {
  using std::chrono::hours;
  RoleTable t;
  t.set("GUEST", {hours{24}, hours{24 * 30}, 5, OnLimit::evict_oldest});
  t.set("HOTEL_EMPLOYEE", {hours{8}, hours{24 * 30}, 2, OnLimit::evict_oldest});
  t.set("VENDOR_ADMIN", {hours{12}, hours{24 * 30}, 3, OnLimit::evict_oldest});
  t.set("SYSTEM_ADMIN", {hours{4}, hours{24 * 7}, 2, OnLimit::evict_oldest});
  t.set_default_role("GUEST");
  return t;
}

const RolePolicy* RoleTable::find(std::string_view name) const {
  auto it = roles_.find(name);
  return it == roles_.end() ? nullptr : &it->second;
}

TimePoint Session::expires_at() const {
  return std::min(last_activity + idle_timeout, absolute_expires_at);
}

Session make_session(SessionId id, UserId user, std::string role, const RolePolicy& policy,
                     TimePoint now) {
  Session s;
  s.id = id;
  s.user_id = user;
  s.role = std::move(role);
  s.created_at = now;
  s.last_activity = now;
  s.absolute_expires_at = now + policy.absolute_timeout;
  s.idle_timeout = policy.idle_timeout;
  return s;
}

}  // namespace sessiond
