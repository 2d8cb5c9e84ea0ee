// Password hashing with argon2id (libsodium crypto_pwhash_str). CPU-heavy (~70 ms, 64 MiB):
// callers run these on a bounded worker pool, never on an io thread. No I/O.
#pragma once

#include <string>
#include <string_view>

namespace sessiond {

std::string hash_password(std::string_view password);
// Constant-time with respect to the password; false for a malformed hash.
bool verify_password(std::string_view hash, std::string_view password);
// True when the hash was made with weaker parameters than today's.
bool password_needs_rehash(std::string_view hash);
// A valid hash of a random password, to spend the same time on unknown accounts.
const std::string& dummy_password_hash();

}  // namespace sessiond
