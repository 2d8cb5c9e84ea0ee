// The one place that maps domain errors to HTTP statuses and problem+json bodies (SPEC §5).
#pragma once

#include "core/error.hpp"
#include "http/message.hpp"

namespace sessiond::http {

int status_for(Errc code);
// A problem+json response; never echoes tokens or internal messages (details are written by us).
Response problem(const Error& error);

}  // namespace sessiond::http
