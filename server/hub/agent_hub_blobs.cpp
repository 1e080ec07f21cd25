// Artifact blobs for agents: a remote agent fetches the blob of its running
// deploy-artifact chunk by chunk (blob_get, io thread), or the build's file
// index and only the files it lacks (files_get); the local agent reads the
// blob straight from the blob store.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <unordered_map>

#include "common/crypto.h"
#include "server/artifacts/file_index.h"
#include "server/hub/agent_hub_internal.h"

namespace reprise {

namespace hub_internal {

struct BlobStream {
  int fd = -1;
  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t op_id = 0;
  uint64_t stream = 0;  // the agent's number for its request
  uint64_t number = 0;  // of the operation's streams (PendingOp::streams)
  std::shared_ptr<Conn> c;
  std::string buf;
  ~BlobStream() {
    if (fd >= 0) ::close(fd);
  }
};

// Bytes sent one part after the other: the index text, or stored files
// that are hashed as they are read (the file index is a cache; a file that
// no longer has its name's content is dropped from it and never sent whole).
struct PartsStream {
  struct Part {
    std::string text;    // an in-memory part (the index), or
    fs::path path;       // a stored file
    std::string sha256;  // its expected content
    uint64_t size = 0;
  };
  std::vector<Part> parts;
  size_t part = 0;
  uint64_t in_part = 0;  // bytes of parts[part] sent
  uint64_t offset = 0;
  uint64_t total = 0;
  int fd = -1;
  std::unique_ptr<Sha256> hasher = std::make_unique<Sha256>();
  std::string blob;  // the build's artifact
  uint64_t op_id = 0;
  uint64_t stream = 0;  // the agent's number for its request
  uint64_t number = 0;  // of the operation's streams (PendingOp::streams)
  std::shared_ptr<Conn> c;
  int in_flight = 0;   // chunks queued on the connection, not yet written
  bool ended = false;  // every byte sent, or the blob_error
  ~PartsStream() {
    if (fd >= 0) ::close(fd);
  }
};

namespace {

// The file hashes a files_get payload asks for: 64 hex digits and a newline
// each, each a regular file of the build's index, none twice. The sizes come
// from the index.
Result<std::vector<std::pair<std::string, uint64_t>>> RequestedFiles(const std::string& payload,
                                                                     const Manifest& index) {
  std::unordered_map<std::string, uint64_t> sizes;
  for (const ManifestEntry& e : index.entries) {
    if (e.type == EntryType::kFile) sizes.emplace(e.sha256, e.size);
  }
  if (payload.empty() || payload.size() % 65 != 0)
    return InvalidArgument("the list of files must be sha256s, one a line");
  std::vector<std::pair<std::string, uint64_t>> out;
  std::set<std::string> seen;
  for (size_t at = 0; at < payload.size(); at += 65) {
    std::string sha = payload.substr(at, 64);
    if (payload[at + 64] != '\n' || !BlobStore::IsValidHash(sha))
      return InvalidArgument("the list of files must be sha256s, one a line");
    auto it = sizes.find(sha);
    if (it == sizes.end()) return InvalidArgument("file " + sha + " is not part of this build");
    if (!seen.insert(sha).second) return InvalidArgument("file " + sha + " is listed twice");
    out.emplace_back(std::move(sha), it->second);
  }
  return out;
}

}  // namespace

Result<BlobSource::Fetched> StoreSource::Fetch(const std::string& sha256, const fs::path&,
                                               const CancelToken&, const ProgressFn& progress) {
  if (blobs_ == nullptr) return FailedPrecondition("the hub has no blob store");
  REPRISE_ASSIGN_OR_RETURN(fs::path p, blobs_->Path(sha256));
  if (!blobs_->Exists(sha256)) return NotFound("artifact blob " + sha256 + " is not stored");
  if (progress) {
    auto size = blobs_->Size(sha256);
    uint64_t n = size.ok() ? static_cast<uint64_t>(*size) : 0;
    progress({"transfer", n, n, 0, 0});
  }
  return Fetched{p, false};
}

}  // namespace hub_internal

using namespace hub_internal;

void AgentHub::Impl::OnBlobGet(const std::shared_ptr<Conn>& c, const protocol::BlobGet& h) {
  uint64_t op_id = h.op;
  const std::string& sha = h.sha256;
  auto op = OwnOp(c, op_id);
  auto fail = [&](const std::string& why) {
    SendControl(c, protocol::BlobError{op_id, why, h.stream});
  };
  if (!op || op->sha256.empty() || op->sha256 != sha) {
    return fail("this blob is not part of the agent's running operation");
  }
  const uint64_t number = ++op->streams;  // the one before stops
  if (o.blobs == nullptr) return fail("the server has no blob store");
  auto path = o.blobs->Path(sha);
  if (!path.ok()) return fail("invalid blob");
  auto s = std::make_shared<BlobStream>();
  s->fd = ::open(path->c_str(), O_RDONLY | O_CLOEXEC);
  if (s->fd < 0) return fail("the artifact is not in the server's store");
  struct stat st;
  if (::fstat(s->fd, &st) != 0) return fail("cannot read the artifact");
  s->size = static_cast<uint64_t>(st.st_size);
  s->offset = h.offset;
  if (s->offset > s->size) return fail("offset beyond the end");
  s->op_id = op_id;
  s->stream = h.stream;
  s->number = number;
  s->c = c;
  Pump(s);
}

bool AgentHub::Impl::StreamGoesOn(uint64_t op_id, uint64_t number) {
  std::lock_guard<std::mutex> g(mu);
  auto it = ops.find(op_id);
  // Ended (cancelled), or superseded by the agent's next request.
  return it != ops.end() && it->second->streams == number;
}

void AgentHub::Impl::Pump(const std::shared_ptr<BlobStream>& s) {
  if (s->c->ch->closed() || !StreamGoesOn(s->op_id, s->number)) return;
  size_t n = static_cast<size_t>(std::min<uint64_t>(protocol::kChunkBytes, s->size - s->offset));
  s->buf.resize(n);
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(s->fd, s->buf.data() + got, n - got, static_cast<off_t>(s->offset + got));
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      SendControl(s->c, protocol::BlobError{s->op_id, "read error", s->stream});
      return;
    }
    got += static_cast<size_t>(r);
  }
  bool eof = s->offset + n == s->size;
  std::string hdr =
      protocol::Encode(protocol::BlobData{s->op_id, s->offset, s->size, eof, s->stream});
  s->offset += n;
  std::function<void()> next;
  if (!eof) next = [this, s] { Pump(s); };
  (void)s->c->ch->Send(std::move(hdr), std::move(s->buf),
                       std::move(next));  // a chunk always fits
  s->buf = std::string();
}

