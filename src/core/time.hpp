// Time points, durations, clocks and their text forms. No I/O.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace sessiond {

using Duration = std::chrono::milliseconds;
using TimePoint = std::chrono::sys_time<std::chrono::milliseconds>;

// Source of the current time; injected everywhere so tests can use FakeClock.
// Implementations are safe to call from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint now() const override;
};

// A clock that moves only when told to. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(TimePoint start = TimePoint{std::chrono::seconds{1'800'000'000}})
      : now_ms_(start.time_since_epoch().count()) {}
  TimePoint now() const override { return TimePoint{Duration{now_ms_.load()}}; }
  void advance(Duration d) { now_ms_ += d.count(); }
  void set(TimePoint t) { now_ms_ = t.time_since_epoch().count(); }

 private:
  std::atomic<std::int64_t> now_ms_;
};

// "2026-11-22T10:00:00.123Z"
std::string format_rfc3339(TimePoint t);
// Accepts RFC 3339 with 'Z' or an offset, with or without fractional seconds.
std::optional<TimePoint> parse_rfc3339(std::string_view text);

// "500ms", "90s", "5m", "8h", "30d" (a plain integer is rejected). Error: invalid_request.
Result<Duration> parse_duration(std::string_view text);
// "64KiB", "1MiB", "512B", "1024" (bytes). Error: invalid_request.
Result<std::uint64_t> parse_size(std::string_view text);

inline std::int64_t to_unix_seconds(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}
inline std::int64_t to_unix_ms(TimePoint t) { return t.time_since_epoch().count(); }
inline TimePoint from_unix_ms(std::int64_t ms) { return TimePoint{Duration{ms}}; }

}  // namespace sessiond
