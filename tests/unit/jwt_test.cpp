#include "core/jwt.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <thread>
#include <vector>

#include "unit/counter_random.hpp"

namespace sessiond {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kSecret = "0123456789abcdef0123456789abcdef";

std::string b64(std::string_view s) { return base64url_encode(s); }

std::string hs256_signature(std::string_view secret, std::string_view input) {
  const auto mac = hmac_sha256(secret, input);
  return base64url_encode(mac);
}

// A token with any header and payload, correctly HMAC-SHA256-signed: proves that a rejection
// comes from the header or the claims, not from the signature.
std::string forge(std::string_view header, std::string_view payload,
                  std::string_view secret = kSecret) {
  std::string input = b64(header) + "." + b64(payload);
  return input + "." + hs256_signature(secret, input);
}

// The parts view into `token`, which must outlive them.
std::vector<std::string_view> split(const std::string& token) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (auto dot = token.find('.'); dot != std::string_view::npos; dot = token.find('.', start)) {
    parts.push_back(std::string_view(token).substr(start, dot - start));
    start = dot + 1;
  }
  parts.push_back(std::string_view(token).substr(start));
  return parts;
}
std::vector<std::string_view> split(std::string&&) = delete;

class Jwt : public ::testing::Test {
 protected:
  Jwt() : codec_(JwtCodec::hs256(std::string(kSecret), "sessiond", "sessiond").value()) {
    testing::CounterRandom random;
    claims_.sub = 42;
    claims_.sid = SessionId::generate(random);
    claims_.role = "HOTEL_EMPLOYEE";
    claims_.iat = clock_.now();
    claims_.exp = clock_.now() + 1h;
    claims_.jti = "jti-1";
  }

  // The payload of a valid token, as JSON text, with `changes` applied.
  std::string payload(const boost::json::object& changes = {},
                      std::initializer_list<std::string_view> removed = {}) const {
    boost::json::object o{{"iss", "sessiond"},
                          {"aud", "sessiond"},
                          {"sub", "42"},
                          {"sid", claims_.sid.to_string()},
                          {"role", "HOTEL_EMPLOYEE"},
                          {"iat", to_unix_seconds(claims_.iat)},
                          {"exp", to_unix_seconds(claims_.exp)},
                          {"jti", "jti-1"}};
    for (const auto& [k, v] : changes) o[k] = v;
    for (auto k : removed) o.erase(k);
    return boost::json::serialize(o);
  }

  Errc error_of(std::string_view token) const {
    auto result = codec_.verify(token, clock_.now());
    return result ? Errc::internal : result.error().code;
  }

  static constexpr std::string_view kHeader = R"({"alg":"HS256","typ":"JWT"})";

  FakeClock clock_;
  JwtCodec codec_;
  AccessClaims claims_;
};

TEST_F(Jwt, RoundTripKeepsEveryClaim) {
  claims_.attr = {{"hotel_id", 7}, {"name", "Grand \"Hôtel\"\n"}};
  const auto token = codec_.sign(claims_);
  auto verified = codec_.verify(token, clock_.now());
  ASSERT_TRUE(verified) << code_name(verified.error().code);
  EXPECT_EQ(verified->sub, 42);
  EXPECT_EQ(verified->sid, claims_.sid);
  EXPECT_EQ(verified->role, "HOTEL_EMPLOYEE");
  EXPECT_EQ(verified->iat, claims_.iat);
  EXPECT_EQ(verified->exp, claims_.exp);
  EXPECT_EQ(verified->jti, "jti-1");
  EXPECT_EQ(verified->attr, claims_.attr);
}

TEST_F(Jwt, HeaderIsExactlyHs256Jwt) {
  const auto token = codec_.sign(claims_);
  const auto parts = split(token);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(base64url_decode(parts[0]), kHeader);
  EXPECT_EQ(codec_.algorithm(), JwtAlgorithm::HS256);
  EXPECT_EQ(codec_.public_jwk(), std::nullopt);
}

