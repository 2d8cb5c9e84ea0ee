#include "store/store_factories.hpp"

#include "store/memory/memory_session_store.hpp"

namespace sessiond::store::testing {

const std::vector<StoreFactory>& store_factories() {
  static const std::vector<StoreFactory> factories{
      {"memory",
       [] {
         MemoryStoreOptions options;
         options.tombstone_ttl = kContractTombstoneTtl;
         return std::make_unique<MemorySessionStore>(options);
       }},
  };
  return factories;
}

}  // namespace sessiond::store::testing
