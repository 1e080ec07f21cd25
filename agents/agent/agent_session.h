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

// A blob arriving for one operation: written and hashed into `fd` on the
// connection's thread, read behind by the operation's thread.
struct FetchState {
  std::mutex m;
  std::condition_variable cv;
  int fd = -1;
  std::string sha256;
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
  bool files = false;  // the server answers files_get (its welcome said so)
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
  // A reply body of any size, in parts of a frame each (all but the last
  // marked "more").
  void SendReply(uint64_t req, std::string_view body);
};

}  // namespace reprise::agent_internal
