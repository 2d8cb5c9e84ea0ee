// Webhook delivery (SPEC §2 [webhooks], §6): the events the database queued (db::Event::notify)
// are POSTed to webhooks.url, oldest first, one at a time, signed with HMAC-SHA256 of the body
// (header X-Sessiond-Signature, lower-case hex), each with a stable event id. A failed delivery is
// tried again with a growing pause (250 ms doubling up to 5 min) and holds back the events behind
// it: delivery is at least once and in order (per user, as a consequence). Any answer but a 2xx
// is a failure (a redirect is not followed).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "core/error.hpp"
#include "core/time.hpp"
#include "db/database.hpp"
#include "service/outbound.hpp"
#include "service/workers.hpp"

namespace sessiond::service {

// The webhook events (SPEC §2 names) an audit event type leads to, before the new-device check:
// login_succeeded -> session.created (and maybe session.new_device); logout, session_revoked,
// session_evicted -> session.revoked; refresh_reuse_detected -> session.refresh_reuse.
std::vector<std::string_view> webhook_events_for(std::string_view audit_type);

// Sets Event::notify on the events of `batch` that lead to a configured webhook event (none when
// webhooks.url is empty).
void mark_webhook_events(db::ChangeBatch& batch, const WebhooksConfig& config);

// True when `a` and `b` are in the same network (IPv4 /24, IPv6 /64; exact match otherwise).
bool same_network(std::string_view a, std::string_view b);

// One webhook: the JSON body and its id.
struct WebhookMessage {
  std::string id;    // stable: a redelivery carries the same id
  std::string type;  // "session.created", ...
  std::string body;  // JSON
};

class WebhookDeliverer {
 public:
  // `secret`: the content of webhooks.secret_file (trailing newline removed).
  WebhookDeliverer(const WebhooksConfig& config, std::string secret, db::Database& database,
                   Workers& db_workers, Outbound& outbound, const Clock& clock);

  // Delivers queued events until the queue is empty, a delivery fails (then the next call before
  // the pause is over does nothing) or `max` events were delivered. Returns how many events left
  // the queue. Errors: database_unavailable (tried again later).
  boost::asio::awaitable<Result<std::size_t>> deliver_some(std::size_t max = 500);

  // The messages one queued event becomes (none when it leads to no configured event).
  // Error: database_unavailable (the new-device check reads the user's recent sessions).
  Result<std::vector<WebhookMessage>> messages_for(const db::Event& event);

  // Hex HMAC-SHA256 of `body` with the secret: the X-Sessiond-Signature header.
  std::string signature(std::string_view body) const;

  std::uint64_t delivered() const { return delivered_; }
  std::uint64_t failures() const { return failures_; }

 private:
  const WebhooksConfig& config_;
  std::string secret_;
  db::Database& database_;
  Workers& db_workers_;
  Outbound& outbound_;
  const Clock& clock_;
  std::optional<TimePoint> paused_until_;
  std::chrono::milliseconds backoff_{0};
  std::uint64_t delivered_ = 0;
  std::uint64_t failures_ = 0;
};

}  // namespace sessiond::service