TEST_F(Jwt, PayloadCarriesStandardClaimsAndOmitsEmptyAttr) {
  const auto token = codec_.sign(claims_);
  const auto parts = split(token);
  const auto payload = boost::json::parse(*base64url_decode(parts[1])).as_object();
  EXPECT_EQ(payload.at("iss"), "sessiond");
  EXPECT_EQ(payload.at("aud"), "sessiond");
  EXPECT_EQ(payload.at("sub"), "42");  // a string, as RFC 7519 wants
  EXPECT_EQ(payload.at("sid"), boost::json::value(claims_.sid.to_string()));
  EXPECT_EQ(payload.at("role"), "HOTEL_EMPLOYEE");
  EXPECT_EQ(payload.at("iat"), to_unix_seconds(claims_.iat));
  EXPECT_EQ(payload.at("exp"), to_unix_seconds(claims_.exp));
  EXPECT_EQ(payload.at("jti"), "jti-1");
  EXPECT_FALSE(payload.contains("attr"));
  EXPECT_EQ(parts[2].size(), 43u);  // 32 bytes of HMAC-SHA256
}

TEST_F(Jwt, SignatureMatchesAnIndependentHmac) {
  const auto token = codec_.sign(claims_);
  const auto last_dot = token.rfind('.');
  EXPECT_EQ(token.substr(last_dot + 1), hs256_signature(kSecret, token.substr(0, last_dot)));
}

TEST_F(Jwt, AcceptsAHeaderWithOtherMemberOrder) {
  EXPECT_TRUE(codec_.verify(forge(R"({"typ":"JWT","alg":"HS256"})", payload()), clock_.now()));
  EXPECT_TRUE(codec_.verify(forge(R"({"alg":"HS256"})", payload()), clock_.now()));
}

TEST_F(Jwt, RejectsAlgNone) {
  const std::string header = R"({"alg":"none","typ":"JWT"})";
  const std::string unsigned_token = b64(header) + "." + b64(payload()) + ".";
  EXPECT_EQ(error_of(unsigned_token), Errc::token_invalid);
  EXPECT_EQ(error_of(forge(header, payload())), Errc::token_invalid);
  EXPECT_EQ(error_of(forge(R"({"alg":"None","typ":"JWT"})", payload())), Errc::token_invalid);
}

TEST_F(Jwt, RejectsAlgHs512Header) {
  EXPECT_EQ(error_of(forge(R"({"alg":"HS512","typ":"JWT"})", payload())), Errc::token_invalid);
}

TEST_F(Jwt, RejectsEs256HeaderOnAnHs256Codec) {
  EXPECT_EQ(error_of(forge(R"({"alg":"ES256","typ":"JWT"})", payload())), Errc::token_invalid);
}

TEST_F(Jwt, RejectsMissingOrMistypedAlg) {
  for (const char* header :
       {R"({"typ":"JWT"})", R"({"alg":null})", R"({"alg":["HS256"]})", R"({"alg":"hs256"})",
        R"({"alg":"HS256 "})", R"(["HS256"])", "{}", "", "not json",
        R"({"alg":"HS256"} )"
        "x"}) {
    EXPECT_EQ(error_of(forge(header, payload())), Errc::token_invalid) << header;
  }
}

TEST_F(Jwt, RejectsCriticalHeaderExtensions) {
  EXPECT_EQ(error_of(forge(R"({"alg":"HS256","crit":["exp"],"exp":1})", payload())),
            Errc::token_invalid);
}

TEST_F(Jwt, RejectsTamperedPayload) {
  const auto token = codec_.sign(claims_);
  const auto parts = split(token);
  const std::string forged = std::string(parts[0]) + "." +
                             b64(payload({{"role", "SYSTEM_ADMIN"}})) + "." + std::string(parts[2]);
  EXPECT_EQ(error_of(forged), Errc::token_invalid);
}

