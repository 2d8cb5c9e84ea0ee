// Webhooks (SPEC §2 [webhooks], §6), on each store: session.created, session.new_device,
// session.revoked and session.refresh_reuse reach a receiver on loopback, signed with
// HMAC-SHA256 of the body, each with a stable id, in order per user, and are delivered after the
// receiver was down.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <fstream>
#include <set>

#include "core/crypto.hpp"
#include "http/harness.hpp"
#include "http/webhook_receiver.hpp"
#include "support/temp_dir.hpp"

namespace sessiond::http_test {
namespace {

namespace json = boost::json;

constexpr std::string_view kPassword = "correct horse battery";
constexpr std::string_view kSecret = "webhook-secret-0123456789abcdefghijklmnop";

std::string type_of(const json::object& o) { return std::string(o.at("type").as_string()); }

class Webhooks : public ::testing::TestWithParam<Store> {
 protected:
  void start(std::uint16_t port) {
    const std::string secret = dir_.write("webhook.secret", std::string(kSecret) + "\n");
    server_ = std::make_unique<SessiondProcess>(
        GetParam(), "[webhooks]\nurl = \"http://127.0.0.1:" + std::to_string(port) +
                        "/hooks\"\nsecret_file = \"" + secret + "\"\n");
    client_ = std::make_unique<HttpClient>(server_->client());
  }
  // Waits until the receiver has accepted `n` deliveries (or 20 s pass).
  std::vector<json::object> wait_for(const Receiver& r, std::size_t n) {
    std::vector<json::object> got;
    eventually(
        [&] {
          got = r.delivered();
          return got.size() >= n;
        },
        20s);
    return got;
  }

