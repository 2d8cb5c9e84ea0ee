#include "service/otp_sender.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace sessiond::service {

namespace json = boost::json;
namespace asio = boost::asio;

namespace {

// Development only: the code is written to sessiond's log (and nowhere else).
class LogOtpSender final : public OtpSender {
 public:
  LogOtpSender() {
    spdlog::warn("otp.sender = \"log\": one-time codes are written to this log (development only)");
  }
  asio::awaitable<Result<void>> send(OtpMessage message) override {
    spdlog::info("otp for {}: {} (valid {}s)", message.mobile_number, message.code,
                 std::chrono::duration_cast<std::chrono::seconds>(message.ttl).count());
    co_return Result<void>{};
  }
};

// One JSON line per message, appended with one write(2) on an O_APPEND descriptor so that lines
// of concurrent senders (and processes) never interleave.
class FileOtpSender final : public OtpSender {
 public:
  explicit FileOtpSender(std::string path) : path_(std::move(path)) {}
  asio::awaitable<Result<void>> send(OtpMessage message) override {
    json::object line{
        {"to", message.mobile_number},
        {"code", message.code},
        {"text", otp_text(message)},
        {"expires_in", std::chrono::duration_cast<std::chrono::seconds>(message.ttl).count()},
        {"at", format_rfc3339(message.at)}};
    std::string text = json::serialize(line) + "\n";
    std::lock_guard lock(mutex_);
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
      spdlog::error("otp.sender: cannot open {}: {}", path_, std::strerror(errno));
      co_return Error(Errc::upstream_unavailable, "the one-time code could not be sent");
    }
    const auto written = ::write(fd, text.data(), text.size());
    ::close(fd);
    if (written != static_cast<ssize_t>(text.size())) {
      spdlog::error("otp.sender: cannot write {}", path_);
      co_return Error(Errc::upstream_unavailable, "the one-time code could not be sent");
    }
    co_return Result<void>{};
  }

 private:
  std::string path_;
  std::mutex mutex_;
};

// POST {"to","text","code","expires_in"} to the gateway: 3 tries, 5 s each, 250 ms then 500 ms
// apart. A 2xx is delivered; a 4xx other than 408/429 is not tried again (the gateway refused the
// message itself).
class WebhookOtpSender final : public OtpSender {
 public:
  WebhookOtpSender(std::string url, Outbound& outbound)
      : url_(std::move(url)), outbound_(outbound) {}
  asio::awaitable<Result<void>> send(OtpMessage message) override {
    OutboundRequest request;
    request.url = url_;
    request.body = json::serialize(json::object{
        {"to", message.mobile_number},
        {"text", otp_text(message)},
        {"code", message.code},
        {"expires_in", std::chrono::duration_cast<std::chrono::seconds>(message.ttl).count()}});
    request.timeout = std::chrono::seconds(5);
    asio::steady_timer pause(co_await asio::this_coro::executor);
    auto wait = std::chrono::milliseconds(250);
    for (int attempt = 1;; ++attempt) {
      auto answer = co_await outbound_.post(request);
      int status = answer ? answer->status : 0;
      if (status >= 200 && status < 300) co_return Result<void>{};
      const bool final_refusal = status >= 400 && status < 500 && status != 408 && status != 429;
      if (answer) {
        spdlog::warn("otp.sender: the gateway answered {} (try {} of 3)", status, attempt);
      } else {
        spdlog::warn("otp.sender: the gateway cannot be reached: {} (try {} of 3)",
                     answer.error().detail, attempt);
      }
      if (final_refusal || attempt == 3) break;
      pause.expires_after(wait);
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      wait *= 2;
    }
    co_return Error(Errc::upstream_unavailable, "the one-time code could not be sent");
  }

 private:
  std::string url_;
  Outbound& outbound_;
};

}  // namespace

std::string otp_text(const OtpMessage& message) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(message.ttl).count();
  std::string within;
  if (seconds < 60) {
    within = std::to_string(seconds) + (seconds == 1 ? " second" : " seconds");
  } else {
    const auto minutes = (seconds + 59) / 60;
    within = std::to_string(minutes) + (minutes == 1 ? " minute" : " minutes");
  }
  return "Your sign-in code is " + message.code + ". It expires in " + within + ".";
}

std::unique_ptr<OtpSender> make_otp_sender(std::string_view spec, Outbound& outbound) {
  if (spec.starts_with("file:"))
    return std::make_unique<FileOtpSender>(std::string(spec.substr(5)));
  if (spec.starts_with("webhook:")) {
    return std::make_unique<WebhookOtpSender>(std::string(spec.substr(8)), outbound);
  }
  return std::make_unique<LogOtpSender>();
}

}  // namespace sessiond::service
