#include "core/device.hpp"

#include <gtest/gtest.h>

namespace sessiond {
namespace {

struct Case {
  const char* what;
  const char* user_agent;
  const char* device;
};

class DeviceDetection : public ::testing::TestWithParam<Case> {};

TEST_P(DeviceDetection, NamesPlatformAndBrowser) {
  EXPECT_EQ(detect_device(GetParam().user_agent), GetParam().device) << GetParam().user_agent;
}

// Current agents as browsers send them (2024-2025 releases).
INSTANTIATE_TEST_SUITE_P(
    RealUserAgents, DeviceDetection,
    ::testing::Values(
        Case{"iPhoneSafari",
             "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
             "iPhone · Safari"},
        Case{"iPhoneChrome",
             "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
             "like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
             "iPhone · Chrome"},
        Case{"iPhoneFirefox",
             "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
             "like Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15",
             "iPhone · Firefox"},
        Case{"iPhoneEdge",
             "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
             "like Gecko) Version/17.0 EdgiOS/124.0.2478.89 Mobile/15E148 Safari/605.1.15",
             "iPhone · Edge"},
        Case{"iPhoneInAppWebView",
             "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
             "like Gecko) Mobile/15E148",
             "iPhone"},
        Case{"iPadSafari",
             "Mozilla/5.0 (iPad; CPU OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
             "Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
             "iPad · Safari"},
        Case{"MacintoshWithMobileTokenStaysMac",
             "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
             "Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
             "Mac · Safari"},
        Case{"AndroidChromePhone",
             "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/124.0.0.0 Mobile Safari/537.36",
             "Android · Chrome"},
        Case{"AndroidTablet",
             "Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/124.0.0.0 Safari/537.36",
             "Android · Chrome"},
        Case{"AndroidWebView",
             "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230805.001; wv) "
             "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile "
             "Safari/537.36",
             "Android · Chrome"},
        Case{"SamsungInternet",
             "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like "
             "Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
             "Android · Samsung Internet"},
        Case{"AndroidFirefox",
             "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
             "Android · Firefox"},
        Case{"AndroidEdge",
             "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/124.0.0.0 Mobile Safari/537.36 EdgA/124.0.2478.64",
             "Android · Edge"},
        Case{"AndroidOpera",
             "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/124.0.0.0 Mobile Safari/537.36 OPR/82.0.4227.77551",
             "Android · Opera"},
        Case{"MacSafari",
             "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
             "Gecko) Version/17.4.1 Safari/605.1.15",
             "Mac · Safari"},
        Case{"MacChrome",
             "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like "
             "Gecko) Chrome/124.0.0.0 Safari/537.36",
             "Mac · Chrome"},
        Case{"MacFirefox",
             "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0",
             "Mac · Firefox"},
        Case{"MacEdge",
             "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like "
             "Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
             "Mac · Edge"},
        Case{"WindowsChrome",
             "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/124.0.0.0 Safari/537.36",
             "Windows · Chrome"},
        Case{"WindowsEdge",
             "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
             "Windows · Edge"},
        Case{"WindowsFirefox",
             "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
             "Windows · Firefox"},
        Case{"WindowsOpera",
             "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0",
             "Windows · Opera"},
        Case{"LinuxFirefox",
             "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
             "Linux · Firefox"},
        Case{"UbuntuFirefox",
             "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
             "Linux · Firefox"},
        Case{"LinuxChrome",
             "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/124.0.0.0 Safari/537.36",
             "Linux · Chrome"},
        Case{"ChromeOS",
             "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/124.0.0.0 Safari/537.36",
             "ChromeOS · Chrome"},
        Case{"Sessionctl", "sessionctl/0.1", "CLI"},
        Case{"SessionctlWithDetails", "sessionctl/0.1.0 (linux; x86_64)", "CLI"},
        Case{"Curl", "curl/8.5.0", "Other"}, Case{"Wget", "Wget/1.21.4", "Other"},
        Case{"PythonRequests", "python-requests/2.31.0", "Other"}, Case{"Empty", "", "Other"},
        Case{"BareMozilla", "Mozilla/5.0", "Other"},
        Case{"SessionctlNotAtStart", "curl/8.5.0 sessionctl/0.1", "Other"},
        Case{"TokenMustStartAWord", "Mozilla/5.0 (X11; Linux x86_64) NotChrome/1.0", "Linux"}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.what); });

TEST(Device, SeparatorIsAMiddleDotBetweenSpaces) {
  EXPECT_EQ(detect_device("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 "
                          "Firefox/125.0"),
            "Windows \xC2\xB7 Firefox");
}

TEST(Device, SurvivesHostileInput) {
  EXPECT_EQ(detect_device(std::string(16 * 1024, '/')), "Other");
  EXPECT_EQ(detect_device(std::string("\0Chrome/1\xff", 10)), "Other · Chrome");
}

}  // namespace
}  // namespace sessiond