TEST_F(Jwt, RejectsTamperedSignature) {
  const auto token = codec_.sign(claims_);
  for (std::size_t i = token.rfind('.') + 1; i < token.size(); ++i) {
    auto tampered = token;
    tampered[i] = tampered[i] == 'A' ? 'B' : 'A';
    EXPECT_EQ(error_of(tampered), Errc::token_invalid) << i;
  }
  EXPECT_EQ(error_of(token.substr(0, token.size() - 1)), Errc::token_invalid);
  EXPECT_EQ(error_of(token + "A"), Errc::token_invalid);
  EXPECT_EQ(error_of(token + "AAAA"), Errc::token_invalid);
}

TEST_F(Jwt, RejectsNonCanonicalSignatureEncoding) {
  // 32 bytes are 43 base64url characters; the last one carries 4 bits and 2 zero bits. Setting a
  // zero bit decodes to the same signature with a lax decoder: one signature has one encoding.
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const auto token = codec_.sign(claims_);
  ASSERT_EQ(token.size() - token.rfind('.') - 1, 43u);
  const auto value = kAlphabet.find(token.back());
  ASSERT_EQ(value & 0x03, 0u);
  auto tampered = token;
  tampered.back() = kAlphabet[value | 1];
  EXPECT_EQ(error_of(tampered), Errc::token_invalid);
}

TEST_F(Jwt, RejectsTokenSignedWithAnotherSecret) {
  EXPECT_EQ(error_of(forge(kHeader, payload(), "another-secret-of-32-bytes-......")),
            Errc::token_invalid);
}

TEST_F(Jwt, RejectsWrongIssuer) {
  EXPECT_EQ(error_of(forge(kHeader, payload({{"iss", "evil"}}))), Errc::token_invalid);
  EXPECT_EQ(error_of(forge(kHeader, payload({}, {"iss"}))), Errc::token_invalid);
  EXPECT_EQ(error_of(forge(kHeader, payload({{"iss", boost::json::array{"sessiond"}}}))),
            Errc::token_invalid);
  auto other = JwtCodec::hs256(std::string(kSecret), "other-issuer", "sessiond").value();
  EXPECT_FALSE(other.verify(codec_.sign(claims_), clock_.now()));
}

TEST_F(Jwt, RejectsWrongAudience) {
  EXPECT_EQ(error_of(forge(kHeader, payload({{"aud", "other-app"}}))), Errc::token_invalid);
  EXPECT_EQ(error_of(forge(kHeader, payload({}, {"aud"}))), Errc::token_invalid);
  EXPECT_EQ(error_of(forge(kHeader, payload({{"aud", boost::json::array{}}}))),
            Errc::token_invalid);
  EXPECT_EQ(error_of(forge(kHeader, payload({{"aud", boost::json::array{"a", "b"}}}))),
            Errc::token_invalid);
  EXPECT_EQ(error_of(forge(kHeader, payload({{"aud", 1}}))), Errc::token_invalid);
  auto other = JwtCodec::hs256(std::string(kSecret), "sessiond", "other-app").value();
  auto result = other.verify(codec_.sign(claims_), clock_.now());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, Errc::token_invalid);
}

TEST_F(Jwt, AcceptsAudienceArrayContainingOurs) {
  EXPECT_TRUE(codec_.verify(forge(kHeader, payload({{"aud", boost::json::array{"x", "sessiond"}}})),
                            clock_.now()));
}

TEST_F(Jwt, ExpiredTokenGivesTokenExpired) {
  const auto token = codec_.sign(claims_);
  clock_.advance(2h);
  auto result = codec_.verify(token, clock_.now());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, Errc::token_expired);
}

TEST_F(Jwt, TokenIsExpiredExactlyAtExp) {
  const auto token = codec_.sign(claims_);
  EXPECT_TRUE(codec_.verify(token, claims_.exp - 1ms));
  auto result = codec_.verify(token, claims_.exp);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, Errc::token_expired);
}

