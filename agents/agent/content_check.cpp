// ContentCheck (content_check.h).
#include "agents/agent/content_check.h"

#include <algorithm>

namespace reprise {

ContentCheck::ContentCheck(std::vector<File> files) : files_(std::move(files)) {
  thread_ = std::thread([this] { Run(); });
}

ContentCheck::~ContentCheck() {
  {
    std::lock_guard<std::mutex> g(m_);
    closed_ = true;
    queue_.clear();
    queued_ = 0;
    if (error_.empty()) error_ = "stopped";
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ContentCheck::Push(std::shared_ptr<const std::string> chunk) {
  if (chunk->empty()) return;
  std::unique_lock<std::mutex> lk(m_);
  // Bounded by the hashing, which only ends here with an error or Finish().
  cv_.wait(lk, [&] { return queued_ < kMaxQueuedBytes || !error_.empty(); });
  if (!error_.empty() || closed_) return;
  queued_ += chunk->size();
  queue_.push_back(std::move(chunk));
  cv_.notify_all();
}

Status ContentCheck::Finish() {
  {
    std::lock_guard<std::mutex> g(m_);
    closed_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // The thread is gone: its state is this thread's now.
  if (error_.empty() && (!CloseFinished() || next_ != files_.size())) {
    if (error_.empty()) error_ = "the server sent fewer bytes than the files asked for";
  }
  if (error_.empty()) return Status::Ok();
  return Conflict(error_);
}

void ContentCheck::Run() {
  for (;;) {
    std::shared_ptr<const std::string> chunk;
    {
      std::unique_lock<std::mutex> lk(m_);
      cv_.wait(lk, [&] { return !queue_.empty() || closed_; });
      if (queue_.empty() || !error_.empty()) return;  // closed, and all of it hashed
      chunk = std::move(queue_.front());
      queue_.pop_front();
      queued_ -= chunk->size();
    }
    cv_.notify_all();  // room for Push()
    if (!Hash(*chunk)) {
      cv_.notify_all();
      return;
    }
  }
}

bool ContentCheck::Hash(std::string_view data) {
  for (;;) {
    if (!CloseFinished()) return false;
    if (data.empty()) return true;
    if (!open_) {
      std::lock_guard<std::mutex> g(m_);
      error_ = "the server sent more bytes than the files asked for";
      return false;
    }
    const size_t n = static_cast<size_t>(std::min<uint64_t>(left_, data.size()));
    hasher_->Update(data.data(), n);
    left_ -= n;
    data.remove_prefix(n);
  }
}

bool ContentCheck::CloseFinished() {
  for (;;) {
    if (!open_) {
      if (next_ == files_.size()) return true;
      hasher_ = std::make_unique<Sha256>();
      left_ = files_[next_].size;
      open_ = true;
    }
    if (left_ > 0) return true;
    const File& f = files_[next_];
    const std::string got = hasher_->FinishHex();
    open_ = false;
    ++next_;
    if (got != f.sha256) {
      std::lock_guard<std::mutex> g(m_);
      if (error_.empty()) {
        error_ = "file " + f.path + " arrived with sha256 " + got + ", expected " + f.sha256;
      }
      return false;
    }
  }
}

}  // namespace reprise
