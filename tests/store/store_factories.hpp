// The stores the contract suite runs against (memory, redis). Adding a backend means adding one
// entry to store_factories() in store_factories.cpp; the tests themselves do not change. Each
// factory returns the store itself, used as sessiond uses it: calls from any thread, each thread
// on its own io_context (run() in store_test_support.hpp).
#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "core/time.hpp"
#include "store/session_store.hpp"

namespace sessiond::store::testing {

// Every factory configures its store to keep tombstones this long.
inline constexpr Duration kContractTombstoneTtl{std::chrono::hours{1}};

struct StoreFactory {
  std::string name;  // a test-name suffix: letters, digits and underscores
  // A fresh, empty store (on Redis: its own key prefix on the server of SESSIOND_TEST_REDIS_URL);
  // nullptr when the backend is not available here (the tests skip).
  std::function<std::unique_ptr<SessionStore>()> make;
};

const std::vector<StoreFactory>& store_factories();

inline void PrintTo(const StoreFactory& factory, std::ostream* os) { *os << factory.name; }

}  // namespace sessiond::store::testing
