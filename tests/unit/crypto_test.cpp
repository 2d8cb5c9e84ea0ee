#include "core/crypto.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "unit/counter_random.hpp"

namespace sessiond {
namespace {

using testing::CounterRandom;

std::string hex(const TokenHash& h) { return to_hex(h); }

bool is_base64url(std::string_view s) {
  for (char c : s) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_')) {
      return false;
    }
  }
  return true;
}

TEST(SessionId, GenerateSetsVersion4AndVariantBits) {
  SodiumRandom random;
  for (int i = 0; i < 64; ++i) {
    const auto id = SessionId::generate(random);
    EXPECT_EQ(id.bytes[6] >> 4, 4);
    EXPECT_EQ(id.bytes[8] & 0xC0, 0x80);
    const auto text = id.to_string();
    EXPECT_EQ(text[14], '4');
    EXPECT_NE(std::string_view("89ab").find(text[19]), std::string_view::npos);
  }
}

TEST(SessionId, GenerateUsesTheInjectedRandom) {
  CounterRandom random;
  EXPECT_EQ(SessionId::generate(random).to_string(), "00010203-0405-4607-8809-0a0b0c0d0e0f");
  EXPECT_EQ(SessionId::generate(random).to_string(), "10111213-1415-4617-9819-1a1b1c1d1e1f");
}

TEST(SessionId, GeneratedIdsDiffer) {
  SodiumRandom random;
  std::set<SessionId> ids;
  for (int i = 0; i < 100; ++i) ids.insert(SessionId::generate(random));
  EXPECT_EQ(ids.size(), 100u);
}

TEST(SessionId, ParseAndToStringRoundTrip) {
  SodiumRandom random;
  for (int i = 0; i < 16; ++i) {
    const auto id = SessionId::generate(random);
    EXPECT_EQ(SessionId::parse(id.to_string()), id);
  }
  const auto parsed = SessionId::parse("0A1B2C3D-4E5F-4A6B-8C7D-8E9FA0B1C2D3");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->to_string(), "0a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3");
}

TEST(SessionId, ParseRejectsNonCanonicalForms) {
  for (const char* text : {
           "",
           "0a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d",    // 35
           "0a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d33",  // 37
           "0a1b2c3d4e5f4a6b8c7d8e9fa0b1c2d3",       // no dashes
           "0a1b2c3d-4e5f4-a6b-8c7d-8e9fa0b1c2d3",   // dash misplaced
           "0a1b2c3d_4e5f_4a6b_8c7d_8e9fa0b1c2d3",   // other separator
           "0g1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3",   // not hex
           "{a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d}",   // braces
           " a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3",   // space
       }) {
    EXPECT_EQ(SessionId::parse(text), std::nullopt) << text;
  }
}

TEST(SessionId, HashIsConsistentWithEquality) {
  CounterRandom random;
  const auto id = SessionId::generate(random);
  const auto copy = *SessionId::parse(id.to_string());
  EXPECT_EQ(SessionIdHash{}(id), SessionIdHash{}(copy));
}

TEST(Base64url, RoundTripsEveryLength) {
  std::string data;
  for (int i = 0; i < 40; ++i) {
    const auto encoded = base64url_encode(data);
    EXPECT_TRUE(is_base64url(encoded)) << encoded;
    EXPECT_EQ(encoded.find('='), std::string::npos);
    EXPECT_EQ(base64url_decode(encoded), data);
    data.push_back(static_cast<char>(0xF0 + i * 37));
  }
}

TEST(Base64url, UsesUrlSafeAlphabetWithoutPadding) {
  EXPECT_EQ(base64url_encode(std::string_view("\xfb\xff", 2)), "-_8");
  EXPECT_EQ(base64url_encode(std::string_view("abc")), "YWJj");
  EXPECT_EQ(base64url_encode(std::string_view("ab")), "YWI");
  EXPECT_EQ(base64url_encode(std::string_view("")), "");
  const std::uint8_t bytes[] = {0xfb, 0xff};
  EXPECT_EQ(base64url_encode(std::span<const std::uint8_t>(bytes)), "-_8");
}

TEST(Base64url, DecodeRejectsPaddingAndForeignCharacters) {
  for (const char* text : {"YWI=", "YQ==", "+_8", "/_8", "YW J", "YWJj\n", "YWJj.", "Y", "YWJjZ",
                           "YR", "YWK"}) {  // the last two: non-zero trailing bits
    EXPECT_EQ(base64url_decode(text), std::nullopt) << text;
  }
  EXPECT_EQ(base64url_decode(""), "");
  EXPECT_EQ(base64url_decode("-_8"), std::string("\xfb\xff", 2));
}

TEST(RefreshToken, IsRtPrefixAnd43Base64urlChars) {
  SodiumRandom random;
  const auto token = new_refresh_token(random);
  ASSERT_EQ(token.size(), 46u);
  EXPECT_TRUE(token.starts_with("rt_"));
  EXPECT_TRUE(is_base64url(token.substr(3)));
  EXPECT_EQ(base64url_decode(token.substr(3))->size(), 32u);
  EXPECT_NE(new_refresh_token(random), token);
}

