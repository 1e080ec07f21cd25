// ArchiveStreamScanner: scans an upload while it arrives (a tar read as a
// stream), falling back to a scan of the complete file.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>

#include "agents/deployer/archive_internal.h"

namespace reprise {

namespace fs = std::filesystem;

namespace {

using namespace archive_internal;  // this module's own internals

// Streaming scan: blocks of the upload go from Feed() (the receiving thread)
// through a bounded queue into libarchive's read callback on the scanner
// thread.
constexpr size_t kStreamBlockBytes = 256 << 10;
constexpr size_t kStreamMaxQueuedBlocks = 8;
constexpr size_t kStreamMaxSpareBlocks = 2;

// What libarchive reads, noting with each block how many bytes of the upload
// were fetched to produce it (for the compression ratio), on the reading
// thread.
class CountedInput : public ArchiveInput {
 public:
  CountedInput(ArchiveInput& input, const std::atomic<uint64_t>& fetched, uint64_t& received)
      : input_(input), fetched_(fetched), received_(received) {}
  Result<std::string_view> Next() override {
    Result<std::string_view> next = input_.Next();
    received_ = fetched_.load();
    return next;
  }

 private:
  ArchiveInput& input_;
  const std::atomic<uint64_t>& fetched_;
  uint64_t& received_;
};

}  // namespace

// ---------------------------------------------------------------------------
// ArchiveStreamScanner

struct ArchiveStreamScanner::State {
  ArchiveLimits limits;

  std::mutex mu;
  std::condition_variable can_feed;
  std::condition_variable can_read;
  std::deque<std::vector<char>> queue;
  std::vector<std::vector<char>> spare;
  bool input_ended = false;
  bool abandoned = false;
  bool parse_ended = false;  // the tar reader stopped: no more blocks are fetched
  bool scan_ended = false;

  // The thread that fetches the blocks (the inflating one for gzip).
  std::vector<char> reading;          // the block being read
  std::atomic<uint64_t> fetched = 0;  // bytes fetched so far

  // Scanner thread; read by the receiving thread after the join.
  uint64_t received = 0;   // bytes fetched when libarchive last read: the ratio's archive size
  bool streamable = true;  // false: Finish scans the complete file instead
  std::vector<int64_t> special_header_offsets;  // for CheckTarHeaders in Finish
  std::optional<Result<Manifest>> result;

  // Receiving thread only.
  std::vector<char> filling;
  bool dropping = false;  // the scan ended: Feed drops everything
};

ArchiveStreamScanner::ArchiveStreamScanner(std::unique_ptr<State> state)
    : state_(std::move(state)) {}

Result<std::unique_ptr<ArchiveStreamScanner>> ArchiveStreamScanner::Start(
    const ArchiveLimits& limits) {
  return CatchAll(
      "starting the archive scan", [&]() -> Result<std::unique_ptr<ArchiveStreamScanner>> {
        auto state = std::make_unique<State>();
        state->limits = limits;
        state->spare.reserve(kStreamMaxSpareBlocks);
        std::unique_ptr<ArchiveStreamScanner> scanner(new ArchiveStreamScanner(std::move(state)));
        scanner->thread_ = std::thread([s = scanner.get()] { s->Run(); });
        return scanner;
      });
}

ArchiveStreamScanner::~ArchiveStreamScanner() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->abandoned = true;
  }
  state_->can_read.notify_all();
  thread_.join();
}

