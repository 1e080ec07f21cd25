// ContentCheck: the SHA-256 of each of a sequence of files whose contents
// arrive concatenated, in chunks, computed on a thread of its own so that
// the writing thread does not wait for it. Used by the update deploy
// (runner_fetch_files.cpp): every fetched file is checked against its
// sha256 before the release is accepted.
//
// Thread-safety: Push() and Finish() from one thread (the writer's); the
// hashing runs on the object's own thread. Memory is bounded: Push() waits
// while kMaxQueuedBytes are queued.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/crypto.h"
#include "common/status.h"

namespace reprise {

class ContentCheck {
 public:
  static constexpr uint64_t kMaxQueuedBytes = 16u << 20;
  struct File {
    std::string sha256;  // expected, lowercase hex
    uint64_t size = 0;
    std::string path;  // for the error message
  };

  explicit ContentCheck(std::vector<File> files);
  ~ContentCheck();  // stops the thread (whatever was queued is dropped)
  ContentCheck(const ContentCheck&) = delete;
  ContentCheck& operator=(const ContentCheck&) = delete;

  // The next bytes of the concatenation. Returns at once after a mismatch.
  void Push(std::shared_ptr<const std::string> chunk);
  // Waits until every pushed byte is hashed: Ok when the bytes were exactly
  // the files, each with its sha256; else the first file that differs, or
  // that the bytes were too few or too many.
  [[nodiscard]] Status Finish();

 private:
  void Run();
  // Hashes `data` into the files from next_ on; false at a mismatch.
  bool Hash(std::string_view data);
  // Completes the files of size 0 due next (and the current, if complete).
  bool CloseFinished();

  const std::vector<File> files_;
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<const std::string>> queue_;  // guarded by m_
  uint64_t queued_ = 0;                                   // guarded by m_
  bool closed_ = false;                                   // guarded by m_
  std::string error_;                                     // guarded by m_; the first mismatch
  // The hashing thread's own state.
  size_t next_ = 0;
  uint64_t left_ = 0;
  bool open_ = false;
  std::unique_ptr<Sha256> hasher_;
  std::thread thread_;
};

}  // namespace reprise
