#include "core/jwt.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <sodium.h>

#include <array>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serializer.hpp>
#include <boost/json/value.hpp>
#include <charconv>
#include <cmath>
#include <limits>
#include <span>
#include <stdexcept>
#include <utility>

namespace sessiond {

std::optional<JwtAlgorithm> parse_jwt_algorithm(std::string_view name) {
  if (name == "HS256") return JwtAlgorithm::HS256;
  if (name == "ES256") return JwtAlgorithm::ES256;
  if (name == "EdDSA") return JwtAlgorithm::EdDSA;
  return std::nullopt;
}

std::string_view jwt_algorithm_name(JwtAlgorithm alg) {
  switch (alg) {
    case JwtAlgorithm::HS256: return "HS256";
    case JwtAlgorithm::ES256: return "ES256";
    case JwtAlgorithm::EdDSA: return "EdDSA";
  }
  return "HS256";
}

namespace {

constexpr std::size_t kMaxTokenSize = 8 * 1024;
constexpr std::size_t kMinHmacSecret = 32;
constexpr std::size_t kMaxSignatureSize = 64;

// ---- small helpers ----------------------------------------------------------------------------

// Table-driven base64url for token segments, which are public: libsodium's constant-time codec was
// the largest user-space cost of a verify.
constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<int, 256> make_base64url_values() {
  std::array<int, 256> values{};
  for (auto& v : values) v = -1;
  for (int i = 0; i < 64; ++i) values[static_cast<unsigned char>(kBase64Url[i])] = i;
  return values;
}
constexpr auto kBase64UrlValues = make_base64url_values();

void append_base64url(std::string& out, const void* data, std::size_t size) {
  const auto* in = static_cast<const unsigned char*>(data);
  const std::size_t old = out.size();
  out.resize(old + (size * 4 + 2) / 3);
  char* o = out.data() + old;
  std::size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    const std::uint32_t v =
        (std::uint32_t{in[i]} << 16) | (std::uint32_t{in[i + 1]} << 8) | in[i + 2];
    *o++ = kBase64Url[(v >> 18) & 63];
    *o++ = kBase64Url[(v >> 12) & 63];
    *o++ = kBase64Url[(v >> 6) & 63];
    *o++ = kBase64Url[v & 63];
  }
  if (size - i == 1) {
    const std::uint32_t v = std::uint32_t{in[i]} << 16;
    *o++ = kBase64Url[(v >> 18) & 63];
    *o++ = kBase64Url[(v >> 12) & 63];
  } else if (size - i == 2) {
    const std::uint32_t v = (std::uint32_t{in[i]} << 16) | (std::uint32_t{in[i + 1]} << 8);
    *o++ = kBase64Url[(v >> 18) & 63];
    *o++ = kBase64Url[(v >> 12) & 63];
    *o++ = kBase64Url[(v >> 6) & 63];
  }
}

std::string base64url(std::string_view data) {
  std::string out;
  append_base64url(out, data.data(), data.size());
  return out;
}

// Decodes unpadded, canonical base64url into `out`; false on any other input or when it does not
// fit. Non-zero trailing bits are rejected, so one signature has one encoding.
bool decode_base64url(std::string_view text, std::span<std::uint8_t> out, std::size_t& len) {
  const std::size_t n = text.size();
  if (n % 4 == 1) return false;
  len = n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
  if (len > out.size()) return false;
  std::uint8_t* o = out.data();
  std::size_t i = 0;
  auto value = [&](std::size_t k) { return kBase64UrlValues[static_cast<unsigned char>(text[k])]; };
  for (; i + 4 <= n; i += 4) {
    const int a = value(i), b = value(i + 1), c = value(i + 2), d = value(i + 3);
    if ((a | b | c | d) < 0) return false;
    const std::uint32_t v = (std::uint32_t(a) << 18) | (std::uint32_t(b) << 12) |
                            (std::uint32_t(c) << 6) | std::uint32_t(d);
    *o++ = static_cast<std::uint8_t>(v >> 16);
    *o++ = static_cast<std::uint8_t>(v >> 8);
    *o++ = static_cast<std::uint8_t>(v);
  }
  if (n - i == 2) {
    const int a = value(i), b = value(i + 1);
    if ((a | b) < 0 || (b & 0x0F) != 0) return false;
    *o++ = static_cast<std::uint8_t>((a << 2) | (b >> 4));
  } else if (n - i == 3) {
    const int a = value(i), b = value(i + 1), c = value(i + 2);
    if ((a | b | c) < 0 || (c & 0x03) != 0) return false;
    const std::uint32_t v =
        (std::uint32_t(a) << 18) | (std::uint32_t(b) << 12) | (std::uint32_t(c) << 6);
    *o++ = static_cast<std::uint8_t>(v >> 16);
    *o++ = static_cast<std::uint8_t>(v >> 8);
  }
  return true;
}

bool decode_base64url(std::string_view text, std::string& out) {
  out.resize(text.size() * 3 / 4 + 1);
  std::size_t len = 0;
  if (!decode_base64url(text, {reinterpret_cast<std::uint8_t*>(out.data()), out.size()}, len)) {
    return false;
  }
  out.resize(len);
  return true;
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20) {
      out.append("\\u00");
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0x0F]);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

