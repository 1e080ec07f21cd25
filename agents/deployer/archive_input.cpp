// ArchiveInput: gzip inflated by ISA-L's igzip ahead of libarchive, or the
// raw bytes as they are. The only user of ISA-L.
#include "agents/deployer/archive_input.h"

#include <isa-l/igzip_lib.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace reprise {
namespace archive_internal {

namespace {

constexpr size_t kBlockBytes = 1 << 20;

// What a failed isal_inflate means, for the error a user reads.
const char* InflateErrorText(int rc) {
  switch (rc) {
    case ISAL_INVALID_BLOCK:
      return "an invalid deflate block";
    case ISAL_INVALID_SYMBOL:
      return "an invalid deflate symbol";
    case ISAL_INVALID_LOOKBACK:
      return "an invalid back reference";
    case ISAL_INVALID_WRAPPER:
      return "an invalid gzip header";
    case ISAL_UNSUPPORTED_METHOD:
      return "a compression method other than deflate";
    case ISAL_INCORRECT_CHECKSUM:
      return "a wrong checksum";
    default:
      return "data igzip cannot read";
  }
}

class GzipInput : public ArchiveInput {
 public:
  explicit GzipInput(RawBlocks raw) : raw_(std::move(raw)), out_(kBlockBytes) { StartMember(); }

  Result<std::string_view> Next() override {
    REPRISE_ASSIGN_OR_RETURN(size_t produced, Inflate(out_.data(), out_.size()));
    return std::string_view(reinterpret_cast<const char*>(out_.data()), produced);
  }

  // Fills `block` whole (but at the end), so that it never shrinks and is
  // not zeroed again when it grows back.
  Status NextInto(std::vector<char>& block) override {
    if (block.size() != kBlockBytes) block.resize(kBlockBytes);
    auto* out = reinterpret_cast<uint8_t*>(block.data());
    size_t filled = 0;
    // Each round adds bytes or ends.
    while (filled < block.size()) {
      REPRISE_ASSIGN_OR_RETURN(size_t produced, Inflate(out + filled, block.size() - filled));
      if (produced == 0) break;
      filled += produced;
    }
    block.resize(filled);
    return Status::Ok();
  }

 private:
  // Inflates into `out` (`capacity` bytes); 0 at the end.
  Result<size_t> Inflate(uint8_t* out, size_t capacity) {
    // Each round consumes input, produces output or fetches a block; the raw
    // source ends, so this ends.
    while (!done_) {
      if (in_.empty() && !raw_ended_) REPRISE_RETURN_IF_ERROR(Fetch());
      if (!in_member_) {
        REPRISE_RETURN_IF_ERROR(NextMember());
        continue;
      }
      state_.next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(in_.data()));
      state_.avail_in = static_cast<uint32_t>(std::min<size_t>(in_.size(), UINT32_MAX));
      state_.next_out = out;
      state_.avail_out = static_cast<uint32_t>(capacity);
      const uint32_t offered = state_.avail_in;
      const int rc = isal_inflate(&state_);
      if (rc < 0)
        return InvalidArgument(std::string("corrupt archive: the gzip data has ") +
                               InflateErrorText(rc));
      in_.remove_prefix(offered - state_.avail_in);
      const size_t produced = capacity - state_.avail_out;
      if (state_.block_state == ISAL_BLOCK_FINISH) in_member_ = false;
      if (produced > 0) return produced;
      if (!in_member_ || offered != state_.avail_in) continue;
      if (raw_ended_)
        return InvalidArgument("corrupt archive: the gzip data ends before its last member does");
      if (!in_.empty()) REPRISE_RETURN_IF_ERROR(Gather(in_.size() + 1));
    }
    return size_t{0};
  }

  void StartMember() {
    isal_inflate_init(&state_);
    state_.crc_flag = ISAL_GZIP;
    in_member_ = true;
  }

  Status Fetch() {
    REPRISE_ASSIGN_OR_RETURN(std::string_view block, raw_());
    if (block.empty()) raw_ended_ = true;
    in_ = block;
    return Status::Ok();
  }

