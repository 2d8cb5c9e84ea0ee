#include "core/error.hpp"

#include <gtest/gtest.h>

#include <set>
#include <stdexcept>

namespace sessiond {
namespace {

TEST(Error, CodeNamesAreTheStableProblemCodes) {
  EXPECT_EQ(code_name(Errc::invalid_request), "invalid_request");
  EXPECT_EQ(code_name(Errc::token_invalid), "token_invalid");
  EXPECT_EQ(code_name(Errc::token_expired), "token_expired");
  EXPECT_EQ(code_name(Errc::session_revoked), "session_revoked");
  EXPECT_EQ(code_name(Errc::store_unavailable), "store_unavailable");
  std::set<std::string_view> names;
  for (int c = 0; c <= static_cast<int>(Errc::internal); ++c) {
    names.insert(code_name(static_cast<Errc>(c)));
  }
  EXPECT_EQ(names.size(), static_cast<std::size_t>(Errc::internal) + 1);
}

TEST(Error, EndReasonNamesRoundTrip) {
  for (int r = 0; r <= static_cast<int>(EndReason::role_changed); ++r) {
    const auto reason = static_cast<EndReason>(r);
    EXPECT_EQ(parse_reason(reason_name(reason)), reason) << reason_name(reason);
  }
  EXPECT_EQ(reason_name(EndReason::refresh_token_reuse), "refresh_token_reuse");
  EXPECT_EQ(parse_reason("stolen"), std::nullopt);
}

TEST(Error, EndedCarriesTheReason) {
  const auto e = Error::ended(Errc::session_revoked, EndReason::max_sessions_exceeded);
  EXPECT_EQ(e.code, Errc::session_revoked);
  EXPECT_EQ(e.reason, EndReason::max_sessions_exceeded);
}

TEST(Error, ValueOfAFailedResultThrows) {
  Result<int> r = Error(Errc::not_found, "no such session");
  EXPECT_THROW((void)r.value(), std::runtime_error);
  Result<int> ok = 7;
  EXPECT_EQ(ok.value(), 7);
}

}  // namespace
}  // namespace sessiond