void append_int(std::string& out, std::int64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, end);
}

void append_uuid(std::string& out, const SessionId& id) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < id.bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[id.bytes[i] >> 4]);
    out.push_back(kHex[id.bytes[i] & 0x0F]);
  }
}

void append_json(std::string& out, const boost::json::object& object) {
  boost::json::serializer serializer;
  serializer.reset(&object);
  char buf[512];
  while (!serializer.done()) out.append(serializer.read(buf));
}

// "sub" must be the canonical decimal form of a non-negative int64: no sign, space or leading zero.
std::optional<UserId> parse_user_id(std::string_view text) {
  if (text.empty() || (text.size() > 1 && text[0] == '0')) return std::nullopt;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  UserId id = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc{} || ptr != text.data() + text.size()) return std::nullopt;
  return id;
}

// A NumericDate (seconds, integer or not) as a TimePoint, if it fits in milliseconds.
std::optional<TimePoint> numeric_date(const boost::json::value* v) {
  constexpr std::int64_t kMaxSeconds = std::numeric_limits<std::int64_t>::max() / 1000;
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) {
    const std::int64_t s = v->get_int64();
    if (s > kMaxSeconds || s < -kMaxSeconds) return std::nullopt;
    return TimePoint{std::chrono::seconds{s}};
  }
  if (v->is_uint64()) {
    const std::uint64_t s = v->get_uint64();
    if (s > static_cast<std::uint64_t>(kMaxSeconds)) return std::nullopt;
    return TimePoint{std::chrono::seconds{static_cast<std::int64_t>(s)}};
  }
  if (v->is_double()) {
    const double s = v->get_double();
    if (!std::isfinite(s) || std::fabs(s) > static_cast<double>(kMaxSeconds)) return std::nullopt;
    return TimePoint{Duration{static_cast<std::int64_t>(std::floor(s * 1000.0))}};
  }
  return std::nullopt;
}

const boost::json::string* string_member(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v == nullptr ? nullptr : v->if_string();
}

// ---- OpenSSL handles --------------------------------------------------------------------------

struct OpensslFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, OpensslFree>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, OpensslFree>;
using BioPtr = std::unique_ptr<BIO, OpensslFree>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, OpensslFree>;
using BignumPtr = std::unique_ptr<BIGNUM, OpensslFree>;

// Failures leave entries in OpenSSL's per-thread error queue; drop them so a later, unrelated
// ERR_get_error() on this thread does not report our stale error.
template <class T>
T clear_openssl_errors(T value) {
  ERR_clear_error();
  return value;
}

PkeyPtr load_private_key(std::string_view pem) {
  if (pem.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) return nullptr;
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return nullptr;
  // Without a callback OpenSSL would prompt on the terminal for an encrypted key's passphrase.
  auto no_passphrase = +[](char*, int, int, void*) -> int { return -1; };
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) ERR_clear_error();
  return key;
}

