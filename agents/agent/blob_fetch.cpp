// The blob fetch over a server connection (blob_fetch.h).
#include "agents/agent/blob_fetch.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "common/fs.h"

namespace reprise::agent_internal {
namespace {

namespace fs = std::filesystem;

std::shared_ptr<FetchState> FindFetch(Session& s, uint64_t op) {
  std::lock_guard<std::mutex> g(s.mu);
  auto it = s.fetches.find(op);
  return it == s.fetches.end() ? nullptr : it->second;
}

}  // namespace

namespace {

// Whether a frame of `stream` answers `f`'s request (f.m held): not one of
// an earlier request of the operation still on its way. An older server
// numbers nothing (0).
bool Answers(const FetchState& f, uint64_t stream) { return stream == 0 || stream == f.stream; }

// Takes `payload` into `f` (f.m held): written to its file, or queued.
// An error text when it cannot.
std::string TakeChunk(Session& s, FetchState& f, std::string& payload) {
  if (f.in_memory) {
    if (payload.empty()) return "";
    f.queued += payload.size();
    f.max_queued = std::max(f.max_queued, f.queued);
    f.chunks.push_back(std::move(payload));
    if (f.queued >= FetchState::kMaxQueuedBytes && !f.holding) {
      f.holding = true;  // released by the operation's thread as it takes chunks
      s.HoldReads();
    }
    return "";
  }
  size_t off = 0;
  while (off < payload.size()) {
    ssize_t w = ::write(f.fd, payload.data() + off, payload.size() - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return std::string("writing the artifact: ") + std::strerror(errno);
    }
    off += static_cast<size_t>(w);
  }
  return "";
}

}  // namespace

void OnBlobData(Session& s, const protocol::BlobData& h, std::string& payload) {
  auto fetch = FindFetch(s, h.op);
  if (!fetch) return;  // cancelled meanwhile
  std::lock_guard<std::mutex> g(fetch->m);
  if (fetch->done || fetch->failed || !Answers(*fetch, h.stream)) return;
  fetch->total = h.total;
  const uint64_t size = payload.size();
  if (h.offset != fetch->received) {
    fetch->failed = true;
    fetch->error = "blob chunk out of order";
  } else if (fetch->received + size > fetch->total) {
    fetch->failed = true;
    fetch->error = "more bytes than announced";
  } else {
    // Parts of a build (no sha256 of the whole) are checked file by file.
    if (!fetch->sha256.empty()) fetch->hasher.Update(payload.data(), payload.size());
    std::string error = TakeChunk(s, *fetch, payload);
    if (!error.empty()) {
      fetch->failed = true;
      fetch->error = std::move(error);
    }
    fetch->received += size;
    if (fetch->progress && (h.eof || fetch->received - fetch->last_progress >= (8u << 20))) {
      fetch->last_progress = fetch->received;
      fetch->progress({"transfer", fetch->received, fetch->total, 0, 0});
    }
    if (h.eof) fetch->done = true;
  }
  fetch->cv.notify_all();
}

void OnBlobError(Session& s, const protocol::BlobError& m) {
  auto fetch = FindFetch(s, m.op);
  if (!fetch) return;
  std::lock_guard<std::mutex> g(fetch->m);
  if (!Answers(*fetch, m.stream)) return;
  fetch->failed = true;
  fetch->error = m.message;
  fetch->cv.notify_all();
}

namespace {

// A blob arriving over the session: OnBlobData writes and hashes it into
// a temporary file on the connection's thread; Read() reads it behind. Or,
// `in_memory` (a build's parts, read once as they come), OnBlobData queues
// the chunks and Read() takes them, with no file between the threads.
class ChannelStream : public BlobStream {
 public:
  ChannelStream(std::shared_ptr<Session> s, uint64_t op, const fs::path& cache_path,
                const CancelToken& cancel, bool in_memory = false)
      : s_(std::move(s)),
        op_(op),
        cache_path_(cache_path),
        tmp_(cache_path.string() + ".part-" + RandomHex(4)),
        cancel_(cancel),
        in_memory_(in_memory) {}
  ~ChannelStream() override {
    if (!ended_) (void)Abandon();
  }

