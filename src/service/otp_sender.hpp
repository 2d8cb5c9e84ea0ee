// Where one-time codes go (SPEC §2 otp.sender): "log" (development: sessiond's log), "file:PATH"
// (one JSON line per message, for tests and local development) and "webhook:URL" (a POST to an
// SMS gateway, retried, with a timeout).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "core/time.hpp"
#include "service/outbound.hpp"

namespace sessiond::service {

struct OtpMessage {
  std::string mobile_number;  // E.164
  std::string code;
  Duration ttl{0};
  TimePoint at;
};

class OtpSender {
 public:
  virtual ~OtpSender() = default;
  // Hands the message over. Error upstream_unavailable when it could not be handed over (the
  // client is told, nothing is lost silently). May be called concurrently.
  virtual boost::asio::awaitable<Result<void>> send(OtpMessage message) = 0;
};

// Makes the sender `spec` names (a value config_loader accepted). `outbound` is used by the
// webhook sender and must outlive it.
std::unique_ptr<OtpSender> make_otp_sender(std::string_view spec, Outbound& outbound);

// The text a person receives.
std::string otp_text(const OtpMessage& message);

}  // namespace sessiond::service
