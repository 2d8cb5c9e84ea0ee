// The session model and the role policy (SPEC §4). No I/O.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/crypto.hpp"
#include "core/error.hpp"
#include "core/time.hpp"

namespace sessiond {

enum class AuthMethod { otp, password, admin };
std::string_view auth_method_name(AuthMethod m);
std::optional<AuthMethod> parse_auth_method(std::string_view name);

enum class OnLimit { evict_oldest, evict_lru, deny };
std::string_view on_limit_name(OnLimit p);
std::optional<OnLimit> parse_on_limit(std::string_view name);

struct RolePolicy {
  Duration idle_timeout{std::chrono::hours{24}};
  Duration absolute_timeout{std::chrono::hours{24 * 30}};
  int max_sessions = 5;
  OnLimit on_limit = OnLimit::evict_oldest;
};

// The configured roles. Lookup by exact name.
class RoleTable {
 public:
  // The four roles of the seeds with their SPEC §2 defaults; default role GUEST.
  static RoleTable defaults();

  void set(std::string name, RolePolicy policy) { roles_[std::move(name)] = policy; }
  const RolePolicy* find(std::string_view name) const;
  const std::map<std::string, RolePolicy, std::less<>>& all() const { return roles_; }
  const std::string& default_role() const { return default_role_; }
  void set_default_role(std::string name) { default_role_ = std::move(name); }

 private:
  std::map<std::string, RolePolicy, std::less<>> roles_;
  std::string default_role_ = "GUEST";
};

// A live session. The idle timeout is copied from the role at creation so stores need no role
// table.
struct Session {
  SessionId id;
  UserId user_id = 0;
  std::string role;
  std::string attributes = "{}";  // a JSON object, serialised
  AuthMethod auth_method = AuthMethod::password;
  std::string device_info;
  std::string ip_address;  // where it was created
  std::string last_ip;     // where the latest request came from
  std::string user_agent;
  TimePoint created_at;
  TimePoint last_activity;
  TimePoint absolute_expires_at;
  Duration idle_timeout{0};

  // min(last_activity + idle_timeout, absolute_expires_at)
  TimePoint expires_at() const;
  bool alive_at(TimePoint now) const { return now < expires_at(); }
};

// Builds a new session's deadlines from its role's policy.
Session make_session(SessionId id, UserId user, std::string role, const RolePolicy& policy,
                     TimePoint now);

}  // namespace sessiond
