#include "core/crypto.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <sodium.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace sessiond {

void SodiumRandom::fill(std::span<std::uint8_t> out) { randombytes_buf(out.data(), out.size()); }

void init_crypto() {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
}

SessionId SessionId::generate(Random& random) {
  SessionId id;
  random.fill(id.bytes);
  id.bytes[6] = static_cast<std::uint8_t>((id.bytes[6] & 0x0F) | 0x40);  // version 4
  id.bytes[8] = static_cast<std::uint8_t>((id.bytes[8] & 0x3F) | 0x80);  // RFC 4122 variant
  return id;
}

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
constexpr char kHex[] = "0123456789abcdef";
}  // namespace

std::optional<SessionId> SessionId::parse(std::string_view text) {
  if (text.size() != 36) return std::nullopt;
  SessionId id;
  std::size_t byte = 0;
  for (std::size_t i = 0; i < text.size();) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return std::nullopt;
      ++i;
      continue;
    }
    int hi = hex_value(text[i]);
    int lo = hex_value(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    id.bytes[byte++] = static_cast<std::uint8_t>(hi << 4 | lo);
    i += 2;
  }
  return id;
}

std::string SessionId::to_string() const {
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 0x0F]);
  }
  return out;
}

std::size_t SessionIdHash::operator()(const SessionId& id) const noexcept {
  // The id is random: its first bytes are already a good hash.
  std::size_t h;
  std::memcpy(&h, id.bytes.data(), sizeof h);
  return h;
}

std::size_t TokenHashHash::operator()(const TokenHash& th) const noexcept {
  std::size_t h;
  std::memcpy(&h, th.data(), sizeof h);
  return h;
}

TokenHash sha256(std::string_view data) {
  TokenHash out{};
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data());
  return out;
}

std::string new_refresh_token(Random& random) { return "rt_" + random_secret(random, 32); }

std::string new_refresh_token(Random& random, UserId user) {
  return new_refresh_token(random) + "." + std::to_string(user);
}

std::optional<UserId> refresh_token_user(std::string_view token) {
  const auto dot = token.rfind('.');
  if (!token.starts_with("rt_") || dot == std::string_view::npos || dot + 1 == token.size() ||
      token.size() - dot - 1 > 19) {
    return std::nullopt;
  }
  UserId user = 0;
  for (char c : token.substr(dot + 1)) {
    if (c < '0' || c > '9' || user > (INT64_MAX - 9) / 10) return std::nullopt;
    user = user * 10 + (c - '0');
  }
  if (user <= 0) return std::nullopt;
  return user;
}

std::string random_secret(Random& random, std::size_t n) {
  std::string bytes(n, '\0');
  random.fill({reinterpret_cast<std::uint8_t*>(bytes.data()), bytes.size()});
  std::string out = base64url_encode(bytes);
  sodium_memzero(bytes.data(), bytes.size());
  return out;
}

std::string base64url_encode(std::span<const std::uint8_t> data) {
  std::string out(sodium_base64_encoded_len(data.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                  '\0');
  sodium_bin2base64(out.data(), out.size(), data.data(), data.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(std::strlen(out.c_str()));
  return out;
}

std::string base64url_encode(std::string_view data) {
  return base64url_encode(std::span<const std::uint8_t>(
      reinterpret_cast<const std::uint8_t*>(data.data()), data.size()));
}

std::optional<std::string> base64url_decode(std::string_view text) {
  std::string out(text.size() * 3 / 4 + 3, '\0');
  std::size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &len, &end,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
      end != text.data() + text.size()) {
    return std::nullopt;
  }
  out.resize(len);
  return out;
}

std::string to_hex(std::span<const std::uint8_t> data) {
  std::string out;
  out.reserve(data.size() * 2);
  for (auto b : data) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0x0F]);
  }
  return out;
}

std::optional<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int hi = hex_value(hex[i]);
    int lo = hex_value(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::array<std::uint8_t, 32> hmac_sha256(std::string_view key, std::string_view data) {
  std::array<std::uint8_t, 32> out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &len);
  return out;
}

namespace {
// Key for sealing a rotation's successor: BLAKE2b keyed by a fixed context over the predecessor.
std::array<unsigned char, crypto_secretbox_KEYBYTES> successor_key(std::string_view predecessor) {
  static constexpr char kContext[] = "sessiond refresh successor v1";
  std::array<unsigned char, crypto_secretbox_KEYBYTES> key{};
  crypto_generichash(key.data(), key.size(),
                     reinterpret_cast<const unsigned char*>(predecessor.data()), predecessor.size(),
                     reinterpret_cast<const unsigned char*>(kContext), sizeof kContext - 1);
  return key;
}
}  // namespace

std::string seal_successor(Random& random, std::string_view predecessor,
                           std::string_view successor) {
  auto key = successor_key(predecessor);
  std::string out(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + successor.size(), '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(out.data());
  random.fill({nonce, crypto_secretbox_NONCEBYTES});
  crypto_secretbox_easy(nonce + crypto_secretbox_NONCEBYTES,
                        reinterpret_cast<const unsigned char*>(successor.data()), successor.size(),
                        nonce, key.data());
  sodium_memzero(key.data(), key.size());
  return out;
}

std::optional<std::string> open_successor(std::string_view predecessor, std::string_view sealed) {
  if (sealed.size() < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) return std::nullopt;
  auto key = successor_key(predecessor);
  const auto* nonce = reinterpret_cast<const unsigned char*>(sealed.data());
  std::string out(sealed.size() - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES, '\0');
  int rc = crypto_secretbox_open_easy(
      reinterpret_cast<unsigned char*>(out.data()), nonce + crypto_secretbox_NONCEBYTES,
      sealed.size() - crypto_secretbox_NONCEBYTES, nonce, key.data());
  sodium_memzero(key.data(), key.size());
  if (rc != 0) return std::nullopt;
  return out;
}

}  // namespace sessiond
