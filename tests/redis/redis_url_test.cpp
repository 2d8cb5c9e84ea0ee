// RedisUrl::parse and make_script: no server needed.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "store/redis/redis_client.hpp"

namespace sessiond::store::redis {
namespace {

TEST(RedisUrl, ParsesHostAndPort) {
  const auto url = RedisUrl::parse("redis://127.0.0.1:6380");
  ASSERT_TRUE(url) << url.error().detail;
  EXPECT_EQ(url->host, "127.0.0.1");
  EXPECT_EQ(url->port, 6380);
  EXPECT_EQ(url->db, 0);
  EXPECT_TRUE(url->user.empty());
  EXPECT_TRUE(url->password.empty());
}

TEST(RedisUrl, DefaultsToPort6379AndDatabase0) {
  const auto url = RedisUrl::parse("redis://localhost/");
  ASSERT_TRUE(url) << url.error().detail;
  EXPECT_EQ(url->host, "localhost");
  EXPECT_EQ(url->port, 6379);
  EXPECT_EQ(url->db, 0);
}

TEST(RedisUrl, ParsesUserPasswordAndDatabase) {
  const auto url = RedisUrl::parse("redis://alice:p%40ss%3Aword@redis.internal:6379/3");
  ASSERT_TRUE(url) << url.error().detail;
  EXPECT_EQ(url->user, "alice");
  EXPECT_EQ(url->password, "p@ss:word");
  EXPECT_EQ(url->host, "redis.internal");
  EXPECT_EQ(url->db, 3);
}

TEST(RedisUrl, ParsesPasswordAlone) {
  const auto url = RedisUrl::parse("redis://:s3cret@10.0.0.5:7000/15");
  ASSERT_TRUE(url) << url.error().detail;
  EXPECT_TRUE(url->user.empty());
  EXPECT_EQ(url->password, "s3cret");
  EXPECT_EQ(url->host, "10.0.0.5");
  EXPECT_EQ(url->port, 7000);
  EXPECT_EQ(url->db, 15);
}

TEST(RedisUrl, KeepsUnencodedAtAndSlashInThePassword) {
  const auto url = RedisUrl::parse("redis://:a@b/c@127.0.0.1:6379/2");
  ASSERT_TRUE(url) << url.error().detail;
  EXPECT_EQ(url->password, "a@b/c");
  EXPECT_EQ(url->host, "127.0.0.1");
  EXPECT_EQ(url->db, 2);
}

TEST(RedisUrl, ParsesBracketedIpv6) {
  const auto url = RedisUrl::parse("redis://:pw@[::1]:6390/2");
  ASSERT_TRUE(url) << url.error().detail;
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 6390);
  EXPECT_EQ(url->db, 2);
  const auto bare = RedisUrl::parse("redis://[fe80::1]");
  ASSERT_TRUE(bare) << bare.error().detail;
  EXPECT_EQ(bare->host, "fe80::1");
  EXPECT_EQ(bare->port, 6379);
}

TEST(RedisUrl, RejectsMalformedUrls) {
  for (const std::string_view text : {
           "",
           "http://127.0.0.1:6379",
           "rediss://127.0.0.1:6379",
           "redis://",
           "redis://:6379",
           "redis://host:",
           "redis://host:0",
           "redis://host:65536",
           "redis://host:12ab",
           "redis://host:6379/x",
           "redis://host:6379/-1",
           "redis://host:6379/1/2",
           "redis://host:6379?db=1",
           "redis://::1:6379",
           "redis://[::1",
           "redis://[::1]6379",
           "redis://user@host:6379",
           "redis://user:@host:6379",
           "redis://:%zz@host:6379",
           "redis://:%4@host:6379",
       }) {
    const auto url = RedisUrl::parse(text);
    EXPECT_FALSE(url) << text;
    if (!url) {
      EXPECT_EQ(url.error().code, Errc::invalid_request) << text;
      EXPECT_FALSE(url.error().detail.empty()) << text;
    }
  }
}

TEST(RedisUrl, ErrorsNeverRepeatThePassword) {
  // Malformed URLs where the secret lands in the password, the host, the port or the path.
  for (const std::string_view text : {
           "redis://:Hunter2Secret@host:notaport",
           "redis://admin:Hunter2Secret@host:6379/notadb",
           "redis://:Hunter2Secret%zz@host:6379",
           "redis://host:Hunter2Secret",
           "redis://Hunter2Secret:6379:1",
           "redis://:Hunter2Secret@[::1",
           "redis://:Hunter2Secret@host:6379?x=1",
           "rediss://:Hunter2Secret@host:6379",
           "redis://Hunter2Secret@host:6379",
       }) {
    const auto url = RedisUrl::parse(text);
    ASSERT_FALSE(url) << text;
    EXPECT_EQ(url.error().detail.find("Hunter2"), std::string::npos) << url.error().detail;
    EXPECT_EQ(url.error().detail.find("Secret"), std::string::npos) << url.error().detail;
  }
}

TEST(RedisScript, ComputesTheSha1RedisUses) {
  // Redis names `return 1` by this SHA-1 (SCRIPT LOAD answers it; the live test checks too).
  EXPECT_EQ(make_script("return 1").sha1, "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
  EXPECT_EQ(make_script("").sha1, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(make_script("return 1").source, "return 1");
}

}  // namespace
}  // namespace sessiond::store::redis