// ---- signature algorithms ---------------------------------------------------------------------

// One JWS algorithm. Implementations are immutable after construction, so sign and verify may run
// concurrently.
class Signer {
 public:
  virtual ~Signer() = default;
  virtual JwtAlgorithm algorithm() const = 0;
  virtual std::size_t signature_size() const = 0;
  // Writes signature_size() bytes to `out`; false only on an OpenSSL failure.
  virtual bool sign(std::string_view input,
                    std::span<std::uint8_t, kMaxSignatureSize> out) const = 0;
  virtual bool verify(std::string_view input, std::span<const std::uint8_t> signature) const = 0;
  // The public key as a JWK without "kid", "use" and "alg", members in RFC 7638 thumbprint order.
  virtual std::optional<boost::json::object> public_key() const { return std::nullopt; }
};

class HmacSha256Signer final : public Signer {
 public:
  // The key is absorbed once into a template context; each call duplicates it, which skips the
  // per-call digest fetch and key schedule of one-shot HMAC() (about twice as fast).
  explicit HmacSha256Signer(std::string secret) {
    mac_ = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    template_ = mac_ == nullptr ? nullptr : EVP_MAC_CTX_new(mac_);
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                                 OSSL_PARAM_construct_end()};
    if (template_ == nullptr ||
        EVP_MAC_init(template_, reinterpret_cast<const unsigned char*>(secret.data()),
                     secret.size(), params) != 1) {
      sodium_memzero(secret.data(), secret.size());
      throw std::runtime_error("HMAC-SHA256 is not available in OpenSSL");
    }
    sodium_memzero(secret.data(), secret.size());
  }
  ~HmacSha256Signer() override {
    EVP_MAC_CTX_free(template_);
    EVP_MAC_free(mac_);
  }
  HmacSha256Signer(const HmacSha256Signer&) = delete;
  HmacSha256Signer& operator=(const HmacSha256Signer&) = delete;

  JwtAlgorithm algorithm() const override { return JwtAlgorithm::HS256; }
  std::size_t signature_size() const override { return 32; }

  // Thread-safe: the template is only read (duplicated), never updated.
  bool sign(std::string_view input, std::span<std::uint8_t, kMaxSignatureSize> out) const override {
    EVP_MAC_CTX* ctx = EVP_MAC_CTX_dup(template_);
    if (ctx == nullptr) return clear_openssl_errors(false);
    std::size_t len = 0;
    const bool ok = EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(input.data()),
                                   input.size()) == 1 &&
                    EVP_MAC_final(ctx, out.data(), &len, out.size()) == 1 && len == 32;
    EVP_MAC_CTX_free(ctx);
    return ok ? ok : clear_openssl_errors(false);
  }

  bool verify(std::string_view input, std::span<const std::uint8_t> signature) const override {
    std::array<std::uint8_t, kMaxSignatureSize> expected{};
    if (signature.size() != 32 || !sign(input, expected)) return false;
    return sodium_memcmp(expected.data(), signature.data(), 32) == 0;
  }

 private:
  EVP_MAC* mac_ = nullptr;
  EVP_MAC_CTX* template_ = nullptr;
};

class EcdsaP256Signer final : public Signer {
 public:
  explicit EcdsaP256Signer(PkeyPtr key) : key_(std::move(key)) {}

  static bool accepts(EVP_PKEY* key) {
    if (EVP_PKEY_is_a(key, "EC") != 1) return false;
    char group[64] = {};
    std::size_t len = 0;
    if (EVP_PKEY_get_group_name(key, group, sizeof group, &len) != 1) return false;
    const std::string_view name(group, len);
    return name == "prime256v1" || name == "P-256";
  }

  JwtAlgorithm algorithm() const override { return JwtAlgorithm::ES256; }
  std::size_t signature_size() const override { return 64; }