  // After a member: another one begins, or the stream ends.
  Status NextMember() {
    REPRISE_RETURN_IF_ERROR(Gather(4));  // the bytes that tell may straddle blocks
    if (StartsGzip(in_)) {
      StartMember();
    } else {
      done_ = true;
    }
    return Status::Ok();
  }

  // Makes in_ hold at least `count` bytes, or all that is left.
  Status Gather(size_t count) {
    if (in_.size() >= count || raw_ended_) return Status::Ok();
    std::string gathered(in_);
    while (gathered.size() < count && !raw_ended_) {
      REPRISE_ASSIGN_OR_RETURN(std::string_view block, raw_());
      if (block.empty()) raw_ended_ = true;
      gathered.append(block);
    }
    carry_ = std::move(gathered);
    in_ = carry_;
    return Status::Ok();
  }

  RawBlocks raw_;
  inflate_state state_{};
  std::vector<uint8_t> out_;
  std::string carry_;
  std::string_view in_;
  bool raw_ended_ = false;
  bool in_member_ = false;
  bool done_ = false;
};

// The wrapped input's blocks, copied (its views die at its next call) into
// buffers that circulate between the two threads.
class ReadAheadInput : public ArchiveInput {
 public:
  explicit ReadAheadInput(std::unique_ptr<ArchiveInput> input) : input_(std::move(input)) {}
  ~ReadAheadInput() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    can_produce_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  ReadAheadInput(const ReadAheadInput&) = delete;
  ReadAheadInput& operator=(const ReadAheadInput&) = delete;

  Result<std::string_view> Next() override {
    if (!thread_.joinable()) thread_ = std::thread([this] { Produce(); });
    std::unique_lock<std::mutex> lock(mu_);
    if (reading_.capacity() > 0) {
      // Returned as it is: resizing it to empty and back would zero it.
      spare_.push_back(std::move(reading_));
      reading_ = {};
      can_produce_.notify_one();
    }
    can_consume_.wait(lock, [&] { return !ready_.empty() || ended_; });
    if (ready_.empty()) return end_;  // the wrapped input's end or error
    reading_ = std::move(ready_.front());
    ready_.pop_front();
    can_produce_.notify_one();
    return std::string_view(reading_.data(), reading_.size());
  }

 private:
  static constexpr size_t kBuffers = 4;  // of kBlockBytes (1 MiB)

  void Produce() {
    // Each round hands over one block or ends; the wrapped input ends, so
    // this ends.
    for (;;) {
      std::unique_lock<std::mutex> lock(mu_);
      can_produce_.wait(lock,
                        [&] { return stopping_ || !spare_.empty() || allocated_ < kBuffers; });
      if (stopping_) return;
      std::vector<char> block;
      if (!spare_.empty()) {
        block = std::move(spare_.back());
        spare_.pop_back();
      } else {
        ++allocated_;
      }
      lock.unlock();
      Status filled = [&]() -> Status {
        try {
          return input_->NextInto(block);
        } catch (const std::bad_alloc&) {
          return Status(Code::kTooLarge, "reading the archive: out of memory");
        }
      }();
      lock.lock();
      if (!filled.ok() || block.empty()) {
        end_ = filled.ok() ? Result<std::string_view>(std::string_view()) : filled;
        ended_ = true;
        can_consume_.notify_one();
        return;
      }
      ready_.push_back(std::move(block));
      can_consume_.notify_one();
    }
  }

  std::unique_ptr<ArchiveInput> input_;  // the producer thread's only
  std::mutex mu_;
  std::condition_variable can_produce_;
  std::condition_variable can_consume_;
  std::deque<std::vector<char>> ready_;
  std::vector<std::vector<char>> spare_;
  std::vector<char> reading_;  // the block the reader holds
  size_t allocated_ = 0;       // blocks in circulation
  Result<std::string_view> end_ = std::string_view();
  bool ended_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace

Status ArchiveInput::NextInto(std::vector<char>& block) {
  REPRISE_ASSIGN_OR_RETURN(std::string_view next, Next());
  block.assign(next.begin(), next.end());
  return Status::Ok();
}

namespace {

class PlainInput : public ArchiveInput {
 public:
  explicit PlainInput(RawBlocks raw) : raw_(std::move(raw)) {}
  Result<std::string_view> Next() override { return raw_(); }

