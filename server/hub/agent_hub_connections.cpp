// The hub's connections (io thread): accepting, the handshake (hello,
// challenge, auth, enrollment), the messages an authenticated agent sends,
// closing and the heartbeat sweep.
#include <algorithm>

#include "common/crypto.h"
#include "common/fs.h"
#include "common/log.h"
#include "server/events/event_bus.h"
#include "server/hub/agent_hub_internal.h"

namespace reprise {

using namespace hub_internal;

namespace {

LogLevel LevelFromName(std::string_view name) {
  if (name == "warning") return LogLevel::kWarning;
  if (name == "error") return LogLevel::kError;
  if (name == "output") return LogLevel::kOutput;
  return LogLevel::kInfo;
}

}  // namespace

void AgentHub::Impl::Accept() {
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
        Log(log::Level::kWarn, "hub.refusing-connections",
            {{"unauthenticated", static_cast<unsigned long long>(unauthenticated)},
             {"first_refused", ec ? std::string("?") : peer.address().to_string()},
             {"note",
              "the handshake limit is reached; not logged again until a connection "
              "is accepted"}});
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

void AgentHub::Impl::Refuse(const std::shared_ptr<Conn>& c, const Status& st, bool permanent) {
  SendControl(c, protocol::Refused{st.code(), st.message(), permanent});
  c->ch->Close("refused: " + st.message());
}

void AgentHub::Impl::OnFrame(const std::shared_ptr<Conn>& c, protocol::Frame f) {
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

void AgentHub::Impl::On(const std::shared_ptr<Conn>& c, protocol::Heartbeat&, std::string&) {
  SendControl(c, protocol::HeartbeatAck{});
  if (NowMs() - c->last_seen_persisted > 60000) PersistLastSeen(c);
  if (!c->approved) CheckApproved(c);
}

void AgentHub::Impl::CheckApproved(const std::shared_ptr<Conn>& c) {
  if (NowMs() - c->approval_checked < 2000) return;
  c->approval_checked = NowMs();
  auto rec = o.store->GetAgent(c->name);
  if (!rec.ok() || rec->status != "approved") return;
  {
    std::lock_guard<std::mutex> g(mu);
    c->approved = true;
  }
  SendControl(c, WelcomeOf(true));
  RefreshStates(c);
}

void AgentHub::Impl::On(const std::shared_ptr<Conn>& c, protocol::LogLines& m,
                        std::string& payload) {
  auto op = OwnOp(c, m.op);
  if (!op) return;  // finished, cancelled, or not this agent's: ignored
  std::lock_guard<std::mutex> g(op->m);
  if (op->logs.size() < 100000) op->logs.emplace_back(LevelFromName(m.level), std::move(payload));
  op->cv.notify_all();
}

void AgentHub::Impl::On(const std::shared_ptr<Conn>& c, protocol::Progress& m, std::string&) {
  auto op = OwnOp(c, m.op);
  if (!op) return;
  std::lock_guard<std::mutex> g(op->m);
  op->progress =
      TransferProgress{m.phase, m.bytes_done, m.bytes_total, m.files_done, m.files_total};
  op->cv.notify_all();
}

void AgentHub::Impl::On(const std::shared_ptr<Conn>& c, protocol::OperationResult& m,
                        std::string&) {
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

void AgentHub::Impl::OnHello(const std::shared_ptr<Conn>& c, const protocol::Hello& h) {
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

void AgentHub::Impl::OnAuth(const std::shared_ptr<Conn>& c, const protocol::Auth& h) {
  const std::string& sig = h.signature;
  Status v = protocol::VerifySignature(c->public_key,
                                       protocol::AuthMessage(c->nonce, c->name, fingerprint), sig);
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
      return store.AppendAudit(AuditOf("agent:" + c->name, "agent.enroll", c->name,
                                       "enrolled from " + c->address + " with key " +
                                           key_fp.substr(0, 16) + " (" + r.status +
                                           (t->pre_approved ? ", pre-approved token" : "") + ")"));
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
  SendControl(c, WelcomeOf(c->approved));
  if (c->approved) RefreshStates(c);
}

void AgentHub::Impl::ReleaseHandshakeSlot(const std::shared_ptr<Conn>& c) {
  if (!c->counted_unauthenticated) return;
  c->counted_unauthenticated = false;
  --unauthenticated;
}

void AgentHub::Impl::PersistLastSeen(const std::shared_ptr<Conn>& c) {
  std::lock_guard<std::mutex> rg(records_mu);
  auto rec = o.store->GetAgent(c->name);
  if (!rec.ok()) return;
  rec->last_seen = NowMs();
  c->last_seen_persisted = rec->last_seen;
  (void)o.store->PutAgent(*rec);
}

std::vector<TargetRecord> AgentHub::Impl::TargetsOf(const std::string& agent) {
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

void AgentHub::Impl::RefreshStates(const std::shared_ptr<Conn>& c) {
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

void AgentHub::Impl::OnClose(const std::shared_ptr<Conn>& c, const std::string& why) {
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
    Event offline;
    offline.type = "agent.offline";
    offline.agent = c->name;
    offline.status = "offline";
    offline.reason = why;
    Publish(o.events, std::move(offline));
  }
}

void AgentHub::Impl::Sweep() {
  auto period = std::max<std::chrono::milliseconds>(
      std::chrono::milliseconds(20), std::min<std::chrono::milliseconds>(
                                         std::chrono::milliseconds(1000), o.heartbeat_timeout / 4));
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

}  // namespace reprise