TEST_F(Jwt, ForgedExpiredTokenIsInvalidNotExpired) {
  const auto token = forge(kHeader, payload({{"exp", 1}}), "another-secret-of-32-bytes-......");
  EXPECT_EQ(error_of(token), Errc::token_invalid);
}

TEST_F(Jwt, AcceptsFractionalNumericDates) {
  const double exp = static_cast<double>(to_unix_seconds(claims_.exp)) + 0.5;
  auto result = codec_.verify(forge(kHeader, payload({{"exp", exp}})), clock_.now());
  ASSERT_TRUE(result);
  EXPECT_EQ(result->exp, claims_.exp + 500ms);
}

TEST_F(Jwt, RejectsNotYetValidToken) {
  const auto nbf = to_unix_seconds(clock_.now() + 1min);
  EXPECT_EQ(error_of(forge(kHeader, payload({{"nbf", nbf}}))), Errc::token_invalid);
  EXPECT_TRUE(codec_.verify(forge(kHeader, payload({{"nbf", nbf}})), clock_.now() + 1min));
}

TEST_F(Jwt, RejectsMissingOrMalformedClaims) {
  const std::vector<std::string> payloads = {
      payload({{"sub", 42}}),
      payload({{"sub", "abc"}}),
      payload({{"sub", "-1"}}),
      payload({{"sub", "+42"}}),
      payload({{"sub", "042"}}),
      payload({{"sub", " 42"}}),
      payload({{"sub", ""}}),
      payload({{"sub", "9223372036854775808"}}),
      payload({}, {"sub"}),
      payload({{"sid", "not-a-uuid"}}),
      payload({{"sid", 1}}),
      payload({}, {"sid"}),
      payload({{"role", 1}}),
      payload({{"role", nullptr}}),
      payload({}, {"role"}),
      payload({{"exp", "1900000000"}}),
      payload({{"exp", 1e300}}),
      payload({{"exp", 9223372036854775807LL}}),
      payload({{"exp", 18446744073709551615ULL}}),
      payload({}, {"exp"}),
      payload({{"iat", "now"}}),
      payload({}, {"iat"}),
      payload({{"jti", 5}}),
      payload({{"attr", "hotel"}}),
      payload({{"attr", boost::json::array{}}}),
      payload({{"nbf", "later"}}),
      "[]",
      "\"sessiond\"",
      "{",
      "",
  };
  for (const auto& p : payloads) EXPECT_EQ(error_of(forge(kHeader, p)), Errc::token_invalid) << p;
}

TEST_F(Jwt, AcceptsLargestUserId) {
  auto result =
      codec_.verify(forge(kHeader, payload({{"sub", "9223372036854775807"}})), clock_.now());
  ASSERT_TRUE(result);
  EXPECT_EQ(result->sub, 9223372036854775807LL);
}

TEST_F(Jwt, RejectsMalformedTokens) {
  const auto good = codec_.sign(claims_);
  const auto parts = split(good);
  const std::string h(parts[0]), p(parts[1]), s(parts[2]);
  for (const std::string& token : {
           std::string(),
           std::string("garbage"),
           std::string("."),
           std::string(".."),
           std::string("..."),
           h + "." + p,
           h + "." + p + "." + s + "." + s,
           h + "." + p + "." + s + ".",
           "." + p + "." + s,
           h + ".." + s,
           h + "." + p + ".",
           h + "=." + p + "." + s,
           h + "." + p + "=." + s,
           h + "." + p + "." + s + "=",
           "!!!." + p + "." + s,
           h + ".$$$." + s,
           h + "." + p + ".###",
           h + "." + p + " ." + s,
           " " + good,
           good + " ",
           "Bearer " + good,
       }) {
    EXPECT_EQ(error_of(token), Errc::token_invalid) << token;
  }
}

