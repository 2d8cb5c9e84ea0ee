// What a change to a session writes to the database: its user_sessions row and its audit event.
// One function for both paths (SPEC §6): the service writing through (embedded store) and the
// outbox writer (Redis store), so the database holds the same thing in either mode.
#pragma once

#include <string>
#include <string_view>

#include "db/database.hpp"
#include "store/session_store.hpp"

namespace sessiond::service {

// The audit event type of a session that ended for `reason` (SPEC §4).
std::string_view end_event_type(EndReason reason);

// Adds the row change and the audit event of `change` to `batch`. `event_uid` makes the event
// unique (a batch written twice stores it once); an expiry always gets "expired:<session id>",
// since a request and the cleanup job may both report it.
void add_change(db::ChangeBatch& batch, const store::StoreChange& change, std::string event_uid);

}  // namespace sessiond::service