  test_support::TempDir dir_;
  std::unique_ptr<SessiondProcess> server_;
  std::unique_ptr<HttpClient> client_;
};
INSTANTIATE_TEST_SUITE_P(Stores, Webhooks, ::testing::ValuesIn(kEachStore), store_param_name);

TEST_P(Webhooks, EventsArriveSignedInOrderWithStableIds) {
  const auto port = free_port();
  Receiver receiver(dir_.path(), port, {});
  start(port);
  const auto user = create_user(*server_, {.email = "gail@example.com"});
  const Headers phone{
      {"User-Agent",
       "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
       "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"}};
  auto first = login(*client_, "gail@example.com", kPassword, phone);
  auto second = login(*client_, "gail@example.com", kPassword, phone);
  ASSERT_EQ(client_->request("POST", "/api/v1/auth/logout", bearer(first.access_token)).status,
            204);

  // created + new_device (first device), created (known device and network), revoked.
  auto got = wait_for(receiver, 4);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(type_of(got[0]), "session.created");
  EXPECT_EQ(type_of(got[1]), "session.new_device");
  EXPECT_EQ(type_of(got[2]), "session.created");
  EXPECT_EQ(type_of(got[3]), "session.revoked");
  EXPECT_EQ(str(got[0], "session_id"), first.session_id);
  EXPECT_EQ(str(got[1], "session_id"), first.session_id);
  EXPECT_EQ(str(got[2], "session_id"), second.session_id);
  EXPECT_EQ(str(got[3], "session_id"), first.session_id);
  EXPECT_EQ(str(got[3], "reason"), "logout");
  EXPECT_EQ(str(got[0], "device_info"), "iPhone · Safari");
  EXPECT_EQ(got[0].at("user_id").as_int64(), user);
  std::set<std::string> ids;
  for (const auto& g : got) ids.insert(str(g, "id"));
  EXPECT_EQ(ids.size(), got.size()) << "each event has its own id";

  // Every request carries the signature of its body, the id and the type.
  for (const auto& r : receiver.requests()) {
    const auto& headers = r.at("headers").as_object();
    const std::string body(r.at("body").as_string());
    EXPECT_EQ(std::string(headers.at("x-sessiond-signature").as_string()),
              to_hex(hmac_sha256(kSecret, body)));
    auto parsed = parse_json(body);
    EXPECT_EQ(std::string(headers.at("x-sessiond-event-id").as_string()), str(parsed, "id"));
    EXPECT_EQ(std::string(headers.at("x-sessiond-event").as_string()), str(parsed, "type"));
    EXPECT_EQ(std::string(headers.at("content-type").as_string()), "application/json");
  }
}

TEST_P(Webhooks, RefreshReuseIsDelivered) {
  const auto port = free_port();
  Receiver receiver(dir_.path(), port, {});
  const std::string secret = dir_.write("webhook.secret", std::string(kSecret) + "\n");
  server_ = std::make_unique<SessiondProcess>(
      GetParam(), "[tokens]\nrefresh_grace = \"1s\"\n[webhooks]\nurl = \"http://127.0.0.1:" +
                      std::to_string(port) + "/hooks\"\nsecret_file = \"" + secret +
                      "\"\nevents = [\"session.refresh_reuse\", \"session.revoked\"]\n");
  client_ = std::make_unique<HttpClient>(server_->client());
  create_user(*server_, {.email = "hank@example.com"});
  auto tokens = login(*client_, "hank@example.com", kPassword);
  ASSERT_EQ(post_json(*client_, "/api/v1/auth/refresh",
                      json::object{{"refresh_token", tokens.refresh_token}})
                .status,
            200);
  std::this_thread::sleep_for(1200ms);
  EXPECT_TRUE(is_problem(post_json(*client_, "/api/v1/auth/refresh",
                                   json::object{{"refresh_token", tokens.refresh_token}}),
                         401, "session_revoked", "refresh_token_reuse"));
  auto got = wait_for(receiver, 1);
  ASSERT_EQ(got.size(), 1u) << "only the configured events are sent";
  EXPECT_EQ(type_of(got[0]), "session.refresh_reuse");
  EXPECT_EQ(str(got[0], "session_id"), tokens.session_id);
  EXPECT_EQ(str(got[0], "reason"), "refresh_token_reuse");
}

TEST_P(Webhooks, NewDeviceFiresForAnotherDeviceOrNetworkOnly) {
  const auto port = free_port();
  Receiver receiver(dir_.path(), port, {});
  start(port);
  create_user(*server_, {.email = "ivy@example.com"});
  const Headers linux_home{{"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"},
                           {"X-Forwarded-For", "192.0.2.10"}};
  const Headers linux_same_net{{"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"},
                               {"X-Forwarded-For", "192.0.2.99"}};
  const Headers linux_other_net{{"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"},
                                {"X-Forwarded-For", "203.0.113.5"}};
  login(*client_, "ivy@example.com", kPassword, linux_home);       // created + new_device
  login(*client_, "ivy@example.com", kPassword, linux_same_net);   // created
  login(*client_, "ivy@example.com", kPassword, linux_other_net);  // created + new_device
  auto got = wait_for(receiver, 5);
  ASSERT_EQ(got.size(), 5u);
  std::vector<std::string> types;
  for (const auto& g : got) types.push_back(type_of(g));
  EXPECT_EQ(types,
            (std::vector<std::string>{"session.created", "session.new_device", "session.created",
                                      "session.created", "session.new_device"}));
  EXPECT_EQ(str(got[4], "ip_address"), "203.0.113.5");
}

TEST_P(Webhooks, DeliveredAfterTheReceiverWasDown) {
  const auto port = free_port();
  start(port);  // nothing listens yet
  create_user(*server_, {.email = "jack@example.com"});
  auto a = login(*client_, "jack@example.com", kPassword);
  auto b = login(*client_, "jack@example.com", kPassword);
  ASSERT_EQ(client_->request("DELETE", "/api/v1/sessions", bearer(b.access_token)).status, 200);
  std::this_thread::sleep_for(1000ms);  // deliveries fail meanwhile
  // Up, but failing its first answer with 500: it is tried again.
  Receiver receiver(dir_.path(), port, {"--fail-first", "1"});
  auto got = wait_for(receiver, 4);
  ASSERT_EQ(got.size(), 4u);
  std::vector<std::string> types;
  for (const auto& g : got) types.push_back(type_of(g));
  EXPECT_EQ(types, (std::vector<std::string>{"session.created", "session.new_device",
                                             "session.created", "session.revoked"}));
  EXPECT_EQ(str(got[3], "session_id"), a.session_id);
  EXPECT_EQ(str(got[3], "reason"), "revoked_others");
  // The refused attempts carried the same id as the accepted one.
  auto all = receiver.requests();
  ASSERT_GE(all.size(), 5u);
  EXPECT_EQ(str(parse_json(all[0].at("body").as_string()), "id"), str(got[0], "id"));
}

}  // namespace
}  // namespace sessiond::http_test
