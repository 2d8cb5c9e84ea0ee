#include "core/password.hpp"

#include <sodium.h>

#include <new>

#include "core/crypto.hpp"

namespace sessiond {

namespace {

constexpr unsigned long long kOpsLimit = crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE;
constexpr std::size_t kMemLimit = crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE;

// libsodium reads hashes as C strings: one with an embedded NUL or without room for it is not ours.
bool plausible_hash(std::string_view hash) {
  return !hash.empty() && hash.size() < crypto_pwhash_STRBYTES &&
         hash.find('\0') == std::string_view::npos;
}

}  // namespace

std::string hash_password(std::string_view password) {
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), kOpsLimit, kMemLimit,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    // The only documented failure is being refused the 64 MiB of working memory.
    throw std::bad_alloc();
  }
  return out;
}

bool verify_password(std::string_view hash, std::string_view password) {
  if (!plausible_hash(hash)) return false;
  const std::string text(hash);
  return crypto_pwhash_str_verify(text.c_str(), password.data(), password.size()) == 0;
}

bool password_needs_rehash(std::string_view hash) {
  if (!plausible_hash(hash)) return true;
  const std::string text(hash);
  // The argon2id variant also answers "needs rehash" (-1) for argon2i hashes, which the generic
  // crypto_pwhash_str_needs_rehash would accept as current.
  return crypto_pwhash_argon2id_str_needs_rehash(text.c_str(), kOpsLimit, kMemLimit) != 0;
}

const std::string& dummy_password_hash() {
  static const std::string hash = [] {
    SodiumRandom random;
    std::string password = random_secret(random, 32);
    std::string h = hash_password(password);
    sodium_memzero(password.data(), password.size());
    return h;
  }();
  return hash;
}

}  // namespace sessiond
