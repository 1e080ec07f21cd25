#include "server/hub/agent_hub.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "agents/protocol/channel.h"
#include "agents/protocol/messages.h"
#include "agents/protocol/protocol.h"
#include "common/crypto.h"
#include "common/fs.h"
#include "planner/version.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using protocol::Channel;
using protocol::MessageType;
using Steady = std::chrono::steady_clock;
namespace asio = protocol::asio;
using tcp = protocol::tcp;

constexpr const char* kLocalAgent = "local";

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

LogLevel LevelFromName(std::string_view name) {
  if (name == "warning") return LogLevel::kWarning;
  if (name == "error") return LogLevel::kError;
  if (name == "output") return LogLevel::kOutput;
  return LogLevel::kInfo;
}

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
};

struct PendingOp {
  uint64_t conn_id = 0;
  std::string agent;
  std::string sha256;  // the only blob this operation may fetch
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

// The local agent reads blobs straight from the server's store.
class StoreSource : public BlobSource {
 public:
  explicit StoreSource(const BlobStore* blobs) : blobs_(blobs) {}
  Result<Fetched> Fetch(const std::string& sha256, const fs::path&, const CancelToken&,
                        const ProgressFn& progress) override {
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

 private:
  const BlobStore* blobs_;
};

}  // namespace

struct AgentHub::Impl {
  AgentHubOptions o;
  const Clock* clock = nullptr;
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::unique_ptr<asio::ssl::context> ssl;
  std::string fingerprint;
  std::unique_ptr<asio::steady_timer> sweep;
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

  void Log(const std::string& text) {
    if (o.log) {
      o.log(text);
    } else {
      std::fprintf(stderr, "agent hub: %s\n", text.c_str());
    }
  }

  AuditRecord AuditOf(const std::string& actor, const std::string& action,
                      const std::string& subject, const std::string& summary) {
    return {0, NowMs(), actor, action, subject, summary};
  }
  // For refusals, which change nothing; a change is audited in its own
  // transaction (Store::Atomically).
  void Audit(const std::string& actor, const std::string& action, const std::string& subject,
             const std::string& summary) {
    Status st = o.store->AppendAudit(AuditOf(actor, action, subject, summary));
    if (!st.ok()) Log("audit failed: " + st.message());
  }

  // Control frames hold a few short fields and no payload: they always fit
  // in a frame, so Send cannot refuse them.
  static void SendControl(const std::shared_ptr<Conn>& c, const protocol::Message& message) {
    (void)c->ch->Send(protocol::Encode(message));
  }

  // ---- accepting and the handshake (io thread) ----

  void Accept() {
    acceptor->async_accept([this](const boost::system::error_code& e, tcp::socket sock) {
      if (e) {
        if (e == asio::error::operation_aborted || stopped) return;
        return Accept();
      }
      SetCloseOnExec(sock.native_handle());  // Asio accepts without SOCK_CLOEXEC
      if (unauthenticated >= o.max_unauthenticated) {
        // Closed before TLS or anything else costs memory. One line per
        // burst: a flood must not flood the log too.
        if (!refusing) {
          refusing = true;
          boost::system::error_code ec;
          auto peer = sock.remote_endpoint(ec);
          Log("refusing agent connections: " + std::to_string(unauthenticated) +
              " have not finished the handshake (the limit); first refused: " +
              (ec ? std::string("?") : peer.address().to_string()) +
              "; not logged again until a connection is accepted");
        }
        boost::system::error_code ec;
        sock.close(ec);
        return Accept();
      }
      refusing = false;
      auto c = std::make_shared<Conn>();
      c->id = next_id++;
      c->ch = std::make_shared<Channel>(std::move(sock), ssl.get(), true);
      c->address = c->ch->remote_address();
      // Until the agent has proved who it is, it can only send hello and auth.
      c->ch->set_max_frame_bytes(protocol::kMaxHandshakeFrameBytes);
      c->counted_unauthenticated = true;
      ++unauthenticated;
      {
        std::lock_guard<std::mutex> g(mu);
        conns[c->id] = c;
      }
      c->ch->Start([](const Status&) {}, [this, c](protocol::Frame f) { OnFrame(c, std::move(f)); },
                   [this, c](const std::string& why) { OnClose(c, why); });
      Accept();
    });
  }

  void Refuse(const std::shared_ptr<Conn>& c, const Status& st, bool permanent) {
    SendControl(c, protocol::Refused{st.code(), st.message(), permanent});
    c->ch->Close("refused: " + st.message());
  }

  void OnFrame(const std::shared_ptr<Conn>& c, protocol::Frame f) {
    c->last_recv = Steady::now();
    auto message = protocol::DecodeMessage(f.header);
    if (!message.ok()) return c->ch->Close("protocol violation: " + message.status().message());
    const MessageType type = protocol::TypeOf(*message);
    if (c->stage == Conn::Stage::kHello) {
      if (type != MessageType::kHello) return c->ch->Close("protocol violation: hello first");
      return OnHello(c, std::get<protocol::Hello>(*message));
    }
    if (c->stage == Conn::Stage::kChallenged) {
      if (type != MessageType::kAuth) return c->ch->Close("protocol violation: auth expected");
      return OnAuth(c, std::get<protocol::Auth>(*message));
    }
    std::visit([&](auto& m) { On(c, m, f.payload); }, *message);
  }

