#include "cli/output.hpp"

#include <boost/json/serialize.hpp>
#include <ctime>
#include <ostream>

namespace sessiond::cli {

namespace json = boost::json;

std::size_t display_width(std::string_view text) {
  std::size_t width = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++width;  // not a continuation byte
  }
  return width;
}

void Table::print(std::ostream& out) const {
  std::vector<std::size_t> widths;
  for (const auto& row : rows_) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (std::size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], display_width(row[i]));
    }
  }
  for (const auto& row : rows_) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - display_width(row[i]) + 2, ' ');
    }
    out << line << "\n";
  }
}

std::string local_time(TimePoint t, bool with_seconds) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(
      std::chrono::time_point_cast<std::chrono::system_clock::duration>(t));
  std::tm local{};
  ::localtime_r(&seconds, &local);
  char text[64];
  const std::size_t n = std::strftime(
      text, sizeof text, with_seconds ? "%Y-%m-%d %H:%M:%S %Z" : "%Y-%m-%d %H:%M %Z", &local);
  return std::string(text, n);
}

std::string relative_time(TimePoint t, TimePoint now) {
  using std::chrono::duration_cast;
  const bool ahead = t > now;
  const auto seconds = duration_cast<std::chrono::seconds>(ahead ? t - now : now - t).count();
  std::string amount;
  if (seconds < 60) return ahead ? "in less than a minute" : "just now";
  if (seconds < 3600) {
    amount = std::to_string(seconds / 60) + " min";
  } else if (seconds < 2 * 86400) {
    amount = std::to_string(seconds / 3600) + " h";
  } else {
    amount = std::to_string(seconds / 86400) + " days";
  }
  return ahead ? "in " + amount : amount + " ago";
}

std::optional<TimePoint> time_member(const json::value& object, std::string_view key) {
  if (!object.is_object()) return std::nullopt;
  const auto* v = object.get_object().if_contains(key);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return parse_rfc3339(v->get_string());
}

std::string text_member(const json::value& object, std::string_view key) {
  if (!object.is_object()) return "-";
  const auto* v = object.get_object().if_contains(key);
  if (v == nullptr || v->is_null()) return "-";
  if (v->is_string()) return std::string(v->get_string());
  return json::serialize(*v);
}

}  // namespace sessiond::cli
