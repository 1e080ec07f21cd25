// WaitUntil: polls a condition that another thread or process makes true.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace reprise::testing {

// Polls `pred` every 10 ms until it holds or `limit` passes; the last answer.
inline bool WaitUntil(const std::function<bool()>& pred,
                      std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

}  // namespace reprise::testing
