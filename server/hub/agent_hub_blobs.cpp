// Artifact blobs for agents: a remote agent fetches the blob of its running
// deploy-artifact chunk by chunk (blob_get, io thread); the local agent reads
// it straight from the blob store.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "server/hub/agent_hub_internal.h"

namespace reprise {

namespace hub_internal {

struct BlobStream {
  int fd = -1;
  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t op_id = 0;
  std::shared_ptr<Conn> c;
  std::string buf;
  ~BlobStream() {
    if (fd >= 0) ::close(fd);
  }
};

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
  auto fail = [&](const std::string& why) { SendControl(c, protocol::BlobError{op_id, why}); };
  if (!op || op->sha256.empty() || op->sha256 != sha) {
    return fail("this blob is not part of the agent's running operation");
  }
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
  s->c = c;
  Pump(s);
}

void AgentHub::Impl::Pump(const std::shared_ptr<BlobStream>& s) {
  if (s->c->ch->closed()) return;
  {
    std::lock_guard<std::mutex> g(mu);
    if (!ops.count(s->op_id)) return;  // the operation ended (cancelled)
  }
  size_t n = static_cast<size_t>(std::min<uint64_t>(protocol::kChunkBytes, s->size - s->offset));
  s->buf.resize(n);
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(s->fd, s->buf.data() + got, n - got, static_cast<off_t>(s->offset + got));
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      SendControl(s->c, protocol::BlobError{s->op_id, "read error"});
      return;
    }
    got += static_cast<size_t>(r);
  }
  bool eof = s->offset + n == s->size;
  std::string hdr = protocol::Encode(protocol::BlobData{s->op_id, s->offset, s->size, eof});
  s->offset += n;
  std::function<void()> next;
  if (!eof) next = [this, s] { Pump(s); };
  (void)s->c->ch->Send(std::move(hdr), std::move(s->buf),
                       std::move(next));  // a chunk always fits
  s->buf = std::string();
}

}  // namespace reprise
