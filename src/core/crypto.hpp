// Identifiers, random tokens, hashes and constant-time helpers (libsodium and OpenSSL). No I/O.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace sessiond {

using UserId = std::int64_t;

// Source of randomness; injected so unit tests can be deterministic. Thread-safe.
class Random {
 public:
  virtual ~Random() = default;
  virtual void fill(std::span<std::uint8_t> out) = 0;
};

// libsodium's CSPRNG (randombytes_buf).
class SodiumRandom final : public Random {
 public:
  void fill(std::span<std::uint8_t> out) override;
};

// Initialises libsodium once; call before anything else in main() and in tests.
void init_crypto();

// A random UUID v4, kept as 16 bytes (the compact form the stores hold).
struct SessionId {
  std::array<std::uint8_t, 16> bytes{};

  static SessionId generate(Random& random);
  // Accepts the canonical lower- or upper-case 8-4-4-4-12 form only.
  static std::optional<SessionId> parse(std::string_view text);
  std::string to_string() const;  // lower-case canonical form
  friend bool operator==(const SessionId&, const SessionId&) = default;
  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 misreads a defaulted <=>
  friend auto operator<=>(const SessionId&, const SessionId&) = default;
};

struct SessionIdHash {
  std::size_t operator()(const SessionId& id) const noexcept;
};

// SHA-256 of a token: what stores and databases keep instead of the token.
using TokenHash = std::array<std::uint8_t, 32>;
TokenHash sha256(std::string_view data);

struct TokenHashHash {
  std::size_t operator()(const TokenHash& h) const noexcept;
};

// "rt_" + base64url (no padding) of 32 random bytes.
std::string new_refresh_token(Random& random);
// A refresh token that also names its user: "rt_" + base64url of 32 random bytes + "." + the user
// id. A shared store finds the user's keys (one hash slot) without a lookup first; the user id is
// no secret (the access token carries it too).
std::string new_refresh_token(Random& random, UserId user);
// The user id a refresh token names; nullopt when it names none (or is malformed).
std::optional<UserId> refresh_token_user(std::string_view token);
// An opaque secret of n random bytes as base64url (admin key, signing key, OTP pepper).
std::string random_secret(Random& random, std::size_t n = 32);

std::string base64url_encode(std::span<const std::uint8_t> data);
std::string base64url_encode(std::string_view data);
// Accepts unpadded base64url only; nullopt on any other character.
std::optional<std::string> base64url_decode(std::string_view text);

std::string to_hex(std::span<const std::uint8_t> data);
std::optional<std::string> from_hex(std::string_view hex);

// Compares in time that depends only on the lengths.
bool constant_time_equal(std::string_view a, std::string_view b);

// HMAC-SHA256(key, data), raw 32 bytes.
std::array<std::uint8_t, 32> hmac_sha256(std::string_view key, std::string_view data);

// Encrypts `successor` under a key derived from `predecessor` (the refresh token it replaced), so
// the store can keep a rotation's successor for the grace window without holding a usable token.
std::string seal_successor(Random& random, std::string_view predecessor,
                           std::string_view successor);
std::optional<std::string> open_successor(std::string_view predecessor, std::string_view sealed);

}  // namespace sessiond
