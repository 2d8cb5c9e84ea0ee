// Human output: aligned tables and times (local time, and "5 min ago").
#pragma once

#include <boost/json/value.hpp>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/time.hpp"

namespace sessiond::cli {

// Columns separated by two spaces, each as wide as its widest cell (UTF-8 aware: "·" is one
// column). The first row is the header.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print(std::ostream& out) const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// Columns a UTF-8 string takes on a terminal (code points; every one counted as one column).
std::size_t display_width(std::string_view text);

// "2026-11-23 07:48 CET": the local time zone (TZ), to the minute (or the second).
std::string local_time(TimePoint t, bool with_seconds = false);
// "just now", "5 min ago", "3 h ago", "2 days ago"; "in 5 min" for a time ahead.
std::string relative_time(TimePoint t, TimePoint now);

// An RFC 3339 string member of a JSON object as a time; nullopt when absent or not a time.
std::optional<TimePoint> time_member(const boost::json::value& object, std::string_view key);
// A member as text: strings as they are, null and absent as "-", anything else as JSON.
std::string text_member(const boost::json::value& object, std::string_view key);

}  // namespace sessiond::cli
