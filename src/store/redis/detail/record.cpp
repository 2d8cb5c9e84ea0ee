#include "store/redis/detail/record.hpp"

#include <bit>
#include <cstdint>
#include <cstring>
#include <variant>
#include <vector>

namespace sessiond::store::redis::detail {
namespace {

// What cmsgpack writes for the values a record holds: false/nil (absent), integers (times, flags;
// Lua numbers with an integral value), doubles (any other number) and strings.
using Item = std::variant<std::monostate, std::int64_t, double, std::string_view>;

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}

  bool done() const { return pos_ == bytes_.size(); }

  // The element count of an array header.
  std::optional<std::size_t> array_header() {
    auto tag = byte();
    if (!tag) return std::nullopt;
    if ((*tag & 0xF0U) == 0x90U) return *tag & 0x0FU;
    if (*tag == 0xDC) return unsigned_be(2);
    if (*tag == 0xDD) return unsigned_be(4);
    return std::nullopt;
  }

  std::optional<Item> item() {
    auto tag = byte();
    if (!tag) return std::nullopt;
    const std::uint8_t t = *tag;
    if (t <= 0x7F) return Item{static_cast<std::int64_t>(t)};
    if (t >= 0xE0) return Item{static_cast<std::int64_t>(static_cast<std::int8_t>(t))};
    if ((t & 0xE0U) == 0xA0U) return string(t & 0x1FU);
    switch (t) {
      case 0xC0:  // nil
      case 0xC2:  // false
        return Item{std::monostate{}};
      case 0xC3: return Item{std::int64_t{1}};  // true
      case 0xCA: {
        auto bits = unsigned_be(4);
        if (!bits) return std::nullopt;
        return Item{static_cast<double>(std::bit_cast<float>(static_cast<std::uint32_t>(*bits)))};
      }
      case 0xCB: {
        auto bits = unsigned_be(8);
        if (!bits) return std::nullopt;
        return Item{std::bit_cast<double>(*bits)};
      }
      case 0xCC: return integer(1, false);
      case 0xCD: return integer(2, false);
      case 0xCE: return integer(4, false);
      case 0xCF: return integer(8, false);
      case 0xD0: return integer(1, true);
      case 0xD1: return integer(2, true);
      case 0xD2: return integer(4, true);
      case 0xD3: return integer(8, true);
      case 0xC4:
      case 0xD9: return sized_string(1);
      case 0xC5:
      case 0xDA: return sized_string(2);
      case 0xC6:
      case 0xDB: return sized_string(4);
      default: return std::nullopt;
    }
  }

 private:
  std::optional<std::uint8_t> byte() {
    if (pos_ >= bytes_.size()) return std::nullopt;
    return static_cast<std::uint8_t>(bytes_[pos_++]);
  }
  std::optional<std::uint64_t> unsigned_be(std::size_t n) {
    if (bytes_.size() - pos_ < n) return std::nullopt;
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v = (v << 8U) | static_cast<std::uint8_t>(bytes_[pos_++]);
    return v;
  }
  std::optional<Item> integer(std::size_t n, bool is_signed) {
    auto v = unsigned_be(n);
    if (!v) return std::nullopt;
    if (!is_signed) {
      if (*v > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
      return Item{static_cast<std::int64_t>(*v)};
    }
    // Sign-extend from n bytes.
    const unsigned shift = static_cast<unsigned>(64 - 8 * n);
    return Item{static_cast<std::int64_t>(*v << shift) >> shift};
  }
  std::optional<Item> string(std::size_t n) {
    if (bytes_.size() - pos_ < n) return std::nullopt;
    std::string_view s = bytes_.substr(pos_, n);
    pos_ += n;
    return Item{s};
  }
  std::optional<Item> sized_string(std::size_t header) {
    auto n = unsigned_be(header);
    if (!n) return std::nullopt;
    return string(static_cast<std::size_t>(*n));
  }

  std::string_view bytes_;
  std::size_t pos_ = 0;
};

// Record positions (scripts.cpp's R, 0-based here).
enum Pos : std::size_t {
  kRole = 0,
  kAttributes,
  kMethod,
  kDevice,
  kIp,
  kLastIp,
  kAgent,
  kCreated,
  kLastActivity,
  kAbsolute,
  kIdle,
  kEnded = 17,
  kEndedAt = 18,
  kSize = 20
};

bool absent(const Item& i) { return std::holds_alternative<std::monostate>(i); }

std::optional<std::int64_t> number(const Item& i) {
  if (const auto* v = std::get_if<std::int64_t>(&i)) return *v;
  if (const auto* d = std::get_if<double>(&i)) {
    // Lua wrote a double: only an integral value is a time.
    if (*d >= -9.0e15 && *d <= 9.0e15 && static_cast<double>(static_cast<std::int64_t>(*d)) == *d) {
      return static_cast<std::int64_t>(*d);
    }
  }
  return std::nullopt;
}

std::string text(const Item& i) {
  if (const auto* s = std::get_if<std::string_view>(&i)) return std::string(*s);
  return {};
}

}  // namespace

std::optional<Record> decode_record(std::string_view packed, const SessionId& id, UserId user) {
  Reader reader(packed);
  auto size = reader.array_header();
  if (!size || *size != kSize) return std::nullopt;
  std::vector<Item> items;
  items.reserve(kSize);
  for (std::size_t i = 0; i < kSize; ++i) {
    auto item = reader.item();
    if (!item) return std::nullopt;
    items.push_back(*item);
  }
  if (!reader.done()) return std::nullopt;

  Record out;
  if (!absent(items[kEnded])) {
    auto reason = parse_reason(text(items[kEnded]));
    auto at = number(items[kEndedAt]);
    if (!reason || !at) return std::nullopt;
    out.ended = *reason;
    out.ended_at = from_unix_ms(*at);
  }
  if (absent(items[kCreated])) {
    // Only a tombstone drops the Session fields.
    if (!out.ended) return std::nullopt;
    return out;
  }
  auto method = parse_auth_method(text(items[kMethod]));
  auto created = number(items[kCreated]);
  auto last = number(items[kLastActivity]);
  auto absolute = number(items[kAbsolute]);
  auto idle = number(items[kIdle]);
  if (!method || !created || !last || !absolute || !idle) return std::nullopt;
  Session& s = out.session;
  s.id = id;
  s.user_id = user;
  s.role = text(items[kRole]);
  s.attributes = text(items[kAttributes]);
  s.auth_method = *method;
  s.device_info = text(items[kDevice]);
  s.ip_address = text(items[kIp]);
  s.last_ip = absent(items[kLastIp]) ? s.ip_address : text(items[kLastIp]);
  s.user_agent = text(items[kAgent]);
  s.created_at = from_unix_ms(*created);
  s.last_activity = from_unix_ms(*last);
  s.absolute_expires_at = from_unix_ms(*absolute);
  s.idle_timeout = Duration{*idle};
  out.has_session = true;
  return out;
}

}  // namespace sessiond::store::redis::detail