 private:
  RawBlocks raw_;
};

la_ssize_t ReadInput(archive* a, void* client, const void** buffer) {
  Result<std::string_view> next = [&]() -> Result<std::string_view> {
    try {
      return static_cast<ArchiveInput*>(client)->Next();
    } catch (const std::bad_alloc&) {
      return Status(Code::kTooLarge, "reading the archive: out of memory");
    }
  }();
  if (!next.ok()) {
    archive_set_error(a, EINVAL, "%s", next.status().message().c_str());
    return ARCHIVE_FATAL;
  }
  *buffer = next->data();
  return static_cast<la_ssize_t>(next->size());
}

}  // namespace

bool StartsGzip(std::string_view head) {
  // As libarchive's gzip reader decides: magic, deflate, no reserved flags.
  return head.size() >= 4 && static_cast<unsigned char>(head[0]) == 0x1f &&
         static_cast<unsigned char>(head[1]) == 0x8b && head[2] == 8 &&
         (static_cast<unsigned char>(head[3]) & 0xe0) == 0;
}

std::unique_ptr<ArchiveInput> NewGzipInput(RawBlocks raw) {
  return std::make_unique<GzipInput>(std::move(raw));
}

std::unique_ptr<ArchiveInput> NewReadAheadInput(std::unique_ptr<ArchiveInput> input) {
  return std::make_unique<ReadAheadInput>(std::move(input));
}

std::unique_ptr<ArchiveInput> NewPlainInput(RawBlocks raw) {
  return std::make_unique<PlainInput>(std::move(raw));
}

RawBlocks Prefixed(std::string_view first, RawBlocks raw) {
  return [first, raw = std::move(raw), given = false]() mutable -> Result<std::string_view> {
    if (!given) {
      given = true;
      if (!first.empty()) return first;
    }
    return raw();
  };
}

RawBlocks FdBlocks(int fd) {
  auto buffer = std::make_shared<std::vector<char>>(kBlockBytes);
  return [fd, buffer]() -> Result<std::string_view> {
    for (int attempt = 0; attempt < 100; ++attempt) {
      ssize_t n = ::read(fd, buffer->data(), buffer->size());
      if (n >= 0) return std::string_view(buffer->data(), static_cast<size_t>(n));
      if (errno != EINTR)
        return IoError(std::string("cannot read the archive: ") + std::strerror(errno));
    }
    return IoError("cannot read the archive: interrupted");
  };
}

RawBlocks MemoryBlocks(std::string_view bytes) {
  return [bytes, given = false]() mutable -> Result<std::string_view> {
    if (given) return std::string_view();
    given = true;
    return bytes;
  };
}

int OpenInput(archive* a, ArchiveInput& input) {
  return archive_read_open(a, &input, nullptr, ReadInput, nullptr);
}

Result<bool> FdStartsGzip(int fd) {
  char head[4];
  ssize_t n = ::pread(fd, head, sizeof head, 0);
  if (n < 0) return IoError(std::string("cannot read the archive: ") + std::strerror(errno));
  return StartsGzip(std::string_view(head, static_cast<size_t>(n)));
}

int OpenFd(archive* a, int fd, std::unique_ptr<ArchiveInput>& gzip) {
  Result<bool> is_gzip = FdStartsGzip(fd);
  if (!is_gzip.ok()) {
    archive_set_error(a, EIO, "%s", is_gzip.status().message().c_str());
    return ARCHIVE_FATAL;
  }
  if (!*is_gzip) return archive_read_open_fd(a, fd, kBlockBytes);
  gzip = NewGzipInput(FdBlocks(fd));
  return OpenInput(a, *gzip);
}

}  // namespace archive_internal
}  // namespace reprise
