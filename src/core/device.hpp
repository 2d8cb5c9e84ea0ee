// Device detection from a User-Agent (SPEC §4). No I/O.
#pragma once

#include <string>
#include <string_view>

namespace sessiond {

// One of "iPhone", "iPad", "Android", "Mac", "Windows", "Linux", "ChromeOS", "CLI" (sessionctl)
// or "Other", followed by " · <browser>" where the browser is known ("iPhone · Safari",
// "Windows · Edge", "Android · Chrome", "Mac · Firefox"). An empty or unknown agent is "Other".
std::string detect_device(std::string_view user_agent);

}  // namespace sessiond