TEST_F(Jwt, RejectsTokensOver8KiB) {
  claims_.attr = {{"padding", std::string(5700, 'x')}};
  const auto just_under = codec_.sign(claims_);
  ASSERT_LE(just_under.size(), 8192u);
  EXPECT_TRUE(codec_.verify(just_under, clock_.now()));

  claims_.attr = {{"padding", std::string(6200, 'x')}};
  const auto over = codec_.sign(claims_);
  ASSERT_GT(over.size(), 8192u);
  EXPECT_EQ(error_of(over), Errc::token_invalid);
  EXPECT_EQ(error_of(std::string(1 << 20, 'A')), Errc::token_invalid);
}

TEST_F(Jwt, ErrorDetailsNeverContainTheToken) {
  const auto good = codec_.sign(claims_);
  const auto parts = split(good);
  clock_.advance(2h);
  for (const std::string& token :
       {good, forge(kHeader, payload({{"iss", "evil"}})), forge(R"({"alg":"none"})", payload()),
        std::string(parts[0]) + "." + std::string(parts[1]) + ".AAAA", std::string("secret-ish")}) {
    auto result = codec_.verify(token, clock_.now());
    ASSERT_FALSE(result);
    const auto& detail = result.error().detail;
    EXPECT_FALSE(detail.empty());
    EXPECT_EQ(detail.find(token), std::string::npos);
    for (auto part : split(token)) {
      if (part.size() > 3) {
        EXPECT_EQ(detail.find(part), std::string::npos) << detail;
      }
    }
    EXPECT_EQ(detail.find("evil"), std::string::npos);
  }
}

TEST(JwtCodec, RejectsSecretShorterThan32Bytes) {
  auto result = JwtCodec::hs256(std::string(31, 'k'), "sessiond", "sessiond");
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, Errc::invalid_request);
  EXPECT_FALSE(JwtCodec::hs256("", "sessiond", "sessiond"));
  EXPECT_TRUE(JwtCodec::hs256(std::string(32, 'k'), "sessiond", "sessiond"));
}

TEST(JwtCodec, AlgorithmNamesRoundTrip) {
  for (auto alg : {JwtAlgorithm::HS256, JwtAlgorithm::ES256, JwtAlgorithm::EdDSA}) {
    EXPECT_EQ(parse_jwt_algorithm(jwt_algorithm_name(alg)), alg);
  }
  EXPECT_EQ(jwt_algorithm_name(JwtAlgorithm::EdDSA), "EdDSA");
  for (const char* name : {"none", "hs256", "HS512", "RS256", "", "EDDSA"}) {
    EXPECT_EQ(parse_jwt_algorithm(name), std::nullopt) << name;
  }
}