  // One handler per message an authenticated agent may send; anything else
  // ends the connection.
  template <class M>
  void On(const std::shared_ptr<Conn>& c, M& m, std::string&) {
    c->ch->Close("protocol violation: unexpected " +
                 std::string(protocol::MessageTypeName(protocol::TypeOf(m))));
  }
  void On(const std::shared_ptr<Conn>& c, protocol::Heartbeat&, std::string&) {
    SendControl(c, protocol::HeartbeatAck{});
    if (NowMs() - c->last_seen_persisted > 60000) PersistLastSeen(c);
  }
  void On(const std::shared_ptr<Conn>& c, protocol::LogLines& m, std::string& payload) {
    auto op = OwnOp(c, m.op);
    if (!op) return;  // finished, cancelled, or not this agent's: ignored
    std::lock_guard<std::mutex> g(op->m);
    if (op->logs.size() < 100000) op->logs.emplace_back(LevelFromName(m.level), std::move(payload));
    op->cv.notify_all();
  }
  void On(const std::shared_ptr<Conn>& c, protocol::Progress& m, std::string&) {
    auto op = OwnOp(c, m.op);
    if (!op) return;
    std::lock_guard<std::mutex> g(op->m);
    op->progress =
        TransferProgress{m.phase, m.bytes_done, m.bytes_total, m.files_done, m.files_total};
    op->cv.notify_all();
  }
  void On(const std::shared_ptr<Conn>& c, protocol::OperationResult& m, std::string&) {
    auto op = OwnOp(c, m.op);
    if (!op) return;
    std::lock_guard<std::mutex> g(op->m);
    if (m.kind == "succeeded") {
      op->result = OperationOutcome::Succeeded();
    } else if (m.kind == "failed") {
      op->result = OperationOutcome::Failed(m.message);
    } else {
      Code code = m.code == Code::kOk ? Code::kInternal : m.code;
      op->result = OperationOutcome::Error(Status(code, "agent " + c->name + ": " + m.message));
    }
    op->cv.notify_all();
  }
  void On(const std::shared_ptr<Conn>& c, protocol::BlobGet& m, std::string&) { OnBlobGet(c, m); }
  void On(const std::shared_ptr<Conn>& c, protocol::Reply& m, std::string& payload) {
    OnReply(c, m, std::move(payload));
  }

  void OnHello(const std::shared_ptr<Conn>& c, const protocol::Hello& h) {
    int version = h.protocol;
    if (version != protocol::kProtocolVersion) {
      return Refuse(c,
                    FailedPrecondition("protocol version " + std::to_string(version) +
                                       " is not supported (server speaks " +
                                       std::to_string(protocol::kProtocolVersion) + ")"),
                    true);
    }
    const std::string& name = h.name;
    const std::string& pub = h.public_key;
    const std::string& ver = h.version;
    const std::string& token = h.enroll_token;
    if (!protocol::IsValidAgentName(name) || name == kLocalAgent) {
      return Refuse(c, InvalidArgument("invalid agent name"), true);
    }
    if (pub.size() != 64 || protocol::KeyFingerprint(pub).empty()) {
      return Refuse(c, InvalidArgument("invalid public key"), true);
    }
    if (ver.size() > 64 || token.size() > 256) {
      return Refuse(c, InvalidArgument("oversized hello fields"), true);
    }
    c->name = name;
    c->public_key = pub;
    c->version = ver;
    c->enroll_token = token;
    c->nonce = RandomHex(32);
    c->stage = Conn::Stage::kChallenged;
    SendControl(c, protocol::Challenge{c->nonce});
  }

