#include "core/password.hpp"

#include <gtest/gtest.h>
#include <sodium.h>

#include <cstring>
#include <string>
#include <thread>

namespace sessiond {
namespace {

// argon2id at interactive strength costs ~70 ms and 64 MiB: hash once for the whole suite.
class Password : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { hash_ = new std::string(hash_password(kPassword)); }
  static void TearDownTestSuite() {
    delete hash_;
    hash_ = nullptr;
  }

  static std::string hash_with(unsigned long long ops, std::size_t mem, int alg) {
    char out[crypto_pwhash_STRBYTES];
    EXPECT_EQ(crypto_pwhash_str_alg(out, kPassword, std::strlen(kPassword), ops, mem, alg), 0);
    return out;
  }

  static constexpr const char* kPassword = "correct horse battery staple";
  static inline std::string* hash_ = nullptr;
};

TEST_F(Password, HashIsArgon2idWithInteractiveParameters) {
  EXPECT_TRUE(hash_->starts_with("$argon2id$v=19$m=65536,t=2,p=1$")) << *hash_;
  EXPECT_EQ(hash_->find(kPassword), std::string::npos);
}

TEST_F(Password, HashVerifies) { EXPECT_TRUE(verify_password(*hash_, kPassword)); }

TEST_F(Password, WrongPasswordFails) {
  EXPECT_FALSE(verify_password(*hash_, "correct horse battery stapl"));
  EXPECT_FALSE(verify_password(*hash_, "correct horse battery staple "));
  EXPECT_FALSE(verify_password(*hash_, ""));
}

TEST_F(Password, MalformedHashFails) {
  for (const std::string& hash : {
           std::string(),
           std::string("garbage"),
           std::string("$argon2id$v=19$m=65536,t=2,p=1$"),
           hash_->substr(0, hash_->size() - 4),
           *hash_ + "x",
           std::string("\0", 1) + *hash_,
           *hash_ + std::string("\0", 1),
           std::string(crypto_pwhash_STRBYTES + 10, 'a'),
       }) {
    EXPECT_FALSE(verify_password(hash, kPassword)) << hash;
  }
}

TEST_F(Password, NeedsRehashIsFalseForAFreshHash) { EXPECT_FALSE(password_needs_rehash(*hash_)); }

TEST_F(Password, NeedsRehashIsTrueForWeakerParameters) {
  const auto weak = hash_with(crypto_pwhash_argon2id_OPSLIMIT_MIN,
                              crypto_pwhash_argon2id_MEMLIMIT_MIN, crypto_pwhash_ALG_ARGON2ID13);
  EXPECT_TRUE(verify_password(weak, kPassword));  // still accepted, then upgraded by the caller
  EXPECT_TRUE(password_needs_rehash(weak));
}

TEST_F(Password, NeedsRehashIsTrueForArgon2i) {
  const auto argon2i =
      hash_with(crypto_pwhash_argon2i_OPSLIMIT_INTERACTIVE,
                crypto_pwhash_argon2i_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2I13);
  EXPECT_TRUE(argon2i.starts_with("$argon2i$"));
  EXPECT_TRUE(verify_password(argon2i, kPassword));
  EXPECT_TRUE(password_needs_rehash(argon2i));
}

TEST_F(Password, NeedsRehashIsTrueForMalformedHash) {
  EXPECT_TRUE(password_needs_rehash(""));
  EXPECT_TRUE(password_needs_rehash("garbage"));
}

TEST_F(Password, SameSecretHashesDifferently) {
  const auto again = hash_password(kPassword);
  EXPECT_NE(again, *hash_);
  EXPECT_TRUE(verify_password(again, kPassword));
}

TEST(DummyPasswordHash, IsOneValidCurrentHash) {
  const std::string* seen[2] = {};
  std::thread a([&] { seen[0] = &dummy_password_hash(); });
  std::thread b([&] { seen[1] = &dummy_password_hash(); });
  a.join();
  b.join();
  EXPECT_EQ(seen[0], seen[1]);
  EXPECT_EQ(seen[0], &dummy_password_hash());
  const auto& hash = dummy_password_hash();
  EXPECT_TRUE(hash.starts_with("$argon2id$"));
  EXPECT_FALSE(password_needs_rehash(hash));
  EXPECT_FALSE(verify_password(hash, ""));
  EXPECT_FALSE(verify_password(hash, "password"));
}

}  // namespace
}  // namespace sessiond