  // Asks for `request` (a blob_get or files_get of op_, numbered here);
  // with `sha256` empty the bytes are not checked here (the caller checks
  // their parts).
  Status Start(protocol::Message request, const std::string& sha256, const std::string& payload,
               const ProgressFn& progress) {
    sha256_ = sha256;
    f_->sha256 = sha256;
    f_->progress = progress;
    f_->in_memory = in_memory_;
    if (!in_memory_) {
      int fd = ::open(tmp_.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
      if (fd < 0) return IoError("cannot create " + tmp_.string());
      read_fd_ = ::open(tmp_.c_str(), O_RDONLY | O_CLOEXEC);
      f_->fd = fd;
      if (read_fd_ < 0) {
        (void)Abandon();
        return IoError("cannot read " + tmp_.string());
      }
    }
    bool closed = false;
    {
      std::lock_guard<std::mutex> g(s_->mu);
      closed = s_->closed;
      if (!closed) {
        f_->stream = ++s_->streams;
        std::visit(
            [&](auto& m) {
              if constexpr (requires { m.stream; }) m.stream = f_->stream;
            },
            request);
        s_->fetches[op_] = f_;
      }
    }
    if (closed) {
      (void)Abandon();
      return Unavailable("connection lost");
    }
    s_->Send(request, payload);
    return Status::Ok();
  }

  Result<std::string_view> Read() override {
    if (in_memory_) return TakeQueued();
    std::unique_lock<std::mutex> lk(f_->m);
    REPRISE_ASSIGN_OR_RETURN(bool more,
                             AwaitLocked(lk, [&] { return f_->received > read_offset_; }));
    if (!more) return std::string_view();
    size_ = f_->total;
    const size_t n =
        static_cast<size_t>(std::min<uint64_t>(f_->received - read_offset_, buffer_.size()));
    lk.unlock();
    // The bytes below `received` were written before it moved.
    size_t got = 0;
    while (got < n) {
      ssize_t r =
          ::pread(read_fd_, buffer_.data() + got, n - got, static_cast<off_t>(read_offset_ + got));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return IoError("reading the artifact being received: " + tmp_.string());
      got += static_cast<size_t>(r);
    }
    read_offset_ += n;
    return std::string_view(buffer_.data(), n);
  }

  Result<std::string> ReadOwned() override {
    auto bytes = Read();
    if (!bytes.ok()) return bytes.status();
    if (!in_memory_ || bytes->empty()) return std::string(*bytes);
    return std::move(current_);  // the chunk Read() just took
  }

  uint64_t Size() const override { return size_; }

  Result<fs::path> Complete() override {
    if (in_memory_) return FailedPrecondition("a build's parts are read as they arrive");
    REPRISE_RETURN_IF_ERROR(WaitForEnd());
    return tmp_;
  }

  Result<Fetched> Finish() override {
    if (in_memory_) {
      (void)Abandon();
      return FailedPrecondition("a build's parts are read as they arrive");
    }
    Status st = WaitForEnd();
    End();
    if (!st.ok()) {
      ::unlink(tmp_.c_str());
      return st;
    }
    if (::rename(tmp_.c_str(), cache_path_.c_str()) != 0) {
      ::unlink(tmp_.c_str());
      return IoError("cannot move the artifact into the cache");
    }
    return Fetched{cache_path_};
  }

  Status Abandon() override {
    Status st;
    {
      std::lock_guard<std::mutex> lk(f_->m);
      if (f_->failed) st = Unavailable("transfer failed: " + f_->error);
      if (!f_->failed && f_->done) st = VerifyLocked();
      f_->failed = true;  // chunks still on their way are dropped
      if (f_->error.empty()) f_->error = "stopped";
    }
    End();
    if (!in_memory_) ::unlink(tmp_.c_str());
    return st;
  }

 private:
  // With f_->m held by `lk`: true once `ready()` (bytes to read), false at
  // the transfer's verified end. Each round gets bytes, an end or a wake-up
  // (a chunk, or 100 ms to look at the cancel token); the transfer ends, so
  // this ends.
  template <typename Ready>
  Result<bool> AwaitLocked(std::unique_lock<std::mutex>& lk, Ready ready) {
    while (!ready()) {
      if (f_->failed) return Unavailable("transfer failed: " + f_->error);
      if (f_->done) {
        REPRISE_RETURN_IF_ERROR(VerifyLocked());
        return false;
      }
      if (cancel_.IsCancelled()) return Cancelled("cancelled during the transfer");
      f_->cv.wait_for(lk, std::chrono::milliseconds(100));
    }
    return true;
  }

  // in_memory: the next chunk as it was received; an end, or the transfer's
  // error as soon as it is known (what is queued is not used then).
  Result<std::string_view> TakeQueued() {
    std::unique_lock<std::mutex> lk(f_->m);
    REPRISE_ASSIGN_OR_RETURN(bool more,
                             AwaitLocked(lk, [&] { return !f_->chunks.empty() && !f_->failed; }));
    if (!more) return std::string_view();
    size_ = f_->total;
    current_ = std::move(f_->chunks.front());
    f_->chunks.pop_front();
    f_->queued -= current_.size();
    const bool release = f_->holding && f_->queued < FetchState::kMaxQueuedBytes;
    if (release) f_->holding = false;
    lk.unlock();
    if (release) s_->ReleaseReads();
    return std::string_view(current_);
  }

  // The transfer's end: every byte, or its error.
  Status WaitForEnd() {
    std::unique_lock<std::mutex> lk(f_->m);
    while (!f_->done && !f_->failed) {
      if (cancel_.IsCancelled()) return Cancelled("cancelled during the transfer");
      f_->cv.wait_for(lk, std::chrono::milliseconds(100));
    }
    if (f_->failed) return Unavailable("transfer failed: " + f_->error);
    return VerifyLocked();
  }

  // Once every byte arrived (f_->m held): the sha256 the bytes have.
  Status VerifyLocked() {
    if (sha256_.empty()) return Status::Ok();
    if (!hashed_) {
      got_ = f_->hasher.FinishHex();
      hashed_ = true;
    }
    if (got_ != sha256_)
      return Conflict("the received artifact has sha256 " + got_ + ", expected " + sha256_);
    return Status::Ok();
  }

  // Stops taking chunks and closes the files (the temporary one stays).
  void End() {
    if (ended_) return;
    ended_ = true;
    {
      std::lock_guard<std::mutex> g(s_->mu);
      auto it = s_->fetches.find(op_);
      if (it != s_->fetches.end() && it->second == f_) s_->fetches.erase(it);
    }
    std::unique_lock<std::mutex> lk(f_->m);
    const bool release = f_->holding;  // no chunk comes to take it back
    f_->holding = false;
    f_->chunks.clear();
    f_->queued = 0;
    // Made durable by the runner's syncfs after extraction; a cached
    // blob is re-hashed before reuse.
    if (f_->fd >= 0) ::close(f_->fd);
    f_->fd = -1;
    if (read_fd_ >= 0) ::close(read_fd_);
    read_fd_ = -1;
    lk.unlock();
    if (release) s_->ReleaseReads();
  }

  std::shared_ptr<Session> s_;
  uint64_t op_;
  fs::path cache_path_;
  fs::path tmp_;
  const CancelToken& cancel_;
  const bool in_memory_;
  std::shared_ptr<FetchState> f_ = std::make_shared<FetchState>();
  std::string current_;  // in_memory: the chunk Read() returned last
  std::string sha256_;
  int read_fd_ = -1;
  uint64_t read_offset_ = 0;
  uint64_t size_ = 0;
  std::vector<char> buffer_ = std::vector<char>(in_memory_ ? 0 : 1 << 20);
  bool hashed_ = false;
  std::string got_;
  bool ended_ = false;
};

class ChannelSource : public BlobSource {
 public:
  ChannelSource(std::shared_ptr<Session> s, uint64_t op) : s_(std::move(s)), op_(op) {}
  Result<std::unique_ptr<BlobStream>> Stream(const std::string& sha256, const fs::path& cache_path,
                                             const CancelToken& cancel,
                                             const ProgressFn& progress) override {
    auto stream = std::make_unique<ChannelStream>(s_, op_, cache_path, cancel);
    REPRISE_RETURN_IF_ERROR(stream->Start(protocol::BlobGet{op_, sha256, 0}, sha256, {}, progress));
    return std::unique_ptr<BlobStream>(std::move(stream));
  }
  Result<std::unique_ptr<BlobStream>> StreamFiles(const std::string& sha256,
                                                  const std::vector<std::string>& files,
                                                  const fs::path& temp_path,
                                                  const CancelToken& cancel,
                                                  const ProgressFn& progress) override {
    {
      std::lock_guard<std::mutex> g(s_->mu);
      if (!s_->files) return std::unique_ptr<BlobStream>();
    }
    std::string list;
    list.reserve(files.size() * 65);
    for (const std::string& f : files) list.append(f).push_back('\n');
    if (list.size() > protocol::kMaxPayloadBytes) {
      return TooLarge("too many files for one request: " + std::to_string(files.size()));
    }
    auto stream = std::make_unique<ChannelStream>(s_, op_, temp_path, cancel, /*in_memory=*/true);
    REPRISE_RETURN_IF_ERROR(
        stream->Start(protocol::FilesGet{op_, sha256, files.empty()}, "", list, progress));
    return std::unique_ptr<BlobStream>(std::move(stream));
  }
  Result<Fetched> Fetch(const std::string& sha256, const fs::path& cache_path,
                        const CancelToken& cancel, const ProgressFn& progress) override {
    ChannelStream stream(s_, op_, cache_path, cancel);
    REPRISE_RETURN_IF_ERROR(stream.Start(protocol::BlobGet{op_, sha256, 0}, sha256, {}, progress));
    REPRISE_ASSIGN_OR_RETURN(BlobStream::Fetched fetched, stream.Finish());
    return Fetched{fetched.path, true};
  }

 private:
  std::shared_ptr<Session> s_;
  uint64_t op_;
};

}  // namespace

std::unique_ptr<BlobSource> MakeChannelSource(std::shared_ptr<Session> session, uint64_t op) {
  return std::make_unique<ChannelSource>(std::move(session), op);
}

}  // namespace reprise::agent_internal
