// Prometheus counters and latency histograms for /metrics. Lock-free on the request path.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace sessiond::http {

class Metrics {
 public:
  static constexpr std::array<double, 12> kBuckets{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                   0.01,   0.025,   0.05,   0.1,   0.5,    1.0};

  struct Series;
  // Registers a route (its pattern, or "unmatched") before serving; the pointer stays valid.
  Series* route(const std::string& name);
  // Records one request with its status. Lock-free.
  static void observe(Series* series, int status, double seconds);
  // The text exposition of every series, followed by `extra` (already formatted lines).
  std::string render(const std::string& extra) const;

 public:
  struct Series {
    std::array<std::atomic<std::uint64_t>, 500> by_status{};  // index: status - 100
    std::array<std::atomic<std::uint64_t>, kBuckets.size() + 1> buckets{};
    std::atomic<std::uint64_t> count{0};
    std::atomic<std::uint64_t> sum_us{0};
  };

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Series>> series_;
};

}  // namespace sessiond::http