  bool sign(std::string_view input, std::span<std::uint8_t, kMaxSignatureSize> out) const override {
    MdCtxPtr ctx(EVP_MD_CTX_new());
    std::array<unsigned char, 80> der{};  // a DER P-256 signature is at most 72 bytes
    std::size_t der_len = der.size();
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
        EVP_DigestSign(ctx.get(), der.data(), &der_len,
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
      return clear_openssl_errors(false);
    }
    const unsigned char* p = der.data();
    EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len)));
    if (!sig) return clear_openssl_errors(false);
    // JWS wants R and S as fixed-width big-endian integers, not DER.
    return BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), out.data(), 32) == 32 &&
           BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), out.data() + 32, 32) == 32;
  }

  bool verify(std::string_view input, std::span<const std::uint8_t> signature) const override {
    if (signature.size() != 64) return false;
    EcdsaSigPtr sig(ECDSA_SIG_new());
    BignumPtr r(BN_bin2bn(signature.data(), 32, nullptr));
    BignumPtr s(BN_bin2bn(signature.data() + 32, 32, nullptr));
    if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) {
      return clear_openssl_errors(false);
    }
    (void)r.release();  // owned by sig now
    (void)s.release();
    std::array<unsigned char, 80> der{};
    unsigned char* p = der.data();
    const int der_len = i2d_ECDSA_SIG(sig.get(), &p);
    MdCtxPtr ctx(EVP_MD_CTX_new());
    if (der_len <= 0 || !ctx ||
        EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1) {
      return clear_openssl_errors(false);
    }
    const int ok =
        EVP_DigestVerify(ctx.get(), der.data(), static_cast<std::size_t>(der_len),
                         reinterpret_cast<const unsigned char*>(input.data()), input.size());
    return ok == 1 || clear_openssl_errors(false);
  }

  std::optional<boost::json::object> public_key() const override {
    std::array<unsigned char, 32> x{};
    std::array<unsigned char, 32> y{};
    BIGNUM* bx = nullptr;
    BIGNUM* by = nullptr;
    const bool got = EVP_PKEY_get_bn_param(key_.get(), OSSL_PKEY_PARAM_EC_PUB_X, &bx) == 1 &&
                     EVP_PKEY_get_bn_param(key_.get(), OSSL_PKEY_PARAM_EC_PUB_Y, &by) == 1;
    BignumPtr hold_x(bx);
    BignumPtr hold_y(by);
    if (!got || BN_bn2binpad(bx, x.data(), 32) != 32 || BN_bn2binpad(by, y.data(), 32) != 32) {
      return clear_openssl_errors(std::nullopt);
    }
    boost::json::object jwk;
    jwk["crv"] = "P-256";
    jwk["kty"] = "EC";
    jwk["x"] = base64url({reinterpret_cast<const char*>(x.data()), x.size()});
    jwk["y"] = base64url({reinterpret_cast<const char*>(y.data()), y.size()});
    return jwk;
  }

 private:
  PkeyPtr key_;
};

class Ed25519Signer final : public Signer {
 public:
  explicit Ed25519Signer(PkeyPtr key) : key_(std::move(key)) {}

  static bool accepts(EVP_PKEY* key) { return EVP_PKEY_is_a(key, "ED25519") == 1; }

  JwtAlgorithm algorithm() const override { return JwtAlgorithm::EdDSA; }
  std::size_t signature_size() const override { return 64; }

  bool sign(std::string_view input, std::span<std::uint8_t, kMaxSignatureSize> out) const override {
    MdCtxPtr ctx(EVP_MD_CTX_new());
    std::size_t len = out.size();
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1 ||
        EVP_DigestSign(ctx.get(), out.data(), &len,
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
      return clear_openssl_errors(false);
    }
    return len == 64;
  }

