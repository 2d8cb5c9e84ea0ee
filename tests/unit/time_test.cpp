#include "core/time.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace sessiond {
namespace {

using namespace std::chrono;
using namespace std::chrono_literals;

TimePoint at(year_month_day day, Duration since_midnight = Duration{0}) {
  return TimePoint{sys_days{day}} + since_midnight;
}

TEST(Time, FormatsUtcWithMilliseconds) {
  EXPECT_EQ(format_rfc3339(at(2026y / 11 / 22, 10h + 123ms)), "2026-11-22T10:00:00.123Z");
  EXPECT_EQ(format_rfc3339(at(2026y / 1 / 2, 3h + 4min + 5s + 6ms)), "2026-01-02T03:04:05.006Z");
}

TEST(Time, FormatsEpochAndEndOfDay) {
  EXPECT_EQ(format_rfc3339(TimePoint{}), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339(at(2024y / 2 / 29, 24h - 1ms)), "2024-02-29T23:59:59.999Z");
}

TEST(Time, ParsesWhatItFormats) {
  for (auto t : {TimePoint{}, at(2026y / 11 / 22, 10h + 123ms), at(2038y / 1 / 19, 3h + 14min + 8s),
                 at(1999y / 12 / 31, 24h - 1ms)}) {
    EXPECT_EQ(parse_rfc3339(format_rfc3339(t)), t) << format_rfc3339(t);
  }
}

TEST(Time, ParsesWithoutFractionAndWithShortOrLongFractions) {
  const auto ten = at(2026y / 11 / 22, 10h);
  EXPECT_EQ(parse_rfc3339("2026-11-22T10:00:00Z"), ten);
  EXPECT_EQ(parse_rfc3339("2026-11-22T10:00:00.5Z"), ten + 500ms);
  EXPECT_EQ(parse_rfc3339("2026-11-22T10:00:00.12Z"), ten + 120ms);
  EXPECT_EQ(parse_rfc3339("2026-11-22T10:00:00.123456789Z"), ten + 123ms);
}

TEST(Time, ParsesOffsets) {
  const auto ten = at(2026y / 11 / 22, 10h);
  EXPECT_EQ(parse_rfc3339("2026-11-22T12:30:00+02:30"), ten);
  EXPECT_EQ(parse_rfc3339("2026-11-22T05:00:00.000-05:00"), ten);
  EXPECT_EQ(parse_rfc3339("2026-11-22T10:00:00+00:00"), ten);
  EXPECT_EQ(parse_rfc3339("2026-11-23T00:30:00+14:30"), ten);
  EXPECT_EQ(parse_rfc3339("2026-11-22t10:00:00z"), ten);
}

TEST(Time, RejectsMalformedTimestamps) {
  for (const char* text : {"",
                           "2026-11-22",
                           "2026-11-22T10:00:00",
                           "2026-11-22T10:00Z",
                           "2026-13-01T00:00:00Z",
                           "2026-02-30T00:00:00Z",
                           "2026-11-22T24:00:00Z",
                           "2026-11-22T10:60:00Z",
                           "2026-11-22T10:00:00.Z",
                           "2026-11-22T10:00:00+0200",
                           "2026-11-22T10:00:00+02",
                           "2026-11-22T10:00:00+24:00",
                           "2026-11-22T10:00:00+02:60",
                           "2026-11-22T10:00:00Zjunk",
                           "2026/11/22T10:00:00Z",
                           "20261122T100000Z",
                           "2026-11-22X10:00:00Z",
                           "-026-11-22T10:00:00Z",
                           "2026-11-22T10:00:00 Z",
                           "1765000000"}) {
    EXPECT_EQ(parse_rfc3339(text), std::nullopt) << text;
  }
}

TEST(Time, ParsesDurationsInEveryUnit) {
  EXPECT_EQ(parse_duration("500ms").value(), 500ms);
  EXPECT_EQ(parse_duration("90s").value(), 90s);
  EXPECT_EQ(parse_duration("5m").value(), 5min);
  EXPECT_EQ(parse_duration("8h").value(), 8h);
  EXPECT_EQ(parse_duration("30d").value(), 24h * 30);
  EXPECT_EQ(parse_duration("0s").value(), 0ms);
}

TEST(Time, RejectsMalformedDurations) {
  for (const char* text :
       {"", "5", "s", "5x", "-5s", "+5s", "5 s", " 5s", "5s ", "5S", "1.5h", "5sec", "5mm", "h5",
        "99999999999999999999s", "9223372036854775807d", "106751991167301d"}) {
    auto result = parse_duration(text);
    ASSERT_FALSE(result.has_value()) << text;
    EXPECT_EQ(result.error().code, Errc::invalid_request) << text;
  }
}

TEST(Time, ParsesLargestDurationThatFits) {
  EXPECT_EQ(parse_duration("106751991167d").value(), 24h * 106751991167LL);
}

TEST(Time, ParsesSizes) {
  EXPECT_EQ(parse_size("64KiB").value(), 64u * 1024);
  EXPECT_EQ(parse_size("1MiB").value(), 1024u * 1024);
  EXPECT_EQ(parse_size("512B").value(), 512u);
  EXPECT_EQ(parse_size("1024").value(), 1024u);
  EXPECT_EQ(parse_size("0").value(), 0u);
}

TEST(Time, RejectsMalformedSizes) {
  for (const char* text : {"", "KiB", "-1", "1 KiB", "1.5MiB", "1GiB", "1kib", "64KiBs",
                           "18446744073709551616", "18446744073709551615KiB"}) {
    auto result = parse_size(text);
    ASSERT_FALSE(result.has_value()) << text;
    EXPECT_EQ(result.error().code, Errc::invalid_request) << text;
  }
}

TEST(Time, ConvertsToUnixSecondsAndMilliseconds) {
  const auto t = from_unix_ms(1'800'000'000'123);
  EXPECT_EQ(to_unix_ms(t), 1'800'000'000'123);
  EXPECT_EQ(to_unix_seconds(t), 1'800'000'000);
}

TEST(FakeClock, MovesOnlyWhenTold) {
  FakeClock clock(from_unix_ms(1000));
  EXPECT_EQ(clock.now(), from_unix_ms(1000));
  EXPECT_EQ(clock.now(), from_unix_ms(1000));
  clock.advance(1500ms);
  EXPECT_EQ(clock.now(), from_unix_ms(2500));
  clock.set(from_unix_ms(7));
  EXPECT_EQ(clock.now(), from_unix_ms(7));
}

}  // namespace
}  // namespace sessiond
