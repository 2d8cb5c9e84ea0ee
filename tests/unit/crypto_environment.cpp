// libsodium must be initialised once before any test uses it.
#include <gtest/gtest.h>

#include "core/crypto.hpp"

namespace {

class CryptoEnvironment final : public ::testing::Environment {
 public:
  void SetUp() override { sessiond::init_crypto(); }
};

[[maybe_unused]] ::testing::Environment* const kCryptoEnvironment =
    ::testing::AddGlobalTestEnvironment(new CryptoEnvironment);

}  // namespace
