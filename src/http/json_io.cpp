#include "http/json_io.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse_query.hpp>

namespace sessiond::http {

namespace json = boost::json;

Result<json::object> parse_body(const Request& request, bool allow_empty) {
  if (request.body.empty()) {
    if (allow_empty) return json::object{};
    return Error(Errc::invalid_request, "a JSON object body is required");
  }
  if (!request.content_type.empty() && request.content_type.find("json") == std::string::npos) {
    return Error(Errc::invalid_request, "Content-Type must be application/json");
  }
  boost::system::error_code ec;
  json::parse_options options;
  options.max_depth = 16;
  auto value = json::parse(request.body, ec, {}, options);
  if (ec) return Error(Errc::invalid_request, "the body is not valid JSON");
  if (!value.is_object()) return Error(Errc::invalid_request, "the body must be a JSON object");
  return std::move(value.as_object());
}

Result<std::optional<std::string>> opt_string(const json::object& o, std::string_view key,
                                              std::size_t max_length) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return std::optional<std::string>{};
  if (!it->value().is_string()) {
    return Error(Errc::invalid_request, std::string(key) + " must be a string");
  }
  const auto& s = it->value().as_string();
  if (s.size() > max_length) {
    return Error(Errc::invalid_request, std::string(key) + " is too long");
  }
  return std::optional<std::string>(std::string(s));
}

Result<std::optional<bool>> opt_bool(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return std::optional<bool>{};
  if (!it->value().is_bool()) {
    return Error(Errc::invalid_request, std::string(key) + " must be true or false");
  }
  return std::optional<bool>(it->value().as_bool());
}

Result<std::optional<std::int64_t>> opt_int(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return std::optional<std::int64_t>{};
  if (it->value().is_int64()) return std::optional<std::int64_t>(it->value().as_int64());
  if (it->value().is_uint64() && it->value().as_uint64() <= INT64_MAX) {
    return std::optional<std::int64_t>(static_cast<std::int64_t>(it->value().as_uint64()));
  }
  return Error(Errc::invalid_request, std::string(key) + " must be an integer");
}

Result<std::optional<json::object>> opt_object(const json::object& o, std::string_view key,
                                               std::size_t max_serialized) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return std::optional<json::object>{};
  if (!it->value().is_object()) {
    return Error(Errc::invalid_request, std::string(key) + " must be a JSON object");
  }
  if (json::serialize(it->value()).size() > max_serialized) {
    return Error(Errc::invalid_request, std::string(key) + " is too large");
  }
  return std::optional<json::object>(it->value().as_object());
}

Result<void> only_keys(const json::object& o, std::initializer_list<std::string_view> allowed) {
  for (const auto& kv : o) {
    bool ok = false;
    for (auto a : allowed) ok = ok || kv.key() == a;
    if (!ok) return Error(Errc::invalid_request, "unknown field " + std::string(kv.key()));
  }
  return {};
}

Result<std::map<std::string, std::string>> parse_query(std::string_view query) {
  std::map<std::string, std::string> out;
  if (query.empty()) return out;
  auto parsed = boost::urls::parse_query(query);
  if (!parsed) return Error(Errc::invalid_request, "the query string is malformed");
  for (auto param : *parsed) {
    out[param.key.decode()] = param.has_value ? param.value.decode() : std::string();
  }
  return out;
}

namespace {
json::value opt_value(const std::optional<std::string>& s) {
  if (!s) return nullptr;
  return json::value(*s);
}
json::value parse_or_empty(const std::string& text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec) return json::object{};
  return v;
}
}  // namespace

json::object user_json(const db::User& user, bool detailed) {
  json::object o;
  o["id"] = user.id;
  o["email"] = opt_value(user.email);
  o["mobile_number"] = opt_value(user.mobile_number);
  o["role"] = user.role;
  o["attributes"] = parse_or_empty(user.attributes);
  if (detailed) {
    o["disabled"] = user.disabled;
    o["has_password"] = user.password_hash.has_value();
    o["created_at"] = format_rfc3339(user.created_at);
    o["updated_at"] = format_rfc3339(user.updated_at);
  }
  return o;
}

json::object session_json(const Session& s, bool current) {
  json::object o;
  o["session_id"] = s.id.to_string();
  o["user_id"] = s.user_id;
  o["role"] = s.role;
  o["device_info"] = s.device_info;
  o["ip_address"] = s.ip_address;
  o["last_ip"] = s.last_ip;
  o["user_agent"] = s.user_agent;
  o["created_at"] = format_rfc3339(s.created_at);
  o["last_activity"] = format_rfc3339(s.last_activity);
  o["expires_at"] = format_rfc3339(s.expires_at());
  o["absolute_expires_at"] = format_rfc3339(s.absolute_expires_at);
  o["auth_method"] = auth_method_name(s.auth_method);
  o["attributes"] = parse_or_empty(s.attributes);
  o["current"] = current;
  return o;
}

json::object event_json(const db::Event& e) {
  json::object o;
  o["id"] = e.id;
  o["at"] = format_rfc3339(e.at);
  o["type"] = e.type;
  o["user_id"] = e.user_id ? json::value(*e.user_id) : json::value(nullptr);
  o["session_id"] = e.session_id ? json::value(e.session_id->to_string()) : json::value(nullptr);
  o["ip_address"] = e.ip_address;
  o["detail"] = parse_or_empty(e.detail);
  return o;
}

Response json_response(int status, const json::value& body) {
  Response r;
  r.status = status;
  r.body = json::serialize(body);
  return r;
}

Response no_content() {
  Response r;
  r.status = 204;
  r.content_type.clear();
  return r;
}

}  // namespace sessiond::http
