// The agent's cache of its releases' files (the reuse source of an update):
// found only for the same release directory and manifest hash, the newest
// few kept.
#include <doctest/doctest.h>

#include "agents/agent/runner_internal.h"

namespace reprise::agent_runner {
namespace {

std::shared_ptr<const ReuseSource> Source(const std::string& dir, const std::string& file) {
  auto s = std::make_shared<ReuseSource>();
  s->dir = dir;
  s->files[file] = ReuseSource::File{0644, 1, std::string(64, 'a')};
  return s;
}

TEST_CASE("a cached reuse source is found by its directory and manifest hash only") {
  ReuseSourceCache cache;
  auto one = Source("/t/.reprise/releases/1", "a.txt");
  cache.Put("hash-1", one);
  CHECK(cache.Get("/t/.reprise/releases/1", "hash-1") == one);
  // Another target's release of the same name and build is another tree.
  CHECK(cache.Get("/u/.reprise/releases/1", "hash-1") == nullptr);
  // The same directory with another manifest is another release.
  CHECK(cache.Get("/t/.reprise/releases/1", "hash-2") == nullptr);
  auto again = Source("/t/.reprise/releases/1", "b.txt");
  cache.Put("hash-2", again);
  CHECK(cache.Get("/t/.reprise/releases/1", "hash-1") == nullptr);
  CHECK(cache.Get("/t/.reprise/releases/1", "hash-2") == again);
}

TEST_CASE("the reuse source cache keeps the newest entries") {
  ReuseSourceCache cache;
  const size_t n = ReuseSourceCache::kEntries + 2;
  for (size_t i = 0; i < n; ++i) {
    cache.Put("hash-" + std::to_string(i), Source("/t/r/" + std::to_string(i), "f"));
  }
  for (size_t i = 0; i < n; ++i) {
    CAPTURE(i);
    const bool kept = i >= n - ReuseSourceCache::kEntries;
    CHECK((cache.Get("/t/r/" + std::to_string(i), "hash-" + std::to_string(i)) != nullptr) == kept);
  }
}

}  // namespace
}  // namespace reprise::agent_runner