void AgentHub::Impl::OnFilesGet(const std::shared_ptr<Conn>& c, const protocol::FilesGet& h,
                                const std::string& payload) {
  const uint64_t op_id = h.op;
  auto op = OwnOp(c, op_id);
  auto fail = [&](const std::string& why) {
    SendControl(c, protocol::BlobError{op_id, why, h.stream});
  };
  if (!op || op->sha256.empty() || op->sha256 != h.sha256) {
    return fail("this artifact is not part of the agent's running operation");
  }
  const uint64_t number = ++op->streams;  // the one before stops
  if (o.files == nullptr) return fail("the server keeps no file indexes");
  auto text = o.files->Index(h.sha256);
  if (!text.ok()) {
    // Derived in the background for the next deploy of this build.
    if (text.status().code() == Code::kNotFound) o.files->DeriveLater(h.sha256);
    return fail("no file index for this artifact yet");
  }
  auto s = std::make_shared<PartsStream>();
  s->blob = h.sha256;
  s->op_id = op_id;
  s->stream = h.stream;
  s->number = number;
  s->c = c;
  if (h.index) {
    s->total = text->size();
    s->parts.push_back({std::move(*text), {}, {}, s->total});
  } else {
    auto index = ManifestFromJson(*text);
    if (!index.ok()) {
      o.files->Forget(h.sha256);
      o.files->DeriveLater(h.sha256);
      return fail("the file index of this artifact is unreadable");
    }
    auto wanted = RequestedFiles(payload, *index);
    if (!wanted.ok()) return fail(wanted.status().message());
    for (auto& [sha, size] : *wanted) {
      auto path = o.files->File(sha);
      if (!path.ok()) {
        o.files->Forget(h.sha256);
        o.files->DeriveLater(h.sha256);
        return fail("file " + sha + " of the file index is missing");
      }
      s->parts.push_back({{}, *path, sha, size});
      s->total += size;
    }
  }
  Pump(s);
}