  void OnAuth(const std::shared_ptr<Conn>& c, const protocol::Auth& h) {
    const std::string& sig = h.signature;
    Status v = protocol::VerifySignature(
        c->public_key, protocol::AuthMessage(c->nonce, c->name, fingerprint), sig);
    std::string token = std::move(c->enroll_token);
    c->enroll_token.clear();
    if (!v.ok()) {
      Audit("agent:" + c->name, "agent.auth_failed", c->name,
            "bad signature from " + c->address + " (" + v.message() + ")");
      return Refuse(c, Unauthenticated("authentication failed"), true);
    }
    const std::string key_fp = protocol::KeyFingerprint(c->public_key);
    std::unique_lock<std::mutex> rg(records_mu);
    auto rec = o.store->GetAgent(c->name);
    AgentRecord r;
    if (!rec.ok()) {
      if (rec.status().code() != Code::kNotFound) {
        return Refuse(c, Unavailable("the server cannot read its store"), false);
      }
      if (token.empty()) {
        Audit("agent:" + c->name, "agent.enroll_refused", c->name,
              "unknown agent without an enrollment token from " + c->address);
        return Refuse(c, Unauthenticated("unknown agent: an enrollment token is needed"), true);
      }
      const std::string token_hash = Sha256Hex(token);
      auto t = o.store->FindEnrollToken(token_hash);
      if (!t.ok() || (t->expires_at != 0 && t->expires_at < NowMs())) {
        Audit("agent:" + c->name, "agent.enroll_refused", c->name,
              std::string(t.ok() ? "expired" : "unknown") + " enrollment token from " + c->address);
        return Refuse(c, Unauthenticated("the enrollment token is unknown or expired"), true);
      }
      r.name = c->name;
      r.status = t->pre_approved ? "approved" : "pending";
      r.key_fingerprint = key_fp;
      r.public_key = c->public_key;
      r.version = c->version;
      r.created_at = NowMs();
      r.last_seen = r.created_at;
      Store& store = *o.store;
      Status st = store.Atomically([&] {
        REPRISE_RETURN_IF_ERROR(store.PutAgent(r));
        REPRISE_RETURN_IF_ERROR(store.MarkEnrollTokenUsed(token_hash, c->name));
        return store.AppendAudit(
            AuditOf("agent:" + c->name, "agent.enroll", c->name,
                    "enrolled from " + c->address + " with key " + key_fp.substr(0, 16) + " (" +
                        r.status + (t->pre_approved ? ", pre-approved token" : "") + ")"));
      });
      if (!st.ok()) return Refuse(c, Unavailable("cannot record the agent"), false);
    } else {
      r = *rec;
      if (!ConstantTimeEquals(r.public_key, c->public_key)) {
        Audit("agent:" + c->name, "agent.key_mismatch", c->name,
              "refused a connection from " + c->address + " claiming this name with key " +
                  key_fp.substr(0, 16) + " (enrolled key " + r.key_fingerprint.substr(0, 16) + ")");
        return Refuse(c, PermissionDenied("the name " + c->name + " is enrolled with another key"),
                      true);
      }
      if (r.status == "refused") {
        return Refuse(c, PermissionDenied("this agent was refused by an administrator"), true);
      }
      r.version = c->version;
      r.last_seen = NowMs();
      (void)o.store->PutAgent(r);
    }
    rg.unlock();
    c->last_seen_persisted = NowMs();
    std::shared_ptr<Conn> old;
    {
      std::lock_guard<std::mutex> g(mu);
      auto it = online.find(c->name);
      if (it != online.end()) old = it->second;
      online[c->name] = c;
      c->approved = r.status == "approved";
      c->stage = Conn::Stage::kReady;
    }
    ReleaseHandshakeSlot(c);
    c->ch->set_max_frame_bytes(protocol::kMaxFrameBytes);
    if (old) old->ch->Close("replaced by a new connection of the same agent");
    SendControl(c, protocol::Welcome{c->approved ? "approved" : "pending"});
    if (c->approved) RefreshStates(c);
  }

  // The connection no longer counts against max_unauthenticated (io thread).
  void ReleaseHandshakeSlot(const std::shared_ptr<Conn>& c) {
    if (!c->counted_unauthenticated) return;
    c->counted_unauthenticated = false;
    --unauthenticated;
  }

  void PersistLastSeen(const std::shared_ptr<Conn>& c) {
    std::lock_guard<std::mutex> rg(records_mu);
    auto rec = o.store->GetAgent(c->name);
    if (!rec.ok()) return;
    rec->last_seen = NowMs();
    c->last_seen_persisted = rec->last_seen;
    (void)o.store->PutAgent(*rec);
  }

  std::vector<TargetRecord> TargetsOf(const std::string& agent) {
    std::vector<TargetRecord> out;
    for (int64_t off = 0;; off += 1000) {
      auto page = o.store->ListTargets(Page{1000, off});
      if (!page.ok()) break;
      for (auto& t : *page) {
        if (t.agent == agent) out.push_back(t);
      }
      if (page->size() < 1000) break;
    }
    return out;
  }

  // On connect and approval: ask for every target's state, cached on reply.
  void RefreshStates(const std::shared_ptr<Conn>& c) {
    for (const auto& t : TargetsOf(c->name)) {
      auto req = std::make_shared<PendingReq>();
      req->conn_id = c->id;
      req->cache_target = t.name;  // answered into last_state by OnReply
      uint64_t id = next_id++;
      {
        std::lock_guard<std::mutex> g(mu);
        reqs[id] = req;
      }
      SendControl(c, protocol::StateRequest{{id, t.path, false}});
    }
  }

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

