// Session and FetchState: one connection of the agent to a server, as the
// client (agent_client.cpp) and the blob fetch (blob_fetch.cpp) share it.
// Internal to agents/agent/; keeps Asio out of its includers.
//
// Thread-safety: Session::mu guards `closed` and the maps below it; the
// other Session fields are touched on the io_context thread only.
// FetchState::m guards every FetchState field.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "agents/agent/runner.h"
#include "agents/protocol/messages.h"
#include "common/crypto.h"
#include "common/status.h"

namespace reprise::protocol {
class Channel;
}

namespace reprise::agent_internal {

// A blob arriving for one operation, from the connection's thread to the
// operation's: written and hashed into `fd` and read behind, or (`in_memory`)
// handed over as the chunks themselves, at most kMaxQueuedBytes (and the
// chunk that crossed it) at once: then the connection reads no further
// frame until the operation has taken some.
struct FetchState {
  static constexpr uint64_t kMaxQueuedBytes = 16u << 20;
  std::mutex m;
  std::condition_variable cv;
  bool in_memory = false;
  std::deque<std::string> chunks;  // in_memory: received, not yet taken
  uint64_t queued = 0;             // bytes in `chunks`
  bool holding = false;            // in_memory: this fetch holds the session's reads
  uint64_t max_queued = 0;         // the most `queued` ever was (for tests and logs)
  int fd = -1;
  std::string sha256;
  uint64_t stream = 0;  // the request's number (protocol::BlobGet::stream)
  uint64_t received = 0;
  uint64_t total = 0;
  uint64_t last_progress = 0;
  Sha256 hasher;
  bool done = false;
  bool failed = false;
  std::string error;
  ProgressFn progress;
};

struct RunningOp {
  CancelToken cancel;
};

struct Link;

// One connection to a server.
struct Session {
  Link* link = nullptr;  // the server it belongs to (outlives the session)
  std::shared_ptr<protocol::Channel> ch;
  std::chrono::steady_clock::time_point last_recv = std::chrono::steady_clock::now();
  bool authed = false;
  bool approved = false;
  std::mutex mu;  // guards everything below
  bool closed = false;
  bool files = false;    // the server answers files_get (its welcome said so)
  uint64_t streams = 0;  // blob_get and files_get requests numbered so far
  std::map<uint64_t, std::shared_ptr<RunningOp>> ops;
  std::map<uint64_t, std::shared_ptr<FetchState>> fetches;
  // Requests whose payload is still arriving in parts.
  struct PartialRequest {
    std::string data;
    bool refused = false;  // over kMaxJoinedBytes: answered, the rest is dropped
  };
  std::map<uint64_t, PartialRequest> partial_requests;

  // For frames that always fit: control messages, and logs and results
  // whose text is bounded by BoundedText.
  void Send(const protocol::Message& message, std::string payload = {});
  void SendError(uint64_t req, const Status& st);
  // Flow control of an in-memory fetch (Channel::HoldReads): HoldReads on
  // the connection's thread, ReleaseReads from any thread, once per hold.
  void HoldReads();
  void ReleaseReads();
  // A reply body of any size, in parts of a frame each (all but the last
  // marked "more").
  void SendReply(uint64_t req, std::string_view body);
};

}  // namespace reprise::agent_internal