TEST(JwtCodec, SignsAndVerifiesConcurrently) {
  auto codec = JwtCodec::hs256(std::string(kSecret), "sessiond", "sessiond").value();
  const FakeClock clock;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&codec, &clock, &failures, t] {
      for (int i = 0; i < 500; ++i) {
        AccessClaims c;
        c.sub = t * 1000 + i;
        c.role = "GUEST";
        c.iat = clock.now();
        c.exp = clock.now() + 1h;
        auto verified = codec.verify(codec.sign(c), clock.now());
        if (!verified || verified->sub != c.sub) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

// ---- asymmetric algorithms ----------------------------------------------------------------------

AccessClaims sample_claims(const Clock& clock) {
  testing::CounterRandom random;
  AccessClaims c;
  c.sub = 7;
  c.sid = SessionId::generate(random);
  c.role = "GUEST";
  c.iat = clock.now();
  c.exp = clock.now() + 1h;
  c.jti = "j";
  c.attr = {{"hotel_id", 7}};
  return c;
}

std::string p384_pem() {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"), &EVP_PKEY_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

TEST(JwtEs256, RoundTripWithGeneratedKey) {
  const FakeClock clock;
  const auto pem = generate_jwt_private_key_pem(JwtAlgorithm::ES256).value();
  EXPECT_TRUE(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
  auto codec = JwtCodec::es256(pem, "sessiond", "sessiond").value();
  EXPECT_EQ(codec.algorithm(), JwtAlgorithm::ES256);
  const auto claims = sample_claims(clock);
  const auto token = codec.sign(claims);
  const auto parts = split(token);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[2].size(), 86u);  // raw R||S: 64 bytes, not DER
  const auto header = boost::json::parse(*base64url_decode(parts[0])).as_object();
  EXPECT_EQ(header.at("alg"), "ES256");
  EXPECT_EQ(header.at("typ"), "JWT");
  auto verified = codec.verify(token, clock.now());
  ASSERT_TRUE(verified);
  EXPECT_EQ(verified->sub, 7);
  EXPECT_EQ(verified->attr, claims.attr);
}

TEST(JwtEs256, PublicJwkDescribesTheKey) {
  auto codec = JwtCodec::es256(generate_jwt_private_key_pem(JwtAlgorithm::ES256).value(),
                               "sessiond", "sessiond")
                   .value();
  const auto jwk = codec.public_jwk();
  ASSERT_TRUE(jwk.has_value());
  EXPECT_EQ(jwk->at("kty"), "EC");
  EXPECT_EQ(jwk->at("crv"), "P-256");
  EXPECT_EQ(jwk->at("alg"), "ES256");
  EXPECT_EQ(jwk->at("use"), "sig");
  EXPECT_EQ(base64url_decode(jwk->at("x").as_string())->size(), 32u);
  EXPECT_EQ(base64url_decode(jwk->at("y").as_string())->size(), 32u);
  EXPECT_FALSE(jwk->contains("d"));
  const FakeClock clock;
  const auto token = codec.sign(sample_claims(clock));
  const auto header = boost::json::parse(*base64url_decode(split(token)[0])).as_object();
  EXPECT_EQ(header.at("kid"), jwk->at("kid"));
}

TEST(JwtEs256, RejectsTamperedToken) {
  const FakeClock clock;
  auto codec = JwtCodec::es256(generate_jwt_private_key_pem(JwtAlgorithm::ES256).value(),
                               "sessiond", "sessiond")
                   .value();
  auto token = codec.sign(sample_claims(clock));
  const auto dot = token.rfind('.');
  auto bad_signature = token;
  bad_signature[dot + 5] = bad_signature[dot + 5] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(codec.verify(bad_signature, clock.now()));
  EXPECT_FALSE(codec.verify(token.substr(0, dot) + "." + std::string(86, 'A'), clock.now()));
  auto other = JwtCodec::es256(generate_jwt_private_key_pem(JwtAlgorithm::ES256).value(),
                               "sessiond", "sessiond")
                   .value();
  EXPECT_FALSE(other.verify(token, clock.now()));
}

TEST(JwtEs256, RejectsHs256TokenSignedWithThePublicKey) {
  // The classic algorithm confusion: an attacker signs with HMAC using the public key as secret.
  const FakeClock clock;
  auto codec = JwtCodec::es256(generate_jwt_private_key_pem(JwtAlgorithm::ES256).value(),
                               "sessiond", "sessiond")
                   .value();
  const auto jwk = boost::json::serialize(*codec.public_jwk());
  const auto token = codec.sign(sample_claims(clock));
  const auto parts = split(token);
  const std::string input = b64(R"({"alg":"HS256","typ":"JWT"})") + "." + std::string(parts[1]);
  auto result = codec.verify(input + "." + hs256_signature(jwk, input), clock.now());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, Errc::token_invalid);
  auto hs = JwtCodec::hs256(std::string(kSecret), "sessiond", "sessiond").value();
  EXPECT_FALSE(hs.verify(codec.sign(sample_claims(clock)), clock.now()));
}

TEST(JwtEs256, RejectsKeysThatAreNotP256PrivateKeys) {
  for (const std::string& pem : {std::string(), std::string("not a pem"), p384_pem(),
                                 generate_jwt_private_key_pem(JwtAlgorithm::EdDSA).value()}) {
    auto result = JwtCodec::es256(pem, "sessiond", "sessiond");
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, Errc::invalid_request);
  }
}

TEST(JwtEdDsa, RoundTripWithGeneratedKey) {
  const FakeClock clock;
  auto codec = JwtCodec::eddsa(generate_jwt_private_key_pem(JwtAlgorithm::EdDSA).value(),
                               "sessiond", "sessiond")
                   .value();
  EXPECT_EQ(codec.algorithm(), JwtAlgorithm::EdDSA);
  const auto token = codec.sign(sample_claims(clock));
  auto verified = codec.verify(token, clock.now());
  ASSERT_TRUE(verified);
  EXPECT_EQ(verified->role, "GUEST");
  const auto header = boost::json::parse(*base64url_decode(split(token)[0])).as_object();
  EXPECT_EQ(header.at("alg"), "EdDSA");
}

TEST(JwtEdDsa, SignatureVerifiesWithLibsodiumAndThePublicJwk) {
  const FakeClock clock;
  auto codec = JwtCodec::eddsa(generate_jwt_private_key_pem(JwtAlgorithm::EdDSA).value(),
                               "sessiond", "sessiond")
                   .value();
  const auto jwk = codec.public_jwk();
  ASSERT_TRUE(jwk.has_value());
  EXPECT_EQ(jwk->at("kty"), "OKP");
  EXPECT_EQ(jwk->at("crv"), "Ed25519");
  EXPECT_EQ(jwk->at("alg"), "EdDSA");
  const auto public_key = base64url_decode(jwk->at("x").as_string()).value();
  ASSERT_EQ(public_key.size(), crypto_sign_PUBLICKEYBYTES);
  const auto token = codec.sign(sample_claims(clock));
  const auto dot = token.rfind('.');
  const auto signature = base64url_decode(std::string_view(token).substr(dot + 1)).value();
  ASSERT_EQ(signature.size(), crypto_sign_BYTES);
  EXPECT_EQ(crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(signature.data()),
                                        reinterpret_cast<const unsigned char*>(token.data()), dot,
                                        reinterpret_cast<const unsigned char*>(public_key.data())),
            0);
}

