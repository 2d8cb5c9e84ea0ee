// The JWT codec for access tokens: a thin layer on OpenSSL with the algorithm pinned by
// configuration; the token's own "alg" header is checked against it, never trusted. No I/O.
#pragma once

#include <boost/json/object.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/crypto.hpp"
#include "core/error.hpp"
#include "core/time.hpp"

namespace sessiond {

enum class JwtAlgorithm { HS256, ES256, EdDSA };

std::optional<JwtAlgorithm> parse_jwt_algorithm(std::string_view name);
std::string_view jwt_algorithm_name(JwtAlgorithm alg);

// The claims of an access token (SPEC §3).
struct AccessClaims {
  UserId sub = 0;            // "sub": the user id as a decimal string
  SessionId sid;             // "sid"
  std::string role;          // "role"
  TimePoint iat;             // "iat", seconds
  TimePoint exp;             // "exp", seconds
  std::string jti;           // "jti"
  boost::json::object attr;  // "attr": the session's attributes (omitted when empty)
};

class JwtCodec {
 public:
  // HS256 with a shared secret of at least 32 bytes. Error: invalid_request.
  static Result<JwtCodec> hs256(std::string secret, std::string issuer, std::string audience);
  // ES256 (ECDSA P-256, SHA-256, signature as raw R||S) with a PEM private key (PKCS#8 or SEC1).
  // Error: invalid_request when the PEM is not a P-256 private key.
  static Result<JwtCodec> es256(std::string_view pem_private_key, std::string issuer,
                                std::string audience);
  // EdDSA (Ed25519) with a PEM private key (PKCS#8). Error: invalid_request.
  static Result<JwtCodec> eddsa(std::string_view pem_private_key, std::string issuer,
                                std::string audience);
  // One of the above by algorithm: `key` is the HS256 secret or the PEM private key.
  static Result<JwtCodec> create(JwtAlgorithm alg, std::string key, std::string issuer,
                                 std::string audience);

  JwtCodec(JwtCodec&&) noexcept;
  JwtCodec& operator=(JwtCodec&&) noexcept;
  ~JwtCodec();

  JwtAlgorithm algorithm() const;

  // The public key as a JWK ({"kty","crv","x"[,"y"],"use":"sig","alg","kid"}) for
  // /.well-known/jwks.json; nullopt for HS256, whose key is secret. "kid" is the RFC 7638
  // thumbprint, also put in the header of every token this codec signs.
  std::optional<boost::json::object> public_jwk() const;

  // Signs the claims; adds "iss" and "aud". Thread-safe.
  std::string sign(const AccessClaims& claims) const;

  // Verifies signature, algorithm, iss, aud and exp (against `now`). Errors: token_invalid for
  // anything malformed, forged, of another algorithm, issuer or audience; token_expired when
  // `exp` <= now. Error details never contain the token. Thread-safe.
  Result<AccessClaims> verify(std::string_view token, TimePoint now) const;

 private:
  struct Impl;
  explicit JwtCodec(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A new PEM (PKCS#8) private key for ES256 or EdDSA, from OpenSSL's CSPRNG: what the server writes
// to signing_key_file at first start. Error: invalid_request for HS256 (use random_secret).
Result<std::string> generate_jwt_private_key_pem(JwtAlgorithm alg);

}  // namespace sessiond
