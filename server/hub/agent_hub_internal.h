// Pieces of the agent hub shared by its .cpp files: a connection, an
// operation or request waiting for an agent's answer, and AgentHub::Impl,
// the hub's state, whose methods are defined in the file named at each
// section:
//   agent_hub.cpp              start, stop, the agent list, approval, enrollment tokens
//   agent_hub_connections.cpp  accepting, the handshake, messages from agents, closing
//   agent_hub_operations.cpp   running an operation on a target's agent (or the local one)
//   agent_hub_requests.cpp     state, validate and probe requests and their replies
//   agent_hub_blobs.cpp        serving artifact blobs to agents, and to the local agent
// Not a public API; included by server/hub/ only.
//
// Thread-safety: the io thread runs the connections (accepting, frames,
// closing, the sweep); caller threads run operations and requests. `mu`
// guards the maps and the Conn fields read off the io thread; `records_mu`
// serialises read-modify-write of agent records.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "agents/protocol/channel.h"
#include "agents/protocol/messages.h"
#include "agents/protocol/protocol.h"
#include "common/log.h"
#include "server/hub/agent_hub.h"

namespace reprise::hub_internal {

namespace fs = std::filesystem;
using protocol::Channel;
using protocol::MessageType;
using Steady = std::chrono::steady_clock;
namespace asio = protocol::asio;
using tcp = protocol::tcp;

inline constexpr const char* kLocalAgent = "local";

struct Conn {
  enum class Stage { kHello, kChallenged, kReady };
  uint64_t id = 0;
  std::shared_ptr<Channel> ch;
  Stage stage = Stage::kHello;
  bool counted_unauthenticated = false;  // in Impl::unauthenticated (io thread)
  std::string name, version, public_key, enroll_token, nonce, address;
  std::atomic<bool> approved{false};  // written under Impl::mu, read by the io thread too
  Steady::time_point connected_at = Steady::now();
  Steady::time_point last_recv = Steady::now();
  int64_t last_seen_persisted = 0;
  // A pending agent's record was last read (io thread): another server on
  // the same store may have approved it.
  int64_t approval_checked = 0;
};

struct PendingOp {
  uint64_t conn_id = 0;
  std::string agent;
  std::string sha256;  // the only blob this operation may fetch
  // io thread: the blob and files streams started for the operation; only
  // the latest goes on (the agent fetches one thing at a time).
  uint64_t streams = 0;
  std::mutex m;
  std::condition_variable cv;
  std::deque<std::pair<LogLevel, std::string>> logs;
  std::optional<TransferProgress> progress;
  std::optional<OperationOutcome> result;
  bool lost = false;
};

struct PendingReq {
  uint64_t conn_id = 0;
  std::string cache_target;  // set: nobody waits, the reply only refreshes the cache
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  bool lost = false;
  bool ok = false;
  std::string joined;  // parts of the body received so far
  std::string body;
  Status error;
};

// The local agent reads blobs straight from the server's store
// (agent_hub_blobs.cpp).
class StoreSource : public BlobSource {
 public:
  explicit StoreSource(const BlobStore* blobs) : blobs_(blobs) {}
  Result<Fetched> Fetch(const std::string& sha256, const fs::path&, const CancelToken&,
                        const ProgressFn& progress) override;

 private:
  const BlobStore* blobs_;
};

// A blob being streamed to an agent, chunk by chunk (agent_hub_blobs.cpp).
struct BlobStream;
// A build's file index or some of its files, streamed the same way.
struct PartsStream;

}  // namespace reprise::hub_internal

namespace reprise {

struct AgentHub::Impl {
  using Conn = hub_internal::Conn;
  using PendingOp = hub_internal::PendingOp;
  using PendingReq = hub_internal::PendingReq;
  using BlobStream = hub_internal::BlobStream;

