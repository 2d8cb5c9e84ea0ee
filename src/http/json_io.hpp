// Reading request bodies and query strings, and writing the JSON shapes of SPEC §5.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "core/session.hpp"
#include "db/database.hpp"
#include "http/message.hpp"
#include "service/session_service.hpp"

namespace sessiond::http {

// Parses the body as a JSON object. An empty body is an empty object when `allow_empty`.
// Error: invalid_request naming what is wrong.
Result<boost::json::object> parse_body(const Request& request, bool allow_empty = false);

// Optional typed fields: absent or null -> nullopt; another type -> invalid_request naming the key.
Result<std::optional<std::string>> opt_string(const boost::json::object& o, std::string_view key,
                                              std::size_t max_length = 1024);
Result<std::optional<bool>> opt_bool(const boost::json::object& o, std::string_view key);
Result<std::optional<std::int64_t>> opt_int(const boost::json::object& o, std::string_view key);
Result<std::optional<boost::json::object>> opt_object(const boost::json::object& o,
                                                      std::string_view key,
                                                      std::size_t max_serialized = 4096);
// Rejects keys outside `allowed`.
Result<void> only_keys(const boost::json::object& o,
                       std::initializer_list<std::string_view> allowed);

// Decoded query parameters.
Result<std::map<std::string, std::string>> parse_query(std::string_view query);

boost::json::object user_json(const db::User& user, bool detailed);
boost::json::object session_json(const Session& s, bool current);
boost::json::object event_json(const db::Event& e);

Response json_response(int status, const boost::json::value& body);
Response no_content();

}  // namespace sessiond::http