  bool verify(std::string_view input, std::span<const std::uint8_t> signature) const override {
    if (signature.size() != 64) return false;
    MdCtxPtr ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1) {
      return clear_openssl_errors(false);
    }
    const int ok =
        EVP_DigestVerify(ctx.get(), signature.data(), signature.size(),
                         reinterpret_cast<const unsigned char*>(input.data()), input.size());
    return ok == 1 || clear_openssl_errors(false);
  }

  std::optional<boost::json::object> public_key() const override {
    std::array<unsigned char, 32> raw{};
    std::size_t len = raw.size();
    if (EVP_PKEY_get_raw_public_key(key_.get(), raw.data(), &len) != 1 || len != raw.size()) {
      return clear_openssl_errors(std::nullopt);
    }
    boost::json::object jwk;
    jwk["crv"] = "Ed25519";
    jwk["kty"] = "OKP";
    jwk["x"] = base64url({reinterpret_cast<const char*>(raw.data()), raw.size()});
    return jwk;
  }

 private:
  PkeyPtr key_;
};

Error invalid_token(std::string detail) { return Error(Errc::token_invalid, std::move(detail)); }

}  // namespace

// ---- the codec --------------------------------------------------------------------------------

struct JwtCodec::Impl {
  Impl(std::unique_ptr<Signer> s, std::string iss, std::string aud)
      : signer(std::move(s)), issuer(std::move(iss)), audience(std::move(aud)) {
    std::string header = R"({"alg":")";
    header += jwt_algorithm_name(signer->algorithm());
    header += R"(","typ":"JWT")";
    if (auto key = signer->public_key()) {
      std::string thumbprint_input;
      append_json(thumbprint_input, *key);
      const TokenHash thumbprint = sha256(thumbprint_input);
      const std::string kid =
          base64url({reinterpret_cast<const char*>(thumbprint.data()), thumbprint.size()});
      key->emplace("use", "sig");
      key->emplace("alg", jwt_algorithm_name(signer->algorithm()));
      key->emplace("kid", kid);
      jwk = std::move(key);
      header += R"(,"kid":)";
      append_json_string(header, kid);
    }
    header += '}';
    header_segment = base64url(header);
    claims_prefix = R"({"iss":)";
    append_json_string(claims_prefix, issuer);
    claims_prefix += R"(,"aud":)";
    append_json_string(claims_prefix, audience);
    claims_prefix += ',';
  }

  std::unique_ptr<Signer> signer;
  std::string issuer;
  std::string audience;
  std::optional<boost::json::object> jwk;  // with "use", "alg" and "kid"; asymmetric keys only
  std::string header_segment;  // base64url of the header: the same for every token we sign
  std::string claims_prefix;   // {"iss":"…","aud":"…",

  bool header_acceptable(std::string_view segment) const;
  bool audience_acceptable(const boost::json::value* aud) const;
};

bool JwtCodec::Impl::header_acceptable(std::string_view segment) const {
  if (segment == header_segment) return true;
  // Another encoder's header (other member order, whitespace, a kid we do not use): only the
  // algorithm matters, and it must be exactly ours.
  std::string text;
  if (!decode_base64url(segment, text)) return false;
  boost::system::error_code ec;
  const boost::json::value header = boost::json::parse(text, ec);
  if (ec || !header.is_object()) return false;
  const auto* alg = string_member(header.get_object(), "alg");
  // "crit" names extensions the recipient must understand; we understand none.
  return alg != nullptr && *alg == jwt_algorithm_name(signer->algorithm()) &&
         !header.get_object().contains("crit");
}

bool JwtCodec::Impl::audience_acceptable(const boost::json::value* aud) const {
  if (aud == nullptr) return false;
  if (const auto* s = aud->if_string()) return *s == audience;
  if (const auto* array = aud->if_array()) {
    for (const auto& item : *array) {
      if (const auto* s = item.if_string(); s != nullptr && *s == audience) return true;
    }
  }
  return false;
}