TEST(JwtEdDsa, RejectsTamperedTokenAndOtherAlgorithms) {
  const FakeClock clock;
  auto codec = JwtCodec::eddsa(generate_jwt_private_key_pem(JwtAlgorithm::EdDSA).value(),
                               "sessiond", "sessiond")
                   .value();
  auto token = codec.sign(sample_claims(clock));
  token[token.rfind('.') + 3] ^= 0x01;
  EXPECT_FALSE(codec.verify(token, clock.now()));
  auto es = JwtCodec::es256(generate_jwt_private_key_pem(JwtAlgorithm::ES256).value(), "sessiond",
                            "sessiond")
                .value();
  EXPECT_FALSE(codec.verify(es.sign(sample_claims(clock)), clock.now()));
  EXPECT_FALSE(es.verify(codec.sign(sample_claims(clock)), clock.now()));
  EXPECT_FALSE(JwtCodec::eddsa("junk", "sessiond", "sessiond"));
}

TEST(JwtCodec, CreateDispatchesOnTheAlgorithm) {
  EXPECT_EQ(JwtCodec::create(JwtAlgorithm::HS256, std::string(kSecret), "i", "a")->algorithm(),
            JwtAlgorithm::HS256);
  EXPECT_EQ(JwtCodec::create(JwtAlgorithm::EdDSA,
                             generate_jwt_private_key_pem(JwtAlgorithm::EdDSA).value(), "i", "a")
                ->algorithm(),
            JwtAlgorithm::EdDSA);
  EXPECT_FALSE(JwtCodec::create(JwtAlgorithm::ES256, std::string(kSecret), "i", "a"));
  EXPECT_FALSE(generate_jwt_private_key_pem(JwtAlgorithm::HS256));
}

}  // namespace
}  // namespace sessiond
