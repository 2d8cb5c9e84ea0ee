#include "service/webhooks.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <boost/asio/ip/address.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "core/crypto.hpp"

namespace sessiond::service {

namespace json = boost::json;
namespace asio = boost::asio;

namespace {

constexpr auto kNewDeviceWindow = std::chrono::hours(24 * 90);
constexpr auto kMaxBackoff = std::chrono::minutes(5);

bool configured(const WebhooksConfig& config, std::string_view event) {
  return std::find(config.events.begin(), config.events.end(), event) != config.events.end();
}

json::object detail_of(const db::Event& e) {
  boost::system::error_code ec;
  auto v = json::parse(e.detail, ec);
  if (ec || !v.is_object()) return {};
  return std::move(v.as_object());
}

std::string string_of(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_string()) return {};
  return std::string(it->value().as_string());
}

}  // namespace

std::vector<std::string_view> webhook_events_for(std::string_view audit_type) {
  if (audit_type == "login_succeeded") return {"session.created", "session.new_device"};
  if (audit_type == "logout" || audit_type == "session_revoked" ||
      audit_type == "session_evicted") {
    return {"session.revoked"};
  }
  if (audit_type == "refresh_reuse_detected") return {"session.refresh_reuse"};
  return {};
}

void mark_webhook_events(db::ChangeBatch& batch, const WebhooksConfig& config) {
  if (config.url.empty()) return;
  for (auto& e : batch.events) {
    for (auto name : webhook_events_for(e.type)) {
      if (configured(config, name)) e.notify = true;
    }
  }
}

bool same_network(std::string_view a, std::string_view b) {
  boost::system::error_code ea, eb;
  auto x = asio::ip::make_address(a, ea);
  auto y = asio::ip::make_address(b, eb);
  if (ea || eb) return a == b;
  if (x.is_v4() && y.is_v4()) {
    auto p = x.to_v4().to_bytes(), q = y.to_v4().to_bytes();
    return std::equal(p.begin(), p.begin() + 3, q.begin());
  }
  if (x.is_v6() && y.is_v6()) {
    auto p = x.to_v6().to_bytes(), q = y.to_v6().to_bytes();
    return std::equal(p.begin(), p.begin() + 8, q.begin());
  }
  return false;
}

WebhookDeliverer::WebhookDeliverer(const WebhooksConfig& config, std::string secret,
                                   db::Database& database, Workers& db_workers, Outbound& outbound,
                                   const Clock& clock)
    : config_(config),
      secret_(std::move(secret)),
      database_(database),
      db_workers_(db_workers),
      outbound_(outbound),
      clock_(clock) {}

std::string WebhookDeliverer::signature(std::string_view body) const {
  auto mac = hmac_sha256(secret_, body);
  return to_hex(mac);
}

Result<std::vector<WebhookMessage>> WebhookDeliverer::messages_for(const db::Event& e) {
  std::vector<WebhookMessage> out;
  const json::object detail = detail_of(e);
  const std::string device = string_of(detail, "device_info");
  for (auto name : webhook_events_for(e.type)) {
    if (!configured(config_, name)) continue;
    if (name == "session.new_device") {
      // A sign-in from a device_info and network the user has not used in the last 90 days.
      if (!e.user_id || !e.session_id) continue;
      auto recent = database_.recent_sessions(*e.user_id, e.at - kNewDeviceWindow, e.at);
      if (!recent) return recent.error();
      const bool known = std::any_of(recent->begin(), recent->end(), [&](const auto& r) {
        return r.session.id != *e.session_id && r.session.device_info == device &&
               (same_network(r.session.ip_address, e.ip_address) ||
                same_network(r.session.last_ip, e.ip_address));
      });
      if (known) continue;
    }
    WebhookMessage m;
    m.type = std::string(name);
    m.id = "evt_" + std::to_string(e.id) +
           (name == "session.new_device" ? std::string("_new_device") : std::string());
    json::object body{{"id", m.id},
                      {"type", m.type},
                      {"occurred_at", format_rfc3339(e.at)},
                      {"user_id", e.user_id ? json::value(*e.user_id) : json::value(nullptr)},
                      {"session_id", e.session_id ? json::value(e.session_id->to_string())
                                                  : json::value(nullptr)},
                      {"ip_address", e.ip_address},
                      {"device_info", device}};
    if (auto method = string_of(detail, "auth_method"); !method.empty()) {
      body["auth_method"] = method;
    }
    if (auto reason = string_of(detail, "reason"); !reason.empty()) body["reason"] = reason;
    m.body = json::serialize(body);
    out.push_back(std::move(m));
  }
  return out;
}

asio::awaitable<Result<std::size_t>> WebhookDeliverer::deliver_some(std::size_t max) {
  if (paused_until_ && clock_.now() < *paused_until_) {
    co_return std::size_t{0};
  }
  std::size_t done = 0;
  while (done < max) {
    const int limit = static_cast<int>(std::min<std::size_t>(max - done, 50));
    auto head = co_await db_workers_.run([&] { return database_.webhook_queue_head(limit); });
    if (!head) co_return head.error();
    if (head->empty()) break;
    std::vector<std::int64_t> finished;
    bool stalled = false;
    for (const auto& e : *head) {
      auto messages = co_await db_workers_.run([&] { return messages_for(e); });
      if (!messages) {
        if (!finished.empty()) break;
        co_return messages.error();
      }
      bool delivered = true;
      for (const auto& m : *messages) {
        OutboundRequest request;
        request.url = config_.url;
        request.body = m.body;
        request.headers = {{"X-Sessiond-Signature", signature(m.body)},
                           {"X-Sessiond-Event-Id", m.id},
                           {"X-Sessiond-Event", m.type}};
        request.timeout = std::chrono::seconds(10);
        auto answer = co_await outbound_.post(std::move(request));
        const int status = answer ? answer->status : 0;
        if (status >= 200 && status < 300) {
          ++delivered_;
          continue;
        }
        // Every other answer is tried again (at least once means no event is dropped), and
        // holds the later ones back. The URL is not logged: it may carry a secret.
        ++failures_;
        backoff_ = backoff_.count() == 0
                       ? std::chrono::milliseconds(250)
                       : std::min<std::chrono::milliseconds>(backoff_ * 2, kMaxBackoff);
        if (answer && status >= 300 && status < 400) {
          spdlog::error(
              "webhooks: the receiver answered {} (a redirect, which is not followed: set "
              "webhooks.url to the final address) to {}; trying again in {} ms",
              status, m.id, backoff_.count());
        } else if (answer) {
          spdlog::warn("webhooks: the receiver answered {} to {}; trying again in {} ms", status,
                       m.id, backoff_.count());
        } else {
          spdlog::warn("webhooks: cannot deliver {} ({}); trying again in {} ms", m.id,
                       answer.error().detail, backoff_.count());
        }
        paused_until_ = clock_.now() + backoff_;
        delivered = false;
        break;
      }
      if (!delivered) {
        stalled = true;
        break;
      }
      finished.push_back(e.id);
    }
    if (!finished.empty()) {
      auto removed = co_await db_workers_.run([&] { return database_.webhook_dequeue(finished); });
      if (!removed) co_return removed.error();
      done += finished.size();
    }
    if (stalled) co_return done;
    backoff_ = std::chrono::milliseconds(0);
    paused_until_.reset();
  }
  co_return done;
}

}  // namespace sessiond::service