JwtCodec::JwtCodec(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JwtCodec::JwtCodec(JwtCodec&&) noexcept = default;
JwtCodec& JwtCodec::operator=(JwtCodec&&) noexcept = default;
JwtCodec::~JwtCodec() = default;

Result<JwtCodec> JwtCodec::hs256(std::string secret, std::string issuer, std::string audience) {
  if (secret.size() < kMinHmacSecret) {
    sodium_memzero(secret.data(), secret.size());
    return Error(Errc::invalid_request, "the HS256 secret must be at least 32 bytes");
  }
  if (secret.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    return Error(Errc::invalid_request, "the HS256 secret is too long");
  }
  return JwtCodec(std::make_unique<Impl>(std::make_unique<HmacSha256Signer>(std::move(secret)),
                                         std::move(issuer), std::move(audience)));
}

Result<JwtCodec> JwtCodec::es256(std::string_view pem_private_key, std::string issuer,
                                 std::string audience) {
  PkeyPtr key = load_private_key(pem_private_key);
  if (!key || !EcdsaP256Signer::accepts(key.get())) {
    return Error(Errc::invalid_request, "the ES256 key must be a PEM P-256 private key");
  }
  return JwtCodec(std::make_unique<Impl>(std::make_unique<EcdsaP256Signer>(std::move(key)),
                                         std::move(issuer), std::move(audience)));
}

Result<JwtCodec> JwtCodec::eddsa(std::string_view pem_private_key, std::string issuer,
                                 std::string audience) {
  PkeyPtr key = load_private_key(pem_private_key);
  if (!key || !Ed25519Signer::accepts(key.get())) {
    return Error(Errc::invalid_request, "the EdDSA key must be a PEM Ed25519 private key");
  }
  return JwtCodec(std::make_unique<Impl>(std::make_unique<Ed25519Signer>(std::move(key)),
                                         std::move(issuer), std::move(audience)));
}

Result<JwtCodec> JwtCodec::create(JwtAlgorithm alg, std::string key, std::string issuer,
                                  std::string audience) {
  switch (alg) {
    case JwtAlgorithm::HS256: return hs256(std::move(key), std::move(issuer), std::move(audience));
    case JwtAlgorithm::ES256: {
      auto codec = es256(key, std::move(issuer), std::move(audience));
      sodium_memzero(key.data(), key.size());
      return codec;
    }
    case JwtAlgorithm::EdDSA: {
      auto codec = eddsa(key, std::move(issuer), std::move(audience));
      sodium_memzero(key.data(), key.size());
      return codec;
    }
  }
  return Error(Errc::invalid_request, "unknown JWT algorithm");
}

JwtAlgorithm JwtCodec::algorithm() const { return impl_->signer->algorithm(); }

std::optional<boost::json::object> JwtCodec::public_jwk() const { return impl_->jwk; }

std::string JwtCodec::sign(const AccessClaims& claims) const {
  // Reused per thread: the payload is built here, then only its base64url goes into the token.
  thread_local std::string payload;
  payload.clear();
  payload += impl_->claims_prefix;
  payload += R"("sub":")";
  append_int(payload, claims.sub);
  payload += R"(","sid":")";
  append_uuid(payload, claims.sid);
  payload += R"(","role":)";
  append_json_string(payload, claims.role);
  payload += R"(,"iat":)";
  append_int(payload, to_unix_seconds(claims.iat));
  payload += R"(,"exp":)";
  append_int(payload, to_unix_seconds(claims.exp));
  payload += R"(,"jti":)";
  append_json_string(payload, claims.jti);
  if (!claims.attr.empty()) {
    payload += R"(,"attr":)";
    append_json(payload, claims.attr);
  }
  payload += '}';

  const Signer& signer = *impl_->signer;
  std::string token;
  token.reserve(
      impl_->header_segment.size() + 2 +
      sodium_base64_encoded_len(payload.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING) +
      sodium_base64_encoded_len(signer.signature_size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING));
  token += impl_->header_segment;
  token += '.';
  append_base64url(token, payload.data(), payload.size());
  std::array<std::uint8_t, kMaxSignatureSize> signature{};
  if (!signer.sign(token, signature)) throw std::runtime_error("JWT signing failed in OpenSSL");
  token += '.';
  append_base64url(token, signature.data(), signer.signature_size());
  return token;
}

