// The agent's side of a blob or files stream: a frame is taken only by the
// fetch whose request it answers. A chunk or error of an earlier request of
// the same operation, still on its way when the agent moved on (to the
// whole archive after a failed files stream), is dropped; an older server,
// which numbers nothing, is answered as before.
#include "agents/agent/blob_fetch.h"

#include <doctest/doctest.h>

namespace reprise::agent_internal {
namespace {

constexpr uint64_t kOp = 7;

// A session (no connection) with an in-memory fetch of kOp, request 2.
struct FetchFixture {
  Session session;
  std::shared_ptr<FetchState> fetch = std::make_shared<FetchState>();
  FetchFixture() {
    fetch->in_memory = true;
    fetch->stream = 2;
    session.fetches[kOp] = fetch;
  }
  void Chunk(uint64_t stream, uint64_t offset, std::string bytes, bool eof = false) {
    OnBlobData(session, protocol::BlobData{kOp, offset, 10, eof, stream}, bytes);
  }
};

TEST_CASE("a chunk of an earlier request of the operation is dropped, the fetch's own taken") {
  FetchFixture x;
  x.Chunk(1, 0, "stale");  // offset 0 as the new one's: no way to tell but the number
  x.Chunk(1, 5, "stale");
  CHECK(x.fetch->received == 0);
  CHECK(x.fetch->chunks.empty());
  CHECK_FALSE(x.fetch->failed);
  x.Chunk(2, 0, "01234");
  x.Chunk(1, 4, "x");  // an earlier request's, between the fetch's own
  x.Chunk(2, 5, "56789", true);
  CHECK_FALSE(x.fetch->failed);
  CHECK(x.fetch->done);
  CHECK(x.fetch->received == 10);
  REQUIRE(x.fetch->chunks.size() == 2);
  CHECK(x.fetch->chunks[0] + x.fetch->chunks[1] == "0123456789");
}

TEST_CASE("an error of an earlier request of the operation does not fail the fetch") {
  FetchFixture x;
  OnBlobError(x.session, protocol::BlobError{kOp, "file x of the file index is corrupt", 1});
  CHECK_FALSE(x.fetch->failed);
  x.Chunk(2, 0, "01234");
  CHECK(x.fetch->received == 5);
  OnBlobError(x.session, protocol::BlobError{kOp, "read error", 2});
  CHECK(x.fetch->failed);
  CHECK(x.fetch->error == "read error");
}

TEST_CASE("an older server's frames, numbered 0, are the fetch's") {
  FetchFixture x;
  x.Chunk(0, 0, "0123456789", true);
  CHECK(x.fetch->done);
  CHECK(x.fetch->received == 10);
  FetchFixture y;
  OnBlobError(y.session, protocol::BlobError{kOp, "no file index for this artifact yet", 0});
  CHECK(y.fetch->failed);
}

}  // namespace
}  // namespace reprise::agent_internal