  AgentHubOptions o;
  const Clock* clock = nullptr;
  hub_internal::asio::io_context io;
  std::optional<
      hub_internal::asio::executor_work_guard<hub_internal::asio::io_context::executor_type>>
      work;
  std::unique_ptr<hub_internal::tcp::acceptor> acceptor;
  std::unique_ptr<hub_internal::asio::ssl::context> ssl;
  std::string fingerprint;
  std::unique_ptr<hub_internal::asio::steady_timer> sweep;
  std::thread thread;
  std::unique_ptr<AgentRunner> local_runner;
  int port = -1;
  std::atomic<uint64_t> next_id{1};
  bool stopped = false;
  // Connections accepted but not yet authenticated, and whether the hub is
  // refusing new ones because of them (io thread only).
  size_t unauthenticated = 0;
  bool refusing = false;

  std::mutex records_mu;  // serialises read-modify-write of agent records
  std::mutex mu;          // guards the maps below and Conn fields read off the io thread
  std::map<uint64_t, std::shared_ptr<Conn>> conns;
  std::map<std::string, std::shared_ptr<Conn>> online;
  std::map<uint64_t, std::shared_ptr<PendingOp>> ops;
  std::map<uint64_t, std::shared_ptr<PendingReq>> reqs;
  std::map<std::string, TargetState> last_state;

  class HubOps : public Operations {
   public:
    HubOps(Impl* impl, DeployLabel label) : impl_(impl), label_(std::move(label)) {}
    OperationOutcome Run(const TargetInfo& target, const ResolvedOperation& op, StepLog& log,
                         const CancelToken& cancel) override {
      return impl_->RunOp(target, op, label_, log, cancel);
    }

   private:
    Impl* impl_;
    DeployLabel label_;
  };
  std::unique_ptr<HubOps> default_ops;

  int64_t NowMs() const { return ToUnixMillis(clock->Now()); }

  // An event line (common/log.h), or the line handed to AgentHubOptions::log.
  void Log(log::Level level, std::string_view event, std::initializer_list<log::Field> fields);

  AuditRecord AuditOf(const std::string& actor, const std::string& action,
                      const std::string& subject, const std::string& summary) {
    return {0, NowMs(), actor, action, subject, summary};
  }
  // For refusals, which change nothing; a change is audited in its own
  // transaction (Store::Atomically).
  void Audit(const std::string& actor, const std::string& action, const std::string& subject,
             const std::string& summary);

  // Control frames hold a few short fields and no payload: they always fit
  // in a frame, so Send cannot refuse them.
  static void SendControl(const std::shared_ptr<Conn>& c, const protocol::Message& message) {
    (void)c->ch->Send(protocol::Encode(message));
  }

  // ---- accepting and the handshake (io thread; agent_hub_connections.cpp) ----

  void Accept();
  void Refuse(const std::shared_ptr<Conn>& c, const Status& st, bool permanent);
  void OnFrame(const std::shared_ptr<Conn>& c, protocol::Frame f);

  // One handler per message an authenticated agent may send; anything else
  // ends the connection.
  template <class M>
  void On(const std::shared_ptr<Conn>& c, M& m, std::string&) {
    c->ch->Close("protocol violation: unexpected " +
                 std::string(protocol::MessageTypeName(protocol::TypeOf(m))));
  }
  void On(const std::shared_ptr<Conn>& c, protocol::Heartbeat&, std::string&);
  void On(const std::shared_ptr<Conn>& c, protocol::LogLines& m, std::string& payload);
  void On(const std::shared_ptr<Conn>& c, protocol::Progress& m, std::string&);
  void On(const std::shared_ptr<Conn>& c, protocol::OperationResult& m, std::string&);
  void On(const std::shared_ptr<Conn>& c, protocol::BlobGet& m, std::string&) { OnBlobGet(c, m); }
  void On(const std::shared_ptr<Conn>& c, protocol::FilesGet& m, std::string& payload) {
    OnFilesGet(c, m, payload);
  }
  void On(const std::shared_ptr<Conn>& c, protocol::Reply& m, std::string& payload) {
    OnReply(c, m, std::move(payload));
  }