Result<AccessClaims> JwtCodec::verify(std::string_view token, TimePoint now) const {
  if (token.empty() || token.size() > kMaxTokenSize) return invalid_token("malformed token");
  const auto dot1 = token.find('.');
  const auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return invalid_token("malformed token");
  }
  const std::string_view header = token.substr(0, dot1);
  const std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view signature_b64 = token.substr(dot2 + 1);
  if (header.empty() || payload_b64.empty() || signature_b64.empty()) {
    return invalid_token("malformed token");
  }
  if (!impl_->header_acceptable(header)) return invalid_token("unexpected token header");

  std::array<std::uint8_t, kMaxSignatureSize> signature{};
  std::size_t signature_len = 0;
  if (!decode_base64url(signature_b64, signature, signature_len) ||
      signature_len != impl_->signer->signature_size() ||
      !impl_->signer->verify(token.substr(0, dot2), {signature.data(), signature_len})) {
    return invalid_token("bad token signature");
  }

  thread_local std::string payload_text;
  if (!decode_base64url(payload_b64, payload_text)) return invalid_token("malformed token");
  // The parsed payload lives in a stack arena: only what is copied into the claims allocates.
  unsigned char arena[4096];
  boost::json::monotonic_resource resource(arena, sizeof arena);
  boost::system::error_code ec;
  const boost::json::value payload = boost::json::parse(payload_text, ec, &resource);
  if (ec || !payload.is_object()) return invalid_token("malformed token claims");
  const boost::json::object& o = payload.get_object();

  const auto* iss = string_member(o, "iss");
  if (iss == nullptr || *iss != impl_->issuer) return invalid_token("wrong token issuer");
  if (!impl_->audience_acceptable(o.if_contains("aud"))) {
    return invalid_token("wrong token audience");
  }

  AccessClaims claims;
  const auto* sub = string_member(o, "sub");
  const auto* sid = string_member(o, "sid");
  const auto* role = string_member(o, "role");
  const auto iat = numeric_date(o.if_contains("iat"));
  const auto exp = numeric_date(o.if_contains("exp"));
  std::optional<UserId> user;
  std::optional<SessionId> session;
  if (sub != nullptr) user = parse_user_id(*sub);
  if (sid != nullptr) session = SessionId::parse(*sid);
  if (!user || !session || role == nullptr || !iat || !exp) {
    return invalid_token("missing or malformed token claims");
  }
  claims.sub = *user;
  claims.sid = *session;
  claims.role.assign(role->data(), role->size());
  claims.iat = *iat;
  claims.exp = *exp;
  if (const auto* jti = o.if_contains("jti")) {
    if (!jti->is_string()) return invalid_token("malformed token claims");
    claims.jti.assign(jti->get_string().data(), jti->get_string().size());
  }
  if (const auto* attr = o.if_contains("attr")) {
    if (!attr->is_object()) return invalid_token("malformed token claims");
    claims.attr = boost::json::object(attr->get_object(), boost::json::storage_ptr());
  }
  if (const auto* nbf_value = o.if_contains("nbf")) {
    const auto nbf = numeric_date(nbf_value);
    if (!nbf || now < *nbf) return invalid_token("token not yet valid");
  }
  if (now >= claims.exp) return Error(Errc::token_expired, "access token expired");
  return claims;
}

Result<std::string> generate_jwt_private_key_pem(JwtAlgorithm alg) {
  PkeyPtr key;
  switch (alg) {
    case JwtAlgorithm::HS256:
      return Error(Errc::invalid_request, "HS256 uses a shared secret, not a key pair");
    case JwtAlgorithm::ES256: key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")); break;
    case JwtAlgorithm::EdDSA: key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")); break;
  }
  // secmem: the key's text is cleared when the BIO is freed.
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!key || !bio ||
      PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    ERR_clear_error();
    return Error(Errc::internal, "could not generate a signing key");
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  if (len <= 0 || data == nullptr) return Error(Errc::internal, "could not generate a signing key");
  return std::string(data, static_cast<std::size_t>(len));
}

}  // namespace sessiond