TEST(RefreshToken, ComesFromTheInjectedRandom) {
  CounterRandom random;
  std::string bytes;
  for (int i = 0; i < 32; ++i) bytes.push_back(static_cast<char>(i));
  EXPECT_EQ(new_refresh_token(random), "rt_" + base64url_encode(bytes));
}

TEST(RandomSecret, EncodesTheRequestedNumberOfBytes) {
  CounterRandom random;
  EXPECT_EQ(random_secret(random).size(), 43u);
  EXPECT_EQ(random_secret(random, 16).size(), 22u);
  EXPECT_EQ(base64url_decode(random_secret(random, 48))->size(), 48u);
}

TEST(Sha256, MatchesKnownVectors) {
  EXPECT_EQ(hex(sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex(sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256, HashIsConsistentWithEquality) {
  EXPECT_EQ(TokenHashHash{}(sha256("rt_x")), TokenHashHash{}(sha256("rt_x")));
}

TEST(Hex, RoundTripsAndRejectsMalformedText) {
  const std::string data("\x00\x01\xab\xff", 4);
  const std::uint8_t* bytes = reinterpret_cast<const std::uint8_t*>(data.data());
  EXPECT_EQ(to_hex({bytes, data.size()}), "0001abff");
  EXPECT_EQ(from_hex("0001abff"), data);
  EXPECT_EQ(from_hex("0001ABFF"), data);
  EXPECT_EQ(from_hex(""), "");
  EXPECT_EQ(from_hex("abc"), std::nullopt);
  EXPECT_EQ(from_hex("zz"), std::nullopt);
  EXPECT_EQ(from_hex("0x"), std::nullopt);
}

TEST(ConstantTimeEqual, ComparesContentAndLength) {
  EXPECT_TRUE(constant_time_equal("secret-admin-key", "secret-admin-key"));
  EXPECT_FALSE(constant_time_equal("secret-admin-key", "secret-admin-kez"));
  EXPECT_FALSE(constant_time_equal("secret-admin-key", "secret-admin-ke"));
  EXPECT_FALSE(constant_time_equal("", "x"));
  EXPECT_TRUE(constant_time_equal("", ""));
}

TEST(HmacSha256, MatchesRfc4231Vectors) {
  // Test case 1
  EXPECT_EQ(to_hex(hmac_sha256(std::string(20, '\x0b'), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  // Test case 2
  EXPECT_EQ(to_hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Test case 6: a key longer than the block size
  EXPECT_EQ(to_hex(hmac_sha256(std::string(131, '\xaa'),
                               "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(Successor, SealedSuccessorOpensWithItsPredecessor) {
  CounterRandom random;
  const std::string predecessor = "rt_predecessor-token-aaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  const std::string successor = "rt_successor-token-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
  const auto sealed = seal_successor(random, predecessor, successor);
  EXPECT_EQ(sealed.find(successor), std::string::npos);
  EXPECT_EQ(open_successor(predecessor, sealed), successor);
}

TEST(Successor, UsesAFreshNonceEachTime) {
  SodiumRandom random;
  EXPECT_NE(seal_successor(random, "rt_a", "rt_b"), seal_successor(random, "rt_a", "rt_b"));
}

TEST(Successor, WrongPredecessorCannotOpen) {
  CounterRandom random;
  const auto sealed = seal_successor(random, "rt_predecessor", "rt_successor");
  EXPECT_EQ(open_successor("rt_predecessoR", sealed), std::nullopt);
  EXPECT_EQ(open_successor("", sealed), std::nullopt);
}

TEST(Successor, TamperedOrTruncatedBlobCannotOpen) {
  CounterRandom random;
  const auto sealed = seal_successor(random, "rt_predecessor", "rt_successor");
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    auto tampered = sealed;
    tampered[i] = static_cast<char>(tampered[i] ^ 0x01);
    EXPECT_EQ(open_successor("rt_predecessor", tampered), std::nullopt) << "byte " << i;
  }
  EXPECT_EQ(open_successor("rt_predecessor", sealed.substr(0, sealed.size() - 1)), std::nullopt);
  EXPECT_EQ(open_successor("rt_predecessor", sealed.substr(0, 10)), std::nullopt);
  EXPECT_EQ(open_successor("rt_predecessor", ""), std::nullopt);
}

}  // namespace
TEST(RefreshToken, NamesItsUser) {
  SodiumRandom random;
  const std::string token = new_refresh_token(random, 42);
  ASSERT_TRUE(token.starts_with("rt_"));
  EXPECT_EQ(token.size(), 3u + 43u + 3u);
  EXPECT_EQ(refresh_token_user(token), std::optional<UserId>{42});
  EXPECT_EQ(refresh_token_user(new_refresh_token(random)), std::nullopt);
  EXPECT_EQ(refresh_token_user("rt_abc.0"), std::nullopt);
  EXPECT_EQ(refresh_token_user("rt_abc.-4"), std::nullopt);
  EXPECT_EQ(refresh_token_user("rt_abc.99999999999999999999"), std::nullopt);
  EXPECT_EQ(refresh_token_user("xx_abc.4"), std::nullopt);
  EXPECT_EQ(refresh_token_user("rt_abc.4x"), std::nullopt);
}

}  // namespace sessiond
