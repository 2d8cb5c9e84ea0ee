#include "cli/context.hpp"

#include <boost/json/serialize.hpp>
#include <cmath>
#include <ostream>

namespace sessiond::cli {

Context::Context(Globals globals, std::ostream& out, std::ostream& err)
    : globals_(std::move(globals)), out_(out), err_(err) {}

Outcome<TokenFile> Context::token_file() {
  if (!token_file_) {
    auto located = TokenFile::locate();
    if (!located) return located.error();
    token_file_ = std::move(*located);
  }
  return *token_file_;
}

Outcome<ServerUrl> Context::server(const SavedSession* saved) {
  if (globals_.server) return ServerUrl::parse(*globals_.server);
  if (saved != nullptr) return ServerUrl::parse(saved->server);
  return ServerUrl::parse(kDefaultServer);
}

Api Context::api(const ServerUrl& server) const {
  HttpOptions options;
  options.timeout = std::chrono::milliseconds(
      static_cast<std::int64_t>(std::llround(globals_.timeout_seconds * 1000.0)));
  options.ca_file = globals_.ca_file;
  options.user_agent = std::string(kUserAgent);
  return Api(server, std::move(options));
}

void Context::print_json(const boost::json::value& value) {
  out_ << boost::json::serialize(value) << std::endl;
}

}  // namespace sessiond::cli