  void OnHello(const std::shared_ptr<Conn>& c, const protocol::Hello& h);
  void OnAuth(const std::shared_ptr<Conn>& c, const protocol::Auth& h);
  // The connection no longer counts against max_unauthenticated (io thread).
  void ReleaseHandshakeSlot(const std::shared_ptr<Conn>& c);
  void PersistLastSeen(const std::shared_ptr<Conn>& c);
  // A pending agent approved meanwhile (on any server of the store) is told
  // so and may receive work; read at most every 2 s per connection.
  void CheckApproved(const std::shared_ptr<Conn>& c);
  std::vector<TargetRecord> TargetsOf(const std::string& agent);
  // On connect and approval: ask for every target's state, cached on reply.
  void RefreshStates(const std::shared_ptr<Conn>& c);
  void OnClose(const std::shared_ptr<Conn>& c, const std::string& why);
  void Sweep();

  std::shared_ptr<PendingOp> OwnOp(const std::shared_ptr<Conn>& c, uint64_t op_id) {
    std::lock_guard<std::mutex> g(mu);
    auto it = ops.find(op_id);
    // An agent can only report on its own operations.
    if (it == ops.end() || it->second->conn_id != c->id) return nullptr;
    return it->second;
  }

  DeployLabel DeployLabelFor(const std::string& release, const std::string& build) const {
    return DeployLabel{release, build, o.archive_limits};
  }

  // ---- blobs for agents (io thread; agent_hub_blobs.cpp) ----

  void OnBlobGet(const std::shared_ptr<Conn>& c, const protocol::BlobGet& h);
  void Pump(const std::shared_ptr<BlobStream>& s);
  // Whether stream `number` of operation `op_id` goes on: the operation
  // runs and has started no stream since (PendingOp::streams).
  bool StreamGoesOn(uint64_t op_id, uint64_t number);
  void OnFilesGet(const std::shared_ptr<Conn>& c, const protocol::FilesGet& h,
                  const std::string& payload);
  // Keeps up to kPartsInFlight chunks of `s` queued on its connection.
  void Pump(const std::shared_ptr<hub_internal::PartsStream>& s);
  // Reads, checks and queues the next chunk of `s`; false when the stream
  // stops (failed, cancelled, connection closed).
  bool SendPart(const std::shared_ptr<hub_internal::PartsStream>& s);
  // The welcome an agent gets: whether this server answers files_get.
  protocol::Welcome WelcomeOf(bool approved) const {
    return protocol::Welcome{approved ? "approved" : "pending", o.files != nullptr};
  }

  // ---- operations (caller threads; agent_hub_operations.cpp) ----

  Status ResolveTarget(const TargetInfo& in, std::string* agent, std::string* path);
  // The root of a target of the local agent, which must lie under the local
  // agent's root: the server's own files are not a deployment target.
  Result<hub_internal::fs::path> LocalRoot(const std::string& target, const std::string& path);
  std::shared_ptr<Conn> OnlineConn(const std::string& agent, Status* why);
  OperationOutcome RunOp(const TargetInfo& target, const ResolvedOperation& op,
                         const DeployLabel& label, StepLog& log, const CancelToken& cancel);
  OperationOutcome RunLocal(const std::string& target, const std::string& path,
                            const ResolvedOperation& op, const DeployLabel& label, StepLog& log,
                            const CancelToken& cancel, const ProgressFn& progress);
  // Sends the operation to the agent's connection and waits for its outcome.
  OperationOutcome RunRemote(const std::string& agent, const std::string& path,
                             const ResolvedOperation& op, const DeployLabel& label, StepLog& log,
                             const CancelToken& cancel, const ProgressFn& progress);
  // Passes on the agent's log lines and progress until it reports the
  // outcome or disconnects; once `cancel` fires, asks it to stop and waits
  // up to 10 s for it to confirm.
  OperationOutcome AwaitOutcome(const std::shared_ptr<Conn>& c, PendingOp& p, uint64_t id,
                                StepLog& log, const CancelToken& cancel,
                                const ProgressFn& progress);

  // ---- requests (agent_hub_requests.cpp) ----

  // io thread.
  void OnReply(const std::shared_ptr<Conn>& c, const protocol::Reply& h, std::string payload);
  // Caller threads.
  Result<std::string> Request(const std::shared_ptr<Conn>& c, hub_internal::MessageType type,
                              const std::string& path, std::string payload,
                              std::optional<std::chrono::milliseconds> timeout = std::nullopt);
};

}  // namespace reprise
