#include "http/metrics.hpp"

#include <cstdio>

namespace sessiond::http {

Metrics::Series* Metrics::route(const std::string& name) {
  std::lock_guard lock(mutex_);
  auto& s = series_[name];
  if (!s) s = std::make_unique<Series>();
  return s.get();
}

void Metrics::observe(Series* series, int status, double seconds) {
  Series& s = *series;
  if (status >= 100 && status < 600) {
    s.by_status[static_cast<std::size_t>(status - 100)].fetch_add(1, std::memory_order_relaxed);
  }
  std::size_t i = 0;
  while (i < kBuckets.size() && seconds > kBuckets[i]) ++i;
  s.buckets[i].fetch_add(1, std::memory_order_relaxed);
  s.count.fetch_add(1, std::memory_order_relaxed);
  s.sum_us.fetch_add(static_cast<std::uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

std::string Metrics::render(const std::string& extra) const {
  std::string out;
  out += "# HELP sessiond_http_requests_total HTTP requests by route and status class.\n";
  out += "# TYPE sessiond_http_requests_total counter\n";
  std::lock_guard lock(mutex_);
  char line[512];
  for (const auto& [route, s] : series_) {
    for (int status = 100; status < 600; ++status) {
      auto n = s->by_status[static_cast<std::size_t>(status - 100)].load(std::memory_order_relaxed);
      if (n == 0) continue;
      std::snprintf(line, sizeof line,
                    "sessiond_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                    route.c_str(), status, static_cast<unsigned long long>(n));
      out += line;
    }
  }
  out += "# HELP sessiond_http_request_duration_seconds Request latency by route.\n";
  out += "# TYPE sessiond_http_request_duration_seconds histogram\n";
  for (const auto& [route, s] : series_) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= kBuckets.size(); ++i) {
      cumulative += s->buckets[i].load(std::memory_order_relaxed);
      if (i < kBuckets.size()) {
        std::snprintf(
            line, sizeof line,
            "sessiond_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
            route.c_str(), kBuckets[i], static_cast<unsigned long long>(cumulative));
      } else {
        std::snprintf(
            line, sizeof line,
            "sessiond_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
            route.c_str(), static_cast<unsigned long long>(cumulative));
      }
      out += line;
    }
    std::snprintf(line, sizeof line,
                  "sessiond_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                  "sessiond_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                  route.c_str(), static_cast<double>(s->sum_us.load()) / 1e6, route.c_str(),
                  static_cast<unsigned long long>(s->count.load()));
    out += line;
  }
  out += extra;
  return out;
}

}  // namespace sessiond::http
