#include "service/changes.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <utility>

namespace sessiond::service {

namespace json = boost::json;

std::string_view end_event_type(EndReason reason) {
  switch (reason) {
    case EndReason::logout: return "logout";
    case EndReason::expired: return "session_expired";
    case EndReason::max_sessions_exceeded: return "session_evicted";
    case EndReason::refresh_token_reuse: return "refresh_reuse_detected";
    default: return "session_revoked";
  }
}

void add_change(db::ChangeBatch& batch, const store::StoreChange& change, std::string event_uid) {
  const Session& s = change.session;
  db::Event e;
  e.uid = std::move(event_uid);
  e.at = change.at;
  e.user_id = s.user_id;
  e.session_id = s.id;
  e.ip_address = change.ip;
  json::object detail;
  switch (change.kind) {
    case store::StoreChange::Kind::created:
      batch.changes.emplace_back(
          db::SessionCreated{s, change.refresh_hash, change.refresh_expires_at});
      e.type = "login_succeeded";
      e.at = s.created_at;
      detail = {{"auth_method", auth_method_name(s.auth_method)}, {"device_info", s.device_info}};
      break;
    case store::StoreChange::Kind::rotated:
      batch.changes.emplace_back(db::SessionRotated{s.id, change.refresh_hash,
                                                    change.refresh_expires_at, s.last_activity,
                                                    s.expires_at(), change.ip});
      e.type = "session_refreshed";
      break;
    case store::StoreChange::Kind::ended:
      batch.changes.emplace_back(db::SessionEnded{s.id, change.at, change.reason});
      e.type = std::string(end_event_type(change.reason));
      detail = {{"reason", reason_name(change.reason)}, {"device_info", s.device_info}};
      if (change.reason == EndReason::expired) e.uid = "expired:" + s.id.to_string();
      break;
  }
  e.detail = json::serialize(detail);
  batch.events.push_back(std::move(e));
}

}  // namespace sessiond::service