  void OnBlobGet(const std::shared_ptr<Conn>& c, const protocol::BlobGet& h) {
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

  void Pump(const std::shared_ptr<BlobStream>& s) {
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

  void OnReply(const std::shared_ptr<Conn>& c, const protocol::Reply& h, std::string payload) {
    uint64_t id = h.req;
    std::shared_ptr<PendingReq> req;
    {
      std::lock_guard<std::mutex> g(mu);
      auto it = reqs.find(id);
      if (it == reqs.end() || it->second->conn_id != c->id) return;
      req = it->second;
    }
    // A body too large for one frame comes in parts (all but the last say
    // "more"): join them, up to a bound.
    bool too_large = false;
    {
      std::lock_guard<std::mutex> g(req->m);
      if (req->done) return;
      too_large = req->joined.size() + payload.size() > protocol::kMaxJoinedBytes;
      if (too_large) {
        req->done = true;
        req->joined = std::string();
        req->error = TooLarge("agent " + c->name + " answered with more than " +
                              std::to_string(protocol::kMaxJoinedBytes) + " bytes");
        req->cv.notify_all();
      } else if (h.more) {
        req->joined.append(payload);
        return;
      } else if (!req->joined.empty()) {
        payload = std::move(req->joined).append(payload);
      }
    }
    if (too_large) {
      if (!req->cache_target.empty()) {
        std::lock_guard<std::mutex> g(mu);
        reqs.erase(id);
      }
      return;
    }
    {
      std::lock_guard<std::mutex> g(mu);
      auto it = reqs.find(id);
      if (it == reqs.end()) return;
      if (!req->cache_target.empty()) {
        reqs.erase(it);
        if (h.ok) {
          auto st = TargetStateFromJson(payload);
          if (st.ok()) {
            st->online = true;
            last_state[req->cache_target] = *st;
          }
        }
        return;
      }
    }
    std::lock_guard<std::mutex> g(req->m);
    req->done = true;
    req->ok = h.ok;
    if (req->ok) {
      req->body = std::move(payload);
    } else {
      req->error = Status(h.code == Code::kOk ? Code::kInternal : h.code,
                          "agent " + c->name + ": " + h.message);
    }
    req->cv.notify_all();
  }

  void OnClose(const std::shared_ptr<Conn>& c, const std::string& why) {
    ReleaseHandshakeSlot(c);
    std::vector<std::shared_ptr<PendingOp>> lost_ops;
    std::vector<std::shared_ptr<PendingReq>> lost_reqs;
    bool was_online = false;
    {
      std::lock_guard<std::mutex> g(mu);
      conns.erase(c->id);
      auto it = online.find(c->name);
      if (it != online.end() && it->second == c) {
        online.erase(it);
        was_online = true;
      }
      for (auto& [id, op] : ops) {
        if (op->conn_id == c->id) lost_ops.push_back(op);
      }
      for (auto it = reqs.begin(); it != reqs.end();) {
        if (it->second->conn_id == c->id && !it->second->cache_target.empty()) {
          it = reqs.erase(it);
          continue;
        }
        if (it->second->conn_id == c->id) lost_reqs.push_back(it->second);
        ++it;
      }
      for (auto& [target, st] : last_state) {
        (void)target;
        st.online = false;
      }
    }
    for (auto& op : lost_ops) {
      std::lock_guard<std::mutex> g(op->m);
      op->lost = true;
      op->cv.notify_all();
    }
    for (auto& r : lost_reqs) {
      std::lock_guard<std::mutex> g(r->m);
      r->lost = true;
      r->cv.notify_all();
    }
    if (was_online && !stopped) {
      PersistLastSeen(c);
      (void)why;
    }
  }

  void Sweep() {
    auto period = std::max<std::chrono::milliseconds>(
        std::chrono::milliseconds(20),
        std::min<std::chrono::milliseconds>(std::chrono::milliseconds(1000),
                                            o.heartbeat_timeout / 4));
    sweep->expires_after(period);
    sweep->async_wait([this](const boost::system::error_code& e) {
      if (e || stopped) return;
      auto now = Steady::now();
      std::vector<std::pair<std::shared_ptr<Conn>, std::string>> to_close;
      {
        std::lock_guard<std::mutex> g(mu);
        for (auto& [id, c] : conns) {
          if (c->stage != Conn::Stage::kReady && now - c->connected_at > o.handshake_timeout) {
            to_close.emplace_back(c, "handshake timeout");
          } else if (c->stage == Conn::Stage::kReady && now - c->last_recv > o.heartbeat_timeout) {
            to_close.emplace_back(c, "missed heartbeats");
          }
        }
      }
      for (auto& [c, why] : to_close) c->ch->Close(why, /*flush=*/false);
      Sweep();
    });
  }

  // ---- operations (caller threads) ----

  Status ResolveTarget(const TargetInfo& in, std::string* agent, std::string* path) {
    *agent = in.agent;
    *path = in.path;
    if (agent->empty() || path->empty()) {
      auto rec = o.store->GetTarget(in.name);
      if (!rec.ok()) return rec.status().WithContext("target " + in.name);
      if (agent->empty()) *agent = rec->agent;
      if (path->empty()) *path = rec->path;
    }
    if (agent->empty()) return FailedPrecondition("target " + in.name + " has no agent");
    return Status::Ok();
  }

  // The root of a target of the local agent, which must lie under the local
  // agent's root: the server's own files are not a deployment target.
  Result<fs::path> LocalRoot(const std::string& target, const std::string& path) {
    auto root = local_runner->ResolveTargetRoot(path);
    if (root.ok()) return root;
    std::string hint = root.status().code() == Code::kPermissionDenied
                           ? " (reprise-server --local-agent-root sets that root)"
                           : "";
    return Status(root.status().code(), "target " + target + ": " + root.status().message() + hint);
  }

  std::shared_ptr<Conn> OnlineConn(const std::string& agent, Status* why) {
    std::lock_guard<std::mutex> g(mu);
    auto it = online.find(agent);
    if (it == online.end()) {
      *why = Unavailable("agent " + agent + " is offline");
      return nullptr;
    }
    if (!it->second->approved) {
      *why = Unavailable("agent " + agent + " is not approved");
      return nullptr;
    }
    return it->second;
  }

  OperationOutcome RunOp(const TargetInfo& target, const ResolvedOperation& op,
                         const DeployLabel& label, StepLog& log, const CancelToken& cancel) {
    std::string agent, path;
    Status st = ResolveTarget(target, &agent, &path);
    if (!st.ok()) return OperationOutcome::Error(st);
    ProgressFn progress;
    if (o.on_progress) {
      progress = [this, name = target.name](const TransferProgress& p) { o.on_progress(name, p); };
    }
    if (agent == kLocalAgent) {
      if (!o.local_agent || !local_runner) {
        return OperationOutcome::Error(Unavailable("the local agent is not enabled"));
      }
      auto root = LocalRoot(target.name, path);
      if (!root.ok()) {
        if (root.status().code() == Code::kPermissionDenied) {
          return OperationOutcome::Failed(root.status().message());
        }
        return OperationOutcome::Error(root.status());
      }
      StoreSource source(o.blobs);
      RunnerLog rlog = [&log](LogLevel level, std::string_view text) {
        if (level == LogLevel::kOutput) {
          log.Output(text);
        } else {
          log.Write(level, text);
        }
      };
      auto out = local_runner->Run(path, op, label, source, rlog, cancel, progress);
      log.FinishOutput();
      return out;
    }
    Status why;
    auto c = OnlineConn(agent, &why);
    if (!c) return OperationOutcome::Error(why);

    const uint64_t id = next_id++;
    json opj = json::parse(OperationToJson(op));
    std::string payload;
    std::string payload_what = "write-file content";
    if (auto* w = std::get_if<WriteFileOp>(&op)) {
      payload = w->content;  // raw bytes, not JSON text
      opj["content"] = "";
    }
    // A composed manifest may outgrow the header: it goes in the payload.
    auto* compose = std::get_if<ComposeReleaseOp>(&op);
    if (compose) {
      payload = compose->manifest_json;
      opj["manifest_json"] = "";
      payload_what = "compose-release: the composed manifest";
    }
    // An operation too large for one frame fails on its own; the connection
    // and the agent's other work are not affected.
    if (payload.size() > protocol::kMaxPayloadBytes) {
      return OperationOutcome::Failed(
          payload_what + " of " + std::to_string(payload.size()) + " bytes exceeds the " +
          std::to_string(protocol::kMaxPayloadBytes) + "-byte limit of a remote agent");
    }
    protocol::Run run{id, path, label.release, label.build, Dump(opj), std::nullopt};
    // Limits for what the agent extracts: the build, or A's artifact when the
    // target no longer has A's release.
    if (label.limits && (std::holds_alternative<DeployArtifactOp>(op) || compose))
      run.limits = ArchiveLimitsToJson(*label.limits);
    std::string header = protocol::Encode(run);
    if (header.size() > protocol::kMaxHeaderBytes) {
      return OperationOutcome::Failed(std::string(OperationKind(op)) + ": the operation takes " +
                                      std::to_string(header.size()) + " bytes to send, over the " +
                                      std::to_string(protocol::kMaxHeaderBytes) +
                                      "-byte limit of a remote agent");
    }

    auto p = std::make_shared<PendingOp>();
    p->conn_id = c->id;
    p->agent = agent;
    if (auto* d = std::get_if<DeployArtifactOp>(&op)) p->sha256 = d->sha256;
    if (compose) p->sha256 = compose->source_sha256;  // A's artifact, when A's release is gone
    {
      std::lock_guard<std::mutex> g(mu);
      ops[id] = p;
    }
    Status sent = c->ch->Send(std::move(header), std::move(payload));
    if (!sent.ok()) {
      std::lock_guard<std::mutex> g(mu);
      ops.erase(id);
      return OperationOutcome::Failed(std::string(OperationKind(op)) + ": " + sent.message());
    }

    std::optional<Steady::time_point> cancel_sent;
    OperationOutcome result;
    while (true) {
      std::deque<std::pair<LogLevel, std::string>> logs;
      std::optional<TransferProgress> prog;
      bool done = false, lost = false;
      {
        std::unique_lock<std::mutex> lk(p->m);
        p->cv.wait_for(lk, std::chrono::milliseconds(100),
                       [&] { return !p->logs.empty() || p->progress || p->result || p->lost; });
        logs.swap(p->logs);
        prog.swap(p->progress);
        if (p->result) {
          result = *p->result;
          done = true;
        }
        lost = p->lost;
      }
      for (auto& [level, text] : logs) {
        if (level == LogLevel::kOutput) {
          log.Output(text);
        } else {
          log.Write(level, text);
        }
      }
      if (prog && progress) progress(*prog);
      if (done) break;
      if (lost) {
        result = OperationOutcome::Error(
            Unavailable("agent " + agent + " disconnected during the operation"));
        break;
      }
      if (cancel.IsCancelled()) {
        if (!cancel_sent) {
          cancel_sent = Steady::now();
          SendControl(c, protocol::Cancel{id});
        } else if (Steady::now() - *cancel_sent > std::chrono::seconds(10)) {
          result = OperationOutcome::Error(
              Cancelled("cancelled; agent " + agent + " did not confirm in time"));
          break;
        }
      }
    }
    log.FinishOutput();
    {
      std::lock_guard<std::mutex> g(mu);
      ops.erase(id);
    }
    return result;
  }

  Result<std::string> Request(const std::shared_ptr<Conn>& c, MessageType type,
                              const std::string& path, std::string payload,
                              std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
    auto req = std::make_shared<PendingReq>();
    req->conn_id = c->id;
    uint64_t id = next_id++;
    {
      std::lock_guard<std::mutex> g(mu);
      reqs[id] = req;
    }
    // A manifest may outgrow a frame: it goes in parts, all but the last
    // marked "more".
    const auto parts = protocol::SplitPayload(payload);
    for (size_t i = 0; i < parts.size(); ++i) {
      const protocol::TargetRequest fields{id, path, i + 1 < parts.size()};
      const protocol::Message h = type == MessageType::kStateRequest
                                      ? protocol::Message(protocol::StateRequest{fields})
                                  : type == MessageType::kValidateRequest
                                      ? protocol::Message(protocol::ValidateRequest{fields})
                                      : protocol::Message(protocol::ProbeRequest{fields});
      Status sent = c->ch->Send(protocol::Encode(h), std::string(parts[i]));
      if (!sent.ok()) {
        std::lock_guard<std::mutex> g(mu);
        reqs.erase(id);
        return sent;
      }
    }
    Result<std::string> out = Internal("unreachable");
    {
      std::unique_lock<std::mutex> lk(req->m);
      bool finished = req->cv.wait_for(lk, timeout.value_or(o.request_timeout),
                                       [&] { return req->done || req->lost; });
      if (!finished) {
        out = Timeout("agent " + c->name + " did not answer in time");
      } else if (req->lost && !req->done) {
        out = Unavailable("agent " + c->name + " disconnected");
      } else if (!req->ok) {
        out = req->error;
      } else {
        out = std::move(req->body);
      }
    }
    std::lock_guard<std::mutex> g(mu);
    reqs.erase(id);
    return out;
  }
};

AgentHub::AgentHub() : impl_(std::make_shared<Impl>()) {}

AgentHub::~AgentHub() { Stop(); }

Result<std::unique_ptr<AgentHub>> AgentHub::Start(AgentHubOptions options) {
  if (options.store == nullptr) return InvalidArgument("the agent hub needs a store");
  std::unique_ptr<AgentHub> hub(new AgentHub());
  Impl& im = *hub->impl_;
  im.o = std::move(options);
  im.clock = im.o.clock ? im.o.clock : &SystemClock::Instance();
  im.default_ops = std::make_unique<Impl::HubOps>(&im, im.DeployLabelFor("", ""));
  if (im.o.local_agent) {
    im.local_runner =
        std::make_unique<AgentRunner>(RunnerOptions{im.o.local_agent_root, im.o.fsync, {}, 2000});
  }
  if (im.o.port >= 0) {
    if (!im.o.tls && !protocol::IsLoopbackHost(im.o.host)) {
      return InvalidArgument("plain TCP for agents is only allowed on loopback; enable TLS");
    }
    if (im.o.tls) {
      if (im.o.data_dir.empty()) return InvalidArgument("TLS needs a data directory");
      REPRISE_ASSIGN_OR_RETURN(auto files,
                               protocol::LoadOrCreateServerCert(im.o.data_dir.string()));
      im.fingerprint = files.fingerprint;
      try {
        im.ssl = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
        im.ssl->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_tlsv1 |
                            asio::ssl::context::no_tlsv1_1 | asio::ssl::context::no_sslv2 |
                            asio::ssl::context::no_sslv3);
        im.ssl->use_certificate_chain_file(files.cert_path);
        im.ssl->use_private_key_file(files.key_path, asio::ssl::context::pem);
      } catch (const std::exception& e) {
        return Internal(std::string("TLS setup failed: ") + e.what());
      }
    }
    try {
      tcp::endpoint ep(asio::ip::make_address(im.o.host == "localhost" ? "127.0.0.1" : im.o.host),
                       static_cast<unsigned short>(im.o.port));
      im.acceptor = std::make_unique<tcp::acceptor>(im.io);
      im.acceptor->open(ep.protocol());
      SetCloseOnExec(im.acceptor->native_handle());  // Asio opens without SOCK_CLOEXEC
      im.acceptor->set_option(tcp::acceptor::reuse_address(true));
      im.acceptor->bind(ep);
      im.acceptor->listen(asio::socket_base::max_listen_connections);
      im.port = im.acceptor->local_endpoint().port();
    } catch (const std::exception& e) {
      return Unavailable("cannot listen for agents on " + im.o.host + ":" +
                         std::to_string(im.o.port) + ": " + e.what());
    }
    im.Accept();
  }
  im.sweep = std::make_unique<asio::steady_timer>(im.io);
  im.Sweep();
  im.work.emplace(asio::make_work_guard(im.io));
  im.thread = std::thread([&im] { im.io.run(); });
  return hub;
}

int AgentHub::port() const { return impl_->port; }
std::string AgentHub::cert_fingerprint() const { return impl_->fingerprint; }

void AgentHub::Stop() {
  Impl& im = *impl_;
  if (im.stopped || !im.thread.joinable()) return;
  asio::post(im.io, [&im] {
    im.stopped = true;
    boost::system::error_code ec;
    if (im.acceptor) im.acceptor->close(ec);
    if (im.sweep) im.sweep->cancel();
    std::vector<std::shared_ptr<Conn>> all;
    {
      std::lock_guard<std::mutex> g(im.mu);
      for (auto& [id, c] : im.conns) all.push_back(c);
    }
    for (auto& c : all) c->ch->Close("server stopping", /*flush=*/false);
    im.work.reset();
  });
  im.thread.join();
  std::lock_guard<std::mutex> g(im.mu);
  for (auto& [id, op] : im.ops) {
    std::lock_guard<std::mutex> g2(op->m);
    op->lost = true;
    op->cv.notify_all();
  }
  for (auto& [id, r] : im.reqs) {
    std::lock_guard<std::mutex> g2(r->m);
    r->lost = true;
    r->cv.notify_all();
  }
  im.conns.clear();
  im.online.clear();
}

Operations& AgentHub::operations() { return *impl_->default_ops; }

std::unique_ptr<Operations> AgentHub::OperationsFor(const ExecutionContext& context) {
  return std::make_unique<Impl::HubOps>(impl_.get(),
                                        impl_->DeployLabelFor(context.release, context.build));
}

Result<TargetState> AgentHub::GetTargetState(const std::string& target) {
  Impl& im = *impl_;
  REPRISE_ASSIGN_OR_RETURN(TargetRecord rec, im.o.store->GetTarget(target));
  if (rec.agent == kLocalAgent) {
    if (!im.local_runner) return Unavailable("the local agent is not enabled");
    REPRISE_RETURN_IF_ERROR(im.LocalRoot(target, rec.path).status());
    REPRISE_ASSIGN_OR_RETURN(TargetState st, im.local_runner->State(rec.path));
    st.online = true;
    return st;
  }
  Status why;
  auto c = im.OnlineConn(rec.agent, &why);
  if (c) {
    auto body = im.Request(c, MessageType::kStateRequest, rec.path, "");
    if (body.ok()) {
      REPRISE_ASSIGN_OR_RETURN(TargetState st, TargetStateFromJson(*body));
      st.online = true;
      std::lock_guard<std::mutex> g(im.mu);
      im.last_state[target] = st;
      return st;
    }
    if (body.status().code() != Code::kUnavailable && body.status().code() != Code::kTimeout)
      return body.status();
  }
  std::lock_guard<std::mutex> g(im.mu);
  auto it = im.last_state.find(target);
  TargetState st = it == im.last_state.end() ? TargetState{} : it->second;
  st.online = false;
  return st;
}

Result<ValidationReport> AgentHub::Validate(const std::string& target, const Manifest& manifest) {
  Impl& im = *impl_;
  REPRISE_ASSIGN_OR_RETURN(TargetRecord rec, im.o.store->GetTarget(target));
  if (rec.agent == kLocalAgent) {
    if (!im.local_runner) return Unavailable("the local agent is not enabled");
    REPRISE_RETURN_IF_ERROR(im.LocalRoot(target, rec.path).status());
    return im.local_runner->Validate(rec.path, manifest);
  }
  Status why;
  auto c = im.OnlineConn(rec.agent, &why);
  if (!c) return why;
  REPRISE_ASSIGN_OR_RETURN(std::string body, im.Request(c, MessageType::kValidateRequest, rec.path,
                                                        ManifestToJson(manifest)));
  return ValidationReportFromJson(body);
}

Result<TargetAgentLink> AgentHub::TargetAgent(const std::string& target) {
  Impl& im = *impl_;
  REPRISE_ASSIGN_OR_RETURN(TargetRecord rec, im.o.store->GetTarget(target));
  TargetAgentLink link{target, rec.agent, false, false, ""};
  if (rec.agent == kLocalAgent) {
    link.connected = link.approved = im.local_runner != nullptr;
    link.version = Version();
    return link;
  }
  {
    std::lock_guard<std::mutex> g(im.mu);
    auto it = im.online.find(rec.agent);
    if (it != im.online.end()) {
      link.connected = true;
      link.approved = it->second->approved;
      link.version = it->second->version;
      return link;
    }
  }
  auto known = im.o.store->GetAgent(rec.agent);
  if (known.ok()) {
    link.approved = known->status == "approved";
    link.version = known->version;
  }
  return link;
}

Result<TargetProbe> AgentHub::Probe(const std::string& target) {
  Impl& im = *impl_;
  TargetProbe probe;
  REPRISE_ASSIGN_OR_RETURN(probe.link, TargetAgent(target));
  const TargetAgentLink& link = probe.link;
  REPRISE_ASSIGN_OR_RETURN(TargetRecord rec, im.o.store->GetTarget(target));
  if (!link.connected || !link.approved) {
    probe.problem = link.agent == kLocalAgent
                        ? "the local agent of target '" + target + "' is not enabled"
                        : "agent '" + link.agent + "' of target '" + target + "' is not " +
                              (link.connected ? "approved" : "connected");
    return probe;
  }
  const auto start = std::chrono::steady_clock::now();
  Result<std::string> body = Internal("unreachable");
  if (rec.agent == kLocalAgent) {
    auto root = im.LocalRoot(target, rec.path);
    auto report = root.ok() ? im.local_runner->Probe(rec.path)
                            : Result<ProbeReport>(UnwritableRoot(root.status().message()));
    body = report.ok() ? Result<std::string>(ProbeReportToJson(*report))
                       : Result<std::string>(report.status());
  } else {
    Status why;
    auto c = im.OnlineConn(rec.agent, &why);
    body = c ? im.Request(c, MessageType::kProbeRequest, rec.path, "", im.o.probe_timeout)
             : Result<std::string>(why);
  }
  probe.latency_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - start)
                         .count();
  Result<ProbeReport> report =
      body.ok() ? ProbeReportFromJson(*body) : Result<ProbeReport>(body.status());
  if (!report.ok()) {
    probe.problem = "agent '" + link.agent + "' of target '" + target +
                    "' did not answer the probe: " + report.status().message();
    if (report.status().code() == Code::kUnavailable) probe.link.connected = false;
    return probe;
  }
  probe.answered = true;
  probe.report = std::move(report).value();
  return probe;
}

std::vector<AgentStatus> AgentHub::Agents() {
  Impl& im = *impl_;
  std::vector<AgentStatus> out;
  std::map<std::string, std::vector<std::string>> targets;
  for (int64_t off = 0;; off += 1000) {
    auto page = im.o.store->ListTargets(Page{1000, off});
    if (!page.ok()) break;
    for (const auto& t : *page) targets[t.agent].push_back(t.name);
    if (page->size() < 1000) break;
  }
  if (im.o.local_agent) {
    AgentStatus a;
    a.name = kLocalAgent;
    a.status = "online";
    a.approved = a.online = true;
    a.version = Version();
    a.last_seen = im.NowMs();
    a.targets = targets[kLocalAgent];
    out.push_back(a);
  }
  for (int64_t off = 0;; off += 1000) {
    auto page = im.o.store->ListAgents(Page{1000, off});
    if (!page.ok()) break;
    for (const auto& r : *page) {
      AgentStatus a;
      a.name = r.name;
      a.approved = r.status == "approved";
      a.version = r.version;
      a.last_seen = r.last_seen;
      a.key_fingerprint = r.key_fingerprint;
      a.targets = targets[r.name];
      {
        std::lock_guard<std::mutex> g(im.mu);
        auto it = im.online.find(r.name);
        if (it != im.online.end()) {
          a.online = true;
          a.address = it->second->address;
          a.last_seen = im.NowMs();
          a.approved = it->second->approved || a.approved;
        }
      }
      a.status = r.status == "refused" ? "refused"
                 : !a.approved         ? "pending"
                 : a.online            ? "online"
                                       : "offline";
      out.push_back(a);
    }
    if (page->size() < 1000) break;
  }
  return out;
}

Status AgentHub::Approve(const std::string& name, const std::string& actor) {
  Impl& im = *impl_;
  std::unique_lock<std::mutex> rg(im.records_mu);
  REPRISE_ASSIGN_OR_RETURN(AgentRecord rec, im.o.store->GetAgent(name));
  if (rec.status != "approved") {
    rec.status = "approved";
    Store& store = *im.o.store;
    REPRISE_RETURN_IF_ERROR(store.Atomically([&] {
      REPRISE_RETURN_IF_ERROR(store.PutAgent(rec));
      return store.AppendAudit(
          im.AuditOf(actor, "agent.approve", name,
                     "approved agent with key " + rec.key_fingerprint.substr(0, 16)));
    }));
  }
  rg.unlock();
  std::shared_ptr<Conn> c;
  {
    std::lock_guard<std::mutex> g(im.mu);
    auto it = im.online.find(name);
    if (it != im.online.end()) {
      c = it->second;
      c->approved = true;
    }
  }
  if (c) {
    Impl::SendControl(c, protocol::Welcome{"approved"});
    Impl* p = &im;
    asio::post(im.io, [p, c] { p->RefreshStates(c); });
  }
  return Status::Ok();
}

Result<std::string> AgentHub::CreateEnrollToken(bool pre_approved, std::chrono::seconds expires_in,
                                                const std::string& actor) {
  Impl& im = *impl_;
  if (expires_in.count() < 1 || expires_in.count() > 30LL * 24 * 3600) {
    return InvalidArgument("expires_in_seconds must be between 1 and 2592000 (30 days)");
  }
  std::string token = "rpe_" + RandomHex(24);
  EnrollTokenRecord r;
  r.token_hash = Sha256Hex(token);
  r.pre_approved = pre_approved;
  r.created_by = actor;
  r.created_at = im.NowMs();
  r.expires_at = r.created_at + expires_in.count() * 1000;
  Store& store = *im.o.store;
  REPRISE_RETURN_IF_ERROR(store.Atomically([&] {
    REPRISE_RETURN_IF_ERROR(store.CreateEnrollToken(r));
    return store.AppendAudit(
        im.AuditOf(actor, "agent.enroll_token.create", "",
                   std::string(pre_approved ? "pre-approved" : "needs approval") + ", expires " +
                       FormatRfc3339Utc(FromUnixMillis(r.expires_at))));
  }));
  return token;
}

}  // namespace reprise
