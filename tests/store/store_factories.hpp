// The stores the contract suite runs against. Adding a backend (Redis) means adding one entry to
// store_factories() in store_factories.cpp; the tests themselves do not change.
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
  // A fresh, empty store; nullptr when the backend is not available here (the tests skip).
  std::function<std::unique_ptr<SessionStore>()> make;
};

const std::vector<StoreFactory>& store_factories();

inline void PrintTo(const StoreFactory& factory, std::ostream* os) { *os << factory.name; }

}  // namespace sessiond::store::testing
