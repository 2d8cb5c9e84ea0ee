// The JWT codec for access tokens: a thin layer on OpenSSL with the algorithm pinned by
// configuration; the token's own "alg" header is checked against it, never trusted. No I/O.
#pragma once

#include "core/crypto.hpp"
#include "core/error.hpp"
#include "core/time.hpp"

#include <boost/json/object.hpp>

#include <memory>
#include <string>
#include <string_view>

namespace sessiond {

enum class JwtAlgorithm { HS256, ES256, EdDSA };

std::optional<JwtAlgorithm> parse_jwt_algorithm(std::string_view name);
std::string_view jwt_algorithm_name(JwtAlgorithm alg);

// The claims of an access token (SPEC §3).
struct AccessClaims {
  UserId sub = 0;          // "sub": the user id as a decimal string
  SessionId sid;           // "sid"
  std::string role;        // "role"
  TimePoint iat;           // "iat", seconds
  TimePoint exp;           // "exp", seconds
  std::string jti;         // "jti"
  boost::json::object attr;  // "attr": the session's attributes (omitted when empty)
};

class JwtCodec {
 public:
  // HS256 with a shared secret of at least 32 bytes. Error: invalid_request.
  static Result<JwtCodec> hs256(std::string secret, std::string issuer, std::string audience);

  JwtCodec(JwtCodec&&) noexcept;
  JwtCodec& operator=(JwtCodec&&) noexcept;
  ~JwtCodec();

  JwtAlgorithm algorithm() const;

  // Signs the claims; adds "iss" and "aud". Thread-safe.
  std::string sign(const AccessClaims& claims) const;

  // Verifies signature, algorithm, iss, aud and exp (against `now`). Errors: token_invalid for
  // anything malformed, forged, of another algorithm, issuer or audience; token_expired when
  // `exp` <= now. Thread-safe.
  Result<AccessClaims> verify(std::string_view token, TimePoint now) const;

 private:
  struct Impl;
  explicit JwtCodec(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sessiond