// Chunks queued on the connection at once: the next is read and hashed
// while the one before is on its way, instead of after it.
constexpr int kPartsInFlight = 2;

void AgentHub::Impl::Pump(const std::shared_ptr<PartsStream>& s) {
  while (s->in_flight < kPartsInFlight && !s->ended) {
    if (!SendPart(s)) return;
  }
}

bool AgentHub::Impl::SendPart(const std::shared_ptr<PartsStream>& s) {
  if (s->c->ch->closed() || !StreamGoesOn(s->op_id, s->number)) return false;
  // The blob_error ends the stream: the chunks still in flight do not make
  // it go on (the agent may be fetching the archive by then).
  auto fail = [&](const std::string& why) {
    s->ended = true;
    SendControl(s->c, protocol::BlobError{s->op_id, why, s->stream});
    return false;
  };
  std::string buf;
  // Larger chunks than a blob's: fewer rounds of the io thread for many
  // small files, still well within a frame.
  constexpr size_t kPartsChunkBytes = 4 * protocol::kChunkBytes;
  static_assert(kPartsChunkBytes <= protocol::kMaxPayloadBytes);
  buf.reserve(static_cast<size_t>(std::min<uint64_t>(kPartsChunkBytes, s->total)));
  while (buf.size() < kPartsChunkBytes && s->part < s->parts.size()) {
    PartsStream::Part& p = s->parts[s->part];
    const size_t n =
        static_cast<size_t>(std::min<uint64_t>(kPartsChunkBytes - buf.size(), p.size - s->in_part));
    if (p.path.empty()) {
      buf.append(p.text, static_cast<size_t>(s->in_part), n);
    } else {
      if (s->fd < 0) s->fd = ::open(p.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      if (s->fd < 0) return fail("cannot read file " + p.sha256);
      const size_t at = buf.size();
      buf.resize(at + n);
      size_t got = 0;
      while (got < n) {
        ssize_t r =
            ::pread(s->fd, buf.data() + at + got, n - got, static_cast<off_t>(s->in_part + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += static_cast<size_t>(r);
      }
      if (got < n) buf.resize(at + got);
      s->hasher->Update(buf.data() + at, got);
      if (got < n || s->in_part + n == p.size) {
        // A short file or one whose bytes are not its name's: the cache is
        // wrong, never the agent's copy. Dropped, and derived again.
        char extra = 0;
        const bool longer = ::pread(s->fd, &extra, 1, static_cast<off_t>(p.size)) == 1;
        if (got < n || longer || s->hasher->FinishHex() != p.sha256) {
          ::unlink(p.path.c_str());
          o.files->Forget(s->blob);
          o.files->DeriveLater(s->blob);
          return fail("file " + p.sha256 + " of the file index is corrupt");
        }
        s->hasher = std::make_unique<Sha256>();
        ::close(s->fd);
        s->fd = -1;
      }
    }
    s->in_part += n;
    if (s->in_part == p.size) {
      ++s->part;
      s->in_part = 0;
    }
  }
  const bool eof = s->part == s->parts.size();
  std::string hdr =
      protocol::Encode(protocol::BlobData{s->op_id, s->offset, s->total, eof, s->stream});
  s->offset += buf.size();
  s->ended = eof;
  ++s->in_flight;
  std::function<void()> next = [this, s] {
    --s->in_flight;
    Pump(s);
  };
  (void)s->c->ch->Send(std::move(hdr), std::move(buf), std::move(next));  // a chunk always fits
  return true;
}

}  // namespace reprise