void ArchiveStreamScanner::Run() {
  State& s = *state_;
  // The next block Feed() queued; empty at the end of the input. A gzip
  // upload calls it on the inflating thread, a plain tar on this one.
  RawBlocks upload = [&st = s]() -> Result<std::string_view> {
    std::unique_lock<std::mutex> lock(st.mu);
    if (st.reading.capacity() > 0) {
      st.reading.clear();
      if (st.spare.size() < kStreamMaxSpareBlocks) st.spare.push_back(std::move(st.reading));
      st.reading = {};
    }
    st.can_read.wait(lock, [&] {
      return st.abandoned || st.input_ended || st.parse_ended || !st.queue.empty();
    });
    if (st.abandoned) return Status(Code::kCancelled, "the upload was abandoned");
    if (st.parse_ended) return Status(Code::kCancelled, "the scan has ended");
    if (st.queue.empty()) return std::string_view();  // the end of the input
    st.reading = std::move(st.queue.front());
    st.queue.pop_front();
    lock.unlock();
    st.can_feed.notify_one();
    st.fetched += st.reading.size();
    return std::string_view(st.reading.data(), st.reading.size());
  };
  Result<Manifest> result = CatchAll("scanning the upload", [&]() -> Result<Manifest> {
    // libarchive pulls the blocks on this thread; a gzip upload is inflated
    // on the way, on a thread of its own (archive_input.h), so that
    // inflating and parsing and hashing the tar take a core each.
    REPRISE_ASSIGN_OR_RETURN(std::string_view first, upload());
    std::unique_ptr<ArchiveInput> input =
        StartsGzip(first) ? NewReadAheadInput(NewGzipInput(Prefixed(first, upload)))
                          : NewPlainInput(Prefixed(first, upload));
    // However the scan ends, the inflating thread stops fetching blocks, so
    // that `input` can stop it.
    struct EndParse {
      State& st;
      ~EndParse() {
        {
          std::lock_guard<std::mutex> lock(st.mu);
          st.parse_ended = true;
        }
        st.can_read.notify_all();
      }
    } end_parse{s};
    CountedInput counted(*input, s.fetched, s.received);
    REPRISE_ASSIGN_OR_RETURN(ArchivePtr a, NewReader(/*tar_only=*/true));
    if (OpenInput(a.get(), counted) != ARCHIVE_OK) {
      s.streamable = false;
      return InvalidArgument("not a tar: " + ArchiveErrorText(a.get()));
    }
    ExtractOptions unused;
    ArchiveReader reader(s.limits, &s.received, nullptr, nullptr, unused);
    Result<Manifest> r = reader.Run(a.get());
    s.special_header_offsets = reader.special_header_offsets();
    // Not recognised as a tar (a zip, or garbage): the file scan decides.
    if (!r.ok() && reader.headers_read() == 0 && r.status().code() == Code::kInvalidArgument)
      s.streamable = false;
    // The ratio was checked against the bytes received so far, which is
    // stricter than against the whole archive: the file scan decides.
    if (!r.ok() && reader.ratio_refused()) s.streamable = false;
    return r;
  });
  std::lock_guard<std::mutex> lock(s.mu);
  s.result.emplace(std::move(result));
  s.scan_ended = true;
  s.queue.clear();  // nothing reads them any more
  s.can_feed.notify_all();
}

void ArchiveStreamScanner::Push() {
  State& s = *state_;
  std::unique_lock<std::mutex> lock(s.mu);
  s.can_feed.wait(lock, [&] { return s.scan_ended || s.queue.size() < kStreamMaxQueuedBlocks; });
  if (s.scan_ended) {
    s.dropping = true;
    s.filling.clear();
    return;
  }
  s.queue.push_back(std::move(s.filling));
  s.filling = {};
  if (!s.spare.empty()) {
    s.filling = std::move(s.spare.back());
    s.spare.pop_back();
  }
  lock.unlock();
  s.can_read.notify_one();
}

void ArchiveStreamScanner::Feed(const char* data, size_t size) {
  State& s = *state_;
  while (size > 0 && !s.dropping) {
    if (s.filling.capacity() < kStreamBlockBytes) s.filling.reserve(kStreamBlockBytes);
    size_t n = std::min(size, kStreamBlockBytes - s.filling.size());
    s.filling.insert(s.filling.end(), data, data + n);
    data += n;
    size -= n;
    if (s.filling.size() == kStreamBlockBytes) Push();
  }
}

void ArchiveStreamScanner::EndInput() {
  State& s = *state_;
  if (!thread_.joinable()) return;
  if (!s.dropping && !s.filling.empty()) Push();
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.input_ended = true;
  }
  s.can_read.notify_all();
}

Result<Manifest> ArchiveStreamScanner::Finish(const fs::path& complete_file) {
  State& s = *state_;
  if (!thread_.joinable()) return FailedPrecondition("the archive scan was finished already");
  EndInput();
  thread_.join();
  if (s.streamable) {
    // The bytes were read as a tar; so must the file be, or the scan and a
    // later extraction could see different archives in the same bytes.
    REPRISE_ASSIGN_OR_RETURN(bool tar, CatchAll("scanning " + complete_file.string(),
                                                [&] { return ReadsAsTar(complete_file); }));
    if (tar) {
      if (s.result->ok()) {
        REPRISE_RETURN_IF_ERROR(CatchAll("scanning " + complete_file.string(), [&]() -> Status {
          int fd = ::open(complete_file.c_str(), O_RDONLY | O_CLOEXEC);
          if (fd < 0)
            return IoError("cannot open archive " + complete_file.string() + ": " +
                           ErrnoText(errno));
          std::unique_ptr<ArchiveInput> gzip;
          Status checked = CheckTarHeaders(s.special_header_offsets, [fd, &gzip](archive* raw) {
            return OpenFd(raw, fd, gzip);
          });
          ::close(fd);
          return checked;
        }));
      }
      return std::move(*s.result);
    }
  }
  return ScanArchive(complete_file, s.limits);
}

}  // namespace reprise
